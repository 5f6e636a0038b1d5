"""The Kubeflow PyTorchJob settings of a multi-node training task, and the plugin's ``custom`` they make.

They mirror flytekit's own PyTorch tasks (flytekit ``plugins/flytekit-kf-pytorch/flytekitplugins/kfpytorch/task.py``:
``RunPolicy``, ``Master``, ``Worker``, ``Elastic``) and are written as that plugin writes them: flyteidl's
``kubeflow.DistributedPyTorchTrainingTask`` through ``MessageToDict``. Flyte's ``pytorch`` plugin reads them
(flyteplugins ``go/tasks/plugins/k8s/kfoperators/common/common_operator.go``: ``ParseRunPolicy``,
``ToReplicaSpec``, which gives a replica's resources and image in place of the container's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from flytekitplugins.prebuilt.kit.config import OMIT_EMPTY, ConfigError, PrebuiltConfig, check_integer
from flytekitplugins.prebuilt.kit.quantities import check_limits, parse_quantity, resources

# The PyTorchJob's cleanPodPolicy values (kubeflow/training-operator pkg/apis/kubeflow.org/v1 common_types.go) ->
# flyteidl's kubeflow.CleanPodPolicy names.
CLEAN_POD_POLICIES = {
    "None": "CLEANPOD_POLICY_NONE",
    "Running": "CLEANPOD_POLICY_RUNNING",
    "All": "CLEANPOD_POLICY_ALL",
}
# A replica's restartPolicy (kubeflow.org/v1 common_types.go) -> flyteidl's kubeflow.RestartPolicy names; unset: Never.
RESTART_POLICIES = {
    "Never": "RESTART_POLICY_NEVER",
    "OnFailure": "RESTART_POLICY_ON_FAILURE",
    "Always": "RESTART_POLICY_ALWAYS",
}
RDZV_BACKEND = "c10d"  # kfpytorch's Elastic: c10d needs no rendezvous server, the first worker hosts its store


@dataclass(frozen=True)
class RunPolicy(PrebuiltConfig):
    """What the training operator does with the job (kfpytorch's ``RunPolicy``; unset: the operator's default;
    numbers are at least 1, as 0 cannot be told from unset in the plugin's message):

    clean_pod_policy            which pods to delete when the job ends: 'None', 'Running' or 'All'.
    ttl_seconds_after_finished  delete the finished job (and its pods) this many seconds after it ends.
    active_deadline_seconds     fail the job once it has been active this long, pod scheduling and image pulls
                                included (``deadline_seconds`` bounds the command inside each pod).
    backoff_limit               pod restarts before the job fails: counted for replicas whose restart policy is
                                'OnFailure' or 'Always' (an elastic job's ``worker=Role(restart_policy=...)``);
                                with the default, Never, a failed pod fails the job and Flyte retries the task
                                (docs/train/multi-node.md).
    """

    clean_pod_policy: str = ""
    ttl_seconds_after_finished: Optional[int] = None
    active_deadline_seconds: Optional[int] = None
    backoff_limit: Optional[int] = None

    FIELD_PREFIX = "run_policy"

    def validate(self) -> None:
        if self.clean_pod_policy and self.clean_pod_policy not in CLEAN_POD_POLICIES:
            raise ConfigError(
                self.field_name("clean_pod_policy"),
                f"{self.clean_pod_policy!r} is not one of {', '.join(CLEAN_POD_POLICIES)}",
            )
        # At least 1: the message's fields are proto3 int32s, where 0 is "unset" and never reaches the operator.
        for name in ("ttl_seconds_after_finished", "active_deadline_seconds", "backoff_limit"):
            if getattr(self, name) is not None:
                check_integer(getattr(self, name), self.field_name(name), minimum=1)

    def to_idl(self):
        """flyteidl's ``kubeflow.RunPolicy``, as kfpytorch's ``_convert_run_policy_to_flyte_idl`` builds it."""
        from flyteidl.plugins.kubeflow import common_pb2

        return common_pb2.RunPolicy(
            clean_pod_policy=CLEAN_POD_POLICIES[self.clean_pod_policy] if self.clean_pod_policy else None,
            ttl_seconds_after_finished=self.ttl_seconds_after_finished,
            active_deadline_seconds=self.active_deadline_seconds,
            backoff_limit=self.backoff_limit,
        )


@dataclass(frozen=True)
class Role(PrebuiltConfig):
    """One role's pods of the PyTorchJob (kfpytorch's ``Master``/``Worker``), where they differ from the task's:

    image           the image of this role's pods (default: the task's); it must provide what the task's image does.
    requests        this role's resource requests in Kubernetes units (``{"cpu": "4", "memory": "16Gi"}``), in
                    place of the task's.
    limits          this role's resource limits, in place of the task's.
    restart_policy  what Kubernetes does when a pod's container fails: 'Never' (default: the job fails), or
                    'OnFailure' / 'Always' (the container restarts in its pod and rejoins the rendezvous, counted
                    against ``run_policy.backoff_limit``); elastic jobs only.
    """

    image: str = ""
    requests: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    restart_policy: str = field(default="", metadata=OMIT_EMPTY)

    FIELD_PREFIX = "role"

    def __post_init__(self):
        # Quantities are strings in Kubernetes and in custom (a Struct would turn 2 into 2.0).
        for name in ("requests", "limits"):
            values = getattr(self, name)
            if isinstance(values, dict):
                object.__setattr__(self, name, {k: _quantity_text(v) for k, v in values.items()})

    def validate(self) -> None:
        if self.image != self.image.strip() or " " in self.image:
            raise ConfigError(self.field_name("image"), f"{self.image!r} is not an image reference")
        resources(self.requests, self.field_name("requests"))
        resources(self.limits, self.field_name("limits"))
        check_limits(self.requests, self.limits, self.field_name("limits"))
        if self.restart_policy and self.restart_policy not in RESTART_POLICIES:
            raise ConfigError(
                self.field_name("restart_policy"),
                f"{self.restart_policy!r} is not one of {', '.join(RESTART_POLICIES)}",
            )

    def gpus(self) -> Optional[int]:
        """The GPUs this role's pods get (limit, else request), or None where it does not say."""
        for values in (self.limits, self.requests):
            if "gpu" in values:
                return int(parse_quantity(values["gpu"], self.field_name("gpu")))
        return None

    def to_idl(self, replicas: int):
        """flyteidl's replica spec, as kfpytorch's ``_convert_replica_spec`` builds it (unset restart policy: Never)."""
        from flyteidl.plugins.kubeflow import pytorch_pb2
        from flytekit.core.resources import convert_resources_to_resource_model

        model = convert_resources_to_resource_model(
            requests=resources(self.requests, "requests"), limits=resources(self.limits, "limits")
        )
        return pytorch_pb2.DistributedPyTorchTrainingReplicaSpec(
            replicas=replicas,
            image=self.image or None,
            resources=model.to_flyte_idl() if (self.requests or self.limits) else None,
            restart_policy=RESTART_POLICIES[self.restart_policy] if self.restart_policy else None,
        )


