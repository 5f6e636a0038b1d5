"""``flyte-prebuilt``: run templates through the platform emulator, build and publish images, manage
script bundles.

    flyte-prebuilt run examples/sql_quickstart.py big_orders --input min_amount=150 [--in-container]
    flyte-prebuilt identity examples/sql_quickstart.py big_orders
    flyte-prebuilt image-name sql
    flyte-prebuilt images build|publish ...
    flyte-prebuilt bundle pack|push|list|download|derive ...
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile

import click
from flytekitplugins.prebuilt.kit.images import default_image


@click.group()
def main() -> None:
    """Prebuilt Flyte task types: emulate the platform, inspect templates, name images."""


@main.command("image-name")
@click.argument("task_type")
def image_name(task_type: str) -> None:
    """The image that tasks of TASK_TYPE serialized by this package version run in."""
    click.echo(default_image(task_type))


@main.group()
def images() -> None:
    """Build and publish the task types' images."""


@images.command("build")
@click.argument("task_types", nargs=-1)
@click.option("--base-image", default="auto", show_default=True, help="Base image ('auto': python:3.11-slim-bookworm, else the local base).")
@click.option("--wheelhouse", type=click.Path(file_okay=False), help="Install from these wheels only (no package index).")
@click.option("--fill-wheelhouse", is_flag=True, help="Download the requirements into --wheelhouse first.")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), help="Extra CA bundle (default: $PIP_CERT or $SSL_CERT_FILE).")
@click.option("--force", is_flag=True, help="Rebuild even when the image was built from the same sources.")
def images_build(task_types, base_image, wheelhouse, fill_wheelhouse, ca_bundle, force) -> None:
    """Build TASK_TYPES' images (default: all), tagged with this package version."""
    from flytekitplugins.prebuilt import image_builder as ib

    types_ = list(task_types) or ib.task_types()
    try:
        if fill_wheelhouse:
            if not wheelhouse:
                raise click.BadParameter("--fill-wheelhouse needs --wheelhouse")
            ib.fill_wheelhouse(types_, wheelhouse)
        builder = ib.Builder(base_image=base_image, wheelhouse=wheelhouse, ca_bundle=ca_bundle)
        for task_type in types_:
            builder.build(task_type, force=force)
    except ib.ImageError as error:
        raise click.ClickException(str(error)) from None


@images.command("publish")
@click.argument("task_types", nargs=-1)
@click.option("--registry", required=True, help="e.g. ghcr.io/my-org or 127.0.0.1:5000")
@click.option("--lock-file", type=click.Path(dir_okay=False), help="Where to record digests (default: the package's).")
def images_publish(task_types, registry, lock_file) -> None:
    """Push TASK_TYPES' images (default: all) and record their digests in the lock file."""
    from flytekitplugins.prebuilt import image_builder as ib

    try:
        for task_type in list(task_types) or ib.task_types():
            ib.Builder().publish(task_type, registry, lock_file)
    except ib.ImageError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("source")
@click.argument("task_name")
def identity(source: str, task_name: str) -> None:
    """The content identity (default cache_version) and image of a task in SOURCE (a .py file or module)."""
    task = _load_task(source, task_name)
    click.echo(json.dumps({"task": task.name, "identity": getattr(task, "identity", None), "image": task.container_image}))


@main.command()
@click.argument("source")
@click.argument("task_name")
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE", help="An input; VALUE is JSON or a string.")
@click.option("--secret", "secrets", multiple=True, metavar="GROUP.KEY=VALUE", help="A secret Flyte would inject.")
@click.option("--in-container", is_flag=True, help="Run in the task's image (Docker) instead of a subprocess.")
@click.option("--image", default=None, help="Run this image instead of the template's.")
@click.option("--mount", "mounts", multiple=True, type=click.Path(exists=True), help="A host path to mount (same path).")
@click.option("--root", default=None, type=click.Path(file_okay=False), help="Storage root (default: a temp dir).")
def run(source, task_name, inputs, secrets, in_container, image, mounts, root) -> None:
    """Run TASK_NAME from SOURCE exactly as a Flyte cluster would, and print its outputs."""
    from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed

    task = _load_task(source, task_name)
    values = dict(_pair(i, "=") for i in inputs)
    types = task.python_interface.inputs
    values = {k: _coerce(v, types.get(k)) for k, v in values.items()}
    secret_values = {}
    for s in secrets:
        name, value = s.split("=", 1)
        group, _, key = name.rpartition(".")
        secret_values[(group, key)] = value
    emulator = Emulator(
        root or tempfile.mkdtemp(prefix="flyte-prebuilt-"), secrets=secret_values, mounts=[os.path.abspath(m) for m in mounts]
    )
    click.echo(f"running {task.name} ({'in ' + (image or task.container_image) if in_container else 'subprocess'}) under {emulator.root}", err=True)
    try:
        result = emulator.run(task, values, image=image, in_container=in_container)
    except TaskFailed as failure:
        click.echo(f"FAILED [{failure.origin}/{failure.kind}] {failure.code}\n{failure.message}", err=True)
        sys.exit(1)
    for name, literal in result.literals.literals.items():
        scalar = literal.scalar
        dataset = scalar and (scalar.structured_dataset or scalar.schema)
        click.echo(f"{name}: {dataset.uri if dataset else result.outputs[name]}")
    if result.deck_path:
        click.echo(f"deck: {result.deck_path}", err=True)


