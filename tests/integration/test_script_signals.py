"""The script executor told to stop (SIGTERM: a pod deleted, a preempted node) and processes left behind.

Real parts only: the command is a real Python program with a child of its own; the executor runs under the
platform emulator's ``pyflyte-execute`` subprocess, and in the script image under Docker, stopped with
``docker stop`` exactly as the kubelet stops a pod's container.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.script import ScriptConfig, ScriptTask

GRACE = 2  # grace_seconds of the tasks below

# The command: a leader that ignores SIGTERM (so it must be SIGKILLed after the grace) and a child of its own
# that records the SIGTERM forwarded to the whole group. Both write to $SHARED, a folder the test can see.
LEADER = """
import os, signal, subprocess, sys, time
from pathlib import Path
shared = Path(os.environ["SHARED"])
subprocess.Popen([sys.executable, "child.py"])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
(shared / "leader-ready").write_text(str(os.getppid()))  # the executor's pid
time.sleep(600)
"""
CHILD = """
import os, signal, sys, time
from pathlib import Path
shared = Path(os.environ["SHARED"])
def on_sigterm(*_):
    (shared / "child-got-sigterm").write_text("yes")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_sigterm)
(shared / "child-ready").write_text("yes")
time.sleep(600)
"""


def processes_with(mark: str) -> list[int]:
    """Live processes whose environment holds ``mark`` (a zombie's environment reads empty)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if mark.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


def wait_for(path: Path, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {seconds}s"
        time.sleep(0.1)


def stubborn_task(tmp_path: Path, shared: Path, mark: str) -> ScriptTask:
    project = tmp_path / "stubborn"
    project.mkdir()
    (project / "main.py").write_text(LEADER)
    (project / "child.py").write_text(CHILD)
    config = ScriptConfig(
        command=("python", "main.py"),
        dependencies="none",
        grace_seconds=GRACE,
        env={"SHARED": str(shared), "TEST_MARK": mark},
    )
    return ScriptTask("stubborn", source=str(project), outputs={"x": int}, config=config)


def in_background(call) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def target():
        try:
            result["value"] = call()
        except BaseException as error:
            result["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def shared_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    folder.chmod(0o777)  # the image's user (uid 1000) writes here too
    return folder


def assert_interrupted(failure: BaseException | None) -> None:
    assert isinstance(failure, TaskFailed), failure
    assert (failure.origin, failure.kind, failure.code) == ("USER", "RECOVERABLE", "USER:Interrupted"), failure
    assert "SIGTERM" in failure.message


def test_sigterm_to_the_executor_stops_the_group_and_writes_a_recoverable_error(tmp_path, env_cache):
    shared, scratch = shared_folder(tmp_path, "shared"), shared_folder(tmp_path, "scratch")
    mark = f"mark-{uuid.uuid4().hex}"
    task = stubborn_task(tmp_path, shared, mark)
    (tmp_path / "store").mkdir()
    emulator = Emulator(str(tmp_path / "store"), env={"TMPDIR": str(scratch)})  # the executor's working folders
    thread, result = in_background(lambda: emulator.run(task, {}))
    wait_for(shared / "leader-ready")
    wait_for(shared / "child-ready")
    executor = int((shared / "leader-ready").read_text())
    assert b"pyflyte-execute" in Path(f"/proc/{executor}/cmdline").read_bytes()
    assert len(processes_with(mark)) == 2  # the leader and its child

    os.kill(executor, signal.SIGTERM)
    started = time.monotonic()
    thread.join(60)
    assert not thread.is_alive()
    assert time.monotonic() - started < GRACE + 20  # stopped within the grace, then reported; not left running
    assert_interrupted(result.get("error"))
    assert (shared / "child-got-sigterm").exists()  # SIGTERM went to the whole group, not only the leader
    assert processes_with(mark) == []  # the leader ignored SIGTERM: it was SIGKILLed after the grace
    assert not list(scratch.rglob("prebuilt-script-*"))  # the working folder is gone
    assert not list((tmp_path / "store").rglob("outputs.pb"))


def test_a_successful_run_leaves_no_process_of_its_group_behind(tmp_path, env_cache):
    project = tmp_path / "background"
    project.mkdir()
    (project / "README").write_text("the command is all in the config\n")
    mark = f"mark-{uuid.uuid4().hex}"
    config = ScriptConfig(
        command=('sleep 45 & echo \'{"x": 1}\' > "$PREBUILT_OUTPUTS_FILE"',),
        shell=True,
        dependencies="none",
        env={"TEST_MARK": mark},
    )
    task = ScriptTask("background", source=str(project), outputs={"x": int}, config=config)
    started = time.monotonic()
    assert task() == 1
    assert time.monotonic() - started < 30  # not held by the background sleep
    assert processes_with(mark) == []  # `sleep 45 &` did not outlive the task


def test_docker_stop_on_a_task_running_in_the_image(tmp_path, script_image):
    import docker

    shared, scratch = shared_folder(tmp_path, "shared"), shared_folder(tmp_path, "scratch")
    mark = f"mark-{uuid.uuid4().hex}"
    task = stubborn_task(tmp_path, shared, mark)
    (tmp_path / "store").mkdir()
    emulator = Emulator(
        str(tmp_path / "store"), mounts=[str(shared), str(scratch)], env={"TMPDIR": str(scratch), "TEST_MARK": mark}
    )
    thread, result = in_background(lambda: emulator.run(task, {}, image=script_image, in_container=True))
    wait_for(shared / "leader-ready", 300)
    wait_for(shared / "child-ready")
    client = docker.from_env()
    (container,) = [
        c
        for c in client.containers.list(filters={"ancestor": script_image})
        if f"TEST_MARK={mark}" in c.attrs["Config"]["Env"]
    ]
    pid1 = container.exec_run(["cat", "/proc/1/cmdline"]).output.split(b"\0")
    assert Path(pid1[0].decode()).name == "tini" and b"pyflyte-execute" in pid1  # tini is PID 1, the executor its child

    started = time.monotonic()
    stopped = subprocess.run(["docker", "stop", "--time", "60", container.id], capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr
    assert time.monotonic() - started < GRACE + 30  # the executor ended by itself; docker did not have to kill it
    thread.join(60)
    assert not thread.is_alive()
    assert_interrupted(result.get("error"))  # error.pb was written: flytekit's entrypoint ran to its end
    assert (shared / "child-got-sigterm").exists()
    assert not list(scratch.rglob("prebuilt-script-*"))


@pytest.fixture
def env_cache(tmp_path, monkeypatch):
    cache = tmp_path / "env-cache"
    cache.mkdir()
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(cache))
    return cache
