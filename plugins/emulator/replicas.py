"""A Kubeflow PyTorchJob as Flyte's ``pytorch`` plugin and the training operator run it: one pod per replica, every
pod running the same rendered template, each with the environment the operator gives it.

What is emulated, and where it comes from:

- The job: flyteplugins ``go/tasks/plugins/k8s/kfoperators/pytorch/pytorch.go`` decodes ``custom`` into flyteidl's
  ``kubeflow.DistributedPyTorchTrainingTask`` (``task_type_version`` 1 only; unknown keys ignored), builds one master
  (always 1) and ``workerReplicas.replicas`` workers (``common/common_operator.go``, ``ToReplicaSpec``).
- Each pod's environment (kubeflow/training-operator ``pkg/controller.v1/pytorch/envvar.go``, ``master.go``;
  non-elastic job of P pods): ``PYTHONUNBUFFERED=1``, ``MASTER_ADDR``/``PET_MASTER_ADDR`` (the master's service,
  ``<job>-master-0``; here 127.0.0.1, as all pods share the host's network), ``MASTER_PORT``/``PET_MASTER_PORT``
  (23456 there; a free port here), ``WORLD_SIZE=P``, ``RANK`` and ``PET_NODE_RANK`` (master 0, worker i: i+1),
  ``PET_NNODES=P``, ``PET_NPROC_PER_NODE=auto``. Workers get ``_F_WN`` (their pod name) and, as with the plugin's
  ``enable-distributed-error-aggregation`` setting (flyte RFC 5598), ``_F_DES=Earliest``: each worker then writes
  its own ``error-<uuid>.pb`` and the earliest error of all is the task's.
- The outcome (``pytorchjob_controller.go``; restart policy Never): a failed pod fails the job, whose other pods
  are then stopped; the job succeeds when its master does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

from flyteidl.plugins.kubeflow import pytorch_pb2
from google.protobuf import json_format

PYTORCH_TASK_TYPE = "pytorch"
STOP_AFTER_FAILURE = 30.0  # seconds the other pods get to fail on their own once one has failed


@dataclass(frozen=True)
class Pod:
    name: str
    env: dict[str, str]


class RunningPod(Protocol):
    def poll(self) -> Optional[int]: ...  # the exit code once it has ended

    def stop(self) -> None: ...  # returns once it has ended


def pytorch_job(custom: dict, task_type_version: int, job: str, master_port: int) -> list[Pod]:
    """The pods of the PyTorchJob a template describes, with the operator's environment."""
    if task_type_version != 1:
        raise ValueError(f"Flyte's pytorch plugin runs task_type_version 1, not {task_type_version}")
    spec = json_format.ParseDict(custom, pytorch_pb2.DistributedPyTorchTrainingTask(), ignore_unknown_fields=True)
    if spec.HasField("elastic_config"):
        raise ValueError("elastic PyTorchJobs (elasticConfig) are not emulated")
    workers = spec.worker_replicas.common.replicas or spec.worker_replicas.replicas
    names = [f"{job}-master-0", *(f"{job}-worker-{i}" for i in range(workers))]
    pods = []
    for rank, name in enumerate(names):
        env = {
            "PYTHONUNBUFFERED": "1",
            **dict.fromkeys(("MASTER_ADDR", "PET_MASTER_ADDR"), "127.0.0.1"),
            **dict.fromkeys(("MASTER_PORT", "PET_MASTER_PORT"), str(master_port)),
            "WORLD_SIZE": str(len(names)),
            "RANK": str(rank),
            "PET_NODE_RANK": str(rank),
            "PET_NNODES": str(len(names)),
            "PET_NPROC_PER_NODE": "auto",
        }
        if rank:
            env.update({"_F_WN": name, "_F_DES": "Earliest"})
        pods.append(Pod(name, env))
    return pods


def wait_for_job(running: list[RunningPod], timeout: float, failed: Callable[[], bool]) -> list[int]:
    """Wait for every pod to end; once one has failed (``failed()``: an error document was written, or a pod
    exited non-zero), stop the rest after ``STOP_AFTER_FAILURE`` seconds. The pods' exit codes (124: timed out)."""
    deadline, failed_at = time.monotonic() + timeout, None
    while any(pod.poll() is None for pod in running):
        now = time.monotonic()
        if failed_at is None and (any(pod.poll() not in (None, 0) for pod in running) or failed()):
            failed_at = now
        if now > deadline or (failed_at is not None and now - failed_at > STOP_AFTER_FAILURE):
            for pod in running:
                if pod.poll() is None:
                    pod.stop()
            break
        time.sleep(0.2)
    return [124 if pod.poll() is None else pod.poll() for pod in running]