@main.group()
def bundle() -> None:
    """Code bundles of script tasks: pack, push, list versions, download, derive a new version."""


@bundle.command("pack")
@click.argument("source", type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the zip here.")
@click.option("--ignore", multiple=True, help="An extra .gitignore-style pattern.")
def bundle_pack(source, output, ignore) -> None:
    """Pack SOURCE deterministically and print its digest (the same files always give the same digest)."""
    from flytekitplugins.prebuilt.script import bundle as bundles

    packed = _user(lambda: bundles.pack(source, extra_ignores=ignore))
    if output:
        with open(output, "wb") as f:
            f.write(packed.data)
    click.echo(f"{packed.sha256}  {len(packed.files)} files  {len(packed.data):,} bytes")


@bundle.command("push")
@click.argument("source", type=click.Path(exists=True))
@click.argument("store")
@click.argument("task_name")
def bundle_push(source, store, task_name) -> None:
    """Pack SOURCE and store it as a version of TASK_NAME in STORE (s3://..., gs://..., a folder)."""
    from flytekitplugins.prebuilt.script import bundle as bundles
    from flytekitplugins.prebuilt.script import versions

    click.echo(_user(lambda: versions.push(bundles.pack(source), store, task_name)))


@bundle.command("list")
@click.argument("store")
@click.argument("task_name")
def bundle_list(store, task_name) -> None:
    """TASK_NAME's bundle versions in STORE, oldest first."""
    from flytekitplugins.prebuilt.script import versions

    for version in versions.list_versions(store, task_name):
        created = version.created.isoformat(timespec="seconds") if version.created else "-"
        click.echo(f"{version.sha256}  {version.size:>10,} bytes  {created}")


@bundle.command("download")
@click.argument("store")
@click.argument("task_name")
@click.argument("sha256")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the zip.")
def bundle_download(store, task_name, sha256, output) -> None:
    """Download a version as a zip (its digest is verified)."""
    from flytekitplugins.prebuilt.script import versions

    data = _user(lambda: versions.download(store, task_name, sha256))
    with open(output, "wb") as f:
        f.write(data)
    click.echo(output)


@bundle.command("derive")
@click.argument("store")
@click.argument("task_name")
@click.argument("sha256")
@click.option("--add", "added", multiple=True, metavar="PATH=LOCAL_FILE", help="Add or replace a file.")
@click.option("--remove", "removed", multiple=True, metavar="PATH", help="Remove a file or folder.")
def bundle_derive(store, task_name, sha256, added, removed) -> None:
    """A new version from version SHA256 with files added/removed; stored, and its digest printed."""
    from flytekitplugins.prebuilt.script import versions

    files = {}
    for item in added:
        path, local = _pair(item, "=")
        with open(local, "rb") as f:
            files[path] = f.read()
    new = _user(lambda: versions.derive(store, task_name, sha256, added=files, removed=removed))
    click.echo(f"{new.sha256}  {len(new.files)} files")


def _user(action):
    """Run ``action``; a UserError becomes a clean CLI error."""
    from flytekitplugins.prebuilt.kit.errors import UserError

    try:
        return action()
    except UserError as error:
        raise click.ClickException(str(error)) from None


def _pair(text: str, sep: str) -> tuple[str, str]:
    if sep not in text:
        raise click.BadParameter(f"{text!r}: expected NAME{sep}VALUE")
    name, value = text.split(sep, 1)
    return name, value


def _coerce(value: str, python_type):
    """A CLI string as the input's type: str as is, numbers and the rest parsed as JSON."""
    if python_type is str:
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return value
    return float(parsed) if python_type is float and isinstance(parsed, int) else parsed


def _load_task(source: str, task_name: str):
    if source.endswith(".py"):  # import it as a module, as pyflyte run does, so flytekit can track its tasks
        path = os.path.abspath(source)
        sys.path.insert(0, os.path.dirname(path))
        source = os.path.splitext(os.path.basename(path))[0]
    module = importlib.import_module(source)
    try:
        return getattr(module, task_name)
    except AttributeError:
        raise click.BadParameter(f"{source} has no task {task_name!r}") from None


if __name__ == "__main__":
    main()
