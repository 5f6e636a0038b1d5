"""``flyte-prebuilt``: run templates through the platform emulator, build and publish images, manage
script bundles.

    flyte-prebuilt run examples/sql_quickstart.py big_orders --input min_amount=150 [--in-container]
    flyte-prebuilt identity examples/sql_quickstart.py big_orders
    flyte-prebuilt image-name sql
    flyte-prebuilt images build|publish|release ...
    flyte-prebuilt bundle pack|push|list|download|derive ...
    flyte-prebuilt --version

A user's mistake (a bad or unknown input, a workflow where a prebuilt task is expected, a module that does
not import, a malformed ``--secret``, an unknown task type, missing cloud credentials, no Docker) is one
line on stderr saying what to fix, and exit code 2; a failed task run is exit code 1. Set
``FLYTE_PREBUILT_TRACEBACK=1`` to see the traceback behind such a line.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import traceback
import typing

import click
from flytekitplugins.prebuilt.command_line import UserMistake, pair, show_log, task_inputs, task_secrets
from flytekitplugins.prebuilt.kit.images import IMAGE_PYTHON, IMAGE_PYTHONS, default_image, package_version

TRACEBACK_ENV = "FLYTE_PREBUILT_TRACEBACK"
CREDENTIAL_ERRORS = {  # exception class name -> what to set (by the library that raises it)
    "NoCredentialsError": "AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)",
    "PartialCredentialsError": "complete AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    "DefaultCredentialsError": (
        "Google Cloud credentials (GOOGLE_APPLICATION_CREDENTIALS, or gcloud auth application-default login)"
    ),
    "CredentialUnavailableError": (
        "Azure credentials (AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, or az login)"
    ),
    "ClientAuthenticationError": "valid Azure credentials (AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY)",
}


class _Commands(click.Group):
    """Turns the errors a user can fix into ``UserMistake``; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            message = _mistake(error)
            if message is None or os.environ.get(TRACEBACK_ENV):
                raise
            raise UserMistake(message) from None


def _mistake(error: BaseException) -> typing.Optional[str]:
    """What the user should fix, when ``error`` (or an error behind it) is theirs to fix."""
    from flytekitplugins.prebuilt.docker_engine import DockerUnavailable
    from flytekitplugins.prebuilt.emulator import InputError
    from flytekitplugins.prebuilt.kit.config import ConfigError
    from flytekitplugins.prebuilt.kit.errors import UserError

    for cause in _chain(error):
        if type(cause).__name__ in CREDENTIAL_ERRORS:
            return f"no cloud credentials ({cause}); set {CREDENTIAL_ERRORS[type(cause).__name__]}"
    if isinstance(error, (InputError, UserError, ConfigError, DockerUnavailable)):
        return str(error)
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every error behind it (a suppressed context too: it may say what was missing)."""
    found: list[BaseException] = []
    while error is not None and error not in found:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


@click.group(cls=_Commands)
@click.version_option(package_version(), "--version", prog_name="flyte-prebuilt", message="%(prog)s %(version)s")
def main() -> None:
    """Prebuilt Flyte task types: emulate the platform, inspect templates, name images."""


@main.command("image-name")
@click.argument("task_type")
@click.option("--variant", default="", help="An image variant, e.g. 'cuda' for train.")
def image_name(task_type: str, variant: str) -> None:
    """The image that tasks of TASK_TYPE serialized by this package version run in."""
    from flytekitplugins.prebuilt.kit.spec import task_types

    known = task_types()
    if task_type not in known:
        raise UserMistake(f"unknown task type {task_type!r}; the task types are: {', '.join(known)}")
    click.echo(default_image(task_type, variant=variant))


@main.group()
def images() -> None:
    """Build and publish the task types' images."""


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
    from flytekitplugins.prebuilt import image_builder as ib

    types_ = list(task_types) or ib.task_types()
    try:
        if fill_wheelhouse:
            if not wheelhouse:
                raise UserMistake("--fill-wheelhouse needs --wheelhouse DIR")
            ib.fill_wheelhouse(types_, wheelhouse)
        for python in pythons or (IMAGE_PYTHON,):
            builder = ib.Builder(base_image=base_image, wheelhouse=wheelhouse, ca_bundle=ca_bundle, python=python)
            for task_type in types_:
                builder.build(task_type, force=force, variant=variant)
    except ib.ImageError as error:
        raise click.ClickException(str(error)) from None


