"""Dependency environments for user code bundles: one virtualenv per distinct set of locked requirements.

A bundle declares its dependencies the way Python projects do (``requirements.txt``, ``poetry.lock`` +
``pyproject.toml``, ``Pipfile.lock``). :func:`detect` turns that into a :class:`DependencySpec`: the pip
requirement lines to install and a ``key``, a hash of what decides the environment's content (the kind, the
normalized lines, the content of any local packages they name, the Python ``X.Y`` and the machine).
:func:`ensure_environment` returns ``<cache_dir>/<kind>-<key>/``, a virtualenv with those requirements
installed, building it only when no complete one is there, so a warm start installs nothing.

Where an environment is built, and why there (relocation and atomicity)
-------------------------------------------------------------------------
A virtualenv is not relocatable: ``pyvenv.cfg``, ``bin/activate`` and the shebang of every console script that
the installer writes (``#!/cache/six-abc/bin/python``) name its absolute path. Building in a temporary directory
and renaming it into place would leave scripts pointing at the temporary path. (``uv venv --relocatable`` avoids
that for uv only; the ``pip`` fallback cannot.) So an environment is built **at its final path**, and the
commit point is a marker file, not a rename:

- Builders of one key are serialized by an ``fcntl.flock`` on ``<cache_dir>/<kind>-<key>.lock`` (a separate
  file that is never deleted, so the lock itself has no races). The lock is per open file, so it serializes
  threads of one process as well as processes; the kernel drops it when a builder dies.
- Under the lock, a builder re-checks for the marker (another builder may have just finished: then it reuses
  that environment), removes whatever incomplete directory a crashed or killed builder left, creates the venv,
  installs, and writes ``.prebuilt-complete`` (the spec as JSON, written to a temporary name and renamed) LAST.
- A reader takes an environment only if the marker parses, names this key, and ``bin/python`` still resolves
  (an interpreter that went away makes the environment stale: it is rebuilt). Without the marker a directory
  is never used, whatever it contains; on any failure the builder removes it before re-raising.

Other choices
-------------
- ``system_site_packages=True`` environments live under ``<kind>-<key>-system`` so the two flavours of one spec
  never share a directory.
- Local packages (``./libs/mylib``, a wheel in the bundle, poetry ``directory``/``file`` sources, Pipfile
  ``path`` entries) must lie inside the project directory. They are installed as regular (non-editable) copies,
  since a cached environment outlives the bundle it was built from; their *content* is hashed into the key while
  their location is not, so the same bundle unpacked in another temporary directory reuses the environment.
  ``-e``/``--editable`` lines in requirements files are refused.
- Locked kinds are installed with dependency resolution on (not ``--no-deps``): the pins fix the versions, and a
  lock file that misses a package still gives a working environment.
- uv is found as ``uv`` on ``PATH``, else next to ``sys.executable`` (the image's ``/opt/prebuilt/bin/uv``); only
  when there is none do we fall back to ``python -m venv`` + ``pip``. Bytecode is compiled at install time.
- Failures: a wrong spec or a failed install is a :class:`UserError` carrying the command, its exit code and the
  last lines of its output; a failure whose output looks like the network (refused or reset connections, DNS,
  timeouts, 5xx from the index) or an install past ``timeout`` is a :class:`TransientError`, so retries apply.

POSIX only (``fcntl``), like the images this runs in.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError

KINDS = ("requirements", "poetry", "pipenv", "none")
# The file that selects each kind (for 'poetry', pyproject.toml is read too when present).
FILES = {"requirements": "requirements.txt", "poetry": "poetry.lock", "pipenv": "Pipfile.lock"}
MARKER = ".prebuilt-complete"
REQUIREMENTS_COPY = ".prebuilt-requirements.txt"  # the exact file given to the installer, kept for debugging
OUTPUT_TAIL_LINES = 40
_FORMAT = 1  # part of every key: bump it to retire all cached environments after a change in how they are built

_PROJECT = "{project}"  # stands for the project directory in the location-independent form of a line


def _current_python() -> str:
    return "%d.%d" % sys.version_info[:2]


@dataclass(frozen=True)
class DependencySpec:
    """What to install. Build one with :func:`detect`."""

    kind: str  # one of KINDS
    # Lines of a pip requirements file: installer options first ('--index-url URL', '--find-links /abs/dir',
    # '--pre', ...), then requirements ('name==version', PEP 508 strings with markers, absolute local paths).
    requirements: tuple[str, ...]
    key: str  # sha256 hex (first 24 chars) of kind, normalized requirements, local content, python X.Y, machine
    python_version: str = field(default_factory=_current_python)  # the 'X.Y' the key was computed for

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"unknown dependency kind {self.kind!r}: expected one of {', '.join(KINDS)}")

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.key}"

    @property
    def packages(self) -> tuple[str, ...]:
        """The requirement lines, without installer options."""
        return tuple(line for line in self.requirements if not line.startswith("-"))


# ====================================================================================== detect


def detect(project_dir: str | os.PathLike, kind: str = "auto", *, python_version: str | None = None) -> DependencySpec:
    """The dependency spec of the project in ``project_dir``.

    ``kind='auto'`` takes ``requirements.txt`` if present, else ``poetry.lock``, else ``Pipfile.lock``, else
    ``none``. An explicit kind whose file is missing is a :class:`UserError` naming the file.
    ``python_version`` ('X.Y') is the Python the environment will run; the running interpreter's by default.

    - ``requirements``: requirement lines, with comments, blank lines, ``\\`` continuations, environment markers,
      ``-r``/``-c`` files (relative to the including file, inside the project directory), per-requirement
      ``--hash`` options and the index options ``--index-url``, ``--extra-index-url``, ``--find-links``,
      ``--no-index``, ``--pre``, ``--trusted-host``, ``--only-binary``, ``--no-binary``, ``--prefer-binary``,
      ``--require-hashes``. ``-e`` and local paths outside the project are refused, as are other options.
    - ``poetry``: every locked package of the main group (poetry 2: ``groups`` holds 'main'; poetry < 1.5:
      ``category = "main"``; poetry 1.5-1.8 locks have neither, so the packages reachable from pyproject.toml's
      main dependencies are taken, or all packages without a pyproject.toml) that is not ``optional`` (extras),
      as ``name==version``, with its markers (poetry 2 writes them; for older locks they are derived from the
      markers on the dependency edges, so that e.g. ``pywin32`` is not installed on Linux).
    - ``pipenv``: the ``default`` section of Pipfile.lock as ``name[extras]==version ; markers``.
    """
    root = Path(project_dir)
    if not root.is_dir():
        raise UserError(f"project directory {root} does not exist or is not a directory")
    root = root.resolve()
    python_version = python_version or _current_python()
    if not re.fullmatch(r"\d+\.\d+", python_version):
        raise UserError(f"python_version must look like '3.11', not {python_version!r}")
    if kind == "auto":
        kind = _auto_kind(root)
    elif kind not in KINDS:
        raise UserError(f"unknown dependency kind {kind!r}: expected 'auto' or one of {', '.join(KINDS)}")
    if kind == "none":
        return _make_spec("none", _Lines(root), python_version)
    path = root / FILES[kind]
    if not path.is_file():
        hint = " (run `pipenv lock`)" if kind == "pipenv" and (root / "Pipfile").is_file() else ""
        hint = " (run `poetry lock`)" if kind == "poetry" and (root / "pyproject.toml").is_file() else hint
        raise UserError(f"dependency kind {kind!r} needs {FILES[kind]} in {root}, and there is none{hint}")
    lines = _Lines(root)
    {"requirements": _read_requirements, "poetry": _read_poetry, "pipenv": _read_pipfile_lock}[kind](path, lines)
    spec = _make_spec(kind, lines, python_version)
    logger.debug(f"{root}: {kind} dependencies, {len(spec.packages)} requirements, key {spec.key}")
    return spec


def _auto_kind(root: Path) -> str:
    for kind in ("requirements", "poetry", "pipenv"):
        if (root / FILES[kind]).is_file():
            return kind
    if (root / "Pipfile").is_file():
        logger.warning(f"{root} has a Pipfile but no Pipfile.lock: installing nothing (run `pipenv lock`)")
    return "none"


class _Lines:
    """Requirement lines as they are installed (absolute local paths) and as they are hashed (paths relative to
    the project, plus a digest of their content)."""

    def __init__(self, root: Path):
        self.root = root
        self.options: list[tuple[str, str]] = []  # (installed, hashed)
        self.requirements: list[tuple[str, str]] = []
        self.local: dict[str, str] = {}  # project-relative path -> content digest

    def option(self, line: str, hashed: str | None = None) -> None:
        if (line, hashed or line) not in self.options:
            self.options.append((line, hashed or line))

    def requirement(self, line: str, hashed: str | None = None) -> None:
        if (line, hashed or line) not in self.requirements:
            self.requirements.append((line, hashed or line))

    def inside(self, path: Path, what: str) -> Path:
        """``path`` resolved (symlinks too), checked to exist inside the project."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise UserError(f"{what}: {path} is outside the project directory {self.root}")
        if not resolved.exists():
            raise UserError(f"{what}: {path} does not exist")
        return resolved

    def local_path(self, path: Path, what: str) -> tuple[Path, str]:
        """``path`` checked by :meth:`inside` with its content digest recorded; and its location-free form."""
        resolved = self.inside(path, what)
        relative = resolved.relative_to(self.root).as_posix()
        self.local[relative] = _digest(resolved)
        return resolved, _PROJECT if relative == "." else f"{_PROJECT}/{relative}"


