"""The checkpoint folder's generations, with flytekit's real SyncCheckpoint on local folders (as the emulator's
store): a damaged checkpoint falls back to the one before it, or to a fresh start, and a folder over the size cap
keeps the checkpoint the attempt started from."""

from __future__ import annotations

from pathlib import Path

from flytekit.core.checkpointer import SyncCheckpoint
from flytekitplugins.prebuilt.executors.train import checkpoints


def attempt(store: Path, number: int, write: dict[str, bytes] | None, max_bytes: int = checkpoints.NO_CAP) -> dict:
    """One attempt: restore the previous attempt's checkpoint, let the 'command' write files, save. Returns what
    the command found when it started."""
    previous = str(store / f"attempt-{number - 1}") if number else None
    checkpoint = SyncCheckpoint(checkpoint_dest=str(store / f"attempt-{number}"), checkpoint_src=previous)
    folder = store.parent / f"work-{number}"
    folder.mkdir()
    restored = checkpoints.restore(checkpoint, folder)
    checkpoints.keep_restored(folder, restored)
    found = {p.name: p.read_bytes() for p in (folder / "files").glob("*")} if (folder / "files").is_dir() else {}
    for name, data in (write or {}).items():
        (folder / "files").mkdir(exist_ok=True)
        (folder / "files" / name).write_bytes(data)
    checkpoints.store(checkpoint, folder, restored, max_bytes)
    return found


def test_a_checkpoint_damaged_in_the_store_falls_back_to_the_one_before_it(tmp_path, caplog):
    store = tmp_path / "store"
    attempt(store, 0, {"model.pt": b"epoch 1"})
    assert attempt(store, 1, {"model.pt": b"epoch 2 weights"}) == {"model.pt": b"epoch 1"}
    (store / "attempt-1" / "files" / "model.pt").write_bytes(b"epoch 2 we")  # an upload cut short
    assert attempt(store, 2, None) == {"model.pt": b"epoch 1"}
    assert "checkpoint is damaged (files/model.pt): resuming from the one before it" in caplog.text
    assert attempt(store, 3, None) == {"model.pt": b"epoch 1"}  # the fallback was saved as a whole checkpoint


def test_without_a_whole_generation_the_attempt_starts_fresh(tmp_path, caplog):
    store = tmp_path / "store"
    attempt(store, 0, {"model.pt": b"epoch 1"})
    (store / "attempt-0" / checkpoints.MANIFEST).unlink()  # the save was cut short before its manifest
    assert attempt(store, 1, None) == {}
    assert "none before it is whole: starting fresh" in caplog.text


def test_a_folder_over_the_cap_is_not_saved_and_the_restored_checkpoint_is_kept(tmp_path, caplog):
    store = tmp_path / "store"
    attempt(store, 0, {"model.pt": b"small"}, max_bytes=10)
    attempt(store, 1, {"model.pt": b"far too big for the cap"}, max_bytes=10)
    assert "over the task's checkpoint_max_size (10 bytes): not saved" in caplog.text
    assert attempt(store, 2, None) == {"model.pt": b"small"}
