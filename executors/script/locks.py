"""Lock files of a user's code bundle: the key of the environment they decide, and the lines that install it.

A bundle declares its dependencies the way Python projects do: ``requirements.txt``, ``poetry.lock`` with its
``pyproject.toml``, or ``Pipfile.lock``. Two steps, so that a warm start runs no tool:

- :func:`detect` (every run) reads bytes only. The environment's ``key`` hashes the files the format's tool reads,
  the content of the local packages they name, the Python ``X.Y`` and the machine. No subprocess, no heavy import.
- :func:`requirements_for_install` (only when an environment is built) lets each format's own tool derive the
  pins: ``poetry export`` (poetry-plugin-export) for ``poetry.lock``, ``pipenv requirements`` for
  ``Pipfile.lock``; a requirements file is its own list of pins, its lines checked with ``packaging``.

Our rules, the same for every format, are applied to what the tools give: a local package (a path, a ``file:``
URL) must lie inside the bundle and is installed as a regular copy, since a cached environment outlives the bundle
it was built from; its content is in the key, its location is not (a bundle unpacks into a new temporary directory
every run). ``-e`` lines written by the user are refused; a package a lock marks editable (Poetry's ``develop =
true``, Pipfile's ``editable``) is installed as a copy. Which tool reads which format: docs/script/dependencies.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError

KINDS = ("requirements", "poetry", "pipenv", "none")
# The file that selects each kind (for 'poetry', the pyproject.toml beside it is read too).
FILES = {"requirements": "requirements.txt", "poetry": "poetry.lock", "pipenv": "Pipfile.lock"}
MARKER = ".prebuilt-complete"
REQUIREMENTS_COPY = ".prebuilt-requirements.txt"  # the exact file given to the installer, kept for debugging
OUTPUT_TAIL_LINES = 40
EXPORT_TIMEOUT_SECONDS = 600  # for one `poetry export` / `pipenv requirements` (they read files: seconds)
# Part of every key: bump it to retire all cached environments after a change in how they are built.
# 2: keys hash the dependency files' bytes (1 hashed our own normalized requirement lines).
_FORMAT = 2


def _current_python() -> str:
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
            ("python_version", python_version or _current_python()),
            ("project_dir", Path(project_dir) if project_dir is not None else None),
            ("_requirements", None if requirements is None else tuple(requirements)),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"a DependencySpec is immutable (tried to set {name!r})")

    @property
    def requirements(self) -> tuple[str, ...]:
        if self._requirements is None:  # derived once: for poetry and pipenv this runs the tool (seconds)
            object.__setattr__(self, "_requirements", tuple(_derive(self.kind, self.project_dir)))
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


# ====================================================================================== detect


def detect(project_dir: str | os.PathLike, kind: str = "auto", *, python_version: str | None = None) -> DependencySpec:
    """The dependency spec of the project in ``project_dir``: its kind and key; nothing is run.

    ``kind='auto'`` takes ``requirements.txt`` if present, else ``poetry.lock``, else ``Pipfile.lock``, else
    ``none``. An explicit kind whose file is missing is a :class:`UserError` naming the file.
    ``python_version`` ('X.Y') is the Python the environment will run; the running interpreter's by default.

    The key hashes, besides the kind, Python X.Y and machine, the bytes of:

    - ``requirements``: ``requirements.txt`` and every file it includes (``-r``, ``-c``, relative to the including
      file); the content of the local packages and ``--find-links`` folders they name. Our rules are checked
      here: ``-e`` lines, paths outside the project and options other than the index and binary ones are refused.
    - ``poetry``: ``poetry.lock`` and ``pyproject.toml`` (``poetry export`` reads both, and refuses a lock that
      no longer matches its pyproject); the content of the main group's ``directory``/``file`` packages.
    - ``pipenv``: ``Pipfile.lock``; the content of the ``default`` section's ``path``/``file`` packages.

    For the lock kinds, a local package outside the project is refused when the requirements are derived.
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
        return DependencySpec("none", (), _key("none", {}, {}, python_version), python_version)
    path = root / FILES[kind]
    if not path.is_file():
        hint = " (run `pipenv lock`)" if kind == "pipenv" and (root / "Pipfile").is_file() else ""
        hint = " (run `poetry lock`)" if kind == "poetry" and (root / "pyproject.toml").is_file() else hint
        raise UserError(f"dependency kind {kind!r} needs {FILES[kind]} in {root}, and there is none{hint}")
    if kind == "requirements":
        reader = _Reader(root, building=False)
        reader.read_file(path)
        files, local = reader.files, reader.local
    elif kind == "poetry":
        if not (root / "pyproject.toml").is_file():
            raise UserError(
                f"poetry.lock in {root} needs the pyproject.toml it was locked from beside it: "
                f"`poetry export` reads both"
            )
        lock = _read_bytes(path)
        files = {"poetry.lock": _sha256(lock), "pyproject.toml": _sha256(_read_bytes(root / "pyproject.toml"))}
        local = _local_digests(root, _poetry_local_sources(lock, path))
    else:
        lock = _read_bytes(path)
        files = {"Pipfile.lock": _sha256(lock)}
        local = _local_digests(root, _pipfile_local_sources(lock, path))
    spec = DependencySpec(kind, None, _key(kind, files, local, python_version), python_version, project_dir=root)
    logger.debug(f"{root}: {kind} dependencies ({', '.join(files)}), key {spec.key}")
    return spec


