"""Pack a user's folder into a code bundle (author side): the files its ignore files leave in, in the
deterministic format of ``bundle``. Kept apart from ``bundle`` so that the images, which only read bundles,
need none of the ignore-file machinery (``ignores`` and its pathspec)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.script.bundle import MAX_BUNDLE_BYTES, MAX_FILES, MAX_UNPACKED_BYTES, Bundle, assemble
from flytekitplugins.prebuilt.script.ignores import SourceIgnore


def _loader(path: str, rel: str) -> Callable[[], bytes]:
    def load() -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {rel!r} for the bundle: {exc}") from exc

    return load


def _selected(root: str, rules: SourceIgnore, max_files: int) -> Iterator[tuple[str, str]]:
    """Yield (member path, real file path) for every file kept, refusing symlinks that leave the source."""
    kept = rules.kept_files()
    if len(kept) > max_files:
        raise UserError(f"bundle source holds more than the limit of {max_files} files")
    for rel in kept:
        path = os.path.join(root, rel)
        if os.path.islink(path):
            path = os.path.realpath(path)
            target = os.path.relpath(path, root)
            if target == ".." or target.startswith(".." + os.sep) or os.path.isabs(target):
                raise UserError(f"symlink {rel!r} points outside the bundle source (to {path})")
            if os.path.isdir(path):
                raise UserError(f"symlink {rel!r} points to a directory; only symlinks to files are bundled")
            if not os.path.exists(path):
                raise UserError(f"symlink {rel!r} is broken (points to {path})")
            if rules.is_ignored(Path(target).as_posix()):
                raise UserError(f"symlink {rel!r} points to an ignored file ({Path(target).as_posix()})")
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UserError(f"{rel!r} is not a regular file (a socket, pipe or device cannot be bundled)")
        yield rel, path


def pack(
    source: str | os.PathLike,
    extra_ignores: Sequence[str] = (),
    *,
    max_bundle_bytes: int = MAX_BUNDLE_BYTES,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_files: int = MAX_FILES,
) -> Bundle:
    """Pack a folder (or one file, stored by its basename) into a deterministic bundle.

    A folder's files are those its ignore files leave in (see ``ignores``): ``.gitignore`` files at any depth,
    then DEFAULT_IGNORES, the root ``.prebuiltignore`` and ``extra_ignores`` (the last matching pattern wins),
    and the root ``.flyteignore`` and ``.dockerignore``. A single-file source is packed as named, without
    ignores. A source that does not exist, or is neither a file nor a folder, is a ``ConfigError`` on ``source``.
    """
    src = Path(source)
    if not src.exists():
        raise ConfigError("source", f"{str(src)!r} does not exist" + (" (broken symlink)" if src.is_symlink() else ""))
    if src.is_file():
        files = [(src.name, str(src))]
    elif src.is_dir():
        root = os.path.realpath(src)
        files = list(_selected(root, SourceIgnore(root, extra_ignores), max_files))
    else:
        raise ConfigError("source", f"{str(src)!r} is neither a file nor a folder")
    if not files:
        raise UserError(f"bundle source {str(src)!r} has no files left after ignore rules")
    sizes = sum(os.stat(path).st_size for _, path in files)
    if sizes > max_unpacked_bytes:
        raise UserError(f"bundle source holds {sizes} bytes, more than the limit of {max_unpacked_bytes}")
    entries = {rel: (bool(os.stat(path).st_mode & stat.S_IXUSR), _loader(path, rel)) for rel, path in files}
    return assemble(entries, max_bundle_bytes, max_unpacked_bytes, max_files)
