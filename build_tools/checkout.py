"""The source checkout images are built from: its Dockerfiles, its pyproject.toml, its image lock file, and the
runtime requirements each image installs."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import tomllib
from flytekitplugins.prebuilt.kit import images

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tools are part of (build_tools/..)


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
    """The task types with an image: a folder of ``images/`` holding a Dockerfile."""
    return sorted(p.name for p in (source_tree(root) / "images").iterdir() if (p / "Dockerfile").is_file())


def lock_file(root: Path = ROOT) -> Path:
    """The image lock file of a source checkout: the one the wheel and sdist built from it ship."""
    return source_tree(root) / "plugins" / "kit" / images.LOCK_FILE.name


def checkout_version(root: Path = ROOT) -> str:
    """The version in the checkout's pyproject.toml (what a wheel built from it will be)."""
    return tomllib.loads((source_tree(root) / "pyproject.toml").read_text())["project"]["version"]


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


def extra_wheels_file(task_type: str, variant: str = "", root: Path = ROOT) -> Path:
    """``images/<type>/extra-wheels.txt`` (of a variant: ``extra-wheels-<variant>.txt``): requirements outside the
    type's extra, such as the train type's torch."""
    return source_tree(root) / "images" / task_type / (f"extra-wheels-{variant}.txt" if variant else "extra-wheels.txt")


def extra_wheel_requirements(task_type: str, variant: str = "", root: Path = ROOT) -> list[str]:
    """The requirements of the type's extra-wheels file (none without one)."""
    listed = extra_wheels_file(task_type, variant, root)
    lines = listed.read_text().splitlines() if listed.is_file() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def revision(root: Path = ROOT) -> str:
    """The checkout's git commit (an image's org.opencontainers.image.revision label)."""
    done = subprocess.run(
        ["git", "-C", str(source_tree(root)), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"
