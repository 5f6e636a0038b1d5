"""Default executor images, named from the package version: one source of truth for tasks and builds.

A task serialized by version V of this package points at the image built from version V:
``<registry>/prebuilt-<type>:<V>-py<X.Y>``, where X.Y is the image's Python (fixed by its Dockerfile,
not by the registering machine). ``make images`` tags its builds with exactly this name, via
``flyte-prebuilt image-name <type>``. Unlike upstream, no environment variable of the registering
machine (FLYTE_INTERNAL_IMAGE, ...) changes it: override per task with ``container_image=``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DEFAULT_REGISTRY = "ghcr.io/flytekitplugins-prebuilt"
IMAGE_PYTHON = "3.11"  # the Python of images/<type>/Dockerfile's base


def package_version() -> str:
    try:
        return version("flytekitplugins-prebuilt")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


def default_image(task_type: str, registry: str = DEFAULT_REGISTRY) -> str:
    """The image tag that ``make images`` builds for this package version and task type."""
    tag = package_version().replace("+", "_")  # '+' is not allowed in a Docker tag
    return f"{registry}/prebuilt-{task_type}:{tag}-py{IMAGE_PYTHON}"
