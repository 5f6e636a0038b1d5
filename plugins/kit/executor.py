"""Runtime side of a prebuilt task type: a ``ShimTaskExecutor`` that trusts nothing it did not check."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, TypeVar

from flytekit.core.context_manager import ExecutionState, FlyteContextManager
from flytekit.core.shim_task import ShimTaskExecutor
from flytekit.exceptions.user import FlyteUserRuntimeException
from flytekit.models import task as task_models
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.contract import HEADER_KEY, read_header
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError
from flytekitplugins.prebuilt.kit.secrets import SecretScrubber, resolve_secret

C = TypeVar("C", bound=PrebuiltConfig)


@dataclass
class Run(Generic[C]):
    """Everything one execution needs: the template, its re-validated config, inputs, resolved secrets."""

    template: task_models.TaskTemplate
    config: C
    extra: dict[str, Any]
    inputs: dict[str, Any]
    scrubber: SecretScrubber

    def secret(self, field: str, secret: Secret | None = None) -> str:
        """Resolve the secret in config field ``field`` (or ``secret``, named ``field`` in errors); its value
        is scrubbed from then on."""
        return resolve_secret(secret or getattr(self.config, field), self.config.field_name(field), self.scrubber)

    @property
    def output_names(self) -> list[str]:
        return list(self.template.interface.outputs.keys())


class PrebuiltExecutor(ShimTaskExecutor, Generic[C]):
    """Base for executors. Subclasses set ``TASK_TYPE``, ``SCHEMA_VERSION``, ``CONFIG`` and implement ``run``.

    ``execute_from_model`` reads the header, refuses a schema version it does not know, rebuilds and
    re-validates the config, runs with secret scrubbing on, and turns failures into the error
    classes Flyte retries correctly (see ``kit.errors``), with secret values removed.
    """

    TASK_TYPE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]
    CONFIG: ClassVar[type[PrebuiltConfig]]

    def run(self, run: Run[C]) -> Any:
        raise NotImplementedError

    def parse_extra(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Validate the ``custom`` entries outside the config (a task type's ``custom_fields``)."""
        if extra:
            raise ConfigError(f"custom.{sorted(extra)[0]}", "unknown field")
        return extra

    def execute_from_model(self, tt: task_models.TaskTemplate, **kwargs) -> Any:
        scrubber = SecretScrubber()
        try:
            with scrubber.active():
                config, extra = self.load(tt.custom)
                return self.run(Run(tt, config, extra, kwargs, scrubber))
        except Exception as error:
            clean = self.classify(error, scrubber)
            if isinstance(clean, (UserError, TransientError)):
                # the entrypoint reports FlyteUserRuntimeException as USER, recoverable iff the value is
                raise FlyteUserRuntimeException(clean) from clean
            raise clean from None

    def load(self, custom: dict[str, Any]) -> tuple[C, dict[str, Any]]:
        try:
            task_type, version = read_header(custom)
        except ValueError as e:
            raise UserError(str(e)) from None
        if task_type != self.TASK_TYPE:
            raise UserError(f"this template is for task type {task_type!r}; {type(self).__name__} runs {self.TASK_TYPE!r}")
        if version != self.SCHEMA_VERSION:
            newer = "newer than" if version > self.SCHEMA_VERSION else "older than"
            raise UserError(
                f"template schema version {version} of task type {task_type!r} is {newer} the version this executor "
                f"understands ({self.SCHEMA_VERSION}); run it with the image built for the flytekitplugins-prebuilt "
                f"release that serialized it"
            )
        names = {f.name for f in fields(self.CONFIG)}
        body = {k: v for k, v in custom.items() if k != HEADER_KEY}
        config = self.CONFIG.from_custom({k: v for k, v in body.items() if k in names})
        extra = self.parse_extra({k: v for k, v in body.items() if k not in names})
        return config, extra

    @staticmethod
    def classify(error: Exception, scrubber: SecretScrubber) -> Exception:
        """A scrubbed copy of ``error`` of the class Flyte should see, without the chain that held secrets."""
        message = scrubber.scrub(_describe(error))
        if isinstance(error, (UserError, TransientError)):
            clean: Exception = type(error)(message)  # keeps a subclass's error_code (e.g. USER:Timeout)
        elif isinstance(error, ConfigError):
            clean = UserError(message)
        else:
            clean = RuntimeError(f"{type(error).__name__}: {message}")
        return clean.with_traceback(error.__traceback__)


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


def write_deck_file(html: str) -> None:
    """Write ``deck.html`` where pyflyte-execute uploads it with the outputs.

    flytekit's entrypoint never writes decks for shim tasks (``getattr(task_def, "disable_deck", True)``,
    flyte#3841), but it uploads everything in the engine dir to the output prefix, where Flyte's
    console looks for ``deck.html``.
    """
    ctx = FlyteContextManager.current_context()
    state = ctx.execution_state
    if state is not None and state.mode == ExecutionState.Mode.TASK_EXECUTION and state.engine_dir:
        with open(os.path.join(state.engine_dir, "deck.html"), "w", encoding="utf-8") as f:
            f.write(html)
