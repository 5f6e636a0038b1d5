"""Build the task types' images (Docker SDK): `flyte-prebuilt images build`, `make images`.

An image is tagged with the name tasks of this package version point at (``kit.images.image_tag``) and labelled with
the hash of its sources (``source_hash``): a build is skipped while they are unchanged.

Builds work behind a firewall: from a local base image (``scripts/make-local-base.sh``), from a wheelhouse instead of
a package index (``wheelhouse.py``), and with an extra CA bundle for a TLS-inspecting proxy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Optional

from flytekitplugins.prebuilt.kit import images

from build_tools.checkout import (
    ROOT,
    ImageError,
    extra_wheels_file,
    revision,
    runtime_requirements,
    source_tree,
    task_types,
)
from build_tools.source_hash import source_hash

OFFICIAL_BASE = "python:{python}-slim-bookworm"  # for each of images.IMAGE_PYTHONS
LOCAL_BASE = "prebuilt-local-base:bookworm"  # debootstrap's Debian bookworm: its python3 is LOCAL_BASE_PYTHON
LOCAL_BASE_PYTHON = "3.11"
SOURCE_LABEL = "prebuilt.source-hash"


def docker_client():
    """The Docker engine's client; ImageError saying how to start one when there is none."""
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
    root: Path = ROOT  # the source checkout built from, and whose lock file records published digests

    def __post_init__(self):
        if self.python not in images.IMAGE_PYTHONS:
            raise ImageError(f"Python {self.python}: images are built for {', '.join(images.IMAGE_PYTHONS)}")

    def build(self, task_type: str, force: bool = False, tag: Optional[str] = None, variant: str = "") -> str:
        """Build ``images/<task_type>/Dockerfile``; return the tag. Skipped when built from the same sources.

        A ``variant`` takes its extra wheels from ``images/<type>/extra-wheels-<variant>.txt`` (the train type's
        ``cuda``: torch's CUDA build) and is tagged ``...-<variant>``."""
        root = source_tree(self.root)
        client = docker_client()
        directory = root / "images" / task_type
        if not (directory / "Dockerfile").is_file():
            raise ImageError(f"no images/{task_type}/Dockerfile; task types with images: {', '.join(task_types(root))}")
        if variant and not extra_wheels_file(task_type, variant, root).is_file():
            raise ImageError(f"task type {task_type!r} has no image variant {variant!r}")
        tag = tag or images.image_tag(task_type, variant=variant, python=self.python)
        hashed = source_hash(task_type, variant, root)
        if not force and self.up_to_date(task_type, variant, tag):
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
                "REVISION": revision(root),
                "UV_VERSION": version("uv"),
                "IMAGE_VARIANT": variant or "default",
            },
            labels={SOURCE_LABEL: hashed},
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

    def up_to_date(self, task_type: str, variant: str = "", tag: Optional[str] = None) -> Optional[str]:
        """The image's tag when it exists and was built from the checkout's current sources, else None: what the
        tests look up (they never build; `make images` does, once per run)."""
        tag = tag or images.image_tag(task_type, variant=variant, python=self.python)
        hashed = source_hash(task_type, variant, source_tree(self.root))
        return tag if _label(docker_client(), tag, SOURCE_LABEL) == hashed else None

    # ------------------------------------------------------------------ steps

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
        shutil.copy(source_tree(self.root) / "images" / "install.sh", context / "install.sh")
        common, *own = runtime_requirements(task_type, self.root)  # flytekit first: one layer every type shares
        (context / "requirements-common.txt").write_text(common + "\n")
        (context / "requirements.txt").write_text("".join(f"{line}\n" for line in own))
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
        listed = extra_wheels_file(task_type, variant, self.root)
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
