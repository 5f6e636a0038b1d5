"""Which kind of dependency files a project has, and the key of the environment they decide, from bytes only: no
subprocess and no heavy import, since this runs on every start (``locks`` package docstring)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from collections.abc import Iterable
from pathlib import Path

from flytekit.loggers import logger
from flytekitplugins.prebuilt.executors.script.locks.files import digest, inside, read_bytes, sha256
from flytekitplugins.prebuilt.executors.script.locks.requirements_file import (
    RequirementsReader,
    file_url_path,
    is_url,
)
from flytekitplugins.prebuilt.executors.script.locks.spec import FILES, KINDS, DependencySpec, current_python
from flytekitplugins.prebuilt.kit.errors import UserError

# Part of every key: bump it to retire all cached environments after a change in how they are built.
# 2: keys hash the dependency files' bytes (1 hashed our own normalized requirement lines).
_FORMAT = 2


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
    python_version = python_version or current_python()
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
        reader = RequirementsReader(root, building=False)
        reader.read_file(path)
        files, local = reader.files, reader.local
    elif kind == "poetry":
        if not (root / "pyproject.toml").is_file():
            raise UserError(
                f"poetry.lock in {root} needs the pyproject.toml it was locked from beside it: "
                f"`poetry export` reads both"
            )
        lock = read_bytes(path)
        files = {"poetry.lock": sha256(lock), "pyproject.toml": sha256(read_bytes(root / "pyproject.toml"))}
        local = _local_digests(root, _poetry_local_sources(lock, path))
    else:
        lock = read_bytes(path)
        files = {"Pipfile.lock": sha256(lock)}
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


def _local_digests(root: Path, locations: Iterable[Path]) -> dict[str, str]:
    """Content digests of a lock's local packages, by project-relative path. One that is outside the project or
    missing is left out here: the derived requirements name it, and are refused for it (so nothing outside the
    project is ever read, and a dev-only package elsewhere does not matter)."""
    digests = {}
    for location in locations:
        resolved = inside(root, location)
        if resolved is not None:
            digests[resolved.relative_to(root).as_posix()] = digest(resolved)
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
        if isinstance(location, str) and (location.startswith("file:") or not is_url(location)):
            locations.append(path.parent / (file_url_path(location) if location.startswith("file:") else location))
    return locations
