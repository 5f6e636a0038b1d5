"""Publish and release the images: `flyte-prebuilt images publish|release`, `make publish`, `make release`.

Publishing pushes a built image to a registry and records the pushed digest in the lock file of the source checkout
(``plugins/kit/images.lock.json``), never in an installed package's folder; a release builds and publishes every
type's image, then builds the wheel and sdist that ship that lock file, so tasks serialized by whoever installs them
name the images by digest.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from flytekitplugins.prebuilt.kit import images

from build_tools.building import Builder, docker_client
from build_tools.checkout import ImageError, checkout_version, lock_file, task_types


@dataclass
class Publisher:
    """Pushes what ``builder`` builds, from ``builder.root`` and for ``builder.python``."""

    builder: Builder = field(default_factory=Builder)

    def publish(self, task_type: str, registry: str, variant: str = "") -> str:
        """Push the image to ``registry`` (version tag and moving tag); record its digest in the checkout's lock file
        (``lock_file``); return image@digest."""
        lock = lock_file(self.builder.root)  # first: refuses outside a source checkout
        self._check_version()
        client = docker_client()
        tag = images.image_tag(task_type, variant=variant, python=self.builder.python)
        try:
            local = client.images.get(tag)
        except Exception:
            raise ImageError(f"{tag} is not built; run `flyte-prebuilt images build {task_type}` first") from None
        repository = f"{registry.rstrip('/')}/{images.repository_name(task_type)}"
        suffix = f"-{variant}" if variant else ""
        version_tag, moving_tag = tag.rsplit(":", 1)[1], f"latest-py{self.builder.python}{suffix}"
        digest = None
        for push_tag in (version_tag, moving_tag):
            local.tag(repository, push_tag)
            digest = self._push(client, repository, push_tag) or digest
        if not digest:
            raise ImageError(f"the registry did not report a digest for {repository}")
        images.record_digest(task_type, f"{repository}:{version_tag}", digest, lock, variant, self.builder.python)
        self.builder.say(f"published {repository}@{digest}")
        return f"{repository}@{digest}"

    def release(self, registry: str, task_types_: Optional[list[str]] = None, out_dir: Optional[Path] = None) -> list:
        """Build every type's image (default variant; ``make images-gpu`` builds the CUDA one), push it, record the
        digests in the checkout's lock file, then build the sdist and the wheel (from the sdist) that carry it;
        return the paths of the two. Each is checked to ship the recorded digests."""
        root = self.builder.root
        lock = lock_file(root)
        self._check_version()
        for task_type in task_types_ or task_types(root):
            self.builder.build(task_type)
            self.publish(task_type, registry)
        out = Path(out_dir or root / "dist")
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        done = subprocess.run([uv, "build", "-q", "--out-dir", str(out), str(root)], capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageError(f"building the sdist and wheel failed:\n{done.stderr[-2000:]}")
        name = f"flytekitplugins_prebuilt-{images.package_version()}"
        built = [out / f"{name}.tar.gz", next(out.glob(f"{name}-*.whl"), out / f"{name}-missing.whl")]
        shipped = "flytekitplugins/prebuilt/kit/" + lock.name
        for artifact, member in zip(built, [f"{name}/plugins/kit/{lock.name}", shipped]):
            if _archive_member(artifact, member) != lock.read_bytes():
                raise ImageError(f"{artifact} does not carry {lock} as {member}: check pyproject.toml's package-data")
            self.builder.say(f"built {artifact} with the digests of {', '.join(sorted(images.read_lock(lock)))}")
        return built

    # ------------------------------------------------------------------ steps

    def _check_version(self) -> None:
        """The lock records this package's version: the checkout must be the version installed here."""
        root = self.builder.root
        if checkout_version(root) != images.package_version():
            raise ImageError(
                f"{root} is version {checkout_version(root)} but flytekitplugins-prebuilt "
                f"{images.package_version()} is installed: install the checkout (`uv pip install -e .`) first"
            )

    def _push(self, client, repository: str, tag: str) -> Optional[str]:
        """Push ``repository:tag``; the digest the registry reports."""
        self.builder.say(f"pushing {repository}:{tag}")
        digest = None
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise ImageError(f"pushing {repository}:{tag} failed: {event['error']}")
            status = event.get("status", "")
            if status in ("Pushed", "Layer already exists") or "digest:" in status:
                self.builder.say(f"  {event.get('id', '')} {status}".strip())
            digest = event.get("aux", {}).get("Digest", digest)
        return digest


def _archive_member(archive: Path, member: str) -> Optional[bytes]:
    """The bytes of ``member`` in a wheel (zip) or sdist (tar.gz), None when absent."""
    import tarfile
    import zipfile

    if not archive.is_file():
        return None
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as wheel:
                return wheel.read(member)
        with tarfile.open(archive) as sdist:
            extracted = sdist.extractfile(member)
            return extracted.read() if extracted else None
    except KeyError:
        return None