def _make_spec(kind: str, lines: _Lines, python_version: str) -> DependencySpec:
    options, requirements = list(lines.options), list(lines.requirements)
    payload = {
        "format": _FORMAT,
        "kind": kind,
        "requirements": [hashed for _, hashed in options + requirements],
        "local": sorted(lines.local.items()),
        "python": python_version,
        "machine": platform.machine(),
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
    return DependencySpec(kind, tuple(line for line, _ in options + requirements), key, python_version)


def _digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's files (relative names and bytes; hidden entries,
    __pycache__, *.pyc and *.egg-info skipped)."""
    digest = hashlib.sha256()

    def add_file(file: Path) -> None:
        with open(file, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)

    if path.is_file():
        add_file(path)
        return digest.hexdigest()
    for directory, subdirectories, files in os.walk(path):
        subdirectories[:] = sorted(d for d in subdirectories if not _skipped(d) and not d.endswith(".egg-info"))
        for name in sorted(files):
            if _skipped(name) or name.endswith(".pyc"):
                continue
            file = Path(directory, name)
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            add_file(file)
            digest.update(b"\0")
    return digest.hexdigest()


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


# ------------------------------------------------------------------------------ requirements.txt

_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_OPTION_RE = re.compile(r"^(--[A-Za-z][A-Za-z-]*|-[A-Za-z])(?:(?:\s*=\s*|\s+|(?<=^-[A-Za-z]))(.*))?$")
_NAME_AT_URL_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)$")
_EXTRAS_SUFFIX_RE = re.compile(r"^(.*?)(\[[^\]]*\])?$")
_ARCHIVE_RE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz|tar)$", re.IGNORECASE)
_SHORT = {"-r": "--requirement", "-c": "--constraint", "-e": "--editable", "-i": "--index-url", "-f": "--find-links"}
_PASSED_OPTIONS = {"--index-url", "--extra-index-url", "--trusted-host", "--only-binary", "--no-binary"}
_PASSED_FLAGS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, line) with continuations joined and comments removed, as pip reads them."""
    pending: list[str] = []
    first = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.endswith("\\") and not _COMMENT_RE.match(raw):
            if not pending:
                first = number
            pending.append(raw[:-1])
            continue
        if pending:
            raw, number = "".join(pending) + (" " + raw if _COMMENT_RE.match(raw) else raw), first
            pending = []
        line = " ".join(_COMMENT_RE.sub("", raw).split())
        if line:
            yield number, line
    if pending:
        line = " ".join(_COMMENT_RE.sub("", "".join(pending)).split())
        if line:
            yield first, line


