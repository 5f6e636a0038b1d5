"""Build, publish and release the task types' images (Docker SDK): `flyte-prebuilt images build|publish|release`.

One source of truth: an image is tagged with the name tasks of this package version point at
(``kit.images.image_tag``); publishing pushes it to a registry and records the pushed digest in the lock file of
the source checkout (``plugins/kit/images.lock.json``), never in an installed package's folder; a release then
builds the wheel and sdist that ship that lock file, so tasks serialized by whoever installs them name the images
by digest.

Builds work behind a firewall: from a local base image (``scripts/make-local-base.sh``), from a
wheelhouse instead of a package index, and with an extra CA bundle for a TLS-inspecting proxy.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

import tomllib
from flytekitplugins.prebuilt.kit import images

ROOT = Path(__file__).resolve().parents[1]  # plugins/.. in a checkout; site-packages/flytekitplugins when installed
OFFICIAL_BASE = "python:{python}-slim-bookworm"  # for each of images.IMAGE_PYTHONS
LOCAL_BASE = "prebuilt-local-base:bookworm"  # debootstrap's Debian bookworm: its python3 is LOCAL_BASE_PYTHON
LOCAL_BASE_PYTHON = "3.11"
SOURCE_LABEL = "prebuilt.source-hash"


class ImageError(RuntimeError):
    """A build or publish step failed; the message says what to do."""


def source_tree(root: Path = ROOT) -> Path:
    """The checkout images are built from (Dockerfiles, pyproject.toml, the sources); ImageError when there is none.

    Images are built from a source checkout, not from an installed wheel: the wheel ships neither the Dockerfiles
    nor the sources the image's own wheel is built from.
    """
    pyproject = root / "pyproject.toml"
    if not (root / "images" / "base.Dockerfile").is_file() or not pyproject.is_file():
        raise ImageError(
            f"images are built from a source checkout of flytekitplugins-prebuilt, and {root} is not one (an installed "
            f"package ships no Dockerfiles): clone the repository and run `make images` there"
        )
    return root


def task_types(root: Path = ROOT) -> list[str]:
    return sorted(p.name for p in (source_tree(root) / "images").iterdir() if (p / "Dockerfile").is_file())


def lock_file(root: Path = ROOT) -> Path:
    """The image lock file of a source checkout: the one the wheel and sdist built from it ship."""
    return source_tree(root) / "plugins" / "kit" / images.LOCK_FILE.name


def checkout_version(root: Path = ROOT) -> str:
    """The version in the checkout's pyproject.toml (what a wheel built from it will be)."""
    return tomllib.loads((source_tree(root) / "pyproject.toml").read_text())["project"]["version"]


def docker_client():
    from flytekitplugins.prebuilt.docker_engine import DockerUnavailable
    from flytekitplugins.prebuilt.docker_engine import docker_client as connect

    try:
        return connect()
    except DockerUnavailable as error:
        raise ImageError(str(error)) from None


