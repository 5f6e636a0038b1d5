"""A bundle store heals: pushing again replaces a corrupted object; an executor that fetches a corrupted
object fails with a USER error naming the digest mismatch."""

from __future__ import annotations

import dataclasses
import os

import pytest
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.script import ScriptTask, packing, versions

from tests.unit.test_script_bundle import project, write


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_pushing_again_replaces_a_corrupted_object_and_leaves_a_good_one_alone(tmp_path, scheme):
    packed = packing.pack(project(tmp_path / "p"))
    store = f"{scheme}{tmp_path / 'store'}"
    uri = versions.push(packed, store, "job")
    stored = tmp_path / "store" / "job" / f"{packed.sha256}.zip"
    assert stored.read_bytes() == packed.data
    os.utime(stored, (1, 1))
    assert versions.push(packed, store, "job") == uri and stored.stat().st_mtime == 1  # verified, not rewritten
    flipped = packed.data[:-1] + bytes([packed.data[-1] ^ 1])
    for corrupted in (flipped, packed.data[:100], b""):
        stored.write_bytes(corrupted)
        with pytest.raises(UserError, match="digest mismatch"):
            versions.download(store, "job", packed.sha256)
        assert versions.push(packed, store, "job") == uri
        assert stored.read_bytes() == packed.data
        assert versions.download(store, "job", packed.sha256) == packed.data


def test_a_bundle_whose_bytes_do_not_match_its_digest_is_never_pushed(tmp_path):
    packed = packing.pack(project(tmp_path / "p"))
    forged = dataclasses.replace(packed, data=packed.data + b"\0")
    with pytest.raises(UserError, match=f"digest mismatch: expected {packed.sha256}"):
        versions.push(forged, str(tmp_path / "store"), "job")
    assert not (tmp_path / "store").exists()


def test_the_executor_refuses_a_corrupted_object_until_it_is_pushed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "env-cache"))
    source = write(
        tmp_path / "job",
        {"main.py": "import json, os\njson.dump({'n': 7}, open(os.environ['PREBUILT_OUTPUTS_FILE'], 'w'))\n"},
    )
    store = tmp_path / "bundles"
    task = ScriptTask(
        "job", source=str(source), command=["python", "main.py"], outputs={"n": int}, bundle_store=str(store)
    )
    (tmp_path / "run").mkdir()
    emulator = Emulator(str(tmp_path / "run"))
    assert emulator.run(task, {}).outputs["n"] == 7  # serializing the task uploaded its bundle
    stored = store / "job" / f"{task.bundle.sha256}.zip"
    stored.write_bytes(stored.read_bytes()[:-10])
    with pytest.raises(TaskFailed) as failure:
        emulator.run(task, {})
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    assert f"bundle digest mismatch: expected {task.bundle.sha256}, got " in failure.value.message
    versions.push(task.bundle, str(store), "job")
    assert emulator.run(task, {}).outputs["n"] == 7


def test_a_bundle_missing_from_its_store_is_the_tasks_error_naming_its_uri(tmp_path, monkeypatch):
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "env-cache"))
    source = write(tmp_path / "job", {"main.py": "print('never runs')\n"})
    store = tmp_path / "bundles"
    task = ScriptTask("job", source=str(source), command=["python", "main.py"], bundle_store=str(store), retries=2)
    (tmp_path / "run").mkdir()
    emulator = Emulator(str(tmp_path / "run"))
    template = emulator.template(task)  # registration uploads the bundle
    stored = store / "job" / f"{task.bundle.sha256}.zip"
    stored.unlink()
    with pytest.raises(TaskFailed) as failure:
        emulator.run(template)
    assert (failure.value.origin, failure.value.kind, failure.value.attempts) == ("USER", "NON_RECOVERABLE", 1)
    assert f"the code bundle: {stored} does not exist in the object store" in failure.value.message
