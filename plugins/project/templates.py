"""``fromTemplate``: a task on top of a template of its file or of another project's file, with every key
remembering the file and line it came from (so that an error in a template's value points into the template).

Merging: a mapping merges key by key, the task's winning (``resources``, ``env``, ``inputs``, ...), except
``executor``, which the task's replaces whole; the lists ``secrets`` and ``environment`` join; anything else the
task's replaces. A template may itself start from a template; a cycle is an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from flytekitplugins.prebuilt.project.errors import Problem, did_you_mean
from flytekitplugins.prebuilt.project.files import Unreadable, confined
from flytekitplugins.prebuilt.project.schema import FILE_NAME
from flytekitplugins.prebuilt.project.source import Path, Source

JOINED = ("secrets", "environment")
REPLACED = ("executor",)


@dataclass
class Merged:
    """A task's keys after its templates: ``values`` and, per key (and per key of a merged mapping), its origin."""

    home: Source
    path: Path  # the task's own entry
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple, tuple[Source, Path]] = field(default_factory=dict)

    def problem(self, relative: Path, message: str, at_key: bool = False) -> Problem:
        """A problem at ``relative`` (a path inside the task), in the file its value came from."""
        for length in (2, 1):
            origin = self.origins.get(tuple(relative[:length]))
            if origin and len(relative) >= length:
                source, base = origin
                return source.problem((*base, *relative[length:]), message, at_key=at_key)
        return self.home.problem((*self.path, *relative), message, at_key=at_key)


class Templates:
    """The templates this project can use: its own, and those of the projects named in ``projects``."""

    def __init__(self, source: Source, check: Callable[[Source], list[tuple[Path, Problem]]]):
        self.source, self._check = source, check
        self._files: dict[str, Source] = {os.path.realpath(_file_of(source)): source}
        self.problems: list[Problem] = []

    def resolve(self, source: Source, path: Path, entry: dict, seen: tuple = ()) -> Optional[Merged]:
        """``entry`` (at ``path`` in ``source``) on top of its templates; None after recording a problem."""
        merged = Merged(source, path)
        reference = entry.get("fromTemplate")
        if reference is not None:
            found = self._find(source, (*path, "fromTemplate"), reference)
            if found is None:
                return None
            template_source, template_path, template = found
            key = (os.path.realpath(_file_of(template_source)), template["name"])
            if key in seen:
                chain = " -> ".join(name for _, name in (*seen, key))
                self.problems.append(source.problem((*path, "fromTemplate"), f"template cycle: {chain}"))
                return None
            base = self.resolve(template_source, template_path, template, (*seen, key))
            if base is None:
                return None
            merged.values, merged.origins = base.values, base.origins
        for key, value in entry.items():
            if key == "fromTemplate":
                continue
            _merge_key(merged, key, value, source, (*path, key))
        return merged

    def _find(self, source: Source, at: Path, reference: Any) -> Optional[tuple[Source, Path, dict]]:
        if isinstance(reference, str):
            project, _, name = reference.rpartition(".")
        else:
            project, name = reference.get("project", ""), reference["name"]
        own = source.data.get("project")
        target = source if not project or project == own else self._project(source, at, project)
        if target is None:
            return None
        templates = target.data.get("templates") or []
        for index, template in enumerate(templates):
            if isinstance(template, dict) and template.get("name") == name:
                return target, ("templates", index), template
        names = [t.get("name") for t in templates if isinstance(t, dict)]
        where = "" if target is source else f" of project {project!r} ({target.name})"
        self.problems.append(
            source.problem(at, f"no template {name!r}{where}{did_you_mean(name, names)}; templates: {names or 'none'}")
        )
        return None

    def _project(self, source: Source, at: Path, project: str) -> Optional[Source]:
        from flytekitplugins.prebuilt.project.errors import ProjectErrors
        from flytekitplugins.prebuilt.project.source import read

        paths = source.data.get("projects") or {}
        if project not in paths:
            self.problems.append(
                source.problem(
                    at,
                    f"project {project!r} is not in projects; add projects: {{{project}: path/to/its/{FILE_NAME}}}"
                    f"{did_you_mean(project, paths)}",
                )
            )
            return None
        try:  # named as the user named this file; inside the project's folder only (files.py)
            path = confined(self.source.folder, os.path.dirname(source.name), paths[project], FILE_NAME)
        except Unreadable as error:
            self.problems.append(source.problem(("projects", project), f"not read: {error}"))
            return None
        real = os.path.realpath(path)
        if real not in self._files:
            try:
                other = read(path, quoted=False)
            except ProjectErrors as errors:
                self.problems.extend(errors.problems)
                self._files[real] = None
                return None
            self.problems.extend(problem for _, problem in self._check(other))
            if not isinstance(other.data, dict) or other.data.get("project") != project:
                self.problems.append(source.problem(("projects", project), f"{other.name} is not project {project!r}"))
            self._files[real] = other if isinstance(other.data, dict) else None
        return self._files[real]


def _merge_key(merged: Merged, key: str, value: Any, source: Source, path: Path) -> None:
    old = merged.values.get(key)
    if isinstance(old, dict) and isinstance(value, dict) and key not in REPLACED:
        combined = dict(old)
        for inner, item in value.items():
            combined[inner] = item
            merged.origins[(key, inner)] = (source, (*path, inner))
        merged.values[key] = combined
        return
    if isinstance(old, list) and isinstance(value, list) and key in JOINED:
        merged.values[key] = [*old, *value]  # positions of joined items: the task's list
    else:
        merged.values[key] = value
        for origin in [k for k in merged.origins if len(k) == 2 and k[0] == key]:
            del merged.origins[origin]
    merged.origins[(key,)] = (source, path)


def _file_of(source: Source) -> str:
    return os.path.join(source.folder, os.path.basename(source.name))