def _read_requirements(path: Path, lines: _Lines, stack: tuple[Path, ...] = ()) -> None:
    path = path.resolve()
    if path in stack:
        chain = " -> ".join(_shown(p, lines.root) for p in (*stack, path))
        raise UserError(f"requirements files include each other: {chain}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    for number, line in _logical_lines(text):
        where = f"{_shown(path, lines.root)}:{number}"
        if line.startswith("-"):
            _requirements_option(path, where, line, lines, (*stack, path))
        else:
            _requirements_line(path, where, line, lines)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _requirements_option(path: Path, where: str, line: str, lines: _Lines, stack: tuple[Path, ...]) -> None:
    match = _OPTION_RE.match(line)
    if not match:
        raise UserError(f"{where}: cannot parse {line!r}")
    flag, value = _SHORT.get(match[1], match[1]), (match[2] or "").strip()
    if flag == "--editable":
        raise UserError(f"{where}: editable requirements are not supported ({line!r}): a cached environment "
                        f"outlives the source tree; drop '-e' to install a copy")
    if flag in _PASSED_FLAGS:
        if value:
            raise UserError(f"{where}: {flag} takes no value")
        lines.option(flag)
        return
    if not value:
        raise UserError(f"{where}: {flag} needs a value")
    if flag == "--requirement":
        _read_requirements(lines.inside(_relative(path, value, lines.root, beside_only=True), where), lines, stack)
    elif flag == "--constraint":
        constraint, hashed = lines.local_path(_relative(path, value, lines.root, beside_only=True), where)
        lines.option(f"--constraint {constraint}", f"--constraint {hashed}")
    elif flag == "--find-links":
        if _is_url(value) and not value.startswith("file:"):
            lines.option(f"--find-links {value}")
        else:
            local = _file_url_path(value) if value.startswith("file:") else value
            directory, hashed = lines.local_path(_relative(path, local, lines.root), where)
            lines.option(f"--find-links {directory}", f"--find-links {hashed}")
    elif flag in _PASSED_OPTIONS:
        lines.option(f"{flag} {value}")
    else:
        raise UserError(f"{where}: unsupported option {flag} in {line!r}")


def _requirements_line(path: Path, where: str, line: str, lines: _Lines) -> None:
    per_requirement = re.search(r"\s--[A-Za-z]", line)  # --hash=..., --config-settings ...
    requirement, options = (line[: per_requirement.start()], line[per_requirement.start():]) if per_requirement \
        else (line, "")
    marker_at = re.search(r"\s;|;\s", requirement)  # for URLs and paths pip needs whitespace around ';'
    head, marker = (requirement[: marker_at.start()], requirement[marker_at.start():]) if marker_at \
        else (requirement, "")
    name, local = "", None
    if named := _NAME_AT_URL_RE.match(head):
        name, url = named[1] + (named[2] or ""), named[3]
        if url.startswith("file:"):
            local = _file_url_path(url)
    elif head.startswith("file:"):
        local = _file_url_path(head)
    elif not _is_url(head) and (head.startswith((".", "/", "~")) or "/" in head or "\\" in head
                                or _ARCHIVE_RE.search(_EXTRAS_SUFFIX_RE.match(head)[1])):
        local = head
    if local is None:
        lines.requirement(line)
        return
    extras = ""
    if not name:
        local, extras = _EXTRAS_SUFFIX_RE.match(local)[1], _EXTRAS_SUFFIX_RE.match(local)[2] or ""
    resolved, hashed = lines.local_path(_relative(path, local, lines.root), where)
    installed = f"{name} @ {resolved.as_uri()}" if name else f"{resolved}{extras}"
    hashed = f"{name} @ {hashed}" if name else f"{hashed}{extras}"
    lines.requirement(installed + marker + options, hashed + marker + options)


def _relative(including: Path, value: str, root: Path, beside_only: bool = False) -> Path:
    """A path from a requirements file. Included files (-r, -c) are relative to the including file; other paths
    too if they exist there, else relative to the project (pip resolves requirement paths against the working
    directory, which is the project when it runs there)."""
    candidate = Path(os.path.expanduser(value))
    if candidate.is_absolute():
        return candidate
    beside = including.parent / candidate
    return beside if beside_only or beside.exists() else root / candidate


def _is_url(value: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value)) or value.startswith(("git+", "hg+", "svn+", "bzr+"))


