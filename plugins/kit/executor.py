"""Runtime side of a prebuilt task type: a ``ShimTaskExecutor`` that trusts nothing it did not check."""

from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from flytekit.core.base_task import IgnoreOutputs
from flytekit.core.context_manager import ExecutionState, FlyteContextManager
from flytekit.core.shim_task import ShimTaskExecutor
from flytekit.core.type_engine import TypeEngine
from flytekit.exceptions.user import FlyteUserRuntimeException
from flytekit.loggers import logger
from flytekit.models import literals
from flytekit.models import task as task_models
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError
from flytekitplugins.prebuilt.kit.secrets import SecretScrubber, resolve_secret
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec

C = TypeVar("C", bound=PrebuiltConfig)
X = TypeVar("X", bound=PrebuiltConfig)
MAX_MESSAGE_BYTES = 16 * 1024  # of an error message; Flyte's error document holds it twice (message, traceback)


@dataclass
class Run(Generic[C, X]):
    """Everything one execution needs: the template, its re-validated config and extras, inputs, secrets."""

    template: task_models.TaskTemplate
    config: C
    extras: X
    inputs: dict[str, Any]
    scrubber: SecretScrubber

    def secret(self, field: str, secret: Secret | None = None) -> str:
        """Resolve the secret in config field ``field`` (or ``secret``, named ``field`` in errors); its value
        is scrubbed from then on."""
        return resolve_secret(secret or getattr(self.config, field), self.config.field_name(field), self.scrubber)

    @property
    def output_names(self) -> list[str]:
        return list(self.template.interface.outputs.keys())


class NoOutputs(Exception):
    """Raised by ``run`` when this replica of a multi-pod task ends without outputs: another replica writes them
    (as flytekit's own distributed tasks do with ``IgnoreOutputs``)."""


class UserFailure(FlyteUserRuntimeException):
    """What the entrypoint reports as a USER error: its code is the error's own (``USER:ScriptExit``), and so is the
    first word of its text, which the error document's traceback ends with (flytekit's ``FlyteException.__str__``
    writes its class code, ``USER:RuntimeError``, whatever the error's)."""

    def __str__(self) -> str:
        return f"{self.error_code}: {','.join(map(str, self.args))}"


class PrebuiltExecutor(ShimTaskExecutor, Generic[C, X]):
    """Base for executors. Subclasses set ``SPEC`` (their task type's ``TaskTypeSpec``) and implement ``run``.

    ``execute_from_model`` reads the header, refuses a schema version it does not know, rebuilds and
    re-validates config and extras, refuses a missing input, runs with secret scrubbing on, and turns
    failures into the error classes Flyte retries correctly (see ``kit.errors``), with secret values removed.
    """

    SPEC: ClassVar[TaskTypeSpec]

    def run(self, run: Run[C, X]) -> Any:
        raise NotImplementedError

    def execute_from_model(self, tt: task_models.TaskTemplate, **kwargs) -> Any:
        scrubber = SecretScrubber()
        deck = _DECK.set((tt.id.name, bool(tt.metadata and tt.metadata.generates_deck)))
        try:
            with scrubber.active():
                config, extras = self.load(tt.custom)
                _check_inputs(tt, kwargs)
                return output_literals(tt, self.run(Run(tt, config, extras, kwargs, scrubber)))
        except NoOutputs as done:  # the entrypoint then uploads nothing (flytekit bin/entrypoint.py)
            raise FlyteUserRuntimeException(IgnoreOutputs(str(done))) from None
        except Exception as error:
            clean, failed_at = self.classify(error, scrubber), getattr(error, "failed_at", None)
        finally:
            _DECK.reset(deck)
        # Raised outside the handler, so that nothing chains back (__context__) to the unscrubbed original, and
        # the message is said once. The entrypoint reports FlyteUserRuntimeException as USER, recoverable iff the
        # wrapped value is; ``failed_at`` (when the error says when it happened) becomes the error document's
        # timestamp, by which Flyte picks the first of several pods' errors.
        if isinstance(clean, (UserError, TransientError)):
            raise UserFailure(clean, timestamp=failed_at)
        raise clean

    def load(self, custom: dict[str, Any]) -> tuple[C, X]:
        return self.SPEC.load(custom)

    @staticmethod
    def classify(error: Exception, scrubber: SecretScrubber) -> Exception:
        """A scrubbed copy of ``error`` of the class Flyte should see, without the chain that held secrets."""
        message = capped(scrubber.scrub(_describe(error)))
        if isinstance(error, (UserError, TransientError)):
            clean: Exception = type(error)(message)  # keeps a subclass's error_code (e.g. USER:Timeout)
        elif isinstance(error, ConfigError):
            clean = UserError(message)
        else:
            clean = RuntimeError(f"{type(error).__name__}: {message}")
        return clean.with_traceback(error.__traceback__)


