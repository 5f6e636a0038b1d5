"""What a bundle's dependencies install: ``DependencySpec``, the kinds of dependency files, and the names of the
files an environment built from one holds."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from flytekitplugins.prebuilt.executors.script.locks.kinds import FILES, KINDS
from flytekitplugins.prebuilt.kit.errors import UserError

__all__ = ["FILES", "KINDS", "DependencySpec", "current_python", "requirements_for_install"]
MARKER = ".prebuilt-complete"  # in a complete environment
REQUIREMENTS_COPY = ".prebuilt-requirements.txt"  # the exact file given to the installer, kept for debugging


def current_python() -> str:
    """The running interpreter's Python, 'X.Y'."""
    return "%d.%d" % sys.version_info[:2]


class DependencySpec:
    """What to install: ``kind`` (one of KINDS), the environment's ``key``, the ``python_version`` ('X.Y') it was
    computed for. Made by :func:`detect`, which reads no more than it must.

    ``requirements``: lines of a pip requirements file, installer options first ('--index-url URL',
    '--find-links /abs/dir', ...), then requirements ('name==version', PEP 508 strings with markers, absolute
    local paths). Given to the constructor, or ``None``: then they are derived from ``project_dir`` on first use
    (:func:`requirements_for_install`), which runs the format's tool, so only a build should ask for them.
    """

    __slots__ = ("kind", "key", "python_version", "project_dir", "_requirements")
    kind: str
    key: str
    python_version: str
    project_dir: Path | None
    _requirements: tuple[str, ...] | None

    def __init__(
        self,
        kind: str,
        requirements: Iterable[str] | None,
        key: str,
        python_version: str | None = None,
        *,
        project_dir: str | os.PathLike | None = None,
    ):
        if kind not in KINDS:
            raise UserError(f"unknown dependency kind {kind!r}: expected one of {', '.join(KINDS)}")
        if requirements is None and project_dir is None:
            raise ValueError("DependencySpec needs its requirements, or the project_dir to derive them from")
        for name, value in (
            ("kind", kind),
            ("key", key),
            ("python_version", python_version or current_python()),
            ("project_dir", Path(project_dir) if project_dir is not None else None),
            ("_requirements", None if requirements is None else tuple(requirements)),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"a DependencySpec is immutable (tried to set {name!r})")

    @property
    def requirements(self) -> tuple[str, ...]:
        if self._requirements is None:  # derived once: for poetry and pipenv this runs the tool (seconds)
            from flytekitplugins.prebuilt.executors.script.locks.export import derive

            object.__setattr__(self, "_requirements", tuple(derive(self.kind, self.project_dir)))
        return self._requirements

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.key}"

    @property
    def packages(self) -> tuple[str, ...]:
        """The requirement lines, without installer options."""
        return tuple(line for line in self.requirements if not line.startswith("-"))

    def __eq__(self, other) -> bool:
        if not isinstance(other, DependencySpec):
            return NotImplemented
        return (self.kind, self.key, self.python_version) == (other.kind, other.key, other.python_version)

    def __hash__(self) -> int:
        return hash((self.kind, self.key, self.python_version))

    def __repr__(self) -> str:
        return (
            f"DependencySpec(kind={self.kind!r}, key={self.key!r}, python_version={self.python_version!r}, "
            f"project_dir={str(self.project_dir) if self.project_dir else None!r})"
        )


def requirements_for_install(spec: DependencySpec) -> list[str]:
    """The lines of the pip requirements file that installs ``spec``: the format's tool derives the pins (a
    subprocess for poetry and pipenv), then our rules apply (see the module docstring). Derived once per spec."""
    return list(spec.requirements)