@images.command("publish")
@click.argument("task_types", nargs=-1)
@click.option("--registry", required=True, help="e.g. ghcr.io/my-org or 127.0.0.1:5000")
@click.option("--variant", default="", help="An image variant, e.g. 'cuda' for train.")
def images_publish(task_types, registry, variant) -> None:
    """Push TASK_TYPES' images (default: all) and record their digests in the checkout's lock file."""
    from flytekitplugins.prebuilt import image_builder as ib

    try:
        for task_type in list(task_types) or ib.task_types():
            ib.Builder().publish(task_type, registry, variant)
    except ib.ImageError as error:
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
    from pathlib import Path

    from flytekitplugins.prebuilt import image_builder as ib

    try:
        builder = ib.Builder(root=Path(source).resolve()) if source else ib.Builder()
        for artifact in builder.release(registry, list(task_types) or None, Path(out_dir) if out_dir else None):
            click.echo(artifact)
    except ib.ImageError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.argument("source")
@click.argument("task_name")
def identity(source: str, task_name: str) -> None:
    """The content identity (default cache_version) and image of a task in SOURCE (a .py file or module)."""
    task = _load_task(source, task_name)
    click.echo(
        json.dumps({"task": task.name, "identity": getattr(task, "identity", None), "image": task.container_image})
    )


@main.command()
@click.argument("source")
@click.argument("task_name")
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE", help="An input; VALUE is JSON or a string.")
@click.option("--secret", "secrets", multiple=True, metavar="GROUP.KEY=VALUE", help="A secret Flyte would inject.")
@click.option("--in-container", is_flag=True, help="Run in the task's image (Docker) instead of a subprocess.")
@click.option("--image", default=None, help="Run this image instead of the template's.")
@click.option(
    "--mount", "mounts", multiple=True, type=click.Path(exists=True), help="A host path to mount (same path)."
)
@click.option("--root", default=None, type=click.Path(file_okay=False), help="Storage root (default: a temp dir).")
def run(source, task_name, inputs, secrets, in_container, image, mounts, root) -> None:
    """Run TASK_NAME from SOURCE exactly as a Flyte cluster would, and print its outputs.

    The task's output (its log) goes to stderr, on success as on failure; its outputs to stdout."""
    from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed

    task = _load_task(source, task_name)
    values = task_inputs(task, inputs)
    secret_values = task_secrets(task, secrets)
    emulator = Emulator(
        root or tempfile.mkdtemp(prefix="flyte-prebuilt-"),
        secrets=secret_values,
        mounts=[os.path.abspath(m) for m in mounts],
    )
    where = "in " + (image or task.container_image) if in_container else "subprocess"
    click.echo(f"running {task.name} ({where}) under {emulator.root}", err=True)
    try:
        result = emulator.run(task, values, image=image, in_container=in_container)
    except TaskFailed as failure:
        show_log(failure.logs)
        click.echo(
            f"FAILED [{failure.origin}/{failure.kind}] {failure.code} after {failure.attempts} attempt(s)\n"
            f"{failure.message}",
            err=True,
        )
        sys.exit(1)
    show_log(result.logs)
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
    from flytekitplugins.prebuilt.script import packing

    packed = _user(lambda: packing.pack(source, extra_ignores=ignore))
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

    click.echo(_user(lambda: versions.push(packing.pack(source), store, task_name)))


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
        path, local = pair(item, "--add")
        with open(local, "rb") as f:
            files[path] = f.read()
    new = _user(lambda: versions.derive(store, task_name, sha256, added=files, removed=removed))
    click.echo(f"{new.sha256}  {len(new.files)} files")


