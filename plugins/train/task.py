"""``TrainTask``: distributed PyTorch training of a user's code folder, in a prebuilt image that provides torch."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from flytekit.configuration import SerializationSettings
from flytekitplugins.prebuilt.kit.backend_plugin import BackendPlugin
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.placeholders import INPUT_PLACEHOLDER
from flytekitplugins.prebuilt.kit.quantities import parse_quantity, requests_and_limits
from flytekitplugins.prebuilt.kit.task import config_keywords
from flytekitplugins.prebuilt.script.config import ScriptPreset
from flytekitplugins.prebuilt.script.task import ScriptTask
from flytekitplugins.prebuilt.train.config import TrainConfig, TrainPreset
from flytekitplugins.prebuilt.train.job import pytorch_job_custom
from flytekitplugins.prebuilt.train.spec import SPEC

PYTORCH_TASK_TYPE = "pytorch"  # Flyte's Kubeflow PyTorch plugin
CUDA_VARIANT = "cuda"  # images/train built with torch's CUDA build (make images-gpu)


class TrainTask(ScriptTask):
    """Train with the code in ``source``: torchrun starts ``command`` once per process (``processes_per_node``,
    by default one per requested GPU), each process a rank of one ``torch.distributed`` group.

    Everything else is the ``script`` type's: the source is packed into a content-addressed bundle, its
    requirements are installed (on top of the image's torch, which is never replaced), inputs reach the command as
    ``{{.inputs.x}}`` and ``$PREBUILT_INPUT_X``, outputs come from ``$PREBUILT_OUTPUTS_FILE`` (written by rank 0)
    and ``artifacts``. Added: a checkpoint folder restored from the previous attempt, a metrics file drawn in the
    task's Deck, a TensorBoard folder as an output, and failures reported as the failing rank's exception
    (docs/train/).

    ``TrainTask(name, source, command=[...], processes_per_node=2, requests={"cpu": "2"})`` or
    ``config=TrainConfig(...)``; a ``TrainPreset`` (or a ``ScriptPreset``) gives shared defaults.
    """

    SPEC = SPEC
    WRITES_DECK = True  # the metrics' curves

    def __init__(
        self,
        name: str,
        source: str,
        command: Optional[Sequence[str]] = None,
        config: Optional[TrainConfig] = None,
        preset: Optional[ScriptPreset] = None,
        requests: Optional[dict[str, Any]] = None,
        limits: Optional[dict[str, Any]] = None,
        **kwargs,  # inputs, outputs, bundle_store, ignore (as ScriptTask), flytekit's (retries, cache, ...)
    ):
        fields = config_keywords(TrainConfig, config, kwargs)
        requests, limits = requests_and_limits(requests, limits, kwargs.pop("resources", None))  # Resources too
        if config is None:
            preset = TrainPreset.adopt(preset)
            if command is not None:
                fields["command"] = tuple(command) if isinstance(command, (list, tuple)) else command
            config = preset.config(**fields)
            requests = {**(preset.requests or {}), **(requests or {})}
            limits = {**(preset.limits or {}), **(limits or {})}
        elif command is not None or preset is not None:
            raise ConfigError("config", "give either config, or command (with an optional preset)")
        config.check()
        self._gpus = _gpus(requests, limits)
        _check_processes(config, self._gpus)
        _check_roles(config, self._gpus)
        super().__init__(name, source, config=config, requests=requests, limits=limits, **kwargs)
        script = config.script
        if script and not INPUT_PLACEHOLDER.search(script) and not self.bundle.has_file(script):
            raise ConfigError(
                "config.command", f"{script!r} is not in the bundle (files: {', '.join(self.bundle.files[:10])})"
            )

    def image_variant(self) -> str:
        """The CUDA build of the train image when the task requests GPUs (tag ``...-cuda``), else the CPU build."""
        return CUDA_VARIANT if self._gpus else ""

    def backend_plugin(self, config: TrainConfig) -> Optional[BackendPlugin]:
        """One node: Flyte's container plugin runs the pod. More: a Kubeflow PyTorchJob, run by Flyte's ``pytorch``
        plugin (``task_type_version`` 1, flyteplugins ``go/tasks/plugins/k8s/kfoperators/pytorch/pytorch.go``) from
        the fields of flyteidl's ``kubeflow.DistributedPyTorchTrainingTask``, written as flytekit's own PyTorch tasks
        write them (``MessageToDict``, ``plugins/flytekit-kf-pytorch/flytekitplugins/kfpytorch/task.py``).

        A master and ``nodes - 1`` workers, not the elastic form: the operator then gives every pod its node rank
        and the master's address (``MASTER_ADDR``, ``PET_NODE_RANK``; kubeflow/training-operator
        ``pkg/controller.v1/pytorch/envvar.go``), torchrun's static rendezvous needs nothing more, global rank 0
        is always on the master pod, and the job succeeds when the master does. Restart policy ``Never``: a failed
        pod fails the job and Flyte retries the task, resuming from its checkpoint.

        With ``elastic``, the elastic form, as kfpytorch's ``Elastic`` writes it: ``nodes`` workers and an
        ``elasticConfig`` (c10d rendezvous at the first worker, MIN:MAX nodes, restarts, processes per node)."""
        if config.nodes == 1:
            return None
        processes = config.processes_per_node or self._gpus or 1
        custom = pytorch_job_custom(
            config.nodes, config.master, config.worker, config.run_policy, config.elastic, processes
        )
        return BackendPlugin(task_type=PYTORCH_TASK_TYPE, version=1, custom=custom)

    def get_command(self, settings: SerializationSettings) -> list[str]:
        """pyflyte-execute's arguments with the checkpoint prefixes, as flytekit's own tasks have them
        (``PythonAutoContainerTask.get_default_command``): Flyte fills in this attempt's checkpoint folder and the
        previous attempt's, which ``current_context().checkpoint`` then reads and writes."""
        command = super().get_command(settings)
        at = command.index("--resolver")
        checkpoints = [
            "--checkpoint-path",
            "{{.checkpointOutputPrefix}}",
            "--prev-checkpoint",
            "{{.prevCheckpointPrefix}}",
        ]
        return [*command[:at], *checkpoints, *command[at:]]


