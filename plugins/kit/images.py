"""Executor images, named from the package version: one source of truth for tasks and builds.

A task serialized by version V of this package points at the image built from version V:
``<registry>/prebuilt-<type>:<V>-py<X.Y>``, where X.Y is the image's Python (fixed by its Dockerfile,
not by the registering machine). ``flyte-prebuilt images build`` tags its builds with exactly this
name. Once an image is published, its digest is recorded in the source checkout's ``plugins/kit/images.lock.json``
(``make release``; never in an installed package's folder), the wheel built from it ships that file, and tasks name
the image by digest, ``<repository>@sha256:...``, so what runs is exactly what was
tested. Unlike upstream, no environment variable of the registering machine (FLYTE_INTERNAL_IMAGE,
...) changes it. A registration changes it the way Flyte changes images, by name in flytekit's image
configuration (``pyflyte register --image prebuilt-sql=mirror.example/prebuilt-sql:...``, or the config
file's ``images`` section): a platform team's mirror, with no task code touched. ``container_image=``
overrides it per task.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from flytekit.configuration import ImageConfig

DEFAULT_REGISTRY = "ghcr.io/flytekitplugins-prebuilt"
IMAGE_PYTHON = "3.11"  # the images' default Python (images/base.Dockerfile's PYTHON_VERSION)
IMAGE_PYTHONS = ("3.10", "3.11", "3.12")  # the Pythons an image can be built for: flytekit's (>=3.10,<3.13)
LOCK_FILE = Path(__file__).with_name("images.lock.json")


def package_version() -> str:
    try:
        return version("flytekitplugins-prebuilt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


def repository_name(task_type: str) -> str:
    return f"prebuilt-{task_type}"


def image_tag(task_type: str, registry: str = DEFAULT_REGISTRY, variant: str = "", python: str = IMAGE_PYTHON) -> str:
    """The tag the image of this package version is built under, ``<V>-py<X.Y>``: the image's Python, and a variant
    (the train type's ``cuda``: torch's CUDA build) at the end, ``<V>-py<X.Y>-cuda``."""
    tag = package_version().replace("+", "_")  # '+' is not allowed in a Docker tag
    return f"{registry}/{repository_name(task_type)}:{tag}-py{python}{_suffix(variant)}"


def image_key(task_type: str, variant: str = "", python: str = IMAGE_PYTHON) -> str:
    """The name an image configuration (``--image prebuilt-train-cuda=...``) knows an image by: ``prebuilt-<type>``,
    then ``-py<X.Y>`` for a Python other than the default and ``-<variant>`` for a variant."""
    return f"{repository_name(task_type)}{_key_suffix(variant, python)}"


def default_image(
    task_type: str, lock_file: Optional[Path] = None, variant: str = "", python: str = IMAGE_PYTHON
) -> str:
    """The published image by digest when the lock file records one for this version, else the tag."""
    entry = read_lock(lock_file).get(f"{task_type}{_key_suffix(variant, python)}")
    if entry and entry.get("package_version") == package_version():
        return f"{entry['image'].rsplit(':', 1)[0]}@{entry['digest']}"
    return image_tag(task_type, variant=variant, python=python)


def registered_image(
    task_type: str, image_config: Optional["ImageConfig"] = None, variant: str = "", python: str = IMAGE_PYTHON
) -> str:
    """The image a registration runs a task of this type in: the one its image configuration names
    ``image_key(...)`` (flytekit ``ImageConfig.find_image``), else ours (``default_image``)."""
    named = _named_image(image_config, image_key(task_type, variant, python))
    if named is None:
        return default_image(task_type, variant=variant, python=python)
    return named.full if named.tag or named.digest else named.fqn  # a config file's entry may have neither


def _named_image(image_config: Optional["ImageConfig"], key: str):
    """The image configuration's entry named ``key``, or None. Only a flytekit ``ImageConfig`` is read, and only an
    ``Image`` taken from it: ``pyflyte register`` takes its settings from the remote's context, which a test may stand
    in for (upstream's ``test_register_sql_task`` mocks ``FlyteRemote``, so every setting is then a mock), and a
    task whose image needs nothing from the remote must serialize all the same."""
    from flytekit.configuration import Image, ImageConfig

    if not isinstance(image_config, ImageConfig):
        return None
    named = image_config.find_image(key)
    return named if isinstance(named, Image) else None


def read_lock(lock_file: Optional[Path] = None) -> dict:
    path = Path(lock_file or LOCK_FILE)
    if not path.is_file():
        return {}
    return json.loads(path.read_text()).get("images", {})


def record_digest(
    task_type: str, image: str, digest: str, lock_file: Path, variant: str = "", python: str = IMAGE_PYTHON
) -> None:
    """Write a pushed image's digest to a source checkout's lock file (``images publish|release``, after a push).

    Only ``<checkout>/plugins/kit/images.lock.json`` is written: a digest recorded in an installed package's folder
    would make tasks serialized on that one machine name other images than everyone else's; the release's wheel
    carries the lock file instead."""
    path = Path(lock_file)
    checkout = path.parent.parent.parent
    in_checkout = (checkout / "pyproject.toml").is_file() and (checkout / "images" / "base.Dockerfile").is_file()
    if path.name != LOCK_FILE.name or path.parent.parts[-2:] != ("plugins", "kit") or not in_checkout:
        raise ValueError(
            f"image digests are recorded in a source checkout's plugins/kit/{LOCK_FILE.name} only, never in an "
            f"installed package (a release's wheel carries that file): {path} is not one"
        )
    entries = read_lock(path)
    entry = {"package_version": package_version(), "image": image, "digest": digest}
    entries[f"{task_type}{_key_suffix(variant, python)}"] = entry
    path.write_text(json.dumps({"version": 1, "images": dict(sorted(entries.items()))}, indent=2) + "\n")


def _suffix(variant: str) -> str:
    return f"-{variant}" if variant else ""


def _key_suffix(variant: str, python: str) -> str:
    return ("" if python == IMAGE_PYTHON else f"-py{python}") + _suffix(variant)