def _file_url_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UserError(f"file URL {url!r} names a remote host")
    if url.startswith("file:") and not url.startswith("file:/"):  # file:relative/path (not a real URL)
        return url[len("file:"):].split("#")[0]
    return url2pathname(parts.path)


# ------------------------------------------------------------------------------ poetry.lock


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise UserError(f"reading {path.name} needs Python 3.11 or the 'tomli' package") from None
    try:
        with open(path, "rb") as stream:
            return tomllib.load(stream)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_poetry(path: Path, lines: _Lines) -> None:
    where = path.name
    lock = _load_toml(path)
    packages = lock.get("package", [])
    if not isinstance(packages, list) or not all(isinstance(p, dict) and "name" in p and "version" in p
                                                 for p in packages):
        raise UserError(f"{where}: expected [[package]] tables with a name and a version")
    pyproject = lines.root / "pyproject.toml"
    roots = _poetry_roots(_load_toml(pyproject)) if pyproject.is_file() else None

    if any("groups" in p for p in packages):  # poetry 2.x: groups and markers per package
        selected = [p for p in packages if "main" in (p.get("groups") or [])]
    elif any("category" in p for p in packages):  # poetry < 1.5
        selected = [p for p in packages if p.get("category", "main") == "main"]
    elif roots is not None:  # poetry 1.5 - 1.8: neither; follow the main dependencies
        selected = _poetry_reachable(packages, roots)
    else:
        selected = list(packages)
    selected = [p for p in selected if not p.get("optional", False)]
    derived = _poetry_edge_markers(selected, roots) if roots is not None else {}

    for package in selected:
        name = _canonical(package["name"])
        markers = package.get("markers")
        if isinstance(markers, dict):
            markers = markers.get("main")
        if markers is None and "groups" not in package:
            markers = derived.get(name)
        suffix = f" ; {markers}" if markers and not _EXTRA_MARKER_RE.search(markers) else ""
        source = package.get("source") or {}
        kind = source.get("type")
        if kind in (None, "pypi", "legacy"):
            if kind == "legacy" and source.get("url") and not _is_pypi(source["url"]):
                lines.option(f"--extra-index-url {source['url']}")
            lines.requirement(f"{name}=={package['version']}{suffix}")
        elif kind == "git":
            url = _git_url(source.get("url", ""))
            reference = source.get("resolved_reference") or source.get("reference") or ""
            subdirectory = f"#subdirectory={source['subdirectory']}" if source.get("subdirectory") else ""
            lines.requirement(f"{name} @ {url}{'@' + reference if reference else ''}{subdirectory}{suffix}")
        elif kind == "url":
            lines.requirement(f"{name} @ {source['url']}{suffix}")
        elif kind in ("directory", "file"):
            local, hashed = lines.local_path(path.parent / source.get("url", ""), f"{where}: package {name}")
            lines.requirement(f"{name} @ {local.as_uri()}{suffix}", f"{name} @ {hashed}{suffix}")
        else:
            raise UserError(f"{where}: package {name} has an unsupported source type {kind!r}")


