"""Reading a project's files for the environment key: their bytes, their content digests, and whether a path lies
inside the project (nothing outside it is ever read)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flytekitplugins.prebuilt.kit.errors import UserError


def read_bytes(path: Path) -> bytes:
    """The bytes of a file of the project; ``UserError`` naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error}") from None


def sha256(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def digest(path: Path) -> str:
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


def inside(root: Path, path: Path) -> Path | None:
    """``path`` resolved (symlinks too) when it exists inside ``root``, else None."""
    resolved = path.resolve()
    if (resolved == root or root in resolved.parents) and resolved.exists():
        return resolved
    return None
