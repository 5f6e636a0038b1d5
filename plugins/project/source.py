"""Reading a project file with the line and column of every key and value.

ruamel.yaml's round-trip loader keeps positions (``.lc``) on every mapping and sequence, refuses duplicate keys, and
never builds a Python object from a tag: an unknown tag (``!!python/object:os.system``) is kept as data with its
name, and ``tags`` lists them so that the checker refuses every tag but ours. YAML 1.2 (ruamel's default) also
keeps ``no``/``on`` strings, not booleans.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

from flytekitplugins.prebuilt.project.errors import Position, Problem, ProjectErrors, first_line

try:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
    from ruamel.yaml.error import MarkedYAMLError
except ImportError as missing:  # the project extra
    raise ImportError(f"project files need {missing.name}: pip install 'flytekitplugins-prebuilt[project]'") from None

Path = tuple  # keys and indexes from the document's root, e.g. ("tasks", 0, "resources")


@dataclass(frozen=True)
class Source:
    """One loaded file: ``name`` as errors show it, its folder (relative paths in it are relative to that)."""

    name: str
    folder: str
    data: Any

    def position(self, path: Path, at_key: bool = False) -> Position:
        """Where ``path`` is: the value it names (or its key, ``at_key``); for a path that does not exist (a missing
        key), the nearest mapping or sequence that does."""
        node, line, column = self.data, 0, 0
        if isinstance(node, (CommentedMap, CommentedSeq)):
            line, column = node.lc.line, node.lc.col
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if isinstance(node, CommentedMap) and part in node:
                block = isinstance(node[part], (CommentedMap, CommentedSeq)) and node.lc.value(part)[0] > node.lc.line
                line, column = node.lc.key(part) if last and (at_key or block) else node.lc.value(part)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, column = node.lc.item(part)
                node = node[part]
            else:
                break
        return Position(self.name, line + 1, column + 1)

    def problem(self, path: Path, message: str, field: str = "", at_key: bool = False) -> Problem:
        from flytekitplugins.prebuilt.project.errors import field_path

        return Problem(self.position(path, at_key), field or field_path(path), message)


def read(path: str | os.PathLike) -> Source:
    """The file at ``path``, or ``ProjectErrors`` pointing at its syntax error (or duplicate key)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        raise ProjectErrors([Problem(Position(name), "", f"cannot read the project file ({error.strerror})")]) from None
    return parse(text, name, os.path.dirname(os.path.abspath(name)))


def parse(text: str, name: str = "<string>", folder: str = ".") -> Source:
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Position(name, mark.line + 1, mark.column + 1) if mark else Position(name)
        problem = first_line(error.problem or str(error)).replace(" with value", "").split(" (original")[0]
        raise ProjectErrors(
            [Problem(where, "", f"YAML syntax: {first_line(error.context)} {problem}".strip())]
        ) from None
    return Source(name, folder, CommentedMap() if data is None else data)


def tags(node: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every explicit tag in the document (``!poetry``, ``!!python/object:...``), with its path."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag and isinstance(node, (CommentedMap, CommentedSeq, TaggedScalar)):
        yield path, tag.replace("tag:yaml.org,2002:", "!!")
    if isinstance(node, dict):
        for key, value in node.items():
            yield from tags(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from tags(value, (*path, index))


def plain(value: Any) -> Any:
    """ruamel's values (CommentedMap, ScalarFloat, ...) as plain Python ones."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value
