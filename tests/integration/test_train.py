"""The train task type end to end, with real torch (CPU, gloo), real torchrun and scikit-learn installed from the
package index. The digits example on one node of two processes and on two nodes of two processes, each the same
seed: in-process (two nodes: both on this machine), through the platform emulator (pyflyte-execute in subprocesses;
two nodes: a Kubeflow PyTorchJob's master and worker replica with the training operator's environment) and as two
containers of the train image; the same numbers everywhere. A replica that loses a process is retried and resumes
from the master's checkpoint, a SIGTERM saves the checkpoint, a failing rank on the worker pod is the task's error,
and without Flyte's pytorch plugin the task says so."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from flyteidl.core import errors_pb2
from flytekit.models.core.errors import ContainerError, ErrorDocument
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.train import TrainTask

from tests.integration.containers import env_cache_volume

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import train_quickstart  # noqa: E402  (the example, as a user runs it)

DIGITS = str(ROOT / "examples" / "train_digits")
OUTPUTS = {"accuracy": float, "final_loss": float}


@pytest.fixture(scope="module", autouse=True)
def env_cache(train_env_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREBUILT_ENV_CACHE", str(train_env_cache))
        yield


@pytest.fixture(scope="module")
def uninterrupted() -> dict:
    """The quickstart's task in-process: DDP with two gloo processes, 8 epochs, seed 0."""
    started = time.monotonic()
    accuracy, final_loss, model = train_quickstart.train_digits(epochs=8)
    print(f"in-process digits run: {time.monotonic() - started:.1f}s, accuracy {accuracy:.4f}")
    return {"accuracy": accuracy, "final_loss": final_loss, "model": model}


def test_the_digits_example_trains_with_ddp_in_process(uninterrupted):
    assert uninterrupted["accuracy"] >= 0.95
    assert isinstance(uninterrupted["model"], FlyteFile) and Path(uninterrupted["model"].path).stat().st_size > 1000


def test_one_node_emulated_gives_the_in_process_numbers(tmp_path, uninterrupted):
    started = time.monotonic()
    run = Emulator(str(tmp_path)).run(train_quickstart.train_digits, {"epochs": 8})
    print(f"emulated digits run: {time.monotonic() - started:.1f}s")
    assert {k: run.outputs[k] for k in OUTPUTS} == {k: uninterrupted[k] for k in OUTPUTS}  # the same numbers
    assert "8 record(s)" in Path(run.deck_path).read_text()  # the training curves, in the pod's Deck


# ------------------------------------------------------------------------------------------------- SIGTERM

STOPPABLE = """
import json, os, time
from pathlib import Path
import torch.distributed as dist

dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
rank = dist.get_rank()
state = Path(os.environ["PREBUILT_CHECKPOINT_DIR"]) / "state.json"
step = json.loads(state.read_text())["step"] if state.exists() else 0
print(f"rank {rank}: starting at step {step}", flush=True)
dist.barrier()  # every rank has read the state before rank 0 replaces it
for step in range(step, 6):
    if rank == 0:
        state.with_suffix(".partial").write_text(json.dumps({"step": step}))
        state.with_suffix(".partial").replace(state)
    dist.barrier()
    if step == 3 and os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
        (Path(os.environ["SHARED"]) / "at-step-3").write_text("")
        time.sleep(600)  # stopped here by the test's SIGTERM
if rank == 0:
    Path(os.environ["PREBUILT_OUTPUTS_FILE"]).write_text(json.dumps({"last_step": step}))
dist.destroy_process_group()
"""


