"""In the container, the emulator applies the task's CPU and memory limits, and an out-of-memory kill fails
the way Flyte reports it (OOMKilled, USER, RECOVERABLE, retried)."""

import pytest
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask

ALLOCATE = """\
import json, os, pathlib

def first(*paths):
    for path in paths:
        if pathlib.Path(path).is_file():
            return pathlib.Path(path).read_text().split()

memory = first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
v2 = first("/sys/fs/cgroup/cpu.max")
quota, period = v2 if v2 else (
    first("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")[0],
    first("/sys/fs/cgroup/cpu/cpu.cfs_period_us")[0],
)
mib = int(os.environ["PREBUILT_INPUT_MIB"])
print(f"allocating {mib} MiB", flush=True)
block = b"x" * (mib * 2**20)  # written, so resident
outputs = {"memory_limit": int(memory[0]), "cpus": int(quota) / int(period)}
json.dump(outputs, open(os.environ["PREBUILT_OUTPUTS_FILE"], "w"))
"""


def allocating_task(tmp_path, limits, requests=None, retries=0):
    project = tmp_path / "allocate"
    project.mkdir(exist_ok=True)
    (project / "allocate.py").write_text(ALLOCATE)
    return ScriptTask(
        "allocate",
        source=str(project),
        command=["python", "allocate.py"],
        inputs={"mib": int},
        outputs={"memory_limit": int, "cpus": float},
        preset=ScriptPreset.of(dependencies="none"),
        limits=limits,
        requests=requests,
        retries=retries,
    )


@pytest.fixture
def emulator(tmp_path):
    (tmp_path / "store").mkdir()
    return Emulator(str(tmp_path / "store"))


def test_the_container_gets_the_tasks_limits(tmp_path, emulator, script_image):
    task = allocating_task(tmp_path, limits={"memory": "256Mi", "cpu": "500m"}, requests={"cpu": "250m"})
    run = emulator.run(task, {"mib": 16}, in_container=True)
    assert run.outputs == {"memory_limit": 256 * 2**20, "cpus": 0.5}


def test_a_missing_limit_takes_the_request_as_on_the_cluster(tmp_path, emulator, script_image):
    task = allocating_task(tmp_path, limits=None, requests={"memory": "300Mi", "cpu": "1.5"})
    assert emulator.run(task, {"mib": 1}, in_container=True).outputs == {"memory_limit": 300 * 2**20, "cpus": 1.5}


def test_an_out_of_memory_kill_is_reported_as_flyte_does_and_retried(tmp_path, emulator, script_image):
    task = allocating_task(tmp_path, limits={"memory": "256Mi"}, retries=1)
    with pytest.raises(TaskFailed) as failure:
        emulator.run(task, {"mib": 1024}, in_container=True)
    failed = failure.value
    assert (failed.code, failed.origin, failed.kind, failed.attempts) == ("OOMKilled", "USER", "RECOVERABLE", 2)
    # only the script's process was killed and the entrypoint exited 0: Flyte's DemystifySuccess reports it so
    assert failed.message == "Pod reported success despite being OOMKilled"
    assert "allocating 1024 MiB" in failed.logs  # the script ran and was the one to go over the limit


def test_64mi_is_too_little_for_the_runtime_itself(tmp_path, emulator, script_image):
    """flytekit's entrypoint alone peaks near 80 MiB resident: a 64Mi task is OOM-killed before its script starts,
    as it would be on the cluster."""
    task = allocating_task(tmp_path, limits={"memory": "64Mi"})
    with pytest.raises(TaskFailed) as failure:
        emulator.run(task, {"mib": 1}, in_container=True)
    assert (failure.value.code, failure.value.origin, failure.value.kind) == ("OOMKilled", "USER", "RECOVERABLE")
    assert "exit code (137). Reason [OOMKilled]" in failure.value.message and "allocating" not in failure.value.logs
