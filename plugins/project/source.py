"""Reading a project file with the line and column of every key and value.

ruamel.yaml's round-trip loader keeps positions (``.lc``) on every mapping and sequence, refuses duplicate keys, and
never builds a Python object from a tag: an unknown tag (``!!python/object:os.system``) is kept as data with its
name, and ``tags`` lists them so that the checker refuses every tag but ours. YAML 1.2 (ruamel's default) also
keeps ``no``/``on`` strings, not booleans.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

from flytekitplugins.prebuilt.project.errors import Position, Problem, ProjectErrors, first_line
from flytekitplugins.prebuilt.project.files import Unreadable, read_bytes

try:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError
except ImportError as missing:  # the project extra
    raise ImportError(f"project files need {missing.name}: pip install 'flytekitplugins-prebuilt[project]'") from None

from flytekitplugins.prebuilt.project.bounded_yaml import BoundedComposer, Refused

Path = tuple  # keys and indexes from the document's root, e.g. ("tasks", 0, "resources")


@dataclass(frozen=True)
class Source:
    """One loaded file: ``name`` as errors show it, its folder (relative paths in it are relative to that);
    ``quoted``: whether an error about it may quote its values (not for a file named in ``projects``, which may be
    any file of the project's folder: an error about ``.env`` must not show its token)."""

    name: str
    folder: str
    data: Any
    quoted: bool = True
    warnings: list = field(default_factory=list, compare=False)  # Problems that do not stop the file (ame.py)

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

        if not self.quoted:
            message = _unquoted(message, self.value(path))
        return Problem(self.position(path, at_key), field or field_path(path), message)

    def value(self, path: Path) -> Any:
        """The value at ``path``, or None where there is none."""
        node = self.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return None
        return node


def read(path: str | os.PathLike, quoted: bool = True) -> Source:
    """The file at ``path`` (a regular file, at most ``files.MAX_FILE_BYTES``), or ``ProjectErrors`` pointing at
    why it is not read or at its syntax error (or duplicate key). ``quoted``: whether errors may quote its values."""
    name = os.fspath(path)
    try:
        data = read_bytes(name)
    except Unreadable as error:
        raise ProjectErrors([Problem(Position(name), "", f"the project file is not read: {error}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        where = _position(name, data[: error.start].decode("utf-8", "replace"))
        raise ProjectErrors([Problem(where, "", "not UTF-8 text (a project file is UTF-8)")]) from None
    return parse(text, name, os.path.dirname(os.path.abspath(name)), quoted)


def parse(text: str, name: str = "<string>", folder: str = ".", quoted: bool = True) -> Source:
    """``text`` as a ``Source``; ``ProjectErrors`` at the first syntax error, control character, duplicate key, too
    deep nesting or too much aliasing (bounded_yaml.py)."""
    yaml = YAML(typ="rt")
    yaml.Composer = BoundedComposer
    try:
        data = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = Position(name, mark.line + 1, mark.column + 1) if mark else Position(name)
        problem = first_line(error.problem or str(error)).split(" with value")[0]  # a duplicate key's value: no
        said = " ".join(part for part in (first_line(error.context), problem) if part)
        said = said if isinstance(error, Refused) else f"YAML syntax: {said}"
        raise ProjectErrors([Problem(where, "", said)]) from None
    except ReaderError as error:  # a control character: YAML allows tab, CR and LF only
        where = _position(name, text[: error.position])
        raise ProjectErrors([Problem(where, "", f"YAML syntax: control character {error.character:#04x}")]) from None
    return Source(name, folder, CommentedMap() if data is None else data, quoted)


def _unquoted(message: str, value: Any) -> str:
    """``message`` without ``value`` (a scalar of 4 characters or more, as the secret masking in kit/ does)."""
    if isinstance(value, (dict, list)) or value is None or len(str(value)) < 4:
        return message
    for spelling in (repr(str(value)), repr(value), str(value)):
        message = message.replace(spelling, "<value not shown>")
    return message


def _position(name: str, before: str) -> Position:
    """The position just after ``before``, the text preceding it in ``name``."""
    return Position(name, before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)


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
