"""``flyte-prebuilt project validate | list | show | run | schema``: a project file from the command line.

Consistent with the other commands (plugins/cli/): a user's mistake is reported on stderr and exits 2, each
problem of the file on its own line (``file:line:column: field: expected ...``); a failed run exits 1.
"""

from __future__ import annotations

import json
import sys
import types
import warnings

import click
from flytekitplugins.prebuilt.command_line import KEEP_OPTION, ROOT_OPTION
from flytekitplugins.prebuilt.project.schema import FILE_NAME

FILE_OPTION = click.option(
    "-f",
    "--file",
    "path",
    default=FILE_NAME,
    show_default=True,
    type=click.Path(),
    help="The project file, or the folder holding it.",
)


@click.group("project")
def project() -> None:
    """Projects in YAML: tasks, templates, pipelines and schedules compiled to Flyte entities (docs/project/)."""


def _load(path: str):
    """The project, its warnings on stderr (every command: one ``warning:`` line each, not also Python's)."""
    from flytekitplugins.prebuilt.project import ProjectErrors, load
    from flytekitplugins.prebuilt.project.errors import ProjectWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProjectWarning)
            loaded = load(path)
    except ProjectErrors as errors:
        for problem in errors.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"{len(errors.problems)} error(s) in {path}", err=True)
        sys.exit(2)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    return loaded


@project.command("validate")
@FILE_OPTION
def validate(path: str) -> None:
    """Check the whole file (schema, templates, references, every task's config) and report every problem."""
    loaded = _load(path)
    click.echo(
        f"ok: project {loaded.name}: {len(loaded.tasks)} task(s), {len(loaded.pipelines)} pipeline(s), "
        f"{len(loaded.launch_plans)} schedule(s)"
    )


@project.command("list")
@FILE_OPTION
def list_entities(path: str) -> None:
    """The tasks and pipelines: name, kind, Flyte name, inputs -> outputs, schedule."""
    loaded = _load(path)
    for name in [*loaded.tasks, *loaded.pipelines, *loaded.aliases]:
        entity = loaded.entity(name)
        if name in loaded.aliases:
            kind = f"alias of {loaded.aliases[name]}"
        elif name in loaded.tasks:
            kind = f"{entity.SPEC.name} task"
        else:
            kind = "pipeline"
        interface = entity.python_interface
        inputs = ", ".join(f"{n}: {_type(t)}" for n, t in interface.inputs.items())
        outputs = ", ".join(f"{n}: {_type(t)}" for n, t in interface.outputs.items())
        plan = loaded.launch_plans.get(name)
        schedule = f"  schedule {plan.schedule.cron_schedule.schedule}" if plan else ""
        click.echo(f"{name}  {kind}  {entity.name}  ({inputs}) -> ({outputs}){schedule}")


@project.command("show")
@click.argument("name")
@FILE_OPTION
def show(name: str, path: str) -> None:
    """NAME's serialized template (a task's TaskTemplate, a pipeline's workflow), as registration would send it."""
    from collections import OrderedDict

    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable
    from google.protobuf.json_format import MessageToDict

    loaded = _load(path)
    entity = _entity(loaded, name)
    settings = SerializationSettings(
        project=loaded.name, domain="development", version="dry-run", image_config=ImageConfig.auto_default_image()
    )
    serialized = get_serializable(OrderedDict(), settings, entity)
    shown = MessageToDict(
        serialized.template.to_flyte_idl() if hasattr(serialized, "template") else serialized.to_flyte_idl()
    )
    inline = shown.get("custom", {}).get("bundle", {}).get("inline")
    if inline:  # the zip itself, base64: its digest and size say which it is
        shown["custom"]["bundle"]["inline"] = f"<{len(inline)} characters of base64>"
    click.echo(json.dumps(shown, indent=2, sort_keys=True))


@project.command("run")
@click.argument("name")
@FILE_OPTION
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE", help="An input; VALUE is JSON or a string.")
@click.option("--secret", "secrets", multiple=True, metavar="GROUP.KEY=VALUE", help="A secret Flyte would inject.")
@click.option("--in-container", is_flag=True, help="Run each task in its image (Docker) instead of a subprocess.")
@ROOT_OPTION
@KEEP_OPTION
def run(name, path, inputs, secrets, in_container, root, keep) -> None:
    """Run task or pipeline NAME as a Flyte cluster would (each task through the emulator) and print its outputs."""
    from flytekitplugins.prebuilt.command_line import pod_env, storage_root, task_inputs, task_secrets
    from flytekitplugins.prebuilt.emulator import Emulator

    loaded = _load(path)
    entity = _entity(loaded, name)
    values = task_inputs(entity, inputs)
    requested = [s for t in loaded.tasks.values() if t.security_context for s in t.security_context.secrets]
    asking = types.SimpleNamespace(name=entity.name, security_context=types.SimpleNamespace(secrets=requested))
    with storage_root(root, keep) as folder:
        emulator = Emulator(folder, secrets=task_secrets(asking, secrets), env={} if in_container else pod_env(folder))
        _run(loaded, name, entity, values, emulator, in_container, kept=bool(root or keep))


def _run(loaded, name, entity, values, emulator, in_container: bool, kept: bool) -> None:
    from flytekitplugins.prebuilt.command_line import exit_failed, show_log
    from flytekitplugins.prebuilt.emulator import TaskFailed
    from flytekitplugins.prebuilt.project.running import run as run_project

    where = "in the images" if in_container else "subprocesses"
    click.echo(f"running {entity.name} ({where}) under {emulator.root}", err=True)

    def on_step(step: str, result) -> None:
        show_log(result.logs)
        click.echo(f"step {step}: done", err=True)

    try:
        outputs = run_project(loaded, name, values, emulator, in_container=in_container, on_step=on_step)
    except TaskFailed as failure:
        exit_failed(failure, f"step {getattr(failure, 'step', name)} ")
    for output, value in outputs.items():
        shown = getattr(value, "path", None) or getattr(value, "uri", None) or value
        if not kept and str(shown).startswith(emulator.root):
            shown = f"{shown} (removed with the temporary storage root; --keep keeps it)"
        click.echo(f"{output}: {shown}")


@project.command("schema")
def schema() -> None:
    """The project file's JSON Schema (generated from the task types' configs), for editors and checks."""
    from flytekitplugins.prebuilt.project.schema import project_schema

    click.echo(json.dumps(project_schema(), indent=2))


def _entity(loaded, name: str):
    """Task or pipeline ``name``; an unknown name is a mistake listing what the project has (as ``run`` does)."""
    from flytekitplugins.prebuilt.command_line import UserMistake

    try:
        return loaded.entity(name)
    except KeyError as error:
        known = ", ".join([*loaded.tasks, *loaded.pipelines, *loaded.aliases]) or "none"
        raise UserMistake(f"{error.args[0]}; its tasks and pipelines are: {known}") from None


def _type(python_type) -> str:
    from flytekitplugins.prebuilt.kit.project_keys import interface_types

    names = {v: k for k, v in interface_types().items()}
    return names.get(python_type, getattr(python_type, "__name__", str(python_type)))