def _poetry_roots(pyproject: dict[str, Any]) -> list[tuple[str, tuple[str, ...], str | None]]:
    """(name, extras, marker) of the project's main, non-optional dependencies."""
    roots = []
    poetry = (pyproject.get("tool") or {}).get("poetry") or {}
    for name, constraint in (poetry.get("dependencies") or {}).items():
        if name.lower() == "python":
            continue
        for one in constraint if isinstance(constraint, list) else [constraint]:
            one = one if isinstance(one, dict) else {}
            if not one.get("optional", False):
                roots.append((_canonical(name), tuple(one.get("extras") or ()), one.get("markers")))
    for requirement in (pyproject.get("project") or {}).get("dependencies") or []:
        parsed = _parse_pep508(requirement)
        if parsed:
            roots.append(parsed)
    return roots


def _parse_pep508(requirement: str) -> tuple[str, tuple[str, ...], str | None] | None:
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*(?:;\s*(.+))?$", requirement)
    if not match:
        return None
    extras = tuple(e.strip() for e in (match[2] or "").split(",") if e.strip())
    return _canonical(match[1]), extras, (match[3] or "").strip() or None


def _dependency_constraints(package: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, constraint in (package.get("dependencies") or {}).items():
        for one in constraint if isinstance(constraint, list) else [constraint]:
            yield _canonical(name), one if isinstance(one, dict) else {}


def _poetry_reachable(packages: list[dict[str, Any]], roots) -> list[dict[str, Any]]:
    """The packages reachable from the roots through dependencies (optional ones only through extras)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in packages:
        by_name.setdefault(_canonical(package["name"]), []).append(package)
    seen: set[tuple[str, frozenset[str]]] = set()
    reached: dict[int, dict[str, Any]] = {}
    queue = [(name, frozenset(extras)) for name, extras, _ in roots]
    while queue:
        name, extras = queue.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for package in by_name.get(name, []):
            reached[id(package)] = package
            for dependency, constraint in _dependency_constraints(package):
                if not constraint.get("optional", False):
                    queue.append((dependency, frozenset(constraint.get("extras") or ())))
            for extra in extras:
                for requirement in (package.get("extras") or {}).get(extra, []):
                    parsed = _parse_pep508(requirement.replace("(", " ").replace(")", " "))
                    if parsed:
                        queue.append((parsed[0], frozenset(parsed[1])))
    return [p for p in packages if id(p) in reached]


# A marker on 'extra' only holds while installing a package's extra; in a requirements file it is always false.
# Poetry writes such markers for dependencies wanted through extras: they are dropped (installed unconditionally).
_EXTRA_MARKER_RE = re.compile(r"""\bextra\s*(?:==|!=|\bnot\s+in\b|\bin\b)|(?:==|!=|\bin\b)\s*extra\b""")


def _poetry_edge_markers(selected: list[dict[str, Any]], roots) -> dict[str, str | None]:
    """For locks without per-package markers: a package that is only ever required under markers gets their
    disjunction (the parents' own conditions are left out: a superset, never a missing package)."""
    incoming: dict[str, list[str | None]] = {}
    for name, _, marker in roots:
        incoming.setdefault(name, []).append(marker)
    for package in selected:
        for dependency, constraint in _dependency_constraints(package):
            incoming.setdefault(dependency, []).append(constraint.get("markers"))
    markers: dict[str, str | None] = {}
    for name, conditions in incoming.items():
        if not conditions or any(not condition or _EXTRA_MARKER_RE.search(condition) for condition in conditions):
            markers[name] = None
            continue
        unique = list(dict.fromkeys(conditions))
        markers[name] = unique[0] if len(unique) == 1 else " or ".join(f"({c})" for c in unique)
    return markers


def _git_url(url: str) -> str:
    if url.startswith("git+"):
        return url
    if "://" not in url and re.match(r"^[^@/]+@[^:/]+:", url):  # scp-like git@host:org/repo.git
        user_host, _, repository = url.partition(":")
        url = f"ssh://{user_host}/{repository}"
    return "git+" + url


def _is_pypi(url: str) -> bool:
    return urlsplit(url).hostname in ("pypi.org", "pypi.python.org")


# ------------------------------------------------------------------------------ Pipfile.lock


def _read_pipfile_lock(path: Path, lines: _Lines) -> None:
    where = path.name
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    default = lock.get("default") if isinstance(lock, dict) else None
    if not isinstance(default, dict):
        raise UserError(f"{where}: expected a JSON object with a \"default\" section")
    sources = {s.get("name"): s.get("url") for s in (lock.get("_meta") or {}).get("sources") or []
               if isinstance(s, dict)}
    for name, entry in default.items():
        if isinstance(entry, str):
            entry = {"version": entry}
        if not isinstance(entry, dict):
            raise UserError(f"{where}: package {name}: expected an object")
        extras = f"[{','.join(entry['extras'])}]" if entry.get("extras") else ""
        requirement = _canonical(name) + extras
        suffix = f" ; {entry['markers']}" if entry.get("markers") else ""
        url = sources.get(entry.get("index"))
        if url and not _is_pypi(url):
            lines.option(f"--extra-index-url {url}")
        if "git" in entry:
            reference = f"@{entry['ref']}" if entry.get("ref") else ""
            subdirectory = f"#subdirectory={entry['subdirectory']}" if entry.get("subdirectory") else ""
            lines.requirement(f"{requirement} @ {_git_url(entry['git'])}{reference}{subdirectory}{suffix}")
        elif "path" in entry or str(entry.get("file", "")).startswith("file:"):
            location = entry["path"] if "path" in entry else _file_url_path(entry["file"])
            local, hashed = lines.local_path(path.parent / location, f"{where}: package {name}")
            if entry.get("editable"):
                logger.info(f"{where}: installing editable package {name} as a regular copy")
            lines.requirement(f"{requirement} @ {local.as_uri()}{suffix}", f"{requirement} @ {hashed}{suffix}")
        elif "file" in entry:
            lines.requirement(f"{requirement} @ {entry['file']}{suffix}")
        elif "version" in entry:
            version = str(entry["version"]).strip()
            if version in ("", "*"):
                version = ""
            elif version[0] not in "=<>!~":
                version = "==" + version
            lines.requirement(f"{requirement}{version}{suffix}")
        else:
            raise UserError(f"{where}: package {name} has no version, git, file or path")
    # Lock files are sorted already; sorting again makes the key independent of JSON key order.
    lines.options.sort()
    lines.requirements.sort()


# ====================================================================================== environments


def venv_python(venv: str | os.PathLike) -> Path:
    """The interpreter of a virtualenv."""
    return Path(venv) / "bin" / "python"


def environment_variables(venv: str | os.PathLike) -> dict[str, str]:
    """Variables that make a process use ``venv``: VIRTUAL_ENV, and PATH (from ``os.environ``) with the venv's
    ``bin`` first. Merge them into the environment of the process that runs the user's entry point."""
    venv = Path(venv).absolute()
    bin_dir = str(venv / "bin")
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    return {"VIRTUAL_ENV": str(venv), "PATH": os.pathsep.join([bin_dir, *rest])}


def ensure_environment(spec: DependencySpec, cache_dir: str | os.PathLike, *, python: str = sys.executable,
                       system_site_packages: bool = False, timeout: float = 1800) -> Path:
    """The virtualenv for ``spec`` under ``cache_dir`` (``<kind>-<key>``), built if there is no complete one.

    ``python`` is the base interpreter (its X.Y must be ``spec.python_version``). Kind 'none' gives an empty
    environment, so an entry point always runs with a known interpreter. ``timeout`` (seconds) bounds waiting for
    another builder plus building. See the module docstring for how builds are made atomic.
    """
    cache = Path(cache_dir).expanduser().absolute()
    name = spec.name + ("-system" if system_site_packages else "")
    venv = cache / name
    python = shutil.which(python) or python
    _check_python(spec, python)
    if _complete(venv, spec):  # no lock, no write: a read-only cache (e.g. baked into an image) works
        logger.info(f"reusing environment {venv} ({len(spec.packages)} requirements)")
        return venv

    cache.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with _exclusive(cache / f"{name}.lock", venv, deadline):
        if _complete(venv, spec):
            logger.info(f"reusing environment {venv}, just built by another process")
            return venv
        if os.path.lexists(venv):
            logger.warning(f"removing incomplete environment {venv} (an earlier build did not finish)")
            _remove(venv)
        started = time.monotonic()
        try:
            installer = _build(spec, venv, python=python, system_site_packages=system_site_packages,
                               deadline=deadline)
            seconds = time.monotonic() - started
            _write_marker(venv, spec, python=python, installer=installer,
                          system_site_packages=system_site_packages, seconds=seconds)
        except BaseException:
            _remove(venv)
            raise
    logger.info(f"environment {venv} ready in {seconds:.1f}s")
    return venv


def _check_python(spec: DependencySpec, python: str) -> None:
    if _same_file(python, sys.executable):
        version = _current_python()
    else:
        try:
            result = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                    capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise UserError(f"cannot run the interpreter {python}: {error}") from None
        if result.returncode != 0:
            raise UserError(f"cannot run the interpreter {python}: {_tail(result.stdout + result.stderr)}")
        version = result.stdout.strip()
    if version != spec.python_version:
        raise UserError(f"the dependency spec was computed for Python {spec.python_version}, but {python} is "
                        f"Python {version}: call detect(..., python_version={version!r})")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _complete(venv: Path, spec: DependencySpec) -> bool:
    """Whether ``venv`` is a finished build of ``spec`` that can still run."""
    try:
        marker = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("key") != spec.key or marker.get("kind") != spec.kind:
        return False
    if not os.path.exists(venv_python(venv)):  # follows the symlink: False when the base interpreter went away
        logger.warning(f"environment {venv} lost its interpreter ({os.path.realpath(venv_python(venv))})")
        return False
    return True


@contextlib.contextmanager
def _exclusive(lock_path: Path, venv: Path, deadline: float) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info(f"waiting for another process building {venv}")
            while True:
                time.sleep(0.1)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TransientError(f"timed out waiting for another process building {venv}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove(path: Path) -> None:
    """Remove ``path``: renamed away first, so that it disappears at once even if deleting takes a while."""
    if not os.path.lexists(path):
        return
    trash = path.with_name(f".{path.name}.removing-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except OSError:
        trash = path
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            trash.unlink()


def _find_uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _build(spec: DependencySpec, venv: Path, *, python: str, system_site_packages: bool, deadline: float) -> str:
    """Create ``venv`` and install ``spec`` into it; returns the installer's name."""
    uv = _find_uv()
    installer = "uv" if uv else "pip"
    logger.info(f"creating environment {venv} with {installer} (python {python})")
    site = ["--system-site-packages"] if system_site_packages else []
    if uv:
        _run([uv, "venv", "--no-project", "--quiet", "--python", python, *site, str(venv)], deadline, "uv venv")
    else:
        without_pip = [] if spec.packages else ["--without-pip"]
        _run([python, "-m", "venv", *site, *without_pip, str(venv)], deadline, "python -m venv")
    if not spec.packages:
        return installer

    lines, extra = list(spec.requirements), []
    if uv:
        # uv ignores (with a warning) these pip options inside a requirements file: --pre and --trusted-host
        # are command-line flags there, --prefer-binary has no equivalent.
        extra = ["--prerelease=allow"] if "--pre" in lines else []
        extra += [arg for line in lines if line.startswith("--trusted-host ")
                  for arg in ("--allow-insecure-host", line.split(" ", 1)[1])]
        lines = [line for line in lines if line.split(" ", 1)[0] not in ("--pre", "--trusted-host", "--prefer-binary")]
    requirements_file = venv / REQUIREMENTS_COPY
    requirements_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    logger.info(f"installing {len(spec.packages)} requirements with {installer} into {venv}")
    started = time.monotonic()
    if uv:
        command = [uv, "pip", "install", "--python", str(venv_python(venv)), "--compile-bytecode", *extra,
                   "-r", str(requirements_file)]
    else:
        command = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                   "-r", str(requirements_file)]
    _run(command, deadline, f"installing dependencies ({spec.kind}, {len(spec.packages)} requirements)")
    logger.info(f"installed {len(spec.packages)} requirements into {venv} in {time.monotonic() - started:.1f}s")
    return installer


_NETWORK_RE = re.compile(
    "|".join([
        r"error sending request", r"tcp connect error", r"connection (?:refused|reset|aborted|closed|timed out)",
        r"dns error", r"failed to lookup address", r"temporary failure in name resolution",
        r"name or service not known", r"nodename nor servname", r"network is unreachable", r"no route to host",
        r"timed out", r"newconnectionerror", r"connecttimeouterror", r"readtimeouterror", r"max retries exceeded",
        r"remotedisconnected", r"incompleteread", r"protocolerror", r"proxyerror",
        r"http status server error", r"\b50[0234] (?:internal server error|bad gateway|service unavailable|"
        r"gateway time-?out)",
    ]),
    re.IGNORECASE,
)


def _looks_like_network(output: str) -> bool:
    return bool(_NETWORK_RE.search(output))


def _tail(output: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(output.rstrip().splitlines()[-lines:])


def _run(command: list[str], deadline: float, what: str) -> str:
    """Run ``command`` (its own process group, killed whole on timeout); its output on success."""
    remaining = deadline - time.monotonic()
    shown = shlex.join(command)
    if remaining <= 0:
        raise TransientError(f"{what}: out of time before running {shown}")
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
    except OSError as error:
        raise UserError(f"{what}: cannot run {shown}: {error}") from None
    try:
        output, _ = process.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        _kill(process)
        output, _ = process.communicate()
        raise TransientError(f"{what} timed out after {remaining:.0f}s: {shown}\n"
                             f"--- last lines of output ---\n{_tail(output or '')}") from None
    except BaseException:
        _kill(process)
        process.wait()
        raise
    if process.returncode != 0:
        message = (f"{what} failed with exit code {process.returncode}: {shown}\n"
                   f"--- last {OUTPUT_TAIL_LINES} lines of output ---\n{_tail(output)}")
        if _looks_like_network(output):
            raise TransientError(message)
        raise UserError(message)
    return output


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)


def _write_marker(venv: Path, spec: DependencySpec, *, python: str, installer: str, system_site_packages: bool,
                  seconds: float) -> None:
    record = {
        "kind": spec.kind,
        "key": spec.key,
        "requirements": list(spec.requirements),
        "python_version": spec.python_version,
        "machine": platform.machine(),
        "python": python,
        "installer": installer,
        "system_site_packages": system_site_packages,
        "seconds": round(seconds, 3),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    temporary = venv / f"{MARKER}.tmp"
    temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, venv / MARKER)