def executor_processes(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    mark.encode() in (entry / "environ").read_bytes()
                    and b"pyflyte-execute" in (entry / "cmdline").read_bytes()
                ):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_sigterm_saves_the_checkpoint_and_the_retry_resumes(tmp_path):
    project, shared = tmp_path / "stoppable", tmp_path / "shared"
    project.mkdir()
    shared.mkdir()
    (project / "train.py").write_text(STOPPABLE)
    mark = f"mark-{uuid.uuid4().hex}"
    task = TrainTask(
        "stoppable",
        source=str(project),
        command=["train.py"],
        processes_per_node=2,
        dependencies="none",
        grace_seconds=3,
        env={"SHARED": str(shared)},
        outputs={"last_step": int},
        retries=1,
    )
    result: dict = {}
    emulator = Emulator(str(tmp_path / "store"), env={"TEST_MARK": mark})  # marks the executor's process
    thread = threading.Thread(target=lambda: result.update(run=emulator.run(task, {})))
    thread.start()
    end = time.monotonic() + 120
    while not (shared / "at-step-3").exists():
        assert time.monotonic() < end and thread.is_alive(), "the first attempt never reached step 3"
        time.sleep(0.2)
    (executor,) = executor_processes(mark)
    os.kill(executor, signal.SIGTERM)  # as the kubelet stops a pod
    thread.join(180)
    run = result["run"]
    assert run.attempts == 2 and run.outputs == {"last_step": 5}
    assert re.search(r"rank [01]: starting at step 3", run.logs)  # the checkpoint written before SIGTERM was saved
    assert first_attempt_errors(run)[0][:2] == ("USER:Interrupted", ContainerError.Kind.RECOVERABLE)


# ------------------------------------------------------------------------------------------- two nodes


@pytest.fixture(scope="module")
def two_nodes() -> dict:
    """The example's two-node task in-process: every node's torchrun on this machine, 8 epochs, seed 0."""
    started = time.monotonic()
    accuracy, final_loss = train_quickstart.train_digits_on_two_nodes(epochs=8)
    print(f"in-process 2 x 2 digits run: {time.monotonic() - started:.1f}s, accuracy {accuracy:.4f}")
    return {"accuracy": accuracy, "final_loss": final_loss}


def test_two_nodes_of_two_processes_reach_the_accuracy_goal_in_process(two_nodes):
    assert two_nodes["accuracy"] >= 0.95


def test_a_pytorchjob_replica_that_loses_a_process_is_retried_and_resumes_from_the_masters_checkpoint(
    tmp_path, two_nodes
):
    task = TrainTask(
        "digits_two_nodes_lost_process",
        source=DIGITS,
        command=["train.py", "--epochs", "8", "--lose-a-process-after-epoch", "3"],  # rank 3: on the worker pod
        nodes=2,
        processes_per_node=2,
        outputs=OUTPUTS,
        retries=1,
    )
    started = time.monotonic()
    run = Emulator(str(tmp_path)).run(task, {})
    print(f"emulated 2 x 2 digits run with a retry: {time.monotonic() - started:.1f}s")
    assert run.attempts == 2  # the first attempt lost rank 3 (SIGKILL): recoverable, so retried
    master, worker = run.logs.split("--- pod ")[1:]
    assert master.split()[0].endswith("-master-0") and worker.split()[0].endswith("-worker-0")
    assert "rank 0: resuming after epoch 3" in master and "epoch 3:" not in master
    assert "IgnoreOutputs received" in worker  # the worker replica ends without outputs, the master writes them
    # the same seed, resumed from epoch 3's checkpoint: the uninterrupted in-process run's numbers. Not to the last
    # bit: with 4 ranks gloo's all-reduce may add in another order on each rank, so the ranks' weights differ in
    # their last bits; the resumed ranks all start from rank 0's checkpoint (docs/train/checkpoints.md).
    assert run.outputs["accuracy"] == pytest.approx(two_nodes["accuracy"], abs=1.5 / 449)  # 449 test digits
    assert run.outputs["final_loss"] == pytest.approx(two_nodes["final_loss"], rel=1e-4)
    deck = Path(run.deck_path).read_text()
    assert "8 record(s)" in deck  # epochs 0-3 from the first attempt, 4-7 from this one
    errors = first_attempt_errors(run)
    assert len(errors) == 2  # both pods reported: the master error.pb, the worker error-<uuid>.pb (_F_DES)
    code, kind, message = errors[0]  # the earliest, which Flyte reports: the worker's, where the kill happened
    assert (code, kind) == ("USER:Killed", ContainerError.Kind.RECOVERABLE)
    assert "rank 3 (local rank 1) was killed (SIGKILL" in message


