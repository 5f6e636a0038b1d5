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
- Elastic jobs (``elasticConfig``; ``pytorch.go`` drops the master): ``workerReplicas.replicas`` workers, each
  with ``PET_RDZV_ENDPOINT`` (the first worker's service, ``<job>-worker-0:23456``; here 127.0.0.1 and a free
  port), ``PET_RDZV_BACKEND``, ``PET_NNODES=MIN:MAX``, ``PET_MAX_RESTARTS``, ``PET_NPROC_PER_NODE``
  (``elastic.go``), no node rank. The first worker hosts the c10d rendezvous store, as on the cluster where the
  endpoint is its service: the others start once it listens.
- The outcome (``pytorchjob_controller.go``): a failed pod of a replica whose restart policy is Never fails the
  job, whose other pods are then stopped; one with OnFailure/Always is started again, as the kubelet restarts its
  container, until the restarts reach the run policy's ``backoffLimit`` (``pkg/core/job.go``,
  ``PastBackoffLimit``: "has reached the specified backoff limit"). ``activeDeadlineSeconds`` fails the job once
  it has run that long ("was active longer than specified deadline"); Flyte reports either as a retryable
  ``DownstreamSystemError`` (flyteplugins ``kfoperators/common/common_operator.go``, ``GetPhaseInfo``). The job
  succeeds when its master does; an elastic job, when a worker does.
- A node lost (``NodeLoss``): its pod is killed with everything in it, and the operator creates the missing pod
  again (same name and environment), which joins the job anew.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

from flyteidl.plugins.kubeflow import pytorch_pb2
from google.protobuf import json_format

PYTORCH_TASK_TYPE = "pytorch"
STOP_AFTER_FAILURE = 30.0  # seconds the other pods get to fail on their own once one has failed
RESTARTED_POLICIES = (1, 2)  # flyteidl kubeflow.RestartPolicy: ON_FAILURE, ALWAYS (0, NEVER: a failure is final)
HOST_START_SECONDS = 60.0  # how long the other workers of an elastic job wait for the first one to listen


@dataclass(frozen=True)
class Pod:
    name: str
    env: dict[str, str]
    restarted: bool = False  # its restart policy restarts a failed container (OnFailure, Always)


@dataclass(frozen=True)
class Job:
    """A PyTorchJob as the operator runs it: its pods, and what its run policy and elastic config ask for."""

    pods: list[Pod]
    elastic: bool = False
    rendezvous_port: int = 0  # elastic: where the first worker's rendezvous store listens
    active_deadline: Optional[float] = None  # seconds
    backoff_limit: Optional[int] = None


@dataclass(frozen=True)
class NodeLoss:
    """A node lost mid-run (a preempted or broken machine): the pod at index ``pod`` of the job (the master is 0
    and the workers follow; an elastic job has workers only) is killed with everything in it once its output
    contains ``after``, and the operator creates it again. An elastic job trains on; a static one fails."""

    pod: int
    after: str


class RunningPod(Protocol):
    def poll(self) -> Optional[int]: ...  # the exit code once it has ended

    def stop(self) -> None: ...  # returns once it has ended

    def kill(self) -> None: ...  # SIGKILL to everything in it, at once (its node is gone)

    def output(self) -> str: ...  # what it has written so far


class JobFailed(Exception):
    """The operator failed the job (its run policy's deadline or backoff limit): the JobFailed condition's message."""


def pytorch_job(custom: dict, task_type_version: int, job: str, master_port: int) -> Job:
    """The PyTorchJob a template describes: its pods with the operator's environment, its run policy."""
    if task_type_version != 1:
        raise ValueError(f"Flyte's pytorch plugin runs task_type_version 1, not {task_type_version}")
    spec = json_format.ParseDict(custom, pytorch_pb2.DistributedPyTorchTrainingTask(), ignore_unknown_fields=True)
    policy = spec.run_policy
    deadline = float(policy.active_deadline_seconds) if policy.active_deadline_seconds else None
    backoff = policy.backoff_limit or None  # 0 is proto3's unset: the plugin leaves the operator's nil
    workers = spec.worker_replicas.common.replicas or spec.worker_replicas.replicas
    restarted, master_restarted = _restarted(spec.worker_replicas), _restarted(spec.master_replicas)
    if spec.HasField("elastic_config"):
        pods = _elastic_pods(spec.elastic_config, job, workers, master_port, restarted)
        return Job(pods, True, master_port, deadline, backoff)
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
        pods.append(Pod(name, env, restarted if rank else master_restarted))
    return Job(pods, False, 0, deadline, backoff)


def _restarted(replica) -> bool:
    """Whether the replica's restart policy restarts a failed container (its ``common`` spec first, as the plugin
    reads it: ``common_operator.go``, ``ToReplicaSpecWithOverrides``)."""
    return (replica.common.restart_policy or replica.restart_policy) in RESTARTED_POLICIES


