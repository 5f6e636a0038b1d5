"""What every ``flyte-prebuilt`` command shares: a user's mistake as one line (exit code 2), ``--input`` and
``--secret`` options as a task's typed inputs and secrets, a run's log on stderr. Used by the command groups of
``cli/`` and the project commands (``project/commands.py``)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import sys
import tempfile
import typing

import click


class UserMistake(click.ClickException):
    """One line saying what to fix; exit code 2 (a usage error, as click's own)."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # one line, whatever the message held


def show_log(logs: str) -> None:
    if logs.strip():
        click.echo(logs.strip("\n"), err=True)


def exit_failed(failure, what: str = "") -> typing.NoReturn:
    """A failed run (the emulator's ``TaskFailed``): its log, then one line saying who failed, how and after how many
    attempts, and its message, on stderr; exit code 1 (not a user mistake: the task ran)."""
    show_log(failure.logs)
    click.echo(
        f"FAILED {what}[{failure.origin}/{failure.kind}] {failure.code} after {failure.attempts} attempt(s)\n"
        f"{failure.message}",
        err=True,
    )
    sys.exit(1)


KEEP_OPTION = click.option(
    "--keep", is_flag=True, help="Keep the temporary storage root (outputs, deck) after a successful run."
)
ROOT_OPTION = click.option(
    "--root",
    default=None,
    type=click.Path(file_okay=False),
    help="Storage root, kept (default: a temporary folder, removed after a successful run).",
)


@contextlib.contextmanager
def storage_root(root: typing.Optional[str], keep: bool) -> typing.Iterator[str]:
    """The run's object store: ``root`` as given, or a temporary ``flyte-prebuilt-*`` folder that is removed when
    the command ends, unless ``keep``, or the run failed (exit code 1, an interrupt, a bug): then it stays, for its
    inputs, error document and outputs, and its path is printed. The user's mistake (``mistake``) removes it."""
    if root:
        yield root
        return
    folder = tempfile.mkdtemp(prefix="flyte-prebuilt-")
    try:
        yield folder
    except BaseException as error:
        if isinstance(error, click.ClickException) or (isinstance(error, Exception) and mistake(error)):
            _remove(folder)  # the user's mistake (a bad --mount, ...): nothing ran
        else:  # the task failed (exit code 1), an interrupt, a bug
            click.echo(f"kept {folder} (the failed run's storage root: inputs, error document, outputs)", err=True)
        raise
    if keep:
        click.echo(f"kept {folder}", err=True)
    else:
        _remove(folder)


def pod_env(root: str) -> dict[str, str]:
    """What a subprocess pod gets as its own ``/tmp``: a folder of the storage root (``TMPDIR``), so what flytekit
    and the task leave there (``/tmp/flyte*`` sandboxes) goes with the root, as a container's ``/tmp`` does."""
    tmp = os.path.join(root, "tmp")
    os.makedirs(tmp, exist_ok=True)
    return {"TMPDIR": tmp}


def _remove(folder: str) -> None:
    """``folder`` removed; what cannot be (a file a container's user wrote) is named, not fatal."""
    failures: list[str] = []
    shutil.rmtree(folder, onerror=lambda _function, path, error: failures.append(f"{path}: {error[1]}"))
    if failures:
        click.echo(f"note: could not remove all of {folder} ({failures[0]})", err=True)


def pair(text: str, option: str) -> tuple[str, str]:
    if "=" not in text:
        raise UserMistake(f"{option} {text!r}: expected NAME=VALUE")
    name, value = text.split("=", 1)
    return name, value


def task_inputs(task, given: typing.Sequence[str]) -> dict[str, typing.Any]:
    """``--input NAME=VALUE`` options as the task's typed inputs, checked as the emulator (and Flyte Admin) will,
    every required input present (a default, or a map task's ``functools.partial`` binding, counts as given). A list
    input takes a JSON list (``names='["ada","bob"]'``) or one element per repeated option (``--input names=ada
    --input names=bob``)."""
    from flytekitplugins.prebuilt.emulator.inputs import describe, input_literals

    types = task.python_interface.inputs
    texts: dict[str, list[str]] = {}
    for item in given:
        name, text = pair(item, "--input")
        if name not in types:
            raise UserMistake(f"--input {name}: {task.name} has no input {name!r}; its inputs are {describe(types)}")
        texts.setdefault(name, []).append(text)
    values = {name: _input_value(name, found, types[name]) for name, found in texts.items()}
    input_literals(task.name, values, types)  # InputError: a value its type refuses (a list that is not one, ...)
    given = {**task.python_interface.default_inputs_as_kwargs, **getattr(task, "bound_input_values", {})}
    missing = [n for n, t in types.items() if n not in values and n not in given and not _optional(t)]
    if missing:
        example = " ".join(f"--input {n}=<{_type_label(types[n])}>" for n in missing)
        raise UserMistake(f"{task.name} needs {example}")
    return values


def _input_value(name: str, texts: list[str], python_type: typing.Any) -> typing.Any:
    """The value of every ``--input name=...``: a list input's elements, one per option, unless a single one
    holds the whole list as JSON; any other input is given once."""
    base = _optional(python_type) or python_type
    if typing.get_origin(base) is list:
        if len(texts) == 1 and texts[0].lstrip().startswith("["):
            return _coerce(name, texts[0], base)
        element = (typing.get_args(base) or (str,))[0]
        return [_coerce(name, text, element) for text in texts]
    if len(texts) > 1:
        raise UserMistake(f"--input {name} is given {len(texts)} times; it is {_type_label(base)}, not a list")
    return _coerce(name, texts[0], python_type)


def _coerce(name: str, text: str, python_type: typing.Any) -> typing.Any:
    """A CLI string as the input's type: scalars parsed strictly; lists, dicts and dataclasses as pyflyte run
    parses them (flytekit's ``JsonParamType``: JSON, or a JSON/YAML file); anything else as JSON, else as the
    string (the path or URI of a file or dataset), which the type engine checks."""
    base = _optional(python_type) or python_type
    parsers = {
        int: int,
        float: float,
        bool: _boolean,
        datetime.datetime: datetime.datetime.fromisoformat,
        datetime.date: datetime.date.fromisoformat,
    }
    if base is str:
        return text
    if base in parsers:
        try:
            return parsers[base](text)
        except ValueError:
            raise UserMistake(f"--input {name}={text}: expected {_type_label(base)}, e.g. {_EXAMPLES[base]}") from None
    if not _json_typed(base):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # a path or URI for a file or dataset input; the type engine checks it
    from flytekit.interaction.click_types import JsonParamType

    try:
        return JsonParamType(base).convert(text, None, None)
    except click.BadParameter:
        raise UserMistake(
            f"--input {name}={text}: expected {_type_label(base)} as JSON (or a JSON/YAML file)"
            + (", or the option once per element" if typing.get_origin(base) is list else "")
        ) from None


def _json_typed(python_type: typing.Any) -> bool:
    """Whether pyflyte run reads the type as JSON (flytekit ``interaction/click_types.literal_type_to_click_type``):
    a collection, a map, or a struct (a dataclass, a Pydantic model, a dict)."""
    from flytekit.core.type_engine import TypeEngine
    from flytekit.models.types import SimpleType

    try:
        literal_type = TypeEngine.to_literal_type(python_type)
    except Exception:  # a type flytekit cannot map: the type engine reports it when the value is converted
        return False
    return bool(literal_type.collection_type or literal_type.map_value_type or literal_type.simple == SimpleType.STRUCT)


_EXAMPLES = {
    int: "3",
    float: "1.5",
    bool: "true",
    datetime.datetime: "2024-01-31T12:00:00",
    datetime.date: "2024-01-31",
}


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(text)


def _optional(python_type: typing.Any) -> typing.Any:
    """``T`` when ``python_type`` is ``Optional[T]``, else None."""
    args = typing.get_args(python_type)
    if typing.get_origin(python_type) is typing.Union and type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None))
    return None


