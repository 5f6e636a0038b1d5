"""How a training command is launched: torchrun (``python -m torch.distributed.run``) on each node, with the
process count and communication backend the task asks for.

One node: ``--standalone`` (a c10d rendezvous on a free local port, so two tasks on one machine never collide).
Several nodes: each pod of the Kubeflow PyTorchJob runs this executor, which starts torchrun with the job's node
count, its own node rank and the master's address, all from the environment the training operator gives every
replica (``PET_NODE_RANK``, ``PET_MASTER_ADDR``/``MASTER_ADDR``, ``PET_MASTER_PORT``/``MASTER_PORT``,
``PET_NNODES``; kubeflow/training-operator ``pkg/controller.v1/pytorch/envvar.go`` and ``master.go``): torchrun's
static rendezvous at the master (``torch/distributed/run.py``). Run locally (``pyflyte run``, a Python call),
there is no operator: every node's torchrun starts on this machine, against 127.0.0.1 (``local_nodes.py``).

Elastic (``TrainConfig.elastic``): torchrun's elastic agent on every node, meeting at a c10d rendezvous: on a
cluster the operator's ``PET_RDZV_ENDPOINT`` (the first worker's service, which hosts the rendezvous store) and
``PET_NNODES`` (``MIN:MAX``; kubeflow/training-operator ``pkg/controller.v1/pytorch/elastic.go``), locally a free
port of 127.0.0.1. Node ranks, and so which node holds global rank 0, are the rendezvous's to give.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from flytekit.models import task as task_models
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.kit.quantities import parse_quantity
from flytekitplugins.prebuilt.train.config import TrainConfig
from flytekitplugins.prebuilt.train.job import RDZV_BACKEND, Elastic

RANK_ENTRY = Path(__file__).with_name("rank.py")  # runs the user's command in each rank, recording its failure
LOCAL_NODES_ENTRY = Path(__file__).with_name("local_nodes.py")  # starts every node's torchrun on this machine
NO_OPERATOR = (
    "this task trains on {nodes} nodes, which makes it a Kubeflow PyTorchJob (Flyte task type 'pytorch'), but its "
    "pod has no node rank or master address from the training operator (PET_NODE_RANK, MASTER_ADDR): enable "
    "Flyte's pytorch plugin (flytepropeller's enabled-plugins, with the Kubeflow training operator installed), "
    "or train on one node"
)


@dataclass(frozen=True)
class Topology:
    """Where this node's processes sit in the job.

    processes_per_node  a count, or 'gpu' (torchrun starts one process per visible GPU)
    nodes               the job's node count (pods of the PyTorchJob)
    node_rank           this node's rank: 0 is the master pod, which holds global rank 0 (elastic: a local name)
    master              ``host:port`` of node 0's rendezvous (several nodes only)
    rendezvous          elastic: ``host:port`` of the c10d rendezvous, where the nodes get their ranks
    min_nodes           elastic: the fewest nodes it trains on (``nodes`` is the most)
    max_restarts        how often torchrun restarts the workers after a failure (0: a failure is Flyte's to retry)
    rdzv_conf           elastic: torchrun's ``--rdzv-conf`` (``key=value,...``)
    """

    processes_per_node: str
    nodes: int = 1
    node_rank: int = 0
    master: str = ""
    rendezvous: str = ""
    min_nodes: int = 0
    max_restarts: int = 0
    rdzv_conf: str = ""

    def torchrun_arguments(self) -> list[str]:
        restarts = [
            "--max-restarts",
            str(self.max_restarts),
            *(("--rdzv-conf", self.rdzv_conf) if self.rdzv_conf else ()),
        ]
        if self.nodes == 1:
            return ["--standalone", "--nnodes", "1", "--nproc-per-node", self.processes_per_node, *restarts]
        if self.rendezvous:
            return [
                *("--nnodes", f"{self.min_nodes}:{self.nodes}", "--rdzv-backend", RDZV_BACKEND),
                *("--rdzv-endpoint", self.rendezvous, "--nproc-per-node", self.processes_per_node, *restarts),
            ]
        host, _, port = self.master.rpartition(":")
        return [
            *("--nnodes", str(self.nodes), "--node-rank", str(self.node_rank)),
            *("--master-addr", host, "--master-port", port),
            *("--nproc-per-node", self.processes_per_node, *restarts),
        ]

    @property
    def writes_outputs(self) -> bool:
        """Global rank 0's node writes the outputs, the Deck and the checkpoint; the others end without outputs.
        False for an elastic job's pod: the rendezvous decides where rank 0 runs (``failures.holds_rank_zero``)."""
        return self.node_rank == 0 and not self.rendezvous


def operator_topology(processes_per_node: str, nodes: int, env: Mapping[str, str]) -> Optional[Topology]:
    """This replica's place in a PyTorchJob, from the operator's environment; None where there is none."""
    rank = env.get("PET_NODE_RANK") or env.get("RANK")
    host = env.get("PET_MASTER_ADDR") or env.get("MASTER_ADDR")
    port = env.get("PET_MASTER_PORT") or env.get("MASTER_PORT")
    if not (rank and host and port):
        return None
    job_nodes = env.get("PET_NNODES", str(nodes))
    if job_nodes != str(nodes):
        raise UserError(f"the task trains on {nodes} nodes but its PyTorchJob has {job_nodes} pods (PET_NNODES)")
    return Topology(processes_per_node, nodes, int(rank), f"{host}:{port}")


def requested_gpus(template: task_models.TaskTemplate) -> int:
    """The GPUs the template's container asks for: its limit, else its request (what Kubernetes gives the pod)."""
    resources = template.container.resources if template.container else None
    for entries in (resources.limits, resources.requests) if resources else ():
        for entry in entries or []:
            if entry.name == task_models.Resources.ResourceName.GPU and entry.value:
                return int(parse_quantity(entry.value, "gpu"))
    return 0


def check_gpus_visible(gpus: int, env: Mapping[str, str] = os.environ, devices: str = "/dev") -> None:
    """UserError (not retried: another attempt on the same node sees the same) when the task asks for GPUs and the
    pod sees none: no NVIDIA device node (the device plugin and the NVIDIA container runtime create
    ``/dev/nvidia<N>``), or ``CUDA_VISIBLE_DEVICES`` hides them all. Read without importing torch."""
    if not gpus:
        return
    visible = [name for name in os.listdir(devices) if name.startswith("nvidia") and name[6:].isdigit()]
    hidden = env.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1", "NoDevFiles"):
        visible = []
    if not visible:
        raise UserError(
            f"the task requests {gpus} GPU(s) but this pod sees none (no /dev/nvidia<N> device"
            f"{', CUDA_VISIBLE_DEVICES=' + repr(hidden) if hidden is not None else ''}): run it on a GPU node "
            f"(Flyte: accelerator= or a GPU node pool; the emulator: in_container=True on a machine with the NVIDIA "
            f"container toolkit), or request no GPU to train on CPUs with gloo"
        )


def elastic_topology(config: TrainConfig, count: str, env: Mapping[str, str]) -> Optional[Topology]:
    """An elastic job's pod, from the operator's environment (``PET_RDZV_ENDPOINT``, ``PET_NNODES``); None where
    there is none."""
    endpoint = env.get("PET_RDZV_ENDPOINT")
    if not endpoint:
        return None
    expected = f"{config.min_nodes}:{config.nodes}"
    if env.get("PET_NNODES", expected) != expected:
        raise UserError(f"the task trains on {expected} nodes but its PyTorchJob has {env['PET_NNODES']} (PET_NNODES)")
    return _elastic(config, count, endpoint)


def _elastic(config: TrainConfig, count: str, endpoint: str, node_rank: int = 0) -> Topology:
    elastic = config.elastic
    assert elastic is not None
    return Topology(
        count, config.nodes, node_rank, "", endpoint, config.min_nodes, elastic.max_restarts, _rdzv_conf(elastic)
    )


def _rdzv_conf(elastic: Elastic) -> str:
    return ",".join(f"{key}={value}" for key, value in elastic.rdzv_configs.items())


def topology(config: TrainConfig, gpus: int, env: Mapping[str, str] = os.environ) -> Optional[Topology]:
    """This node's topology. Processes per node: the configured count; by default one per GPU the pod got
    (torchrun counts the visible devices, so an override of the task's resources is honoured), or one without
    GPUs. None for several nodes outside a PyTorchJob (the caller launches them all locally, or refuses)."""
    if config.processes_per_node:
        count = str(config.processes_per_node)
    else:
        count = "gpu" if gpus else "1"
    if config.nodes == 1:
        elastic = config.elastic
        if elastic is None:
            return Topology(processes_per_node=count)
        return Topology(count, max_restarts=elastic.max_restarts, rdzv_conf=_rdzv_conf(elastic))
    if config.elastic is not None:
        return elastic_topology(config, count, env)
    return operator_topology(count, config.nodes, env)


def local_nodes(config: TrainConfig, gpus: int) -> list[Topology]:
    """Every node of the job on this machine, meeting at a free port of 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    count = str(config.processes_per_node) if config.processes_per_node else ("gpu" if gpus else "1")
    if config.elastic is not None:  # every node's agent at the rendezvous; the first to start hosts its store
        return [_elastic(config, count, f"127.0.0.1:{port}", rank) for rank in range(config.nodes)]
    return [Topology(count, config.nodes, rank, f"127.0.0.1:{port}") for rank in range(config.nodes)]


def elastic_env(config: TrainConfig) -> dict[str, str]:
    """The workers of an elastic job get their store from the rendezvous, scoped to its round. torch's default, one
    TCP store shared across rounds (``TORCH_DISABLE_SHARE_RDZV_TCP_STORE`` unset), keeps the keys of the round
    before, and a node that held rank 0 and no longer does points its workers at its own stale store: after a
    restart gloo connects to the ports of workers that are gone (pytorch/pytorch#135712, #182221)."""
    return {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"} if config.elastic is not None else {}


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
        *where.torchrun_arguments(),  # --max-restarts 0 unless elastic: a failed attempt is Flyte's to retry
        "--log-dir",
        str(log_dir),
        str(RANK_ENTRY),
        *argv,
    ]


def local_nodes_command(python: Path, nodes: list[Topology], log_dir: Path, argv: list[str]) -> list[str]:
    """One command that runs every node's torchrun here (``local_nodes.py``), each with its own log folder."""
    commands = [torchrun_command(python, node, log_dir / f"node-{node.node_rank}", argv) for node in nodes]
    return [str(python), str(LOCAL_NODES_ENTRY), json.dumps(commands)]
