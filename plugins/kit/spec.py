"""One declaration per task type, read by both sides of the contract.

A task type's ``plugins/<type>/spec.py`` declares a ``TaskTypeSpec``: its name, the major version of its
``custom`` schema, its config class, the class of what the author side derives at definition time (the
*extras*, e.g. a parsed query plan or a code bundle reference), the dotted path of its executor and its keys in a
project file (``kit.project_keys``). The
author-side task writes ``custom`` with ``spec.custom(config, extras)``; the executor reads it back with
``spec.load(custom)`` and receives typed, re-validated objects. Nothing about the contract is restated.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from flytekitplugins.prebuilt.kit.backend_plugin import unwrap
from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.contract import HEADER_KEY, header, read_header
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.kit.project_keys import ProjectKeys

C = TypeVar("C", bound=PrebuiltConfig)
X = TypeVar("X", bound=PrebuiltConfig)


@dataclass(frozen=True)
class NoExtras(PrebuiltConfig):
    """The extras of a task type whose config says everything."""

    FIELD_PREFIX = "custom"


@dataclass(frozen=True)
class TaskTypeSpec(Generic[C, X]):
    """What a task type is: ``custom = {"prebuilt": {"type": name, "version": schema_version}, **config, **extras}``.

    name            short name: the custom header's type, Flyte's task type ``prebuilt-<name>`` and the image
                    ``prebuilt-<name>``
    schema_version  major version of ``custom``; bump it on an incompatible change (executors refuse others)
    config          the ``PrebuiltConfig`` a user writes
    extras          a ``PrebuiltConfig`` the task derives at definition time (its fields sit beside the config's)
    executor        dotted path of the ``PrebuiltExecutor`` subclass; templates store it, so it must not move
    project         its keys in a project file besides its config's fields, and how they reach its task class
    project_default whether a project file's task entry without ``type:`` is of this type (one type says so)
    builds_on       the task types whose pieces this one extends (its task and executor subclass theirs): their
                    code is part of its image, and of what decides when the image is rebuilt (build_tools/)
    """

    name: str
    schema_version: int
    config: type[C]
    executor: str
    project: ProjectKeys
    extras: type[X] = cast("type[X]", NoExtras)  # the default of a generic field (mypy: no TypeVar default)
    project_default: bool = False
    builds_on: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.builds_on, tuple) or not all(isinstance(n, str) for n in self.builds_on):
            raise TypeError(f"task type {self.name!r}: builds_on is a tuple of task type names, got {self.builds_on!r}")
        if self.name in self.builds_on:
            raise TypeError(f"task type {self.name!r}: builds_on names the type itself")
        clash = _field_names(self.config) & (_field_names(self.extras) | {HEADER_KEY})
        if clash:
            raise TypeError(
                f"task type {self.name!r}: {sorted(clash)} is both a config and an extras (or header) field"
            )
        clash = _field_names(self.config) & set(self.project.keys)
        if clash:
            raise TypeError(f"task type {self.name!r}: {sorted(clash)} is both a config field and a project key")

    @property
    def flyte_task_type(self) -> str:
        return f"prebuilt-{self.name}"

    def custom(self, config: C, extras: X) -> dict[str, Any]:
        """The ``custom`` field of a template: header, then the config's fields, then the extras'."""
        for value, expected, field in ((config, self.config, "config"), (extras, self.extras, "extras")):
            if not isinstance(value, expected):
                raise ConfigError(field, f"expected a {expected.__name__}, got {type(value).__name__}")
            value.check()
        return {**header(self.name, self.schema_version), **config.to_custom(), **extras.to_custom()}

    def load(self, custom: dict[str, Any]) -> tuple[C, X]:
        """The config and extras of a template, re-validated; ``UserError`` for another type or version.

        A template that a backend plugin runs carries ours under one key (``kit.backend_plugin``)."""
        custom = unwrap(custom)
        try:
            task_type, version = read_header(custom)
        except ValueError as e:
            raise UserError(str(e)) from None
        if task_type != self.name:
            raise UserError(f"this template is for task type {task_type!r}, not {self.name!r}")
        if version != self.schema_version:
            newer = "newer than" if version > self.schema_version else "older than"
            raise UserError(
                f"template schema version {version} of task type {task_type!r} is {newer} the version this executor "
                f"understands ({self.schema_version}); run it with the image built for the flytekitplugins-prebuilt "
                f"release that serialized it"
            )
        names = _field_names(self.config)
        body = {k: v for k, v in custom.items() if k != HEADER_KEY}
        config = self.config.from_custom({k: v for k, v in body.items() if k in names})
        extras = self.extras.from_custom({k: v for k, v in body.items() if k not in names})
        return config, extras

    def task_class(self) -> type:
        """The author-side task class of ``plugins/<name>/task.py``: the class there whose ``SPEC`` is this one."""
        module = importlib.import_module(f"flytekitplugins.prebuilt.{self.name}.task")
        for value in vars(module).values():
            if isinstance(value, type) and value.__dict__.get("SPEC") is self:
                return value
        raise TypeError(f"{module.__name__} has no task class with SPEC = the {self.name} spec")

    def executor_class(self) -> type:
        module, _, name = self.executor.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def task_types() -> dict[str, TaskTypeSpec]:
    """Every task type of this package: the ``SPEC`` of each ``flytekitplugins.prebuilt.<type>.spec`` module."""
    import flytekitplugins.prebuilt as package

    found = {}
    for module in pkgutil.iter_modules(package.__path__):
        if module.ispkg and importlib.util.find_spec(f"{package.__name__}.{module.name}.spec") is not None:
            spec = getattr(importlib.import_module(f"{package.__name__}.{module.name}.spec"), "SPEC", None)
            if isinstance(spec, TaskTypeSpec):  # the kit's own spec module declares none
                found[spec.name] = spec
    return dict(sorted(found.items()))


def project_default_type() -> TaskTypeSpec:
    """The type of a project file's task entry that gives no ``type:`` (the one spec with ``project_default``)."""
    defaults = [spec for spec in task_types().values() if spec.project_default]
    if len(defaults) != 1:
        raise TypeError(f"exactly one task type must say project_default=True, not {[s.name for s in defaults]}")
    return defaults[0]
