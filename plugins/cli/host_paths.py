"""Host paths a task would read that its container cannot see. With ``--in-container`` the task sees the image's
files, the storage root and the ``--mount`` folders (``emulator/pods.py``, ``PodRunner.volumes``); a local SQLite
file named in its config, or a path given as a string input, is elsewhere and fails inside the task as "does not
exist". Found before the container starts, with the ``--mount`` that makes it visible."""

from __future__ import annotations

import os
import re
import typing

from flytekitplugins.prebuilt.emulator.docker_runner import SYSTEM_FOLDERS

LOCAL_URL = re.compile(r"^(?:sqlite(?:\+\w+)?:///|file://)(?P<path>/[^?#]*)")


def unmounted(custom: typing.Any, inputs: dict[str, typing.Any], visible: list[str]) -> list[tuple[str, str]]:
    """``(where, path)`` for each absolute path of this machine in the template's ``custom`` (its config) or in
    the string ``inputs`` that lies under none of the ``visible`` folders: ``("config url", "/data/shop.db")``."""
    found = [(f"config {where}", text) for where, text in _strings(custom, "")]
    found += [(f"input {where}", text) for where, text in _strings(inputs, "")]
    missing = []
    for where, text in found:
        path = _local_path(text)
        if path and os.path.exists(path) and not any(_under(path, folder) for folder in visible):
            missing.append((where, path))
    return missing


def mount_for(path: str) -> str:
    """The folder to mount for ``path``: a file's folder (SQLite writes its journal beside the file), or itself."""
    return path if os.path.isdir(path) else os.path.dirname(path)


def _strings(value: typing.Any, where: str) -> typing.Iterator[tuple[str, str]]:
    """Every string in nested dicts and lists, with its place (``connect_args.ssl.ca``, ``names[0]``)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def _local_path(text: str) -> typing.Optional[str]:
    """The absolute path ``text`` names (itself, or in a ``sqlite:///`` or ``file://`` URL), unless it is in a
    system folder, which the image has its own of."""
    match = LOCAL_URL.match(text)
    path = match.group("path") if match else text
    if not path.startswith("/") or "\n" in path:
        return None
    path = os.path.normpath(path)
    if path == "/" or any(_under(path, folder) for folder in SYSTEM_FOLDERS):
        return None
    return path


def _under(path: str, folder: str) -> bool:
    folder = os.path.normpath(os.path.abspath(folder))
    return path == folder or path.startswith(folder.rstrip("/") + "/")
