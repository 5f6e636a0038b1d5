"""Code bundles: immutable, content-addressed zip archives of a user's script folder.

A bundle is identified by the sha256 of its bytes, so packing must be deterministic: the same files,
contents and executable bits give byte-identical archives wherever and whenever they are packed (sorted
members, fixed timestamps and modes, fixed compression level). Extraction runs inside the task's pod on
bytes fetched from storage, so it trusts nothing: it checks the digest, then refuses unsafe members and
oversized content before anything lands in the destination.

Packing a folder (author side: which files go in is decided by its ignore files) is ``packing.pack``; this
module is the format and its reading, the standard library plus the kit's errors: it runs on the author side and
in the images.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import posixpath
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flytekitplugins.prebuilt.kit.errors import UserError

__all__ = ["Bundle", "changed", "extract", "read_files", "verify"]

MAX_BUNDLE_BYTES = 100 * 2**20
MAX_UNPACKED_BYTES = 1 * 2**30
MAX_FILES = 20000

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: mtimes never reach the archive
_COMPRESSLEVEL = 6  # part of the format: changing it changes every digest
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


@dataclass(frozen=True)
class Bundle:
    """A packed bundle: the archive bytes, their sha256 (its identity) and its sorted member paths."""

    data: bytes = field(repr=False)
    sha256: str
    files: tuple[str, ...]

    def has_file(self, relative_path: str) -> bool:
        """Whether the bundle holds this file (``train.py``, ``./bin/run.sh``), e.g. a command's entry point.

        The path is relative to the bundle's root, where the command runs; a folder, an absolute path or one
        that leaves the root is never a file of the bundle."""
        if not relative_path or relative_path.startswith("/") or "\\" in relative_path:
            return False
        normal = posixpath.normpath(relative_path)
        return not normal.startswith("../") and normal in self.files


# --- member paths ------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    """Refuse a member path that could land outside the destination or mean different things per OS."""
    problem = None
    if not name:
        problem = "empty path"
    elif "\\" in name:
        problem = "backslash in path"
    elif "\x00" in name:
        problem = "NUL byte in path"
    elif name.startswith("/"):
        problem = "absolute path"
    elif re.match(r"[A-Za-z]:", name):
        problem = "drive letter"
    elif ".." in name.split("/"):
        problem = "'..' component"
    elif any(part in ("", ".") for part in name.split("/")):
        problem = "empty or '.' component"
    if problem:
        raise UserError(f"unsafe bundle member {name!r}: {problem}")


def _check_tree(names: Iterable[str]) -> None:
    """Refuse a file that is also used as a directory (``a`` and ``a/b``): no folder can hold both."""
    files = set(names)
    for name in files:
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in files:
                raise UserError(f"bundle member {name!r} is inside {'/'.join(parts[:i])!r}, which is a file")


# --- packing -----------------------------------------------------------------------------------------


def _mode(executable: bool) -> int:
    return 0o755 if executable else 0o644


def assemble(
    entries: Mapping[str, tuple[bool, Callable[[], bytes]]],
    max_bundle_bytes: int,
    max_unpacked_bytes: int,
    max_files: int,
) -> Bundle:
    """The one place archives are written, so pack() and changed() agree byte for byte."""
    names = sorted(entries)
    if len(names) > max_files:
        raise UserError(f"bundle would hold {len(names)} files, more than the limit of {max_files}")
    for name in names:
        _check_name(name)
    _check_tree(names)
    buf, unpacked = io.BytesIO(), 0
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            executable, load = entries[name]
            content = load()
            unpacked += len(content)
            if unpacked > max_unpacked_bytes:
                raise UserError(f"bundle content exceeds the limit of {max_unpacked_bytes} bytes (at {name!r})")
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system = 3  # unix, so external_attr carries the mode on every platform
            info.external_attr = (stat.S_IFREG | _mode(executable)) << 16
            zf.writestr(info, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=_COMPRESSLEVEL)
            if buf.tell() > max_bundle_bytes:
                raise UserError(f"bundle exceeds the packed size limit of {max_bundle_bytes} bytes (at {name!r})")
    data = buf.getvalue()
    if len(data) > max_bundle_bytes:
        raise UserError(f"bundle is {len(data)} bytes packed, more than the limit of {max_bundle_bytes}")
    return Bundle(data, hashlib.sha256(data).hexdigest(), tuple(names))


# --- reading -----------------------------------------------------------------------------------------


def verify(data: bytes, expected_sha256: str) -> None:
    """Refuse bytes whose sha256 is not the one the task was registered with."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256.strip().lower():
        raise UserError(f"bundle digest mismatch: expected {expected_sha256}, got {actual} (tampered or corrupted)")


