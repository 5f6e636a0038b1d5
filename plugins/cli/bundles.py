"""``flyte-prebuilt bundle pack|push|list|download|derive``: the code bundles of script tasks and their versions in
a store (plugins/script/packing.py, plugins/script/versions.py). A user's mistake in them (a missing file, a store
without credentials) is reported by the top-level command's ``mistakes.Commands``."""

from __future__ import annotations

import click
from flytekitplugins.prebuilt.command_line import UserMistake, pair


@click.group()
def bundle() -> None:
    """Code bundles of script tasks: pack, push, list versions, download, derive a new version."""


@bundle.command("pack")
@click.argument("source", type=click.Path(exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the zip here.")
@click.option("--ignore", multiple=True, help="An extra .gitignore-style pattern.")
def bundle_pack(source, output, ignore) -> None:
    """Pack SOURCE deterministically and print its digest (the same files always give the same digest)."""
    from flytekitplugins.prebuilt.script import packing

    packed = packing.pack(source, extra_ignores=ignore)
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
    from flytekitplugins.prebuilt.script import packing, versions

    click.echo(versions.push(packing.pack(source), store, task_name))


@bundle.command("list")
@click.argument("store")
@click.argument("task_name")
def bundle_list(store, task_name) -> None:
    """TASK_NAME's bundle versions in STORE, oldest first; a task without any is a mistake naming those it has."""
    from flytekitplugins.prebuilt.script import versions

    found = versions.list_versions(store, task_name)
    known = versions.task_names(store)
    if not found and task_name not in known:
        raise UserMistake(f"{store} has no bundles of {task_name!r}; its tasks are: {', '.join(known) or 'none'}")
    for version in found:
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

    data = versions.download(store, task_name, sha256)
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
        path, local = pair(item, "--add")
        with open(local, "rb") as f:
            files[path] = f.read()
    new = versions.derive(store, task_name, sha256, added=files, removed=removed)
    click.echo(f"{new.sha256}  {len(new.files)} files")
