"""``flyte-prebuilt image-name`` (the image a task type's tasks run in) and ``images build|publish|release``.

Building, publishing and releasing need a source checkout (its Dockerfiles, its lock file): their code is the
checkout's ``build_tools/``, which the wheel does not ship. Run from an installed package, ``images ...`` says so.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click
from flytekitplugins.prebuilt.command_line import UserMistake
from flytekitplugins.prebuilt.kit.images import IMAGE_PYTHON, IMAGE_PYTHONS, default_image

TOOLS = "build_tools"  # the checkout's folder of image tools, beside plugins/ (see its __init__)


@click.command("image-name")
@click.argument("task_type")
@click.option("--variant", default="", help="An image variant, e.g. 'cuda' for train.")
def image_name(task_type: str, variant: str) -> None:
    """The image that tasks of TASK_TYPE serialized by this package version run in."""
    from flytekitplugins.prebuilt.kit.spec import task_types

    known = task_types()
    if task_type not in known:
        raise UserMistake(f"unknown task type {task_type!r}; the task types are: {', '.join(known)}")
    click.echo(default_image(task_type, variant=variant))


def source_checkout(package: Optional[Path] = None) -> Optional[Path]:
    """The source checkout this package runs from (an editable install: ``plugins/`` is the package), or None.

    ``package`` is the folder of ``flytekitplugins.prebuilt`` (default: this one's)."""
    if package is None:
        import flytekitplugins.prebuilt as ours

        package = Path(ours.__file__).resolve().parent
    checkout = package.parent
    return checkout if (checkout / TOOLS / "__init__.py").is_file() else None


def _tools():
    """The checkout's ``build_tools`` package; a UserMistake saying what to do when run from an installed one."""
    checkout = source_checkout()
    if checkout is None:
        raise UserMistake(
            "`flyte-prebuilt images` builds, publishes and releases images from a source checkout of "
            "flytekitplugins-prebuilt, and this one runs from an installed package (its build tools are not in the "
            "wheel): clone the repository, install it (`make .venv/.installed`) and run `make images` there; "
            "to run tasks, pull the published images (`flyte-prebuilt image-name TYPE`)"
        )
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    import build_tools.building
    import build_tools.checkout
    import build_tools.releasing
    import build_tools.wheelhouse

    return build_tools


@click.group()
def images() -> None:
    """Build and publish the task types' images (from a source checkout)."""


@images.command("build")
@click.argument("task_types", nargs=-1)
@click.option(
    "--base-image",
    default="auto",
    show_default=True,
    help="Base image ('auto': python:3.11-slim-bookworm, else the local base).",
)
@click.option(
    "--wheelhouse", type=click.Path(file_okay=False), help="Install from these wheels only (no package index)."
)
@click.option("--fill-wheelhouse", is_flag=True, help="Download the requirements into --wheelhouse first.")
@click.option(
    "--ca-bundle", type=click.Path(dir_okay=False), help="Extra CA bundle (default: $PIP_CERT or $SSL_CERT_FILE)."
)
@click.option("--force", is_flag=True, help="Rebuild even when the image was built from the same sources.")
@click.option("--variant", default="", help="An image variant, e.g. 'cuda' for train (torch's CUDA build).")
@click.option(
    "--python",
    "pythons",
    multiple=True,
    type=click.Choice(IMAGE_PYTHONS),
    help=f"The images' Python (repeatable; default {IMAGE_PYTHON}); the tag says it (...-py<X.Y>).",
)
def images_build(task_types, base_image, wheelhouse, fill_wheelhouse, ca_bundle, force, variant, pythons) -> None:
    """Build TASK_TYPES' images (default: all), tagged with this package version."""
    tools = _tools()
    try:
        types_ = list(task_types) or tools.checkout.task_types()
        if fill_wheelhouse:
            if not wheelhouse:
                raise UserMistake("--fill-wheelhouse needs --wheelhouse DIR")
            tools.wheelhouse.fill_wheelhouse(types_, wheelhouse)
        for python in pythons or (IMAGE_PYTHON,):
            builder = tools.building.Builder(
                base_image=base_image, wheelhouse=wheelhouse, ca_bundle=ca_bundle, python=python
            )
            for task_type in types_:
                builder.build(task_type, force=force, variant=variant)
    except tools.checkout.ImageError as error:
        raise click.ClickException(str(error)) from None


@images.command("publish")
@click.argument("task_types", nargs=-1)
@click.option("--registry", required=True, help="e.g. ghcr.io/my-org or 127.0.0.1:5000")
@click.option("--variant", default="", help="An image variant, e.g. 'cuda' for train.")
def images_publish(task_types, registry, variant) -> None:
    """Push TASK_TYPES' images (default: all) and record their digests in the checkout's lock file."""
    tools = _tools()
    try:
        publisher = tools.releasing.Publisher()
        for task_type in list(task_types) or tools.checkout.task_types():
            publisher.publish(task_type, registry, variant)
    except tools.checkout.ImageError as error:
        raise click.ClickException(str(error)) from None


@images.command("release")
@click.argument("task_types", nargs=-1)
@click.option("--registry", required=True, help="e.g. ghcr.io/my-org or 127.0.0.1:5000")
@click.option(
    "--source",
    type=click.Path(file_okay=False, exists=True),
    help="The source checkout to release (default: the one this command runs from).",
)
@click.option("--out-dir", type=click.Path(file_okay=False), help="Where the sdist and wheel go (default: dist/).")
def images_release(task_types, registry, source, out_dir) -> None:
    """Build TASK_TYPES' images (default: all), push them, record their digests in the checkout's lock file, then
    build the sdist and wheel that carry it. The train type's CUDA variant is not released (`make images-gpu`)."""
    tools = _tools()
    try:
        builder = tools.building.Builder(root=Path(source).resolve()) if source else tools.building.Builder()
        publisher = tools.releasing.Publisher(builder)
        for artifact in publisher.release(registry, list(task_types) or None, Path(out_dir) if out_dir else None):
            click.echo(artifact)
    except tools.checkout.ImageError as error:
        raise click.ClickException(str(error)) from None
