"""Configuration of the ``train`` task type: a ``script`` configuration plus how the command is launched
(processes per node, nodes, communication backend) and where its TensorBoard logs go.

The command is plain PyTorch: it reads ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` (set by torchrun) and
``$PREBUILT_DIST_BACKEND`` and calls ``torch.distributed.init_process_group``; no Flyte code in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from flytekitplugins.prebuilt.kit.config import OMIT_EMPTY, ConfigError, check_integer
from flytekitplugins.prebuilt.kit.quantities import parse_quantity
from flytekitplugins.prebuilt.script.config import ScriptConfig, ScriptPreset
from flytekitplugins.prebuilt.train.job import Elastic, Role, RunPolicy

# What the executor gives every rank (docs/train/launch.md): the contract between the executor and a user's script.
BACKEND_VARIABLE = "PREBUILT_DIST_BACKEND"  # 'nccl' on GPUs, 'gloo' on CPUs
CHECKPOINT_VARIABLE = "PREBUILT_CHECKPOINT_DIR"  # restored from the previous attempt, saved when the attempt ends
METRICS_VARIABLE = "PREBUILT_METRICS_FILE"  # JSON lines, drawn in the task's Deck
TENSORBOARD_VARIABLE = "PREBUILT_TENSORBOARD_DIR"  # the FlyteDirectory output named by tensorboard_output
TENSORBOARD_DIR = ".prebuilt/tensorboard"  # relative to the working folder: an artifact like any other
COLLECTIVE_TIMEOUT_VARIABLE = "PREBUILT_COLLECTIVE_TIMEOUT"  # seconds: init_process_group's default timeout

BACKENDS = ("auto", "nccl", "gloo")
# Set by torchrun for each rank, or read by it (PET_*, TORCHELASTIC_*): a task's env may not change them.
LAUNCHER_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")
LAUNCHER_ENV_PREFIXES = ("PET_", "TORCHELASTIC_")
MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
INTERPRETER = re.compile(r"^(python(\d(\.\d+)?)?|torchrun)$")


@dataclass(frozen=True)
class TrainConfig(ScriptConfig):
    """How to train: every ``ScriptConfig`` field (``dependencies``, ``env``, ``secret_env``, ``deadline_seconds``,
    ``artifacts``, ...) plus:

    command             the entry point as an argv, first a script path in the bundle (``("train.py", "--lr",
                        "{{.inputs.lr}}")``) or ``-m`` and a module; launched by torchrun, once per process.
    processes_per_node  processes on the node: 0 (default) starts one per GPU the task requests, or one when it
                        requests none; on CPUs give the number (each process is one gloo rank).
    nodes               pods that train together (default 1). More than one makes the task a Kubeflow PyTorchJob
                        that Flyte's ``pytorch`` plugin runs: one pod per node, each starting
                        ``processes_per_node`` ranks (docs/train/multi-node.md).
    backend             'auto' (nccl when the task requests GPUs, else gloo), 'nccl' or 'gloo'; the ranks read it
                        from ``$PREBUILT_DIST_BACKEND``.
    tensorboard_output  name of a FlyteDirectory output that receives ``$PREBUILT_TENSORBOARD_DIR``.
    collective_timeout_seconds  how long a rank waits in a collective (or for a peer) before it fails
                        (default 1800): the default timeout of ``torch.distributed.init_process_group`` in every
                        rank, also given as ``$PREBUILT_COLLECTIVE_TIMEOUT``; a ``timeout=`` the script passes wins.
    checkpoint_max_size  the largest checkpoint folder saved, a Kubernetes quantity (default '20Gi'); a bigger one
                        is not saved (the previous checkpoint is kept) and the task's log and error say so.
    run_policy          what the training operator does with the PyTorchJob (``RunPolicy``: clean_pod_policy,
                        ttl_seconds_after_finished, active_deadline_seconds, backoff_limit); nodes > 1 only.
    master              the master pod's image and resources where they differ from the task's (``Role``).
    worker              the worker pods' image and resources where they differ from the task's (``Role``).
    elastic             train elastically (``Elastic``: nnodes 'MIN:MAX', max_restarts, rdzv_configs): the nodes
                        meet at torchrun's c10d rendezvous, a lost node can be replaced while training goes on, and
                        ``nodes`` is the most nodes (``elastic.nnodes``'s MAX; docs/train/elastic.md).
    """

    processes_per_node: int = 0
    nodes: int = 1
    backend: str = "auto"
    tensorboard_output: str = ""
    collective_timeout_seconds: int = field(default=1800, metadata=OMIT_EMPTY)
    checkpoint_max_size: str = field(default="20Gi", metadata=OMIT_EMPTY)
    run_policy: Optional[RunPolicy] = field(default=None, metadata=OMIT_EMPTY)
    master: Optional[Role] = field(default=None, metadata=OMIT_EMPTY)
    worker: Optional[Role] = field(default=None, metadata=OMIT_EMPTY)
    elastic: Optional[Elastic] = field(default=None, metadata=OMIT_EMPTY)

    def __post_init__(self):
        # Elastic: the node count is elastic.nnodes's MAX (a wrong nnodes is reported by validate, naming it).
        if isinstance(self.elastic, Elastic) and self.nodes == 1:
            try:
                object.__setattr__(self, "nodes", self.elastic.min_max()[1])
            except (ConfigError, AttributeError, TypeError):
                pass
        # The TensorBoard folder is an artifact like any other, so the script executor collects it.
        board, artifacts = self.tensorboard_output, self.artifacts
        if isinstance(board, str) and board and isinstance(artifacts, dict) and board not in artifacts:
            object.__setattr__(self, "artifacts", {**self.artifacts, self.tensorboard_output: TENSORBOARD_DIR})

    def validate(self) -> None:
        super().validate()
        if self.shell:
            raise ConfigError(self.field_name("shell"), "a training command is launched by torchrun, not a shell")
        first = self.command[0]
        if INTERPRETER.match(first):
            raise ConfigError(
                self.field_name("command"),
                f"starts with {first!r}: torchrun runs the command with the environment's python; start it with "
                f"the script, e.g. {['train.py', *self.command[1:2]]!r}, or with '-m', 'package.module'",
            )
        if first == "-m":
            if len(self.command) < 2 or not MODULE_NAME.match(self.command[1]):
                raise ConfigError(self.field_name("command"), "'-m' must be followed by a module name")
        elif first.startswith("-") or first.startswith("/"):
            raise ConfigError(
                self.field_name("command"), f"{first!r}: expected a script path inside the bundle, or '-m' and a module"
            )
        check_integer(self.processes_per_node, self.field_name("processes_per_node"))
        check_integer(self.nodes, self.field_name("nodes"), minimum=1)
        self._validate_production()
        if self.backend not in BACKENDS:
            raise ConfigError(self.field_name("backend"), f"{self.backend!r} is not one of {', '.join(BACKENDS)}")
        for name in [*self.env, *self.secret_env]:
            if name in LAUNCHER_ENV or name.startswith(LAUNCHER_ENV_PREFIXES):
                raise ConfigError(
                    self.field_name(f"env.{name}"),
                    f"is set or read by torchrun (reserved: {', '.join(LAUNCHER_ENV)} and names starting with "
                    f"{', '.join(LAUNCHER_ENV_PREFIXES)})",
                )
        if self.tensorboard_output and self.artifacts.get(self.tensorboard_output) != TENSORBOARD_DIR:
            raise ConfigError(
                self.field_name("tensorboard_output"),
                f"{self.tensorboard_output!r} is also in artifacts with another path; the output receives "
                f"${TENSORBOARD_VARIABLE}, remove it from artifacts",
            )

    def _validate_production(self) -> None:
        """Timeouts, the checkpoint cap and the PyTorchJob's settings (docs/train/multi-node.md)."""
        check_integer(self.collective_timeout_seconds, self.field_name("collective_timeout_seconds"), minimum=1)
        if parse_quantity(self.checkpoint_max_size, self.field_name("checkpoint_max_size")) <= 0:
            raise ConfigError(self.field_name("checkpoint_max_size"), "must be positive")
        for name in ("run_policy", "master", "worker"):
            if getattr(self, name) is not None and self.nodes == 1:
                raise ConfigError(
                    self.field_name(name), "applies to a Kubeflow PyTorchJob: set nodes > 1, or leave it out"
                )
        if self.elastic is not None:
            self._validate_elastic(self.elastic)
        elif self.worker is not None and self.worker.restart_policy not in ("", "Never"):
            raise ConfigError(
                self.field_name("worker.restart_policy"),
                "a restarted pod cannot rejoin torchrun's static rendezvous: elastic jobs only (elastic=Elastic(...))",
            )
        if self.master is not None and self.master.restart_policy not in ("", "Never"):
            raise ConfigError(self.field_name("master.restart_policy"), "the master's restart policy is Never")

    def _validate_elastic(self, elastic: Elastic) -> None:
        least, most = elastic.min_max()
        if self.nodes != most:
            raise ConfigError(
                self.field_name("nodes"),
                f"{self.nodes} where elastic.nnodes is {elastic.nnodes!r}: an elastic job's node count is "
                f"elastic.nnodes's MAX ({most}); leave nodes out",
            )
        if self.master is not None:
            raise ConfigError(
                self.field_name("master"),
                "an elastic job has no master (Flyte's plugin drops it; every pod is a worker): use worker=Role(...)",
            )

    @property
    def script(self) -> str:
        """The script the command starts ('' for ``-m module``)."""
        return "" if self.command[0] == "-m" else self.command[0].removeprefix("./")

    @property
    def min_nodes(self) -> int:
        """The fewest nodes the job trains on: elastic.nnodes's MIN, else ``nodes``."""
        return self.elastic.min_max()[0] if self.elastic is not None else self.nodes

    @property
    def checkpoint_max_bytes(self) -> int:
        return int(parse_quantity(self.checkpoint_max_size, self.field_name("checkpoint_max_size")))


@dataclass(frozen=True)
class TrainPreset(ScriptPreset):
    """A reusable partial ``TrainConfig`` (AME's fromTemplate); ``TrainPreset.of(...)``, ``.extend(...)``.

    A ``ScriptPreset`` works too: ``TrainTask(preset=cpu_job)`` adopts it."""

    CONFIG = TrainConfig

    @classmethod
    def adopt(cls, preset: ScriptPreset | None) -> "TrainPreset":
        if preset is None:
            return cls()
        if not isinstance(preset, ScriptPreset):
            raise ConfigError("preset", f"expected a TrainPreset or ScriptPreset, got {type(preset).__name__}")
        return preset if isinstance(preset, cls) else cls(preset.fields, preset.requests, preset.limits)
