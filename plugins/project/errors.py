"""What is wrong with a project file, and where: ``file:line:column: field: problem``.

A project is checked as a whole before anything is built, so that one run names every mistake; each mistake is a
``Problem`` and they are raised together as ``ProjectErrors``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Iterable, Optional


@dataclass(frozen=True, order=True)
class Position:
    """1-based line and column in ``file`` (as editors and compilers count)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.line else self.file


@dataclass(frozen=True, order=True)
class Problem:
    position: Position
    field: str  # the path of the offending key, e.g. tasks[0].resources.memory
    message: str  # what is expected

    def __str__(self) -> str:
        return f"{self.position}: {self.field}: {self.message}" if self.field else f"{self.position}: {self.message}"


class ProjectErrors(ValueError):
    """Every problem of a project, one per line, in file order."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        count = len(self.problems)
        super().__init__(f"{count} error{'s' if count != 1 else ''}:\n" + "\n".join(map(str, self.problems)))


class ProjectWarning(UserWarning):
    """Something a project file says that was read but means nothing here (AME's ``models:``, ame.py): ``load``
    warns with it, once per warning, so that ``pyflyte`` and every command show it; it never stops the file."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close and isinstance(word, str):  # same letters, other case or separators: taskref, inject_as
        squashed = {c.lower().replace("_", "").replace("-", ""): c for c in choices}
        found = squashed.get(word.lower().replace("_", "").replace("-", ""))
        close = [found] if found else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def field_path(parts: Iterable[object]) -> str:
    """``tasks[0].resources.memory`` from ``["tasks", 0, "resources", "memory"]``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def first_line(text: Optional[str]) -> str:
    return " ".join((text or "").split())
