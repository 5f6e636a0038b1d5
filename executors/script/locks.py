"""Lock files of a user's code bundle, read into what to install: a :class:`DependencySpec`.

A bundle declares its dependencies the way Python projects do (``requirements.txt``, ``poetry.lock`` +
``pyproject.toml``, ``Pipfile.lock``). :func:`detect` turns that into the pip requirement lines to install and a
``key``, a hash of what decides the environment's content (the kind, the normalized lines, the content of any
local packages they name, the Python ``X.Y`` and the machine). ``environments.ensure_environment`` builds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import UserError

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