def _type_label(python_type: typing.Any) -> str:
    from flytekitplugins.prebuilt.emulator.inputs import type_name

    return {
        int: "an integer",
        float: "a number",
        bool: "true or false",
        datetime.datetime: "an ISO date-time",
        datetime.date: "an ISO date",
    }.get(python_type) or type_name(python_type)


def task_secrets(task, given: typing.Sequence[str]) -> dict[tuple[str, str], str]:
    """``--secret GROUP.KEY=VALUE`` options; a mistake is reported without the value."""
    values = {}
    for item in given:
        name, equals, value = item.partition("=")
        group, dot, key = name.rpartition(".")
        if not equals:
            raise UserMistake(
                "--secret: expected GROUP.KEY=VALUE (no '=' in it; the text is not shown, it may be a secret)"
            )
        if not (dot and group and key):
            raise UserMistake(f"--secret {name}=...: expected GROUP.KEY=VALUE; Flyte secrets have a group and a key")
        values[(group, key)] = value
    requested = {(s.group, s.key) for s in (task.security_context.secrets if task.security_context else [])}
    for group, key in sorted(set(values) - requested):
        wanted = ", ".join(f"{g}.{k}" for g, k in sorted(requested)) or "none"
        click.echo(
            f"note: {task.name} does not request the secret {group}.{key} (it requests: {wanted}); it is not injected",
            err=True,
        )
    return values


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


def mistake(error: BaseException) -> typing.Optional[str]:
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
    cause: typing.Optional[BaseException] = error
    while cause is not None and cause not in found:
        found.append(cause)
        cause = cause.__cause__ or cause.__context__
    return found
