"""The checkpoint folder of a training attempt: filled from the previous attempt's checkpoint before the command
starts, saved as this attempt's checkpoint when it ends (success, failure, deadline or SIGTERM alike).

Both ends are flytekit's intra-task checkpoints (``flytekit/core/checkpointer.py``, ``SyncCheckpoint``):
``current_context().checkpoint`` reads ``--prev-checkpoint`` and writes ``--checkpoint-path``, which Flyte fills
from ``{{.prevCheckpointPrefix}}`` and ``{{.checkpointOutputPrefix}}``. For a retry, the previous checkpoint is the
previous attempt's (flytepropeller ``pkg/controller/nodes/task/taskexec_context.go``,
``ComputePreviousCheckpointPath``); for the first attempt of a recovered execution, the checkpoint of the
execution it recovers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from flytekit.core.checkpointer import Checkpoint
from flytekit.core.context_manager import FlyteContextManager
from flytekit.exceptions.user import FlyteDataNotFoundException
from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import TransientError


@contextlib.contextmanager
def checkpoint_folder(folder: Path, save: bool = True) -> Iterator[Path]:
    """``folder``, restored from the previous attempt's checkpoint, and saved on the way out if ``save`` (one node
    of a multi-node job saves; every node restores, so that each rank can resume)."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = _current()
    if checkpoint is not None:
        restore(checkpoint, folder)
    try:
        yield folder
    finally:
        if checkpoint is not None and save:
            store(checkpoint, folder)


def _current() -> Checkpoint | None:
    try:
        return FlyteContextManager.current_context().user_space_params.checkpoint
    except NotImplementedError:  # flytekit says so when the platform gave no checkpoint paths
        logger.warning("no checkpoint location for this execution: the checkpoint folder starts empty, is not saved")
        return None


def restore(checkpoint: Checkpoint, folder: Path) -> None:
    if not checkpoint.prev_exists():
        return
    try:
        checkpoint.restore(folder)
    except FlyteDataNotFoundException:  # the previous attempt ended before it wrote one
        logger.info("the previous attempt saved no checkpoint: starting from scratch")
        return
    except Exception as error:
        raise TransientError(f"cannot fetch the previous attempt's checkpoint: {error}") from None
    logger.info(f"restored the previous attempt's checkpoint: {_count(folder)} file(s) in {folder}")


def store(checkpoint: Checkpoint, folder: Path) -> None:
    """Save what the command left in ``folder``; a failure to save is logged, never the task's error."""
    files = _count(folder)
    if not files:
        return
    try:
        checkpoint.save(folder)
    except Exception as error:  # the attempt's own outcome (outputs, or its error) matters more
        logger.error(f"could not save the checkpoint folder ({files} file(s)): {error}")
        return
    logger.info(f"saved the checkpoint folder ({files} file(s))")


def _count(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file())
