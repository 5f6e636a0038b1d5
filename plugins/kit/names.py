"""Task names: a prebuilt task registers under the name it is given, so a name is checked at definition and two
tasks of one registration must not share one.

Like every flytekit task that takes a ``name=`` (upstream's ``SQLite3Task``, ``ContainerTask``, ``ShellTask``), a
prebuilt task keeps the name it is given: ``FlyteRemote.fetch_task(name=...)`` and the console show it as written.
``@task`` functions need no name, flytekit derives ``<module>.<function>`` (``flytekit/core/tracker.py``
``extract_task_module``); an explicit name has no module to tell two apart. Flyte identifies a task by (project,
domain, name, version): of two tasks registered under one name in one version it keeps the first and reports the
second as already existing (flytekit ``FlyteRemote.raw_register``), so the second would silently run the first.

A collision is refused when it happens: when one registration (one ``SerializationSettings``, as ``pyflyte
register``, ``pyflyte package`` and ``pyflyte run --remote`` use for every entity they serialize) serializes two
tasks of one name defined in different places. Importing two modules that each define ``test`` (two test files)
is no error: only registering them together is. Where a task is defined is where flytekit's instance tracking says
(``TrackedInstance``: the file, else the module, being imported when it was created); the same file defining a
name again (a module imported under two names, reloaded, a notebook cell run again) defines the same task.
"""

from __future__ import annotations

import re
import weakref
from pathlib import Path
from typing import Any, Optional

from flytekit.configuration import SerializationSettings
from flytekit.core.python_customized_container_task import PythonCustomizedContainerTask
from flytekitplugins.prebuilt.kit.config import ConfigError

_DUNDER = re.compile(r"^__\w*__$")
# id(settings) -> {name: where the task serialized under it was defined}; an entry goes with its settings
_registrations: dict[int, dict[str, Optional[str]]] = {}


def check_name(name: Any) -> str:
    """A name Flyte and the command line can carry: a non-empty string without blanks, each dotted part non-empty
    and none a Python dunder (``__name__``, ``__main__``: Python's own names, which a tool looking a task up in its
    module by name, as ``flyte-prebuilt run`` does, would find instead)."""
    if not isinstance(name, str) or not name:
        raise ConfigError("name", f"expected a non-empty string, got {name!r}")
    if any(c.isspace() or not c.isprintable() for c in name):
        raise ConfigError("name", f"{name!r} has blanks or control characters; use letters, digits, '_', '-', '.'")
    for part in name.split("."):
        if not part:
            raise ConfigError("name", f"{name!r} has an empty part between dots")
        if _DUNDER.match(part):
            raise ConfigError("name", f"{name!r}: {part!r} is reserved (a Python dunder name)")
    return name


def claim(name: str, defined_in: Optional[str], settings: Optional[SerializationSettings]) -> None:
    """Record that the task defined in ``defined_in`` is serialized as ``name`` by the registration ``settings``
    serialize for; refuse it when that registration already serialized another task of that name. A local run
    (flytekit's ``SERIALIZE_SETTINGS``) registers nothing, nor does ``get_custom(None)`` (a custom read outside any
    serialization, as upstream's tests and our docs do)."""
    if settings is None or settings is PythonCustomizedContainerTask.SERIALIZE_SETTINGS:
        return
    key = id(settings)
    if key not in _registrations:
        _registrations[key] = {}
        weakref.finalize(settings, _registrations.pop, key, None)
    names = _registrations[key]
    if name in names and names[name] != defined_in:
        raise ConfigError(
            "name",
            f"{name!r} names two tasks of this registration, one defined in {_place(names[name])} and one in "
            f"{_place(defined_in)}; Flyte registers one task per name and would keep only the first: give one "
            f"another name, e.g. qualified by its module ('{_module_hint(defined_in)}.{name}')",
        )
    names[name] = defined_in


def defined_in(task: Any) -> Optional[str]:
    """The file (else the module) flytekit's instance tracking says ``task`` was defined in; None if unknown."""
    file, module = getattr(task, "_module_file", None), getattr(task, "_instantiated_in", None)
    return str(Path(file).resolve()) if file else module


def _place(where: Optional[str]) -> str:
    return where or "an interactive session"


def _module_hint(where: Optional[str]) -> str:
    return Path(where).stem if where and where.endswith(".py") else (where or "module").rsplit(".", 1)[-1]
