"""Training on several nodes, without a cluster: 2 nodes x 2 processes of the digits example in-process (both
nodes on this machine), through the emulator as a Kubeflow PyTorchJob (a master and a worker replica, each a
pyflyte-execute with the training operator's environment) and as two containers of the train image; the same
seed gives the same metrics everywhere. A replica that loses a process is retried and resumes from the checkpoint
the master saved; a failing rank on the worker node is the task's error; without Flyte's pytorch plugin the task
says so."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from flyteidl.core import errors_pb2
from flytekit.models.core.errors import ContainerError, ErrorDocument
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.train import TrainTask

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


def test_two_containers_as_two_nodes_give_the_same_metrics(tmp_path, two_nodes, train_image):
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o777)
    env, mounts = {"PREBUILT_ENV_CACHE": str(volume)}, [str(volume)]
    if os.environ.get("PIP_CERT"):  # this machine reaches the package index through a TLS-inspecting proxy
        env["SSL_CERT_FILE"], mounts = os.environ["PIP_CERT"], [*mounts, os.environ["PIP_CERT"]]
    (tmp_path / "store").mkdir()
    started = time.monotonic()
    run = Emulator(str(tmp_path / "store"), mounts=mounts, env=env).run(
        train_quickstart.train_digits_on_two_nodes, {"epochs": 8}, image=train_image, in_container=True
    )
    print(f"2 x 2 digits run in two train containers: {time.monotonic() - started:.1f}s")
    assert run.outputs == two_nodes
    assert run.logs.count("--- pod ") == 2


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