def capped(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """At most ``limit`` bytes of ``message`` (UTF-8): its first line and its end, saying how much was cut between.

    The message becomes Flyte's error document, stored and shown in the console: a 20 MB line of output before a
    failure must not make it 20 MB. The end is what explains a failure (the last output lines, the exception).
    """
    data = message.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return message
    first = data.split(b"\n", 1)[0][: limit // 4]
    keep = limit - len(first) - 100
    end = data[-keep:].decode("utf-8", errors="ignore")
    cut = len(data) - len(first) - len(end.encode())
    return f"{first.decode('utf-8', errors='ignore')}\n[... {cut:,} bytes of this message were cut ...]\n{end}"


def output_literals(tt: task_models.TaskTemplate, result: Any) -> literals.LiteralMap:
    """``run``'s result (one value, a tuple of them, or None) as the LiteralMap of the template's declared outputs.

    flytekit's shim converts an executor's value by its runtime class (``flytekit/core/shim_task.py``,
    ``dispatch_execute``: ``TypeEngine.to_literal(ctx, v, type(v), ...)``), which has lost a generic's arguments: a
    ``list[str]`` output is a bare ``list`` there and fails as a SYSTEM error, retried for nothing. Converted here by
    the declared type, a value that does not fit is the task's error (USER), naming the output; the shim passes a
    LiteralMap through as is."""
    if isinstance(result, literals.LiteralMap):
        return result
    outputs = tt.interface.outputs if tt.interface else {}
    names = list(outputs)
    values = [] if not names else [result] if len(names) == 1 else list(result)
    if len(values) != len(names):
        raise RuntimeError(f"the executor returned {len(values)} values for {len(names)} outputs")
    ctx = FlyteContextManager.current_context()
    python_types = TypeEngine.guess_python_types(outputs)
    converted = {}
    for name, value in zip(names, values):
        try:
            converted[name] = TypeEngine.to_literal(ctx, value, python_types[name], outputs[name].type)
        except Exception as error:
            detail = " ".join(str(error).split())[:500]
            raise UserError(
                f"output {name!r}: {_short(value)} is not a valid {_type_name(python_types[name])} ({detail})"
            ) from None
    return literals.LiteralMap(converted)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _type_name(python_type: Any) -> str:
    return python_type.__name__ if isinstance(python_type, type) else str(python_type).replace("typing.", "")


def _check_inputs(tt: task_models.TaskTemplate, given: dict[str, Any]) -> None:
    """Every declared input must be bound: a missing one would silently run as NULL / empty (upstream raises too)."""
    missing = sorted(set(tt.interface.inputs) - set(given))
    if missing:
        raise UserError(
            f"input {missing[0]!r} was not given a value"
            + (f" (nor were {', '.join(map(repr, missing[1:]))})" if len(missing) > 1 else "")
            + f"; the task takes {', '.join(tt.interface.inputs)}"
        )


def _describe(error: BaseException) -> str:
    """The error's message followed by its causes' (secrets are scrubbed by the caller)."""
    parts, seen = [_message(error)], {id(error)}
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        parts.append(f"caused by {type(cause).__name__}: {_message(cause)}")
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    return "\n".join(parts)


def _message(error: BaseException) -> str:
    """The error's own message (flytekit's exceptions prefix str() with their code, e.g. 'USER:Recoverable: error=')."""
    if error.args and isinstance(error.args[0], str):
        return error.args[0]
    return str(error) or type(error).__name__


# (task name, whether its template says it generates a Deck) of the template being executed
_DECK: ContextVar[tuple[str, bool]] = ContextVar("prebuilt_deck", default=("task", True))


def write_deck_file(html: str) -> str | None:
    """Write ``deck.html`` where pyflyte-execute uploads it with the outputs; in a local run (``pyflyte run``, an
    in-process call) the same page to a local file, logged as flytekit logs a local ``@task``'s Deck
    (``flytekit/deck/deck.py`` ``_output_deck``). Nothing when the template says it generates no Deck
    (``enable_deck=False``). Returns the path written.

    flytekit's entrypoint never writes decks for shim tasks (``getattr(task_def, "disable_deck", True)``,
    flyte#3841), but it uploads everything in the engine dir to the output prefix, where Flyte's
    console looks for ``deck.html``.
    """
    task_name, wanted = _DECK.get()
    ctx = FlyteContextManager.current_context()
    state = ctx.execution_state
    if not wanted or state is None:
        return None
    if state.mode == ExecutionState.Mode.TASK_EXECUTION and state.engine_dir:
        path = os.path.join(state.engine_dir, "deck.html")
    elif state.is_local_execution():
        path = os.path.join(ctx.file_access.get_random_local_directory(), "deck.html")
    else:
        return None
    with open(path, "w", encoding="utf-8") as f:
        f.write(html)
    if state.is_local_execution():
        logger.info(f"{task_name.split('.')[-1]} task creates flyte deck html to file://{path}")
    return path
