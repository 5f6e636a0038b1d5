"""Configuration of the ``script`` task type: how a user's code bundle is run, and reusable presets."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig, check_integer, check_secret

DEPENDENCY_KINDS = ("auto", "requirements", "poetry", "pipenv", "none")
DEPENDENCY_FILES = {"requirements": "requirements.txt", "poetry": "poetry.lock", "pipenv": "Pipfile.lock"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_ENV_PREFIX = "PREBUILT_"
# What the executor sets or relies on to run the command in its environment; a task's env may not change them.
RESERVED_ENV = ("PATH", "VIRTUAL_ENV", "PYTHONHOME")
RESERVED_ENV_PREFIXES = (RESERVED_ENV_PREFIX, "FLYTE_", "_F_", "_FSEC_")


def input_variable(name: str) -> str:
    """The environment variable an input's value is passed in."""
    return f"{RESERVED_ENV_PREFIX}INPUT_{name.upper()}"


@dataclass(frozen=True)
class ScriptConfig(PrebuiltConfig):
    """How to run the bundle.

    command        the entry point as an argv list, e.g. ("python", "train.py", "--epochs", "{{.inputs.epochs}}");
                   ``{{.inputs.x}}`` in an element is replaced by the input's value (files: their local path).
                   Never run through a shell, unless ``shell=True`` (then command is one shell string, and inputs
                   reach it only as quoted variables, "$PREBUILT_INPUT_X": a placeholder there is refused).
    dependencies   'auto' (requirements.txt, else poetry.lock, else Pipfile.lock, else none) or one of
                   requirements / poetry / pipenv / none; installed with uv into an environment cached by
                   the lock's hash, so a warm start does not reinstall.
    env            environment variables for the command (not PATH, VIRTUAL_ENV, PYTHONHOME, PREBUILT_*, FLYTE_*).
    secret_env     secrets injected as environment variables under the given names (AME's injectAs);
                   their values are masked in the captured output.
    deadline_seconds  stop the command after this long (SIGTERM, then SIGKILL after grace_seconds); 0: none.
    artifacts      output name -> path in the working directory (a FlyteFile or FlyteDirectory output),
                   e.g. {"model": "out/model.pt", "tensorboard": "runs/"}.
    changed_files_output  name of a FlyteDirectory output that receives every file the command created
                   or modified (AME's saveChangedFiles).
    """

    command: tuple[str, ...] = ()
    shell: bool = False
    dependencies: str = "auto"
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, Secret] = field(default_factory=dict)
    deadline_seconds: int = 0
    grace_seconds: int = 10
    artifacts: dict[str, str] = field(default_factory=dict)
    changed_files_output: str = ""

    def validate(self) -> None:
        if not self.command or not all(isinstance(a, str) for a in self.command):
            raise ConfigError(self.field_name("command"), "expected a non-empty list of strings (an argv)")
        if self.shell and len(self.command) != 1:
            raise ConfigError(self.field_name("command"), "with shell=True, give the whole command as one string")
        self._check_no_nul()
        if self.dependencies not in DEPENDENCY_KINDS:
            raise ConfigError(
                self.field_name("dependencies"), f"{self.dependencies!r} is not one of {', '.join(DEPENDENCY_KINDS)}"
            )
        for where, name in [("env", n) for n in self.env] + [("secret_env", n) for n in self.secret_env]:
            if not ENV_NAME.match(name):
                raise ConfigError(self.field_name(f"{where}.{name}"), "not a valid environment variable name")
            if name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIXES):
                raise ConfigError(
                    self.field_name(f"{where}.{name}"),
                    f"is set by the executor (reserved: {', '.join(RESERVED_ENV)} and names starting with "
                    f"{', '.join(RESERVED_ENV_PREFIXES)})",
                )
        overlap = set(self.env) & set(self.secret_env)
        if overlap:
            raise ConfigError(self.field_name(f"secret_env.{sorted(overlap)[0]}"), "also set in env")
        for name, secret in self.secret_env.items():
            check_secret(secret, self.field_name(f"secret_env.{name}"), required=True)
        for name in ("deadline_seconds", "grace_seconds"):
            check_integer(getattr(self, name), self.field_name(name))
        for name, path in self.artifacts.items():
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise ConfigError(
                    self.field_name(f"artifacts.{name}"),
                    f"{path!r} must be a relative path inside the working directory",
                )

    def _check_no_nul(self) -> None:
        """No argument or environment variable can carry a NUL byte (execve takes C strings): refused here, named,
        rather than failing every attempt of the pod as a system error."""
        for index, argument in enumerate(self.command):
            if "\0" in argument:
                raise ConfigError(self.field_name(f"command[{index}]"), "holds a NUL byte, which no argument can carry")
        for name, value in self.env.items():
            if isinstance(value, str) and "\0" in value:
                raise ConfigError(
                    self.field_name(f"env.{name}"), "holds a NUL byte, which no environment variable can carry"
                )

    def secrets(self) -> list[Secret]:
        return list(self.secret_env.values())


@dataclass(frozen=True)
class ScriptPreset:
    """A reusable partial configuration (AME's fromTemplate): tasks extend it and override fields.

    ``env`` and ``secret_env`` and ``artifacts`` merge key by key; every other field replaces.
    Resources (``requests``/``limits``) travel with the preset too.
    """

    fields: dict[str, Any] = field(default_factory=dict)
    requests: Optional[dict[str, Any]] = None
    limits: Optional[dict[str, Any]] = None

    MERGED = ("env", "secret_env", "artifacts")
    CONFIG = ScriptConfig  # the config class presets build (the train type's TrainPreset builds a TrainConfig)

    @classmethod
    def of(cls, requests: Optional[dict] = None, limits: Optional[dict] = None, **fields) -> "ScriptPreset":
        known = {f.name for f in dataclasses.fields(cls.CONFIG)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"preset.{unknown[0]}", f"not a {cls.CONFIG.__name__} field")
        return cls(fields, requests, limits)

    def extend(self, requests: Optional[dict] = None, limits: Optional[dict] = None, **fields) -> "ScriptPreset":
        merged = _merge(self.fields, type(self).of(**fields).fields)
        return type(self)(
            merged,
            {**(self.requests or {}), **(requests or {})} or None,
            {**(self.limits or {}), **(limits or {})} or None,
        )

    def config(self, **overrides) -> ScriptConfig:
        values = _merge(self.fields, type(self).of(**overrides).fields)
        if isinstance(values.get("command"), list):
            values["command"] = tuple(values["command"])
        return self.CONFIG(**values)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in overrides.items():
        merged[name] = {**base.get(name, {}), **value} if name in ScriptPreset.MERGED and name in base else value
    return merged
