"""The checkpoint folder of a training attempt: filled from the previous attempt's checkpoint before the command
starts, saved as this attempt's checkpoint when it ends (success, failure, deadline or SIGTERM alike).

Both ends are flytekit's intra-task checkpoints (``flytekit/core/checkpointer.py``, ``SyncCheckpoint``):
``current_context().checkpoint`` reads ``--prev-checkpoint`` and writes ``--checkpoint-path``, which Flyte fills
from ``{{.prevCheckpointPrefix}}`` and ``{{.checkpointOutputPrefix}}``. For a retry, the previous checkpoint is the
previous attempt's (flytepropeller ``pkg/controller/nodes/task/taskexec_context.go``,
``ComputePreviousCheckpointPath``); for the first attempt of a recovered execution, the checkpoint of the
execution it recovers.

A saved checkpoint is checked before it is used: ``MANIFEST`` lists every file with its size and sha256, and it
also keeps the generation before it (``PREVIOUS``: what the attempt had restored, when it changed it). A checkpoint
whose files do not match (an upload cut short when the pod was killed while saving, a file altered in the store) or
that has no manifest falls back to the generation before it, else the attempt starts fresh; a bad checkpoint is
thus never restored again by every retry. A folder bigger than the task's ``checkpoint_max_size`` is not saved:
the checkpoint restored at the start is saved again instead, and the log says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from flytekit.core.checkpointer import Checkpoint
from flytekit.core.context_manager import FlyteContextManager
from flytekit.exceptions.user import FlyteDataNotFoundException
from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import TransientError

MANIFEST = ".prebuilt-checkpoint.json"  # {"files": {path: [size, sha256]}, "previous": {...}}
PREVIOUS = ".prebuilt-previous"  # the generation before this one
NO_CAP = 2**63


@contextlib.contextmanager
def checkpoint_folder(folder: Path, save: bool | Callable[[], bool] = True, max_bytes: int = NO_CAP) -> Iterator[Path]:
    """``folder``, restored from the previous attempt's checkpoint, and saved on the way out if ``save`` (one node
    of a multi-node job saves; every node restores, so that each rank can resume). ``save`` may be a function,
    asked on the way out: an elastic job's node knows only then whether it held rank 0."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = _current()
    restored: dict = {}
    if checkpoint is not None:
        restored = restore(checkpoint, folder)
        keep_restored(folder, restored)
    try:
        yield folder
    finally:
        if checkpoint is not None and (save() if callable(save) else save):
            store(checkpoint, folder, restored, max_bytes)


def _current() -> Checkpoint | None:
    try:
        return FlyteContextManager.current_context().user_space_params.checkpoint
    except NotImplementedError:  # flytekit says so when the platform gave no checkpoint paths
        logger.warning("no checkpoint location for this execution: the checkpoint folder starts empty, is not saved")
        return None


def restore(checkpoint: Checkpoint, folder: Path) -> dict:
    """Fill ``folder`` with the previous attempt's checkpoint, or the generation before it when that one is damaged,
    or nothing. Returns the manifest of what it restored (``{}``: nothing)."""
    if not checkpoint.prev_exists():
        return {}
    try:
        checkpoint.restore(folder)
    except FlyteDataNotFoundException:  # the previous attempt ended before it wrote one
        logger.info("the previous attempt saved no checkpoint: starting from scratch")
        return {}
    except Exception as error:
        raise TransientError(f"cannot fetch the previous attempt's checkpoint: {error}") from None
    return _verified(folder)


def _verified(folder: Path) -> dict:
    manifest = _read_manifest(folder)
    damaged = _damaged(folder, manifest.get("files")) if manifest else ["its manifest (the save was cut short)"]
    if not damaged:
        logger.info(f"restored the previous attempt's checkpoint: {len(manifest['files'])} file(s) in {folder}")
        return manifest
    usable = manifest.get("previous") and not _damaged(folder / PREVIOUS, manifest["previous"])
    what = ", ".join(damaged[:5])
    _clear(folder, keep=PREVIOUS if usable else None)
    if usable:
        _back_to(folder)
        logger.warning(f"the previous attempt's checkpoint is damaged ({what}): resuming from the one before it")
        return {"files": manifest["previous"]}
    logger.warning(f"the previous attempt's checkpoint is damaged ({what}) and none before it is whole: starting fresh")
    return {}


def store(checkpoint: Checkpoint, folder: Path, restored: dict | None = None, max_bytes: int = NO_CAP) -> None:
    """Save what the command left in ``folder`` with its manifest, and the generation it started from; a failure to
    save is logged, never the task's error."""
    restored_files = (restored or {}).get("files") or {}
    files = _listing(folder)
    if not files:
        return
    size = sum(size for size, _ in files.values())
    if size > max_bytes:
        logger.error(
            f"the checkpoint folder holds {size} bytes, over the task's checkpoint_max_size ({max_bytes} bytes): "
            f"not saved; {'the checkpoint this attempt started from is kept' if restored_files else 'none is kept'}. "
            f"Keep fewer or smaller checkpoints, or raise checkpoint_max_size"
        )
        if not restored_files:
            return
        _clear(folder, keep=PREVIOUS)
        _back_to(folder)  # the generation this attempt restored, saved again
        files, restored_files = _listing(folder), {}
    manifest = {"files": files}
    if restored_files:
        manifest["previous"] = restored_files
    else:
        shutil.rmtree(folder / PREVIOUS, ignore_errors=True)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    try:
        checkpoint.save(folder)
    except Exception as error:  # the attempt's own outcome (outputs, or its error) matters more
        logger.error(f"could not save the checkpoint folder ({len(files)} file(s)): {error}")
        return
    logger.info(f"saved the checkpoint folder ({len(files)} file(s), {size} bytes)")


def keep_restored(folder: Path, restored: dict) -> None:
    """Copy the restored generation aside (``PREVIOUS``) before the command changes it: it is saved beside the new
    one, to fall back to."""
    previous = folder / PREVIOUS
    shutil.rmtree(previous, ignore_errors=True)
    if not restored.get("files"):
        return
    previous.mkdir()
    for name in restored["files"]:
        target = previous / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / name, target)


def _back_to(folder: Path) -> None:
    """Put the restored generation (kept in ``PREVIOUS``) back as the folder's content."""
    previous = folder / PREVIOUS
    if not previous.is_dir():
        return
    for path in list(previous.iterdir()):
        path.rename(folder / path.name)
    previous.rmdir()


def _listing(folder: Path) -> dict[str, list]:
    """Relative path -> [size, sha256] of every file of the generation (not the manifest, not ``PREVIOUS``)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative != MANIFEST and not relative.startswith(PREVIOUS + "/"):
            found[relative] = [path.stat().st_size, _sha256(path)]
    return found


def _damaged(folder: Path, expected: dict | None) -> list[str]:
    if not isinstance(expected, dict):
        return ["its manifest"]
    bad = []
    for name, (size, digest) in expected.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size or _sha256(path) != digest:
            bad.append(name)
    return bad


def _read_manifest(folder: Path) -> dict:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {}


def _clear(folder: Path, keep: str | None = None) -> None:
    for path in list(folder.iterdir()):
        if path.name == keep:
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
