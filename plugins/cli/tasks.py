"""``flyte-prebuilt run`` and ``identity``: one prebuilt task of a user's module, run through the platform emulator
or inspected. Loading the module is where most mistakes show: each is one line naming the user's file and line."""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

import click
from flytekitplugins.prebuilt.cli.mistakes import TRACEBACK_ENV
from flytekitplugins.prebuilt.command_line import (
    KEEP_OPTION,
    ROOT_OPTION,
    UserMistake,
    exit_failed,
    mistake,
    pod_env,
    show_log,
    storage_root,
    task_inputs,
    task_secrets,
)


@click.command()
@click.argument("source")
@click.argument("task_name")
def identity(source: str, task_name: str) -> None:
    """The content identity (default cache_version) and image of a task in SOURCE (a .py file or module)."""
    task = load_task(source, task_name)
    click.echo(json.dumps({"task": task.name, "identity": getattr(task, "identity", None), "image": _image_of(task)}))


@click.command()
@click.argument("source")
@click.argument("task_name")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An input; VALUE is JSON or a string. A list: a JSON list, or the option once per element.",
)
@click.option("--secret", "secrets", multiple=True, metavar="GROUP.KEY=VALUE", help="A secret Flyte would inject.")
@click.option("--in-container", is_flag=True, help="Run in the task's image (Docker) instead of a subprocess.")
@click.option("--image", default=None, help="Run this image instead of the template's.")
@click.option(
    "--mount", "mounts", multiple=True, type=click.Path(exists=True), help="A host path to mount (same path)."
)
@ROOT_OPTION
@KEEP_OPTION
def run(source, task_name, inputs, secrets, in_container, image, mounts, root, keep) -> None:
    """Run TASK_NAME from SOURCE exactly as a Flyte cluster would, and print its outputs (a dataset's first rows).

    TASK_NAME is the variable that holds the task (as pyflyte run takes it) or the task's name=.
    The task's output (its log) goes to stderr, on success as on failure; its outputs to stdout."""
    from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed

    task = load_task(source, task_name)
    values = task_inputs(task, inputs)
    secret_values = task_secrets(task, secrets)
    with storage_root(root, keep) as folder:
        emulator = Emulator(
            folder,
            secrets=secret_values,
            mounts=[os.path.abspath(m) for m in mounts],
            env={} if in_container else pod_env(folder),
        )
        if in_container:
            _check_mounts(emulator, task, values)
        where = "in " + (image or _image_of(task)) if in_container else "subprocess"
        click.echo(f"running {task.name} ({where}) under {emulator.root}", err=True)
        try:
            result = emulator.run(task, values, image=image, in_container=in_container)
        except TaskFailed as failure:
            exit_failed(failure)
        show_log(result.logs)
        _show_outputs(result, kept=bool(root or keep))


def _image_of(task) -> str:
    """The image a task runs in; a map task's is its element task's."""
    return getattr(task, "python_function_task", task).container_image


def _show_outputs(result, kept: bool) -> None:
    """Each output on stdout; a dataset as its first rows and its path (while the storage root is kept)."""
    from flytekitplugins.prebuilt.cli.dataset_preview import preview

    gone = "removed with the temporary storage root; --keep keeps it"
    for name, literal in result.literals.literals.items():
        scalar = literal.scalar
        dataset = scalar and (scalar.structured_dataset or scalar.schema)
        if not dataset:
            click.echo(f"{name}: {result.outputs[name]}")
            continue
        lines = preview(dataset.uri)
        click.echo(f"{name}: {dataset.uri if kept else '(' + gone + ')'}")
        for line in lines:
            click.echo(f"  {line}")
    if result.deck_path:
        click.echo(f"deck: {result.deck_path if kept else '(' + gone + ')'}", err=True)


def _check_mounts(emulator, task, values: dict) -> None:
    """A host path the task reads but its container would not see is a mistake naming the ``--mount`` to add."""
    from flytekit.core.type_engine import TypeEngine
    from flytekitplugins.prebuilt.cli.host_paths import mount_for, unmounted

    def a_file(python_type) -> bool:  # flytekit copies a file or dataset input; mounting its path would not help
        literal_type = TypeEngine.to_literal_type(python_type)
        return bool(literal_type.blob or literal_type.structured_dataset_type or literal_type.schema)

    strings = {n: v for n, v in values.items() if not a_file(task.python_interface.inputs[n])}
    missing = unmounted(emulator.template(task).custom, strings, [emulator.root, *emulator.mounts])
    if missing:
        seen = ", ".join(f"{path} ({where})" for where, path in missing)
        add = " ".join(sorted({f"--mount {mount_for(path)}" for _, path in missing}))
        raise UserMistake(f"--in-container: the task reads {seen}, which its container cannot see; add {add}")


def load_task(source: str, task_name: str):
    """The prebuilt task ``task_name`` of ``source`` (a .py file or a module); a mistake says what to fix."""
    from flytekit.core.base_task import PythonTask
    from flytekit.core.python_customized_container_task import PythonCustomizedContainerTask
    from flytekit.core.python_function_task import PythonFunctionTask
    from flytekit.core.workflow import WorkflowBase
    from flytekitplugins.prebuilt.map import PrebuiltMapTask

    runnable = (PythonCustomizedContainerTask, PrebuiltMapTask)  # a map over a prebuilt task runs as an ArrayNode
    module = _import_source(source)
    tasks = {n: v for n, v in vars(module).items() if isinstance(v, runnable)}
    by_task_name = [v for v in tasks.values() if v.name == task_name]  # upstream's examples name it by its name=
    found = getattr(module, task_name, None) or (by_task_name[0] if len(by_task_name) == 1 else None)
    if found is None:
        listed = sorted(n if v.name == n else f"{n} (name {v.name!r})" for n, v in tasks.items())
        raise UserMistake(f"{source} has no {task_name!r}; its prebuilt tasks are: {', '.join(listed) or 'none'}")
    if isinstance(found, runnable):
        return found
    expected = "flyte-prebuilt runs one prebuilt (template-only) task, e.g. a SQLTask or ScriptTask"
    if isinstance(found, WorkflowBase):
        raise UserMistake(f"{task_name!r} is a workflow; {expected}; run workflows with pyflyte run")
    if isinstance(found, PythonFunctionTask):
        raise UserMistake(f"{task_name!r} is a @task function; {expected}; run it with pyflyte run")
    kind = "task" if isinstance(found, PythonTask) else "object"
    raise UserMistake(f"{task_name!r} is a {type(found).__name__} {kind}; {expected}")


def _import_source(source: str):
    """``source`` imported as a module, as pyflyte run does, so flytekit can track its tasks."""
    module_name = source
    if source.endswith(".py"):
        if not os.path.isfile(source):
            raise UserMistake(f"{source}: no such file")
        path = os.path.abspath(source)
        sys.path.insert(0, os.path.dirname(path))
        module_name = os.path.splitext(os.path.basename(path))[0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            raise UserMistake(
                f"{source}: no module named {module_name!r}; give a .py file or an importable module"
            ) from None
        raise _load_failed(source, error) from None
    except Exception as error:  # their code raised while defining its tasks (a ConfigError, a NameError, ...)
        raise _load_failed(source, error) from None


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
    message = mistake(error) or f"{type(error).__name__}: {error}"
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
