"""pip's requirements-file format, read with our rules: the lines a project's requirements file (or a lock tool's
export) holds, checked, with local packages resolved inside the project, and what of them the environment key
hashes."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from flytekit.loggers import logger
from flytekitplugins.prebuilt.executors.script.locks.files import digest, read_bytes, sha256
from flytekitplugins.prebuilt.kit.errors import UserError

_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_OPTION_RE = re.compile(r"^(--[A-Za-z][A-Za-z-]*|-[A-Za-z])(?:(?:\s*=\s*|\s+|(?<=^-[A-Za-z]))(.*))?$")
_NAME_AT_URL_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)$")
_EXTRAS_SUFFIX_RE = re.compile(r"^(.*?)(\[[^\]]*\])?$")
_ARCHIVE_RE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2|tbz|tar\.xz|txz|tar)$", re.IGNORECASE)
_SHORT = {"-r": "--requirement", "-c": "--constraint", "-e": "--editable", "-i": "--index-url", "-f": "--find-links"}
_PASSED_OPTIONS = {"--index-url", "--extra-index-url", "--trusted-host", "--only-binary", "--no-binary"}
_PASSED_FLAGS = {"--no-index", "--pre", "--prefer-binary", "--require-hashes"}


class RequirementsReader:
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
        data = read_bytes(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"cannot read {path}: {error}") from None
        self.files[self._shown(path)] = sha256(data)
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
            self.local[resolved.relative_to(self.root).as_posix()] = digest(resolved)
        return resolved

    def _option(self, where: str, line: str, path: Path, stack: tuple[Path, ...]) -> None:
        match = _OPTION_RE.match(line)
        if not match:
            raise UserError(f"{where}: cannot parse {line!r}")
        flag, value = _SHORT.get(match[1], match[1]), (match[2] or "").strip()
        if flag == "--editable":
            self._editable(where, line, value, path)
        elif flag in _PASSED_FLAGS:
            if value:
                raise UserError(f"{where}: {flag} takes no value")
            self.options[flag] = None
        elif not value:
            raise UserError(f"{where}: {flag} needs a value")
        else:
            self._valued_option(where, line, flag, value, path, stack)

    def _editable(self, where: str, line: str, value: str, path: Path) -> None:
        """``-e``: refused when the user wrote it; from a lock tool (a package the lock marks editable), a copy."""
        if not (self.tool and value):
            raise UserError(
                f"{where}: editable requirements are not supported ({line!r}): a cached environment "
                f"outlives the source tree; drop '-e' to install a copy"
            )
        logger.info(f"{where}: an editable package, installed as a regular copy")  # no URL: it may hold a token
        self._requirement(where, value, path)

    def _valued_option(self, where: str, line: str, flag: str, value: str, path: Path, stack: tuple[Path, ...]) -> None:
        if flag == "--requirement":
            self.read_file(
                self._local(_relative(path, value, self.root, beside_only=True), where, content=False), stack
            )
        elif flag == "--constraint":
            constraint = self._local(_relative(path, value, self.root, beside_only=True), where)
            self.options[f"--constraint {constraint}"] = None
        elif flag == "--find-links":
            if is_url(value) and not value.startswith("file:"):
                self.options[f"--find-links {value}"] = None
            else:
                local = file_url_path(value) if value.startswith("file:") else value
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
                local = file_url_path(url)
        elif head.startswith("file:"):
            local = head
        elif not is_url(head) and (
            head.startswith((".", "/", "~"))
            or "/" in head
            or "\\" in head
            or _ARCHIVE_RE.search(_EXTRAS_SUFFIX_RE.match(head)[1])
        ):
            local = head
        if self.building:
            _check(where, requirement, marker, pep508=local is None and not is_url(head))
        if local is None:
            self.requirements[line] = None
            return
        extras = ""
        if not name:
            local, extras = _EXTRAS_SUFFIX_RE.match(local)[1], _EXTRAS_SUFFIX_RE.match(local)[2] or ""
            local = file_url_path(local) if local.startswith("file:") else local
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


def is_url(value: str) -> bool:
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value)) or value.startswith(("git+", "hg+", "svn+", "bzr+"))


def _is_pypi(url: str) -> bool:
    return urlsplit(url).hostname in ("pypi.org", "pypi.python.org")


def file_url_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise UserError(f"file URL {url!r} names a remote host")
    if url.startswith("file:") and not url.startswith("file:/"):  # file:relative/path (not a real URL)
        return url[len("file:") :].split("#")[0]
    return url2pathname(parts.path)