@dataclass(frozen=True)
class Elastic(PrebuiltConfig):
    """Elastic training (kfpytorch's ``Elastic``; torchrun's elastic agent, ``torch/distributed/run.py``): the nodes
    meet at a c10d rendezvous instead of fixed node ranks, so a node may be lost and replaced (a preempted node's
    pod recreated by the training operator) while training goes on: every agent restarts its workers on a change
    of membership, from the checkpoint the script saved.

    nnodes        the nodes: a number, or 'MIN:MAX' (the job starts MAX pods and trains while at least MIN are
                  in the rendezvous); torchrun's ``--nnodes``.
    max_restarts  how often a node's agent restarts its workers after a failure before it fails (a change of
                  membership does not count); torchrun's ``--max-restarts``.
    rdzv_configs  torchrun's ``--rdzv-conf`` (seconds: ``join_timeout``, ``last_call_timeout``, ``read_timeout``,
                  ...); kfpytorch's default: ``{"timeout": 900, "join_timeout": 900}``.
    """

    nnodes: str = "1"
    max_restarts: int = 0
    rdzv_configs: dict[str, int] = field(default_factory=lambda: {"timeout": 900, "join_timeout": 900})

    FIELD_PREFIX = "elastic"

    def __post_init__(self):
        if isinstance(self.nnodes, int) and not isinstance(self.nnodes, bool):  # Elastic(nnodes=2), as kfpytorch
            object.__setattr__(self, "nnodes", str(self.nnodes))

    def validate(self) -> None:
        self.min_max()
        check_integer(self.max_restarts, self.field_name("max_restarts"))
        for key, value in self.rdzv_configs.items():
            if not key.isidentifier():
                raise ConfigError(self.field_name(f"rdzv_configs.{key}"), "is not a rendezvous setting's name")
            check_integer(value, self.field_name(f"rdzv_configs.{key}"))

    def min_max(self) -> tuple[int, int]:
        """The least and the most nodes, parsed as torchrun's ``parse_min_max_nnodes`` does (without torch)."""
        parts = self.nnodes.split(":")
        if len(parts) > 2 or not all(part.strip().isdigit() for part in parts):
            raise ConfigError(self.field_name("nnodes"), f"{self.nnodes!r}: expected a number or 'MIN:MAX', e.g. '2:4'")
        least, most = int(parts[0]), int(parts[-1])
        if least < 1 or least > most:
            raise ConfigError(
                self.field_name("nnodes"), f"{self.nnodes!r}: needs 1 <= MIN <= MAX (MIN {least}, MAX {most})"
            )
        return least, most

    def to_idl(self, processes_per_node: int):
        """flyteidl's ``ElasticConfig``, as kfpytorch's ``PytorchElasticFunctionTask.get_custom`` builds it."""
        from flyteidl.plugins.kubeflow import pytorch_pb2

        least, most = self.min_max()
        return pytorch_pb2.ElasticConfig(
            rdzv_backend=RDZV_BACKEND,
            min_replicas=least,
            max_replicas=most,
            nproc_per_node=processes_per_node,
            max_restarts=self.max_restarts,
        )


def _quantity_text(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def pytorch_job_custom(
    nodes: int,
    master: Optional[Role],
    worker: Optional[Role],
    run_policy: Optional[RunPolicy],
    elastic: Optional[Elastic] = None,
    processes_per_node: int = 1,
):
    """The plugin's ``custom``: a master and ``nodes - 1`` workers, and the run policy when the task sets one.
    Elastic: ``nodes`` (the most) workers and no master (the plugin drops it), with the elastic config."""
    from flyteidl.plugins.kubeflow import pytorch_pb2
    from google.protobuf.json_format import MessageToDict

    if elastic is not None:
        job = pytorch_pb2.DistributedPyTorchTrainingTask(
            worker_replicas=(worker or Role()).to_idl(nodes),
            elastic_config=elastic.to_idl(processes_per_node),
            run_policy=run_policy.to_idl() if run_policy is not None else None,
        )
        return MessageToDict(job)
    job = pytorch_pb2.DistributedPyTorchTrainingTask(
        master_replicas=(master or Role()).to_idl(1),
        worker_replicas=(worker or Role()).to_idl(nodes - 1),
        run_policy=run_policy.to_idl() if run_policy is not None else None,
    )
    return MessageToDict(job)
