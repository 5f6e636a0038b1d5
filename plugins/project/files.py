"""Which files a project may read, and how much of them (issue 17): a project file is a regular file of at most
``MAX_FILE_BYTES``, and a file named in ``projects`` is, besides, inside the project's folder.

A project file comes from whoever wrote the repository, so reading one must not hang (a FIFO), exhaust memory
(``/dev/zero``) or read what the project has no business reading (``../../.git-credentials``, ``/etc/passwd``, a
symlink out). Files are opened non-blocking and checked with ``fstat`` on the opened descriptor, so what is checked
is what is read.
"""

from __future__ import annotations

import os
import stat

MAX_FILE_BYTES = 512 * 1024  # a project file of hundreds of tasks is tens of KiB


ALSO_READ = ("ame.yaml", "ame.yml")  # AME's file names (issue 16), looked for in a folder after ours


def in_folder(folder: str, names: tuple[str, ...]) -> str:
    """The project file of ``folder``: the first of ``names`` there, else the first (whose absence is then said)."""
    found = [os.path.join(folder, name) for name in names if os.path.lexists(os.path.join(folder, name))]
    return found[0] if found else os.path.join(folder, names[0])


class Unreadable(Exception):
    """Why a file is not read; the message never holds the file's content."""


def read_bytes(path: str) -> bytes:
    """The bytes of the regular file at ``path``, at most ``MAX_FILE_BYTES``; ``Unreadable`` otherwise."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise Unreadable(f"cannot read it ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as f:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file (a device, FIFO, socket or folder is never read)")
        if info.st_size > MAX_FILE_BYTES:
            raise Unreadable(f"larger than {MAX_FILE_BYTES // 1024} KiB, the most a project file may be")
        data = f.read(MAX_FILE_BYTES + 1)  # a file growing while read stops at the cap too
    if len(data) > MAX_FILE_BYTES:
        raise Unreadable(f"larger than {MAX_FILE_BYTES // 1024} KiB, the most a project file may be")
    return data


def confined(root: str, base: str, relative: object, file_name: str) -> str:
    """The file ``relative`` names (a value of ``projects``: a path relative to the folder ``base``, or to a folder
    holding ``file_name``), when it is inside the folder ``root`` once links are followed; ``Unreadable`` if not."""
    if not isinstance(relative, str) or not relative:
        raise Unreadable("expected a path relative to the project's folder")
    if os.path.isabs(relative):
        raise Unreadable("an absolute path; a project names other projects by paths inside its own folder")
    path = os.path.join(base, relative)
    path = in_folder(path, (file_name, *ALSO_READ)) if os.path.isdir(path) else path
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        raise Unreadable("leaves the project's folder (by '..' or a link); other projects must be inside it")
    if os.path.exists(real) and not os.path.isfile(real):  # said here, at its entry; read_bytes checks again
        raise Unreadable("not a regular file (a device, FIFO, socket or folder is never read)")
    return path