def _elastic_pods(elastic, job: str, workers: int, port: int, restarted: bool) -> list[Pod]:
    """An elastic job's workers, with ``elastic.go``'s environment (no master: no node rank, no MASTER_ADDR)."""
    env = {
        "PYTHONUNBUFFERED": "1",
        "PET_RDZV_ENDPOINT": f"127.0.0.1:{port}",
        "PET_RDZV_BACKEND": elastic.rdzv_backend or "c10d",
        "PET_NNODES": f"{elastic.min_replicas}:{elastic.max_replicas}",
        "PET_MAX_RESTARTS": str(elastic.max_restarts),
        "PET_NPROC_PER_NODE": str(elastic.nproc_per_node),
    }
    names = [f"{job}-worker-{i}" for i in range(workers)]
    return [Pod(name, {**env, "_F_WN": name, "_F_DES": "Earliest"}, restarted) for name in names]


@dataclass
class JobRun:
    """Runs a ``Job``'s pods to the job's end (see the module docstring); ``start`` starts one pod."""

    job: Job
    start: Callable[[Pod], RunningPod]
    losses: tuple[NodeLoss, ...] = ()
    running: list[RunningPod] = field(default_factory=list)
    earlier: list[tuple[str, RunningPod, str]] = field(default_factory=list)  # replaced pods: name, pod, why
    restarts: int = 0

    def run(self, timeout: float, failed: Callable[[], bool]) -> list[int]:
        """The pods' exit codes (124: stopped at ``timeout``); raises ``JobFailed`` for the run policy. Once one
        has failed for good (``failed()``: an error document was written, or a pod exited non-zero), or a worker
        of an elastic job succeeded, the rest get ``STOP_AFTER_FAILURE`` seconds and are then stopped."""
        started = time.monotonic()
        self._start_all()
        pending, ended_at = list(self.losses), None
        while True:
            now = time.monotonic()
            pending = self._lose_nodes(pending)
            self._restart_failed()
            if all(pod.poll() is not None for pod in self.running):
                break
            if ended_at is None and self._ended(failed):
                ended_at = now
            if self.job.active_deadline is not None and now - started >= self.job.active_deadline:
                self.stop()
                raise JobFailed("has failed because it was active longer than specified deadline")
            if now - started > timeout or (ended_at is not None and now - ended_at > STOP_AFTER_FAILURE):
                self.stop()
                break
            time.sleep(0.2)
        return [124 if pod.poll() is None else pod.poll() for pod in self.running]  # type: ignore[misc]

    def stop(self) -> None:
        for pod in self.running:
            if pod.poll() is None:
                pod.stop()

    def _start_all(self) -> None:
        for index, pod in enumerate(self.job.pods):
            self.running.append(self.start(pod))
            if self.job.elastic and index == 0:  # the rendezvous host first, as its service names it
                _wait_listening(self.job.rendezvous_port, self.running[0])

    def _ended(self, failed: Callable[[], bool]) -> bool:
        codes = [pod.poll() for pod in self.running]
        final = [code for code, pod in zip(codes, self.job.pods) if code not in (None, 0) and not pod.restarted]
        restartable = any(pod.restarted for pod in self.job.pods)  # its error documents are not final
        return bool(final) or (not restartable and failed()) or (self.job.elastic and 0 in codes)

    def _lose_nodes(self, pending: list[NodeLoss]) -> list[NodeLoss]:
        left = []
        for loss in pending:
            pod = self.running[loss.pod]
            if loss.after in pod.output():
                pod.kill()
                self._replace(loss.pod, f"lost: its node was lost once its output showed {loss.after!r}")
            else:
                left.append(loss)
        return left

    def _restart_failed(self) -> None:
        """The kubelet restarts a failed container of a pod whose restart policy says so; the operator fails the
        job once the restarts reach the backoff limit."""
        for index, pod in enumerate(self.job.pods):
            code = self.running[index].poll()
            if not pod.restarted or code in (None, 0):
                continue
            self.restarts += 1
            self._replace(index, f"exit code {code}: restarted ({self.restarts} restart(s))")
            if self.job.backoff_limit is not None and self.restarts >= self.job.backoff_limit:
                self.stop()
                raise JobFailed("has failed because it has reached the specified backoff limit")

    def _replace(self, index: int, why: str) -> None:
        self.earlier.append((self.job.pods[index].name, self.running[index], why))
        self.running[index] = self.start(self.job.pods[index])


def _wait_listening(port: int, pod: RunningPod) -> None:
    """Until something listens at 127.0.0.1:``port`` (the first worker's rendezvous store), it ended, or a minute."""
    end = time.monotonic() + HOST_START_SECONDS
    while time.monotonic() < end and pod.poll() is None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