def _gpus(requests: Optional[dict[str, Any]], limits: Optional[dict[str, Any]]) -> int:
    """The GPUs the task asks for: its limit, else its request (Kubernetes gives a pod its GPU limit)."""
    for field, given in (("limits", limits), ("requests", requests)):
        if given and "gpu" in given:
            return int(parse_quantity(given["gpu"], f"{field}.gpu"))
    return 0


def _check_processes(config: TrainConfig, gpus: int) -> None:
    """NCCL runs one process per GPU; without GPUs there is nothing for it to run on."""
    nccl = config.backend == "nccl" or (config.backend == "auto" and gpus > 0)
    if config.backend == "nccl" and gpus == 0:
        raise ConfigError("config.backend", "nccl needs GPUs: request them, e.g. requests={'gpu': 1}")
    if nccl and config.processes_per_node > gpus:
        raise ConfigError(
            "config.processes_per_node",
            f"{config.processes_per_node} processes on {gpus} GPU(s): nccl needs a GPU per process "
            f"(leave it at 0 for one process per GPU)",
        )


def _check_roles(config: TrainConfig, gpus: int) -> None:
    """Every pod runs the same template, whose resources decide the backend and the processes per node: a role may
    change its pods' CPUs, memory and image, not their GPU count."""
    for name in ("master", "worker"):
        role = getattr(config, name)
        role_gpus = role.gpus() if role is not None else None
        if role_gpus is not None and role_gpus != gpus:
            raise ConfigError(
                f"config.{name}.limits.gpu" if "gpu" in role.limits else f"config.{name}.requests.gpu",
                f"{role_gpus} GPU(s) where the task has {gpus}: every pod runs the same processes per node and "
                f"backend, so set the GPUs in the task's requests/limits",
            )