def test_two_containers_of_the_cpu_image_as_two_nodes_give_the_same_metrics(tmp_path, two_nodes, train_image):
    """Two gloo ranks in each container, torch from the image's /opt/framework."""
    volume, env, mounts = env_cache_volume(tmp_path)
    (tmp_path / "store").mkdir()
    started = time.monotonic()
    run = Emulator(str(tmp_path / "store"), mounts=mounts, env=env).run(
        train_quickstart.train_digits_on_two_nodes, {"epochs": 8}, image=train_image, in_container=True
    )
    print(f"2 x 2 digits run in two train containers: {time.monotonic() - started:.1f}s")
    assert run.outputs == two_nodes
    assert run.logs.count("--- pod ") == 2
    # the image's torch in /opt/framework; scikit-learn installed on top of it by the image's user, uid 1000
    (environment,) = volume.glob("requirements-*/lib/python3.11/site-packages")
    assert (environment / "sklearn").is_dir() and not (environment / "torch").exists()
    assert (environment / "prebuilt_framework.pth").read_text() == "/opt/framework\n"


def first_attempt_errors(run) -> list[tuple[str, int, str]]:
    """The error documents the first attempt's pods wrote, earliest first: (code, kind, message)."""
    documents = [
        ErrorDocument.from_flyte_idl(errors_pb2.ErrorDocument.FromString(path.read_bytes())).error
        for path in (Path(run.output_prefix).parent / "0").glob("error*.pb")
    ]
    documents.sort(key=lambda error: error.timestamp.ToNanoseconds())
    return [(error.code, error.kind, error.message) for error in documents]


FAILING_ON_THE_WORKER = """
import os, time
import torch.distributed as dist

dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
if dist.get_rank() == 1:  # node 1's only process
    raise ValueError("shard 7 is corrupt")
time.sleep(1)
dist.barrier()  # rank 0 then fails too: its peer is gone
"""


def test_a_failing_rank_on_the_worker_pod_is_the_tasks_error_not_the_masters_consequence(tmp_path):
    project = tmp_path / "failing"
    project.mkdir()
    (project / "train.py").write_text(FAILING_ON_THE_WORKER)
    task = TrainTask("fails_on_worker", source=str(project), command=["train.py"], nodes=2, dependencies="none")
    with pytest.raises(TaskFailed) as failed:
        Emulator(str(tmp_path / "store")).run(task, {}, retries=1)
    error = failed.value
    assert (error.code, error.kind, error.origin) == ("USER:RankFailed", "NON_RECOVERABLE", "USER")
    assert error.attempts == 1  # a Python error is not retried
    assert "rank 1 (local rank 0) failed: ValueError: shard 7 is corrupt" in error.message
    output = Path(tmp_path / "store").rglob("error*.pb")
    assert len(list(output)) == 2  # both pods reported (error.pb, error-<uuid>.pb); the earliest is the task's


def test_without_flytes_pytorch_plugin_the_single_pod_says_what_to_enable(tmp_path):
    """flytepropeller runs a task type it has no plugin for with its container plugin: one pod, no operator."""
    project = tmp_path / "noop"
    project.mkdir()
    (project / "train.py").write_text("print('never runs')\n")
    task = TrainTask("no_plugin", source=str(project), command=["train.py"], nodes=2, dependencies="none")
    with pytest.raises(TaskFailed) as failed:
        Emulator(str(tmp_path / "store"), enabled_plugins=()).run(task, {})
    assert failed.value.origin == "USER" and failed.value.kind == "NON_RECOVERABLE"
    assert "enable Flyte's pytorch plugin" in failed.value.message and "never runs" not in failed.value.logs