def _auto_kind(root: Path) -> str:
    for kind in ("requirements", "poetry", "pipenv"):
        if (root / FILES[kind]).is_file():
            return kind
    if (root / "Pipfile").is_file():
        logger.warning(f"{root} has a Pipfile but no Pipfile.lock: installing nothing (run `pipenv lock`)")
    return "none"


def _key(kind: str, files: dict[str, str], local: dict[str, str], python_version: str) -> str:
    """sha256 (first 24 hex digits) of what decides an environment's content. Paths are project-relative, so the
    same bundle unpacked elsewhere has the same key."""
    payload = {
        "format": _FORMAT,
        "kind": kind,
        "files": sorted(files.items()),
        "local": sorted(local.items()),
        "python": python_version,
        "machine": platform.machine(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


def _inside(root: Path, path: Path) -> Path | None:
    """``path`` resolved (symlinks too) when it exists inside ``root``, else None."""
    resolved = path.resolve()
    if (resolved == root or root in resolved.parents) and resolved.exists():
        return resolved
    return None


def _local_digests(root: Path, locations: Iterable[Path]) -> dict[str, str]:
    """Content digests of a lock's local packages, by project-relative path. One that is outside the project or
    missing is left out here: the derived requirements name it, and are refused for it (so nothing outside the
    project is ever read, and a dev-only package elsewhere does not matter)."""
    digests = {}
    for location in locations:
        resolved = _inside(root, location)
        if resolved is not None:
            digests[resolved.relative_to(root).as_posix()] = _digest(resolved)
    return digests


# ------------------------------------------------------------------------------ poetry.lock and Pipfile.lock

# Poetry writes `type = "directory"` (or "file") in a local package's [package.source]. A lock without one is not
# parsed at all: parsing a large lock (tomllib is pure Python) costs more than the rest of a warm start.
_POETRY_LOCAL_SOURCE_RE = re.compile(rb"""type\s*=\s*["'](?:directory|file)["']""")


def _poetry_local_sources(lock: bytes, path: Path) -> list[Path]:
    """Where the local packages of ``poetry.lock`` that the main group may install lie (relative to the lock)."""
    if not _POETRY_LOCAL_SOURCE_RE.search(lock):
        return []
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise UserError(f"reading {path.name} needs Python 3.11 or the 'tomli' package") from None
    try:
        packages = tomllib.loads(lock.decode("utf-8")).get("package", [])
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    locations = []
    for package in packages if isinstance(packages, list) else []:
        source = package.get("source") if isinstance(package, dict) else None
        if not isinstance(source, dict) or source.get("type") not in ("directory", "file"):
            continue
        # Poetry 2 writes the groups of each package, Poetry < 1.5 a category; 1.5 - 1.8 neither (all count).
        groups = package.get("groups", [package["category"]] if "category" in package else ["main"])
        if "main" in groups and isinstance(source.get("url"), str):
            locations.append(path.parent / source["url"])
    return locations


def _pipfile_local_sources(lock: bytes, path: Path) -> list[Path]:
    """Where the local packages of the ``default`` section of ``Pipfile.lock`` lie (relative to the lock)."""
    try:
        data = json.loads(lock)
    except (UnicodeDecodeError, ValueError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    default = data.get("default") if isinstance(data, dict) else None
    if not isinstance(default, dict):
        raise UserError(f'{path.name}: expected a JSON object with a "default" section')
    locations = []
    for entry in default.values():
        if not isinstance(entry, dict):
            continue
        location = entry.get("path") or entry.get("file")
        if isinstance(location, str) and (location.startswith("file:") or not _is_url(location)):
            locations.append(path.parent / (_file_url_path(location) if location.startswith("file:") else location))
    return locations


# ====================================================================================== requirements, derived


def _derive(kind: str, root: Path) -> list[str]:
    """The requirement lines of ``kind`` in ``root``, as :func:`requirements_for_install` documents."""
    if kind == "none":
        return []
    reader = _Reader(root, building=True)
    if kind == "requirements":
        reader.read_file(root / FILES["requirements"])
    elif kind == "poetry":
        reader.read_tool_output(_poetry_export(root), "`poetry export`", root / FILES["poetry"])
    else:
        reader.read_tool_output(_pipenv_requirements(root), "`pipenv requirements`", root / FILES["pipenv"])
    lines = reader.lines()
    logger.info(f"{root}: {kind} dependencies, {len(lines)} requirement lines")
    return lines


def _poetry_export(root: Path) -> str:
    """The main group of ``poetry.lock``, exported by Poetry itself (poetry-plugin-export): reachability from
    pyproject's dependencies, markers and sources as Poetry resolves them. Reads files only, no network."""
    _need("poetry_plugin_export", "reading poetry.lock needs Poetry and poetry-plugin-export")
    command = [
        sys.executable,
        "-m",
        "poetry",
        "export",
        "--format",
        "requirements.txt",
        "--without-hashes",
        "--no-interaction",
        "--no-ansi",
        "--directory",
        str(root),
    ]
    env = {**os.environ, "POETRY_NO_INTERACTION": "1"}
    return _run_tool(command, cwd=root, env=env, what="poetry.lock: poetry export")


def _pipenv_requirements(root: Path) -> str:
    """The ``default`` section of ``Pipfile.lock``, exported by pipenv itself. It runs on a copy of the lock, beside
    an empty Pipfile (``pipenv requirements`` reads only the lock; so the key leaves the Pipfile out), in a
    temporary folder: pipenv otherwise looks for a Pipfile in parent folders and reads a .env file."""
    _need("pipenv", "reading Pipfile.lock needs pipenv")
    with tempfile.TemporaryDirectory(prefix="prebuilt-pipenv-") as scratch:
        pipfile = Path(scratch, "Pipfile")
        pipfile.write_bytes(b"")
        Path(scratch, "Pipfile.lock").write_bytes(_read_bytes(root / "Pipfile.lock"))
        env = {
            **os.environ,
            "PIPENV_PIPFILE": str(pipfile),
            "PIPENV_VERBOSITY": "-1",
            "PIPENV_DONT_LOAD_ENV": "1",
            "PIPENV_IGNORE_VIRTUALENVS": "1",
            "PIPENV_NOSPIN": "1",
            "NO_COLOR": "1",
        }
        return _run_tool(
            [sys.executable, "-m", "pipenv", "requirements"],
            cwd=Path(scratch),
            env=env,
            what="Pipfile.lock: pipenv requirements",
        )


def _need(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"{what} in the executor's environment ({sys.executable}): "
            f"install flytekitplugins-prebuilt[script] (the script image has them)"
        )


def _run_tool(command: list[str], *, cwd: Path, env: dict[str, str], what: str) -> str:
    """Run an export tool; its standard output (its messages go to standard error)."""
    shown = shlex.join(command)
    logger.info(f"deriving requirements: {shown}")
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=EXPORT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise TransientError(f"{what} timed out after {EXPORT_TIMEOUT_SECONDS}s: {shown}") from None
    except OSError as error:
        raise UserError(f"{what}: cannot run {shown}: {error}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-OUTPUT_TAIL_LINES:])
        raise UserError(
            f"{what} failed with exit code {done.returncode}: {shown}\n"
            f"--- last {OUTPUT_TAIL_LINES} lines of output ---\n{tail}"
        )
    return done.stdout


# ====================================================================================== pip's requirements format

_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_OPTION_RE = re.compile(r"^(--[A-Za-z][A-Za-z-]*|-[A-Za-z])(?:(?:\s*=\s*|\s+|(?<=^-[A-Za-z]))(.*))?$")
_NAME_AT_URL_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)$")
_EXTRAS_SUFFIX_RE = re.compile(r"^(.*?)(\[[^\]]*\])?$")
_ARCHIVE_RE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz|tar)$", re.IGNORECASE)
_SHORT = {"-r": "--requirement", "-c": "--constraint", "-e": "--editable", "-i": "--index-url", "-f": "--find-links"}
_PASSED_OPTIONS = {"--index-url", "--extra-index-url", "--trusted-host", "--only-binary", "--no-binary"}
_PASSED_FLAGS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}


class _Reader:
    """Reads text in pip's requirements-file format (https://pip.pypa.io/en/stable/reference/requirements-file-format/)
    and applies our rules.

    ``building=False`` (detect): collects what the key needs, ``files`` (requirements files read: project-relative
    name -> sha256 of the bytes) and ``local`` (local packages, find-links folders, constraints files: project-
    relative path -> content digest). ``building=True``: also checks each requirement and marker with
    ``packaging`` (imported only then: it costs more than a whole warm start), for :meth:`lines`.
    """

    def __init__(self, root: Path, *, building: bool):
        self.root = root
        self.building = building
        self.tool: str | None = None  # set while reading a lock tool's output
        self.options: dict[str, None] = {}  # ordered sets of lines
        self.requirements: dict[str, None] = {}
        self.files: dict[str, str] = {}
        self.local: dict[str, str] = {}

    def lines(self) -> list[str]:
        return [*self.options, *self.requirements]

    def read_file(self, path: Path, stack: tuple[Path, ...] = ()) -> None:
        path = path.resolve()
        if path in stack:
            chain = " -> ".join(self._shown(p) for p in (*stack, path))
            raise UserError(f"requirements files include each other: {chain}")
        data = _read_bytes(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"cannot read {path}: {error}") from None
        self.files[self._shown(path)] = _sha256(data)
        for number, line in _logical_lines(text):
            self._line(f"{self._shown(path)}:{number}", line, path, (*stack, path))

    def read_tool_output(self, text: str, tool: str, lock: Path) -> None:
        """Lines the tool of ``lock`` wrote; relative paths in them are relative to the lock, as in the lock."""
        self.tool = tool
        for number, line in _logical_lines(text):
            self._line(f"{lock.name} (line {number} as {tool} exports it)", line, lock, ())

    def _shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def _line(self, where: str, line: str, path: Path, stack: tuple[Path, ...]) -> None:
        if line.startswith("-"):
            self._option(where, line, path, stack)
        else:
            self._requirement(where, line, path)

    def _local(self, path: Path, where: str, *, content: bool = True) -> Path:
        """``path`` resolved (symlinks too), checked to exist inside the project; its ``content`` digest kept for
        the key (not for an included requirements file: its bytes are in ``files``)."""
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            shown = path if path == resolved else f"{path} (that is {resolved})"
            raise UserError(f"{where}: {shown} is outside the project directory {self.root}")
        if not resolved.exists():
            raise UserError(f"{where}: {path} does not exist")
        if content and not self.building:
            self.local[resolved.relative_to(self.root).as_posix()] = _digest(resolved)
        return resolved

    def _option(self, where: str, line: str, path: Path, stack: tuple[Path, ...]) -> None:
        match = _OPTION_RE.match(line)
        if not match:
            raise UserError(f"{where}: cannot parse {line!r}")
        flag, value = _SHORT.get(match[1], match[1]), (match[2] or "").strip()
        if flag == "--editable" and self.tool and value:
            logger.info(f"{where}: an editable package, installed as a regular copy")  # no URL: it may hold a token
            self._requirement(where, value, path)
            return
        if flag == "--editable":
            raise UserError(
                f"{where}: editable requirements are not supported ({line!r}): a cached environment "
                f"outlives the source tree; drop '-e' to install a copy"
            )
        if flag in _PASSED_FLAGS:
            if value:
                raise UserError(f"{where}: {flag} takes no value")
            self.options[flag] = None
            return
        if not value:
            raise UserError(f"{where}: {flag} needs a value")
        if flag == "--requirement":
            self.read_file(
                self._local(_relative(path, value, self.root, beside_only=True), where, content=False), stack
            )
        elif flag == "--constraint":
            constraint = self._local(_relative(path, value, self.root, beside_only=True), where)
            self.options[f"--constraint {constraint}"] = None
        elif flag == "--find-links":
            if _is_url(value) and not value.startswith("file:"):
                self.options[f"--find-links {value}"] = None
            else:
                local = _file_url_path(value) if value.startswith("file:") else value
                self.options[f"--find-links {self._local(_relative(path, local, self.root), where)}"] = None
        elif flag == "--index-url" and self.tool and _is_pypi(value):
            pass  # the installer's default: leaving it out lets an index configured for uv/pip (a mirror) apply
        elif flag in _PASSED_OPTIONS:
            self.options[f"{flag} {value}"] = None
        else:
            raise UserError(f"{where}: unsupported option {flag} in {line!r}")

    def _requirement(self, where: str, line: str, path: Path) -> None:
        per_requirement = re.search(r"\s--[A-Za-z]", line)  # --hash=..., --config-settings ...
        requirement, options = (
            (line[: per_requirement.start()], line[per_requirement.start() :]) if per_requirement else (line, "")
        )
        marker_at = re.search(r"\s;|;\s", requirement)  # for URLs and paths pip needs whitespace around ';'
        head, marker = (
            (requirement[: marker_at.start()], requirement[marker_at.start() :]) if marker_at else (requirement, "")
        )
        name, local = "", None
        if named := _NAME_AT_URL_RE.match(head):
            name, url = named[1] + (named[2] or ""), named[3]
            if url.startswith("file:"):
                local = _file_url_path(url)
        elif head.startswith("file:"):
            local = head
        elif not _is_url(head) and (
            head.startswith((".", "/", "~"))
            or "/" in head
            or "\\" in head
            or _ARCHIVE_RE.search(_EXTRAS_SUFFIX_RE.match(head)[1])
        ):
            local = head
        if self.building:
            _check(where, requirement, marker, pep508=local is None and not _is_url(head))
        if local is None:
            self.requirements[line] = None
            return
        extras = ""
        if not name:
            local, extras = _EXTRAS_SUFFIX_RE.match(local)[1], _EXTRAS_SUFFIX_RE.match(local)[2] or ""
            local = _file_url_path(local) if local.startswith("file:") else local
        resolved = self._local(_relative(path, local, self.root), where)
        installed = f"{name} @ {resolved.as_uri()}" if name else f"{resolved}{extras}"
        self.requirements[installed + marker + options] = None


def _check(where: str, requirement: str, marker: str, *, pep508: bool) -> None:
    """A requirement (PEP 508) or the marker of a path or URL, as ``packaging`` (pip's own parser) reads it."""
    from packaging.markers import InvalidMarker, Marker
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        if pep508:
            Requirement(requirement)
        elif marker.strip(" ;"):
            Marker(marker.strip(" ;"))
    except (InvalidRequirement, InvalidMarker) as error:
        raise UserError(f"{where}: {requirement.strip()!r} is not a valid requirement: {error}") from None


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


def _is_pypi(url: str) -> bool:
    return urlsplit(url).hostname in ("pypi.org", "pypi.python.org")


def _file_url_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UserError(f"file URL {url!r} names a remote host")
    if url.startswith("file:") and not url.startswith("file:/"):  # file:relative/path (not a real URL)
        return url[len("file:") :].split("#")[0]
    return url2pathname(parts.path)
