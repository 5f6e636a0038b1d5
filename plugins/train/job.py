"""The Kubeflow PyTorchJob settings of a multi-node training task, and the plugin's ``custom`` they make.

They mirror flytekit's own PyTorch tasks (flytekit ``plugins/flytekit-kf-pytorch/flytekitplugins/kfpytorch/task.py``:
``RunPolicy``, ``Master``, ``Worker``) and are written as that plugin writes them: flyteidl's
``kubeflow.DistributedPyTorchTrainingTask`` through ``MessageToDict``. Flyte's ``pytorch`` plugin reads them
(flyteplugins ``go/tasks/plugins/k8s/kfoperators/common/common_operator.go``: ``ParseRunPolicy``,
``ToReplicaSpec``, which gives a replica's resources and image in place of the container's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig, check_integer
from flytekitplugins.prebuilt.kit.quantities import check_limits, parse_quantity, resources

# The PyTorchJob's cleanPodPolicy values (kubeflow/training-operator pkg/apis/kubeflow.org/v1 common_types.go) ->
# flyteidl's kubeflow.CleanPodPolicy names.
CLEAN_POD_POLICIES = {
    "None": "CLEANPOD_POLICY_NONE",
    "Running": "CLEANPOD_POLICY_RUNNING",
    "All": "CLEANPOD_POLICY_ALL",
}


@dataclass(frozen=True)
class RunPolicy(PrebuiltConfig):
    """What the training operator does with the job (kfpytorch's ``RunPolicy``; unset: the operator's default;
    numbers are at least 1, as 0 cannot be told from unset in the plugin's message):

    clean_pod_policy            which pods to delete when the job ends: 'None', 'Running' or 'All'.
    ttl_seconds_after_finished  delete the finished job (and its pods) this many seconds after it ends.
    active_deadline_seconds     fail the job once it has been active this long, pod scheduling and image pulls
                                included (``deadline_seconds`` bounds the command inside each pod).
    backoff_limit               pod restarts before the job fails (the replicas' restart policy is Never: a failed
                                pod fails the job and Flyte retries the task; docs/train/multi-node.md).
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

    image     the image of this role's pods (default: the task's); it must provide what the task's image does.
    requests  this role's resource requests in Kubernetes units (``{"cpu": "4", "memory": "16Gi"}``), in place of
              the task's.
    limits    this role's resource limits, in place of the task's.
    """

    image: str = ""
    requests: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)

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

    def gpus(self) -> Optional[int]:
        """The GPUs this role's pods get (limit, else request), or None where it does not say."""
        for values in (self.limits, self.requests):
            if "gpu" in values:
                return int(parse_quantity(values["gpu"], self.field_name("gpu")))
        return None

    def to_idl(self, replicas: int):
        """flyteidl's replica spec, as kfpytorch's ``_convert_replica_spec`` builds it (restart policy Never)."""
        from flyteidl.plugins.kubeflow import pytorch_pb2
        from flytekit.core.resources import convert_resources_to_resource_model

        model = convert_resources_to_resource_model(
            requests=resources(self.requests, "requests"), limits=resources(self.limits, "limits")
        )
        return pytorch_pb2.DistributedPyTorchTrainingReplicaSpec(
            replicas=replicas,
            image=self.image or None,
            resources=model.to_flyte_idl() if (self.requests or self.limits) else None,
        )


def _quantity_text(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def pytorch_job_custom(nodes: int, master: Optional[Role], worker: Optional[Role], run_policy: Optional[RunPolicy]):
    """The plugin's ``custom``: a master and ``nodes - 1`` workers, and the run policy when the task sets one."""
    from flyteidl.plugins.kubeflow import pytorch_pb2
    from google.protobuf.json_format import MessageToDict

    job = pytorch_pb2.DistributedPyTorchTrainingTask(
        master_replicas=(master or Role()).to_idl(1),
        worker_replicas=(worker or Role()).to_idl(nodes - 1),
        run_policy=run_policy.to_idl() if run_policy is not None else None,
    )
    return MessageToDict(job)
