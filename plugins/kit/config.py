"""Typed task configuration: a frozen dataclass that validates itself and round-trips through ``custom``.

Fields may be str, int, float, bool, ``flytekit.Secret``, another ``PrebuiltConfig`` (a nested record),
tuples and str-keyed dicts of those, and ``Optional`` of any of them. ``from_custom`` undoes what a protobuf
``Struct`` does to the values (every number a float, tuples as lists), then validates again, so the executor
trusts nothing it did not check itself.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar

from flytekit.models.security import Secret

OMIT_EMPTY = {"omit_empty": True}  # field metadata: leave the field out of ``custom`` while it holds its default


class ConfigError(ValueError):
    """Invalid task configuration; ``field`` names the offending field, e.g. ``config.url``."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclasses.dataclass(frozen=True)
class PrebuiltConfig:
    """Base for a task type's configuration. Subclasses add fields and override ``validate``."""

    FIELD_PREFIX: ClassVar[str] = "config"

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the field when a value is wrong. Called at definition and run time, after
        every field was checked against its type (``check``)."""

    def check(self) -> None:
        """Every field has its declared type (``command="python x.py"`` is not a list), then ``validate``."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            _check_type(getattr(self, f.name), hints[f.name], self.field_name(f.name))
        self.validate()

    def secrets(self) -> list[Secret]:
        """The Flyte secrets this configuration references (requested from Flyte automatically)."""
        found = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                found.append(value)
        return found

    def field_name(self, name: str) -> str:
        return f"{self.FIELD_PREFIX}.{name}"

    def to_custom(self) -> dict[str, Any]:
        return {
            f.name: _to_json(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if not (f.metadata.get("omit_empty") and getattr(self, f.name) == f.default)
        }

    @classmethod
    def from_custom(cls, data: dict[str, Any], prefix: str = ""):
        """Rebuild and validate from what ``to_custom`` wrote; ``prefix`` names a nested record in errors."""
        prefix = prefix or cls.FIELD_PREFIX
        if not isinstance(data, dict):
            raise ConfigError(prefix, f"expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{prefix}.{unknown[0]}", "unknown field (written by a newer version?)")
        values = {name: _from_json(data[name], hints[name], f"{prefix}.{name}") for name in data}
        try:
            config = cls(**values)
        except TypeError as error:  # a required field is missing
            raise ConfigError(prefix, str(error)) from None
        config.checked_as(prefix)
        return config

    def checked_as(self, field: str) -> None:
        """``check``, naming the fields of this (nested) record after ``field`` (``config.master.requests.cpu``)."""
        try:
            self.check()
        except ConfigError as error:
            own = self.FIELD_PREFIX
            if field == own or not (error.field == own or error.field.startswith(own + ".")):
                raise
            problem = str(error)[len(error.field) + 2 :]
            raise ConfigError(field + error.field[len(own) :], problem) from None


def check_secret(value: Any, field: str, required: bool = False) -> None:
    """A ``flytekit.Secret`` with a key (or None when not ``required``)."""
    if value is None and not required:
        return
    if not isinstance(value, Secret) or not value.key:
        raise ConfigError(field, "expected flytekit.Secret(group=..., key=...) with a key")


def check_integer(value: Any, field: str, minimum: int = 0) -> None:
    """An int (not a bool) of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(field, f"expected an integer >= {minimum}, got {value!r}")


def _check_type(value: Any, hint: Any, field: str) -> None:
    """ConfigError naming ``field`` unless ``value`` is a ``hint`` (a type this module supports)."""
    if hint is Any:
        return
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        _check_union(value, hint, field)
    elif origin is tuple:
        _check_tuple(value, hint, field)
    elif origin is dict:
        _check_mapping(value, hint, field)
    elif isinstance(hint, type) and issubclass(hint, PrebuiltConfig):
        if not isinstance(value, hint):
            raise ConfigError(field, f"expected a {hint.__name__}, got {_shown(value)}")
        value.checked_as(field)
    else:
        _check_scalar(value, hint, field)


def _check_union(value: Any, hint: Any, field: str) -> None:
    """One of the union's types fits; the error of the only one tried, or one naming them all."""
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return
    problems = []
    for option in (a for a in args if a is not type(None)):
        try:
            return _check_type(value, option, field)
        except ConfigError as error:
            problems.append(error)
    raise (
        problems[0] if len(problems) == 1 else ConfigError(field, f"expected {_describe(hint)}, got {_shown(value)}")
    )


def _check_tuple(value: Any, hint: Any, field: str) -> None:
    (item_type, *_) = typing.get_args(hint)
    if not isinstance(value, (tuple, list)):
        raise ConfigError(field, f"expected a list of {_describe(item_type)}, got {_shown(value)}")
    for item in value:
        _check_type(item, item_type, field)


def _check_mapping(value: Any, hint: Any, field: str) -> None:
    item_type = typing.get_args(hint)[1]
    if not isinstance(value, dict):
        raise ConfigError(field, f"expected a mapping, got {_shown(value)}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise ConfigError(field, f"keys must be strings, got {_shown(key)}")
        _check_type(item, item_type, f"{field}.{key}")


def _check_scalar(value: Any, hint: Any, field: str) -> None:
    """An instance of ``hint`` (an int is a float too; a bool is nothing but a bool)."""
    numeric = hint is float and isinstance(value, int)
    if (
        isinstance(hint, type)
        and not (isinstance(value, hint) or numeric)
        or (hint is not bool and isinstance(value, bool))
    ):
        raise ConfigError(field, f"expected {_describe(hint)}, got {_shown(value)}")


def _describe(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return f"a list of {_describe(args[0])}"
    if typing.get_origin(hint) is dict:
        return f"a mapping of str to {_describe(args[1])}"
    return {Secret: "flytekit.Secret(group=..., key=...)"}.get(hint, getattr(hint, "__name__", str(hint)))


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _to_json(value: Any) -> Any:
    if isinstance(value, PrebuiltConfig):
        return value.to_custom()
    if isinstance(value, Secret):
        # The reference only: group, key and version. Values are resolved at run time, never serialized.
        return {"group": value.group, "key": value.key, "group_version": value.group_version}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def _from_json(value: Any, hint: Any, field: str) -> Any:
    """``value`` as a protobuf ``Struct`` gave it back (numbers as floats, tuples as lists) made a ``hint`` again."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _from_json(value, non_none[0], field) if len(non_none) == 1 else value
    if isinstance(hint, type) and issubclass(hint, PrebuiltConfig):
        return hint.from_custom(value, field)
    if hint is Secret:
        if not isinstance(value, dict) or not value.get("key"):
            raise ConfigError(field, "expected a secret reference with a group and a key")
        return Secret(group=value.get("group"), key=value["key"], group_version=value.get("group_version"))
    if origin in (tuple, dict):
        return _container_from_json(value, hint, field)
    return _scalar_from_json(value, hint, field)


def _container_from_json(value: Any, hint: Any, field: str) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(field, f"expected a list, got {type(value).__name__}")
        return tuple(_from_json(v, args[0], field) for v in value)
    if not isinstance(value, dict):
        raise ConfigError(field, f"expected a mapping, got {type(value).__name__}")
    return {k: _from_json(v, args[1], f"{field}.{k}") for k, v in value.items()}


def _scalar_from_json(value: Any, hint: Any, field: str) -> Any:
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool) and not isinstance(value, hint):
        raise ConfigError(field, f"expected {hint.__name__}, got {type(value).__name__}")
    return value