@dataclass
class Builder:
    base_image: str = "auto"  # 'auto': the official base when present or pullable, else the local one
    wheelhouse: Optional[str] = None  # install from these wheels only (no package index)
    ca_bundle: Optional[str] = None  # extra CA bundle for the index (default: PIP_CERT / SSL_CERT_FILE)
    network: str = "host"  # the build's network: the index is reachable from the host's; 'none' proves offline
    say: Callable[[str], None] = print
    python: str = images.IMAGE_PYTHON  # the images' Python, one of images.IMAGE_PYTHONS (tag ...-py<X.Y>)

    def __post_init__(self):
        if self.python not in images.IMAGE_PYTHONS:
            raise ImageError(f"Python {self.python}: images are built for {', '.join(images.IMAGE_PYTHONS)}")

    root: Path = ROOT  # the source checkout built from, and whose lock file records published digests

    def build(self, task_type: str, force: bool = False, tag: Optional[str] = None, variant: str = "") -> str:
        """Build ``images/<task_type>/Dockerfile``; return the tag. Skipped when built from the same sources.

        A ``variant`` takes its extra wheels from ``images/<type>/extra-wheels-<variant>.txt`` (the train type's
        ``cuda``: torch's CUDA build) and is tagged ``...-<variant>``."""
        root = source_tree(self.root)
        client = docker_client()
        directory = root / "images" / task_type
        if not (directory / "Dockerfile").is_file():
            raise ImageError(f"no images/{task_type}/Dockerfile; task types with images: {', '.join(task_types(root))}")
        if variant and not _extra_wheels_file(task_type, variant, root).is_file():
            raise ImageError(f"task type {task_type!r} has no image variant {variant!r}")
        tag = tag or images.image_tag(task_type, variant=variant, python=self.python)
        source_hash = self._source_hash(task_type, variant)
        if not force and _label(client, tag, SOURCE_LABEL) == source_hash:
            self.say(f"{tag} is up to date")
            return tag
        base = self._base_image(client)
        context = directory / "context"
        self._prepare_context(task_type, context, variant)
        self.say(f"building {tag} from {base}{' with a wheelhouse' if self.wheelhouse else ''}")
        # the type's Dockerfile extends the shared stages: join them into one file in the context
        base_dockerfile = (root / "images" / "base.Dockerfile").read_text()
        (context / "Dockerfile").write_text(base_dockerfile + "\n" + (directory / "Dockerfile").read_text())
        stream = client.api.build(
            path=str(directory),
            dockerfile="context/Dockerfile",
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            network_mode=self.network,
            buildargs={
                "PYTHON_VERSION": self.python,
                "BASE_IMAGE": base,
                "VERSION": images.package_version(),
                "REVISION": _revision(root),
                "UV_VERSION": version("uv"),
                "IMAGE_VARIANT": variant or "default",
            },
            labels={SOURCE_LABEL: source_hash},
        )
        for event in stream:
            if "error" in event:
                raise ImageError(f"building {tag} failed: {event['error'].strip()}")
            line = event.get("stream", "").strip()
            if line.startswith("Step "):
                self.say(f"  {line}")
        client.images.prune(filters={"label": SOURCE_LABEL, "dangling": True})  # our superseded images
        size = client.images.get(tag).attrs["Size"] / 1e6
        self.say(f"built {tag} ({size:.0f} MB)")
        return tag

    def publish(self, task_type: str, registry: str, variant: str = "") -> str:
        """Push the image to ``registry`` (version tag and moving tag); record its digest in the checkout's lock file
        (``lock_file``); return image@digest."""
        lock = lock_file(self.root)  # first: refuses outside a source checkout
        self._check_version()
        client = docker_client()
        tag = images.image_tag(task_type, variant=variant, python=self.python)
        try:
            local = client.images.get(tag)
        except Exception:
            raise ImageError(f"{tag} is not built; run `flyte-prebuilt images build {task_type}` first") from None
        repository = f"{registry.rstrip('/')}/{images.repository_name(task_type)}"
        suffix = f"-{variant}" if variant else ""
        version_tag, moving_tag = tag.rsplit(":", 1)[1], f"latest-py{self.python}{suffix}"
        digest = None
        for push_tag in (version_tag, moving_tag):
            local.tag(repository, push_tag)
            self.say(f"pushing {repository}:{push_tag}")
            for event in client.api.push(repository, tag=push_tag, stream=True, decode=True):
                if "error" in event:
                    raise ImageError(f"pushing {repository}:{push_tag} failed: {event['error']}")
                status = event.get("status", "")
                if status in ("Pushed", "Layer already exists") or "digest:" in status:
                    self.say(f"  {event.get('id', '')} {status}".strip())
                digest = event.get("aux", {}).get("Digest", digest)
        if not digest:
            raise ImageError(f"the registry did not report a digest for {repository}")
        images.record_digest(task_type, f"{repository}:{version_tag}", digest, lock, variant, self.python)
        self.say(f"published {repository}@{digest}")
        return f"{repository}@{digest}"

    def release(self, registry: str, task_types_: Optional[list[str]] = None, out_dir: Optional[Path] = None) -> list:
        """Build every type's image (default variant; ``make images-gpu`` builds the CUDA one), push it, record the
        digests in the checkout's lock file, then build the sdist and the wheel (from the sdist) that carry it;
        return the paths of the two. Each is checked to ship the recorded digests."""
        lock = lock_file(self.root)
        self._check_version()
        for task_type in task_types_ or task_types(self.root):
            self.build(task_type)
            self.publish(task_type, registry)
        out = Path(out_dir or self.root / "dist")
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        done = subprocess.run(
            [uv, "build", "-q", "--out-dir", str(out), str(self.root)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise ImageError(f"building the sdist and wheel failed:\n{done.stderr[-2000:]}")
        name = f"flytekitplugins_prebuilt-{images.package_version()}"
        built = [out / f"{name}.tar.gz", next(out.glob(f"{name}-*.whl"), out / f"{name}-missing.whl")]
        shipped = "flytekitplugins/prebuilt/kit/" + lock.name
        for artifact, member in zip(built, [f"{name}/plugins/kit/{lock.name}", shipped]):
            if _archive_member(artifact, member) != lock.read_bytes():
                raise ImageError(f"{artifact} does not carry {lock} as {member}: check pyproject.toml's package-data")
            self.say(f"built {artifact} with the digests of {', '.join(sorted(images.read_lock(lock)))}")
        return built

    # ------------------------------------------------------------------ steps

    def _check_version(self) -> None:
        """The lock records this package's version: the checkout must be the version installed here."""
        if checkout_version(self.root) != images.package_version():
            raise ImageError(
                f"{self.root} is version {checkout_version(self.root)} but flytekitplugins-prebuilt "
                f"{images.package_version()} is installed: install the checkout (`uv pip install -e .`) first"
            )

    def _base_image(self, client) -> str:
        from docker.errors import DockerException

        if self.base_image != "auto":
            if not _present(client, self.base_image):
                raise ImageError(
                    f"base image {self.base_image} is not present; pull it or build it (scripts/make-local-base.sh)"
                )
            return self.base_image
        official = OFFICIAL_BASE.format(python=self.python)
        if _present(client, official):
            return official
        try:
            client.images.pull(official)
            return official
        except DockerException:
            pass
        if self.python != LOCAL_BASE_PYTHON:
            raise ImageError(
                f"base image {official} cannot be pulled, and the local base (Debian bookworm, made by "
                f"scripts/make-local-base.sh) has Python {LOCAL_BASE_PYTHON} only: pull {official} where a registry "
                f"is reachable, or pass --base-image with Python {self.python}"
            )
        if _present(client, LOCAL_BASE):
            self.say(f"{official} cannot be pulled here; using the local base {LOCAL_BASE}")
            return LOCAL_BASE
        raise ImageError(
            f"base image {official} cannot be pulled and no local base exists: run "
            f"`bash scripts/make-local-base.sh` (debootstrap from apt's mirror) or pass --base-image"
        )

    def _prepare_context(self, task_type: str, context: Path, variant: str = "") -> None:
        shutil.rmtree(context, ignore_errors=True)
        (context / "wheels").mkdir(parents=True)
        (context / "wheelhouse").mkdir()
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        done = subprocess.run(
            [uv, "build", "-q", "--wheel", "--out-dir", str(context / "wheels"), str(source_tree(self.root))],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ImageError(f"building the package wheel failed:\n{done.stderr[-2000:]}")
        (context / "requirements.txt").write_text("\n".join(runtime_requirements(task_type, self.root)) + "\n")
        if self.wheelhouse:
            wheels = list(Path(self.wheelhouse).glob("*.whl"))
            if not wheels:
                raise ImageError(f"wheelhouse {self.wheelhouse} holds no wheels")
            for wheel in wheels:
                shutil.copy(wheel, context / "wheelhouse")
        self._download_extra_wheels(task_type, context / "extra-wheels", variant)
        bundle = self.ca_bundle or os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
        if self.ca_bundle and not Path(self.ca_bundle).is_file():
            raise ImageError(f"CA bundle {self.ca_bundle} does not exist")
        if bundle and Path(bundle).is_file():
            shutil.copy(bundle, context / "ca.crt")
        else:
            (context / "ca.crt").write_text("")  # the Dockerfile copies it either way

    def _download_extra_wheels(self, task_type: str, target: Path, variant: str = "") -> None:
        """The wheels of ``images/<type>/extra-wheels.txt`` (requirements outside the type's extra, such as the train
        type's torch) with their dependencies, into ``context/extra-wheels/`` for the type's Dockerfile to install.
        pip finds them as configured here (its find-links, its index), or in the wheelhouse only."""
        listed = _extra_wheels_file(task_type, variant, self.root)
        if not listed.is_file():
            return
        target.mkdir()
        where = ["--no-index", "--find-links", self.wheelhouse] if self.wheelhouse else []
        # the base image's glibc (Debian bookworm: 2.36) runs every manylinux wheel from 2_17 to 2_28; pip does not
        # widen an explicit --platform to older tags, so each is named (NVIDIA's CUDA wheels use 2_18, 2_27, ...)
        tags = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 16, -1)] + ["manylinux2014_x86_64"]
        platform = [argument for tag in tags for argument in ("--platform", tag)]
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version"]
            + [self.python, *platform, *where, "-d", str(target), "-r", str(listed)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ImageError(f"downloading {listed.name} of images/{task_type} failed:\n{done.stderr[-2000:]}")

    def _source_hash(self, task_type: str, variant: str = "") -> str:
        """What decides the image's content: its variant, pinned requirements and the package's sources (less the
        image lock file, which a release writes after building: the images it names must not change with it)."""
        root = source_tree(self.root)
        lock = lock_file(root)
        digest = hashlib.sha256("\n".join([variant, *runtime_requirements(task_type, root)]).encode())
        digest.update((root / "images" / "base.Dockerfile").read_bytes())
        for folder in (root / "plugins", root / "executors", root / "images" / task_type):
            for path in sorted(
                p
                for p in folder.rglob("*")
                if p.is_file() and "context" not in p.parts and p.suffix != ".pyc" and p != lock
            ):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
        for packaging in ("pyproject.toml", "setup.py"):
            digest.update((root / packaging).read_bytes())
        return digest.hexdigest()[:16]


def runtime_requirements(task_type: str, root: Path = ROOT) -> list[str]:
    """flytekit and the type's extra, pinned to the versions installed here (what the tests ran)."""
    project = tomllib.loads((source_tree(root) / "pyproject.toml").read_text())["project"]
    pinned = []
    for requirement in ["flytekit", *project["optional-dependencies"][task_type]]:
        name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)
        try:
            pinned.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pinned.append(requirement)
    return pinned


def _extra_wheels_file(task_type: str, variant: str = "", root: Path = ROOT) -> Path:
    return source_tree(root) / "images" / task_type / (f"extra-wheels-{variant}.txt" if variant else "extra-wheels.txt")


def extra_wheel_requirements(task_type: str, variant: str = "") -> list[str]:
    """The requirements of ``images/<type>/extra-wheels.txt`` (of a variant: ``extra-wheels-<variant>.txt``; none
    without one)."""
    listed = _extra_wheels_file(task_type, variant)
    lines = listed.read_text().splitlines() if listed.is_file() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def fill_wheelhouse(task_types_: list[str], directory: str, say: Callable[[str], None] = print) -> None:
    """Download the wheels of every image's requirements (plus uv, and its extra wheels) into ``directory``, for
    offline builds."""
    wanted = {r for t in task_types_ for r in [*runtime_requirements(t), *extra_wheel_requirements(t)]}
    requirements = sorted(wanted | {f"uv=={version('uv')}"})
    stamp = Path(directory) / "requirements.txt"
    if stamp.is_file() and stamp.read_text().split() == requirements:
        say(f"wheelhouse {directory} is up to date")
        return
    say(f"downloading {len(requirements)} requirements and their dependencies into {directory}")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--only-binary=:all:",
            "--python-version",
            images.IMAGE_PYTHON,
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "-d",
            directory,
            *requirements,
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ImageError(f"filling the wheelhouse failed:\n{done.stderr[-2000:]}")
    stamp.write_text("\n".join(requirements) + "\n")


def _present(client, image: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(image)
        return True
    except ImageNotFound:
        return False


def _label(client, image: str, label: str) -> Optional[str]:
    from docker.errors import ImageNotFound

    try:
        return (client.images.get(image).labels or {}).get(label)
    except ImageNotFound:
        return None


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


def _revision(root: Path = ROOT) -> str:
    done = subprocess.run(
        ["git", "-C", str(source_tree(root)), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"