def _user(action):
    """Run ``action`` (a user's mistake in it is reported by ``_Commands``)."""
    return action()


def _load_task(source: str, task_name: str):
    """The prebuilt task ``task_name`` of ``source`` (a .py file or a module); a mistake says what to fix."""
    from flytekit.core.base_task import PythonTask
    from flytekit.core.python_customized_container_task import PythonCustomizedContainerTask
    from flytekit.core.python_function_task import PythonFunctionTask
    from flytekit.core.workflow import WorkflowBase

    module_name = source
    if source.endswith(".py"):  # import it as a module, as pyflyte run does, so flytekit can track its tasks
        if not os.path.isfile(source):
            raise UserMistake(f"{source}: no such file")
        path = os.path.abspath(source)
        sys.path.insert(0, os.path.dirname(path))
        module_name = os.path.splitext(os.path.basename(path))[0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise UserMistake(
                f"{source}: no module named {module_name!r}; give a .py file or an importable module"
            ) from None
        raise _load_failed(source, error) from None
    except Exception as error:  # their code raised while defining its tasks (a ConfigError, a NameError, ...)
        raise _load_failed(source, error) from None
    found = getattr(module, task_name, None)
    if found is None:
        tasks = sorted(n for n, v in vars(module).items() if isinstance(v, PythonCustomizedContainerTask))
        raise UserMistake(f"{source} has no {task_name!r}; its prebuilt tasks are: {', '.join(tasks) or 'none'}")
    if isinstance(found, PythonCustomizedContainerTask):
        return found
    expected = "flyte-prebuilt runs one prebuilt (template-only) task, e.g. a SQLTask or ScriptTask"
    if isinstance(found, WorkflowBase):
        raise UserMistake(f"{task_name!r} is a workflow; {expected}; run workflows with pyflyte run")
    if isinstance(found, PythonFunctionTask):
        raise UserMistake(f"{task_name!r} is a @task function; {expected}; run it with pyflyte run")
    kind = "task" if isinstance(found, PythonTask) else "object"
    raise UserMistake(f"{task_name!r} is a {type(found).__name__} {kind}; {expected}")


def _load_failed(source: str, error: Exception) -> Exception:
    """Importing the user's module raised: one line with where (their file), unless the traceback is asked for."""
    if os.environ.get(TRACEBACK_ENV):
        return error
    where = ""
    if isinstance(error, SyntaxError) and error.filename:
        where = f" ({os.path.relpath(error.filename)}:{error.lineno})"
    else:  # the last line of theirs that ran: the first frame after it is library code
        frames = [f for f in traceback.extract_tb(error.__traceback__) if not _library_file(f.filename)]
        if frames:
            where = f" ({os.path.relpath(frames[-1].filename)}:{frames[-1].lineno})"
    message = _mistake(error) or f"{type(error).__name__}: {error}"
    return UserMistake(f"cannot load {source}: {message}{where}")


def _library_file(filename: str) -> bool:
    """Python's, an installed package's, or this package's own (``flytekitplugins.prebuilt``) source."""
    import flytekitplugins.prebuilt as ours

    own = os.path.dirname(os.path.abspath(ours.__file__))
    path = os.path.abspath(filename)
    return (
        filename.startswith("<")
        or "site-packages" in path
        or path.startswith(own + os.sep)
        or path.startswith((sys.prefix, sys.base_prefix))
    )


def _add_project_commands() -> None:
    """``flyte-prebuilt project ...`` (plugins/project/commands.py), when the project extra is installed."""
    try:
        from flytekitplugins.prebuilt.project.commands import project
    except ImportError:  # without ruamel.yaml/jsonschema the other commands still work
        return
    main.add_command(project)


_add_project_commands()

if __name__ == "__main__":
    main()