@contextlib.contextmanager
def _archive(data: bytes, max_unpacked_bytes: int, max_files: int) -> Iterator[tuple[zipfile.ZipFile, list]]:
    """Open an archive and check every member's name, type and declared size before any is read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            if len(infos) > max_files:
                raise UserError(f"bundle has {len(infos)} members, more than the limit of {max_files}")
            seen: set[str] = set()
            for info in infos:
                name = info.filename[:-1] if info.is_dir() else info.filename
                _check_name(name)
                if name in seen:
                    raise UserError(f"bundle member {name!r} appears more than once")
                seen.add(name)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise UserError(f"unsafe bundle member {name!r}: symlink")
                if info.flag_bits & 0x1:
                    raise UserError(f"bundle member {name!r} is encrypted")
            _check_tree(i.filename for i in infos if not i.is_dir())
            declared = sum(i.file_size for i in infos)
            if declared > max_unpacked_bytes:
                raise UserError(
                    f"bundle declares {declared} uncompressed bytes, more than the limit of {max_unpacked_bytes}"
                )
            yield zf, [i for i in infos if not i.is_dir()]
    except _ZIP_ERRORS as exc:
        raise UserError(f"bundle is not a valid zip archive: {exc}") from exc


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst: IO[bytes]) -> None:
    """Stream one member, counting real bytes: a header that lies about its size is refused."""
    n = 0
    with zf.open(info) as src:
        while chunk := src.read(1 << 20):
            n += len(chunk)
            if n > info.file_size:
                raise UserError(f"bundle member {info.filename!r} holds more than its declared {info.file_size} bytes")
            dst.write(chunk)
    if n != info.file_size:
        raise UserError(f"bundle member {info.filename!r} holds {n} bytes but declares {info.file_size}")


def _executable(info: zipfile.ZipInfo) -> bool:
    return bool((info.external_attr >> 16) & stat.S_IXUSR)


def _entries(data: bytes, max_unpacked_bytes: int, max_files: int) -> dict[str, tuple[bool, bytes]]:
    out = {}
    with _archive(data, max_unpacked_bytes, max_files) as (zf, infos):
        for info in infos:
            buf = io.BytesIO()
            _copy_member(zf, info, buf)
            out[info.filename] = (_executable(info), buf.getvalue())
    return out


def read_files(
    data: bytes, *, max_unpacked_bytes: int = MAX_UNPACKED_BYTES, max_files: int = MAX_FILES
) -> dict[str, bytes]:
    """Member path -> content, in memory (for listing, diffing, downloading); same checks as extract()."""
    return {name: content for name, (_, content) in _entries(data, max_unpacked_bytes, max_files).items()}


def extract(
    data: bytes,
    destination: str | os.PathLike,
    expected_sha256: str,
    *,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_files: int = MAX_FILES,
) -> list[str]:
    """Verify, then extract into ``destination`` (absent or an empty folder); returns the member paths.

    Everything is written to a temporary folder beside ``destination`` and renamed into place only once
    every member has been checked and written, so a refused bundle leaves nothing behind.
    """
    verify(data, expected_sha256)
    dest = Path(destination).absolute()
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise UserError(f"extract destination {str(dest)!r} exists and is not an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    real_tmp = os.path.realpath(tmp)
    try:
        names = []
        with _archive(data, max_unpacked_bytes, max_files) as (zf, infos):
            for info in infos:
                target = os.path.realpath(os.path.join(tmp, info.filename))
                if not target.startswith(real_tmp + os.sep):
                    raise UserError(f"unsafe bundle member {info.filename!r}: resolves outside the destination")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "xb") as dst:
                    _copy_member(zf, info, dst)
                os.chmod(target, _mode(_executable(info)))
                names.append(info.filename)
        os.chmod(tmp, 0o755)
        if dest.exists():
            dest.rmdir()
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return names


def changed(
    old: Bundle,
    added: Mapping[str, bytes] | None = None,
    removed: Iterable[str] = (),
    *,
    max_bundle_bytes: int = MAX_BUNDLE_BYTES,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_files: int = MAX_FILES,
) -> Bundle:
    """A new version from ``old``: remove paths (a folder path removes what is under it), then add or
    replace files. A replaced file keeps its executable bit; a new one is 0o644. The result is what
    pack() gives for the equivalent folder."""
    verify(old.data, old.sha256)
    entries = _entries(old.data, max_unpacked_bytes, max_files)
    for path in [removed] if isinstance(removed, str) else removed:
        gone = [n for n in entries if n == path or n.startswith(path.rstrip("/") + "/")]
        if not gone:
            raise UserError(f"cannot remove {path!r}: not in the bundle")
        for n in gone:
            del entries[n]
    for path, content in (added or {}).items():
        _check_name(path)
        entries[path] = (entries.get(path, (False, b""))[0], bytes(content))
    if not entries:
        raise UserError("the changed bundle would be empty")
    return assemble(
        {name: (ex, lambda c=content: c) for name, (ex, content) in entries.items()},
        max_bundle_bytes,
        max_unpacked_bytes,
        max_files,
    )
