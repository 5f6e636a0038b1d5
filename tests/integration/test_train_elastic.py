"""Elastic training and the PyTorchJob's run policy, with real torchrun elastic agents and gloo on CPUs: in-process
(every node's agent on this machine, a c10d rendezvous on 127.0.0.1) and through the platform emulator (an elastic
PyTorchJob's workers as pyflyte-execute subprocesses with the training operator's environment; one worker's node
lost and its pod created again; the run policy's deadline and backoff limit failing the job)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.emulator import Emulator, NodeLoss, TaskFailed
from flytekitplugins.prebuilt.train import Elastic, Role, RunPolicy, TrainTask

from tests.integration.containers import env_cache_volume

# Full-batch gradient descent on a fixed regression, the batch split over the ranks and the gradients summed:
# the same weights for any world size and any number of restarts (a restart starts again from the seed).
TRAIN = """
import json, os, sys, time, torch, torch.distributed as dist
dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
rank, world = dist.get_rank(), dist.get_world_size()
restart = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
if os.environ.get("FAIL_ONCE") and restart == 0 and rank == world - 1:
    sys.exit("failing once, before the first step")
generator = torch.Generator().manual_seed(0)
x = torch.randn(64, 4, generator=generator, dtype=torch.float64)
y = x @ torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)
w = torch.zeros(4, dtype=torch.float64)
mine = slice(rank * 64 // world, (rank + 1) * 64 // world)
for step in range(int(os.environ.get("STEPS", "12"))):
    gradient = 2 * x[mine].T @ (x[mine] @ w - y[mine]) / 64
    dist.all_reduce(gradient)
    w -= 0.05 * gradient
    print(f"rank {rank} restart {restart} step {step}", flush=True)
    time.sleep(float(os.environ.get("STEP_SECONDS", "0")))
restarts = torch.tensor([restart])
dist.all_reduce(restarts, op=dist.ReduceOp.MAX)  # each node's agent counts its own restarts
if rank == 0:
    with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as out:
        json.dump({"loss": float(((x @ w - y) ** 2).mean()), "world": world, "restarts": int(restarts)}, out)
dist.destroy_process_group()
"""
OUTPUTS = {"loss": float, "world": int, "restarts": int}


def expected_loss(steps: int = 12) -> float:
    import torch

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)
    w = torch.zeros(4, dtype=torch.float64)
    for _ in range(steps):
        w -= 0.05 * 2 * x.T @ (x @ w - y) / 64
    return float(((x @ w - y) ** 2).mean())


@pytest.fixture(autouse=True)
def env_cache(train_env_cache, monkeypatch):
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(train_env_cache))


def bundle(tmp_path: Path, script: str = TRAIN) -> str:
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text(textwrap.dedent(script))
    return str(project)


def test_elastic_nodes_in_process_restart_their_workers_after_a_failure(tmp_path):
    """Two nodes' elastic agents on this machine meet at a c10d rendezvous on 127.0.0.1; a rank that fails is
    restarted with every other (max_restarts), and the second round trains to the uninterrupted numbers."""
    task = elastic_task(tmp_path, "elastic_in_process", {"FAIL_ONCE": "1"}, Elastic(nnodes="2:2", max_restarts=1))
    loss, world, restarts = task()
    assert (world, restarts) == (2, 1)
    assert loss == pytest.approx(expected_loss(), rel=1e-9)


def elastic_task(tmp_path, name: str, env: dict, elastic: Elastic) -> TrainTask:
    """The bundle's script as an elastic task of one process a node."""
    return TrainTask(
        name,
        source=bundle(tmp_path),
        command=["main.py"],
        processes_per_node=1,
        dependencies="none",
        env=env,
        outputs=OUTPUTS,
        elastic=elastic,
    )


def two_elastic_workers(tmp_path, name: str) -> TrainTask:
    """One to two workers, slow enough (0.5 s a step) to lose a node in."""
    elastic = Elastic(nnodes="1:2", max_restarts=2, rdzv_configs={"last_call_timeout": 60})
    return elastic_task(tmp_path, name, {"STEP_SECONDS": "0.5"}, elastic)


def test_an_emulated_elastic_job_trains_on_when_a_node_is_lost_and_its_pod_rejoins(tmp_path):
    """An elastic PyTorchJob of two workers (no master), the second worker's node lost at its 4th step: its pod is
    killed whole and created again; the first worker's agent restarts its workers, the new pod joins the
    rendezvous, and the job completes with the numbers of an uninterrupted run, written by whichever pod held
    global rank 0 in the last round."""
    task = two_elastic_workers(tmp_path, "elastic_lost_node")
    lost = NodeLoss(pod=1, after="restart 0 step 3")
    run = Emulator(str(tmp_path / "store"), node_losses=(lost,)).run(task, {})
    assert run.attempts == 1  # no retry: the job itself survived
    assert run.outputs["world"] == 2 and run.outputs["loss"] == pytest.approx(expected_loss(), rel=1e-9)
    pods = {log.split("\n", 1)[0]: log for log in run.logs.split("--- pod ")[1:]}
    [gone] = [header for header in pods if "(lost: its node was lost" in header]
    assert "-worker-1 (lost" in gone and "step 11" not in pods[gone]
    survivor = next(log for header, log in pods.items() if "-worker-0 (exit code 0)" in header)
    rejoined = next(log for header, log in pods.items() if "-worker-1 (exit code 0)" in header)
    assert "restart 1 step 11" in survivor  # its agent restarted its workers once the peer was gone
    assert "restart 0 step 11" in rejoined  # the new pod's agent joined the second round


def test_an_elastic_job_in_containers_of_the_cpu_image_trains_on_when_a_node_is_lost(tmp_path, train_image):
    """The same job as two containers of the train image (host network): the lost node's container is killed
    whole (``docker kill``), a new one joins the second round."""
    volume, env, mounts = env_cache_volume(tmp_path)
    (tmp_path / "store").mkdir()
    task = two_elastic_workers(tmp_path, "elastic_lost_node_containers")
    emulator = Emulator(str(tmp_path / "store"), mounts=mounts, env=env, node_losses=(NodeLoss(1, "restart 0 step 3"),))
    run = emulator.run(task, {}, image=train_image, in_container=True)
    assert run.attempts == 1 and run.outputs["world"] == 2
    assert run.outputs["loss"] == pytest.approx(expected_loss(), rel=1e-9)
    assert "-worker-1 (lost" in run.logs and run.logs.count("--- pod ") == 3


def test_the_run_policy_deadline_and_backoff_limit_fail_the_job_as_the_operator_does(tmp_path):
    """activeDeadlineSeconds fails the running job; a worker whose restart policy is OnFailure is restarted in its
    pod until the restarts reach backoffLimit. Flyte reports either as a retryable DownstreamSystemError. A failed
    task's container fails only with flytekit's FLYTE_FAIL_ON_ERROR (else pyflyte-execute writes the error document
    and exits 0, and there is nothing to restart; docs/train/multi-node.md)."""
    slow = TrainTask(
        "deadline",
        source=bundle(tmp_path),
        command=["main.py"],
        processes_per_node=1,
        nodes=2,
        dependencies="none",
        env={"STEP_SECONDS": "30"},
        outputs=OUTPUTS,
        run_policy=RunPolicy(active_deadline_seconds=3),
    )
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(tmp_path / "store")).run(slow, {})
    assert (failure.value.code, failure.value.kind, failure.value.origin) == (
        "DownstreamSystemError",
        "RECOVERABLE",
        "USER",
    )
    assert "has failed because it was active longer than specified deadline" in failure.value.message

    (tmp_path / "project" / "main.py").write_text("raise SystemExit('this node always fails')\n")
    failing = TrainTask(
        "backoff",
        source=str(tmp_path / "project"),
        command=["main.py"],
        processes_per_node=1,
        dependencies="none",
        elastic=Elastic(nnodes="1:2"),
        worker=Role(restart_policy="OnFailure"),
        run_policy=RunPolicy(backoff_limit=2),
        environment={"FLYTE_FAIL_ON_ERROR": "true"},
    )
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(tmp_path / "store2")).run(failing, {})
    assert failure.value.code == "DownstreamSystemError" and failure.value.recoverable
    assert "has reached the specified backoff limit" in failure.value.message
    assert "restarted (1 restart(s))" in failure.value.logs
