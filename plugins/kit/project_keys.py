"""What a task type adds to a task entry of a project file (``plugins/project/``, docs/project/tasks.md).

Every entry has the keys every task has (``name``, ``type``, ``inputs``, ``resources``, ``limits``, ``retries``,
...) and its config's fields; the project front-end handles those alike for every type. What else a type's task
class takes (the ``sql`` type's query, the ``script`` type's code folder) its spec declares as ``ProjectKeys``:
each key's JSON Schema piece, and a hook that turns those keys into the task class's keyword arguments. The front-end
thus names no task type, and a new type needs no change outside its own folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "x-expected": "a name made of letters, digits, _"}
INTERFACE_TYPE_REF = "#/$defs/interface_type"  # the project schema's enum of interface type names


def interface_types() -> dict[str, Any]:
    """The types a project file's ``inputs``/``outputs`` may name -> their Python types (imported when needed: an
    executor reads the spec module, not these)."""
    import datetime

    from flytekit.types.directory import FlyteDirectory
    from flytekit.types.file import FlyteFile
    from flytekit.types.structured import StructuredDataset

    return {
        "str": str, "int": int, "float": float, "bool": bool, "datetime": datetime.datetime, "date": datetime.date,
        "file": FlyteFile, "directory": FlyteDirectory, "dataset": StructuredDataset, "dict": dict,
        "list[str]": list[str], "list[int]": list[int], "list[float]": list[float],
    }  # fmt: skip


def interface_schema(description: str) -> dict:
    """The JSON Schema of a name -> interface type mapping (``inputs: {n: int}``)."""
    return {
        "type": "object",
        "propertyNames": NAME,
        "additionalProperties": {"$ref": INTERFACE_TYPE_REF},
        "description": description,
    }


@dataclass(frozen=True)
class ProjectEntry:
    """A task entry as a type's hook reads it: its keys after its templates (plain values), the outputs that AME's
    shorthands declared (``artifacts``), and the folder of the file that gave each key."""

    values: Mapping[str, Any]
    shorthand_outputs: Mapping[str, str]  # output name -> interface type name
    folder_of: Callable[[str], str]

    def interface(self, key: str, more: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
        """The Python types of the name -> type mapping at ``key`` (after ``more``, which it overrides)."""
        types = interface_types()
        return {name: types[kind] for name, kind in {**(more or {}), **(self.values.get(key) or {})}.items()}

    def path(self, key: str, default: str = ".") -> str:
        """The path at ``key``, relative to the file that gave it (a template's, or the task's own)."""
        return os.path.normpath(os.path.join(self.folder_of(key), self.values.get(key, default)))


def no_keywords(entry: ProjectEntry) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, eq=False)
class ProjectKeys:
    """A task type's keys in a project file besides its config's fields and the keys every task has.

    keys        key -> its JSON Schema piece (with a ``description``: editors show it)
    keywords    ``(ProjectEntry) -> dict``: the task class's keyword arguments from these keys, beside name,
                config and those of the keys every task has; import task-side types inside it (executors read
                the spec module too)
    required    keys a task of this type must have once its templates are merged (an error names them otherwise)
    error_keys  a task keyword that a ``ConfigError`` may name -> the key of the project file that gave it
    """

    keys: Mapping[str, dict] = field(default_factory=dict)
    keywords: Callable[[ProjectEntry], dict[str, Any]] = no_keywords
    required: tuple[str, ...] = ()
    error_keys: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        unknown = [k for k in (*self.required, *self.error_keys.values()) if k not in self.keys]
        if unknown:
            raise TypeError(f"project keys {unknown} are required or named by errors but not declared in keys")
