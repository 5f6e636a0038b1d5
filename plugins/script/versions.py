"""Bundle versions in a store: push, list, download, and derive a new version from a previous one.

A store is any Flyte data-layer location (``s3://bucket/bundles``, ``gs://...``, a local folder). A task's
versions live under ``<store>/<task name>/<sha256>.zip``: immutable (the name is the digest) and
deduplicated. This is DataRobot's custom task versions workflow: create from a folder, list, download
as a zip, create from a previous version with files added or removed. Every read is verified against the
digest, and a push verifies what the store already holds, replacing a corrupted object.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Iterable, Mapping

from flytekit.core.context_manager import FlyteContextManager
from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError
from flytekitplugins.prebuilt.script import bundle


@dataclass(frozen=True)
class Version:
    sha256: str
    size: int
    created: datetime.datetime | None
    uri: str


def version_uri(store: str, task_name: str, sha256: str) -> str:
    return f"{store.rstrip('/')}/{task_name}/{sha256}.zip"


def push(data: bundle.Bundle, store: str, task_name: str) -> str:
    """Upload a bundle unless the store already holds exactly its bytes; return its URI.

    An object already at the version's URI is verified first: a corrupted or truncated one (its sha256 is
    not the one its name promises) is replaced and the replacement verified, so pushing again heals the store.
    """
    bundle.verify(data.data, data.sha256)  # never store bytes under a name they do not match
    uri = version_uri(store, task_name, data.sha256)
    file_access = FlyteContextManager.current_context().file_access
    replacing = file_access.exists(uri)
    if replacing:
        problem = _mismatch(uri, data)
        if problem is None:
            return uri
        logger.warning(f"bundle object {uri} is corrupted ({problem}); replacing it")
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, f"{data.sha256}.zip")
        with open(local, "wb") as f:
            f.write(data.data)
        file_access.put_data(local, uri)
    if replacing and (problem := _mismatch(uri, data)) is not None:
        raise TransientError(f"bundle object {uri} is still corrupted after replacing it ({problem})")
    return uri


def _mismatch(uri: str, data: bundle.Bundle) -> str | None:
    """None when the object at ``uri`` holds exactly ``data``'s bytes (hashed as it streams), else what differs."""
    fs = FlyteContextManager.current_context().file_access.get_filesystem_for_path(uri)
    size = fs.size(uri)
    if size != len(data.data):
        return f"{size} bytes instead of {len(data.data)}"
    digest = hashlib.sha256()
    with fs.open(uri, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return None if digest.hexdigest() == data.sha256 else f"its sha256 is {digest.hexdigest()}"


def list_versions(store: str, task_name: str) -> list[Version]:
    """The task's versions in the store, oldest first."""
    folder = f"{store.rstrip('/')}/{task_name}"
    fs = FlyteContextManager.current_context().file_access.get_filesystem_for_path(folder)
    if not fs.exists(folder):
        return []
    versions = []
    for entry in fs.ls(folder, detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if name.endswith(".zip") and len(name) == 68:
            created = entry.get("created") or entry.get("mtime") or entry.get("LastModified")
            if isinstance(created, (int, float)):
                created = datetime.datetime.fromtimestamp(created, tz=datetime.timezone.utc)
            versions.append(
                Version(name[:-4], int(entry.get("size") or 0), created, version_uri(store, task_name, name[:-4]))
            )
    return sorted(
        versions, key=lambda v: (v.created or datetime.datetime.min.replace(tzinfo=datetime.timezone.utc), v.sha256)
    )


def task_names(store: str) -> list[str]:
    """The tasks with a folder of versions in the store (``<store>/<task name>/``), sorted; none when it is empty
    or missing."""
    root = store.rstrip("/")
    fs = FlyteContextManager.current_context().file_access.get_filesystem_for_path(root)
    if not fs.exists(root):
        return []
    folders = [e["name"] for e in fs.ls(root, detail=True) if e.get("type") == "directory"]
    return sorted(name.rstrip("/").rsplit("/", 1)[-1] for name in folders)


def download(store: str, task_name: str, sha256: str) -> bytes:
    """A version's zip, verified against its digest."""
    uri = version_uri(store, task_name, sha256)
    file_access = FlyteContextManager.current_context().file_access
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, "bundle.zip")
        try:
            file_access.get_data(uri, local)
        except Exception as error:
            raise UserError(f"no version {sha256} of {task_name!r} in {store}: {error}") from None
        data = open(local, "rb").read()
    bundle.verify(data, sha256)
    return data


def derive(
    store: str, task_name: str, sha256: str, added: Mapping[str, bytes] | None = None, removed: Iterable[str] = ()
) -> bundle.Bundle:
    """A new version from a previous one with files added/replaced and removed; pushed to the store."""
    data = download(store, task_name, sha256)
    previous = bundle.Bundle(data=data, sha256=sha256, files=tuple(sorted(bundle.read_files(data))))
    new = bundle.changed(previous, added=added, removed=removed)
    push(new, store, task_name)
    return new
