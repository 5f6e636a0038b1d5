"""How a training command is launched: torchrun (``python -m torch.distributed.run``) on this node, with the
process count and communication backend the task asks for.

One node today: ``--standalone`` (a c10d rendezvous on a free local port, so two tasks on one machine never
collide). The ``Topology`` is where multi-node training plugs in: a PyTorchJob replica gets its node count, node
rank and rendezvous endpoint from the operator's environment (``PET_NNODES``, ``PET_NODE_RANK``, ``MASTER_ADDR`` /
``PET_RDZV_ENDPOINT``; kubeflow/training-operator ``pkg/controller.v1/pytorch/envvar.go`` and ``elastic.go``), which
torchrun reads by itself when these flags are left out (``torch/distributed/run.py``, every flag's ``PET_``
default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flytekit.models import task as task_models
from flytekitplugins.prebuilt.kit.quantities import parse_quantity
from flytekitplugins.prebuilt.train.config import TrainConfig

RANK_ENTRY = Path(__file__).with_name("rank.py")  # runs the user's command in each rank, recording its failure


@dataclass(frozen=True)
class Topology:
    """Where this node's processes sit in the job.

    processes_per_node  a count, or 'gpu' (torchrun starts one process per visible GPU)
    nodes               1; a PyTorchJob's replicas will set it (and leave the rendezvous to the operator's env)
    """

    processes_per_node: str
    nodes: int = 1

    def torchrun_arguments(self) -> list[str]:
        if self.nodes != 1:
            raise NotImplementedError("multi-node launches come with the PyTorchJob support")
        return ["--standalone", "--nnodes", "1", "--nproc-per-node", self.processes_per_node]


def requested_gpus(template: task_models.TaskTemplate) -> int:
    """The GPUs the template's container asks for: its limit, else its request (what Kubernetes gives the pod)."""
    resources = template.container.resources if template.container else None
    for entries in (resources.limits, resources.requests) if resources else ():
        for entry in entries or []:
            if entry.name == task_models.Resources.ResourceName.GPU and entry.value:
                return int(parse_quantity(entry.value, "gpu"))
    return 0


def topology(config: TrainConfig, gpus: int) -> Topology:
    """Processes per node: the configured count; by default one per GPU the pod got (torchrun counts the visible
    devices, so an override of the task's resources is honoured), or one without GPUs."""
    if config.processes_per_node:
        count = str(config.processes_per_node)
    else:
        count = "gpu" if gpus else "1"
    return Topology(processes_per_node=count, nodes=config.nodes)


def backend(config: TrainConfig, gpus: int) -> str:
    """nccl for GPUs, gloo for CPUs (``torch.distributed`` backends), unless the task names one."""
    if config.backend != "auto":
        return config.backend
    return "nccl" if gpus else "gloo"


def torchrun_command(python: Path, where: Topology, log_dir: Path, argv: list[str]) -> list[str]:
    """The argv that launches ``argv`` (a script and its arguments, or ``-m module ...``) under torchrun.

    ``--log-dir``: torchrun gives each rank its error file there (``<log_dir>/<run>/attempt_0/<local rank>/
    error.json``, exported to the rank as ``TORCHELASTIC_ERROR_FILE``), where the executor reads every failure.
    """
    return [
        str(python),
        "-m",
        "torch.distributed.run",
        *where.torchrun_arguments(),
        "--max-restarts",
        "0",  # a failed attempt is Flyte's to retry (with the checkpoint), not torchrun's
        "--log-dir",
        str(log_dir),
        str(RANK_ENTRY),
        *argv,
    ]
