"""Run a task template as flytepropeller's container plugin does (flyteplugins `go/tasks/plugins/k8s/container`).

1. Lay out storage like the backend: ``<root>/metadata/propeller/<project>-<domain>-<exec>/<node>/data``.
2. Write the *registered* TaskTemplate (``get_serializable``: keeps ``security_context`` and
   ``task_type_version``) to ``task.pb`` when the args use ``{{.taskTemplatePath}}``, and the inputs
   LiteralMap to ``inputs.pb``.
3. Render command and args, inject the backend's environment and secrets (``_FSEC_<GROUP>_<KEY>``).
4. Run it: ``pyflyte-execute`` in a subprocess, or the task's image in Docker with the storage root
   mounted at the same path (host networking, so services on 127.0.0.1 are reachable) and the pod's
   CPU and memory limits (``resources.py``); an OOM-killed container fails as Flyte reports it.
5. Read ``error.pb`` first, then ``outputs.pb`` (present when outputs are declared, at most 2 MB), a
   non-zero exit is a failure; retry RECOVERABLE errors while retries remain, like the backend.

Steps 3 to 5 for one pod are ``pods.PodRunner``'s, shared with the PyTorchJob replicas and the ArrayNode elements.

A template of task type ``pytorch`` runs as Flyte's Kubeflow PyTorch plugin runs it, when that plugin is enabled
(``enabled_plugins``, as flytepropeller's config): one replica per pod of the PyTorchJob, each a subprocess or a
container with the training operator's environment (``replicas.py``). Without the plugin, flytepropeller runs
any task type it has no plugin for with its container plugin, as one pod: so does the emulator.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.array_node_map_task import ArrayNodeMapTask
from flytekit.core.base_task import PythonTask
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.core.utils import write_proto_to_file
from flytekit.models.task import TaskTemplate
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.emulator import replicas
from flytekitplugins.prebuilt.emulator.inputs import input_literals
from flytekitplugins.prebuilt.emulator.outcomes import EmulatedRun, TaskFailed, open_up
from flytekitplugins.prebuilt.emulator.pods import InContainer, PodRunner
from flytekitplugins.prebuilt.emulator.rendering import Paths, render, uses_task_template
from flytekitplugins.prebuilt.emulator.resources import container_limits


@dataclass
class Emulator:
    """A local stand-in for a Flyte cluster's container plugin. ``root`` is the object store (a folder)."""

    root: str
    project: str = "flytesnacks"
    domain: str = "development"
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, key) -> value
    mounts: list[str] = field(default_factory=list)  # extra host paths visible in the container (like volumes)
    network: str = "host"
    timeout: float = 600  # seconds an attempt may run when its task sets no timeout (a task's own is honoured)
    enabled_plugins: tuple[str, ...] = (replicas.PYTORCH_TASK_TYPE,)  # backend plugins beside the container plugin
    node_losses: tuple[replicas.NodeLoss, ...] = ()  # a PyTorchJob's nodes lost in its first attempt (replicas.py)

    def __post_init__(self) -> None:
        from flytekitplugins.prebuilt.emulator.docker_runner import mount_problem
        from flytekitplugins.prebuilt.kit.config import ConfigError

        for path in self.mounts:  # refused here, not by Docker's API when a container starts (issue 17)
            problem = mount_problem(path)
            if problem:
                raise ConfigError("mounts", problem)

    def template(self, task: PythonTask, version: str = "emulated") -> TaskTemplate:
        """The template as registration would send it to Flyte Admin; what registration uploads (a large code
        bundle) lands in ``root`` where Admin's data proxy would put it (``data_proxy.py``)."""
        from flytekitplugins.prebuilt.emulator.data_proxy import registration_context

        settings = SerializationSettings(
            project=self.project, domain=self.domain, version=version, image_config=ImageConfig.auto_default_image()
        )
        with registration_context(self.root, self.project, self.domain):
            return get_serializable(OrderedDict(), settings, task).template

    def run(
        self,
        task: PythonTask | TaskTemplate,
        inputs: Optional[dict[str, Any]] = None,
        *,
        image: Optional[str] = None,
        in_container: bool = False,
        retries: Optional[int] = None,
        python_types: Optional[dict[str, type]] = None,
    ) -> EmulatedRun:
        """Run ``task`` with Python ``inputs``; return its outputs or raise ``TaskFailed``.

        ``in_container`` runs the template's image (or ``image``) in Docker, else a subprocess. A ``map_task``
        runs as flytepropeller's array node handler runs it, one sub-task per element (``array_node.py``).
        """
        if isinstance(task, ArrayNodeMapTask):
            from flytekitplugins.prebuilt.emulator.array_node import run_array_node

            return run_array_node(self, task, inputs, image=image, in_container=in_container)
        template = task if isinstance(task, TaskTemplate) else self.template(task)
        interface = task.python_interface if isinstance(task, PythonTask) else None
        input_types = interface.inputs if interface else TypeEngine.guess_python_types(template.interface.inputs)
        output_types = python_types or (
            interface.outputs if interface else TypeEngine.guess_python_types(template.interface.outputs)
        )
        retries = template.metadata.retries.retries if retries is None else retries
        execution = f"emu{uuid.uuid4().hex[:12]}"
        data_dir = os.path.join(
            self.root, "metadata", "propeller", f"{self.project}-{self.domain}-{execution}", "n0", "data"
        )
        os.makedirs(data_dir)
        ctx = FlyteContextManager.current_context()
        input_map = input_literals(template.id.name, inputs or {}, input_types, store=self.root)
        write_proto_to_file(input_map.to_flyte_idl(), os.path.join(data_dir, "inputs.pb"))
        container = template.container
        args = list(container.command) + list(container.args)
        if uses_task_template(args):
            write_proto_to_file(template.to_flyte_idl(), os.path.join(data_dir, "task.pb"))
        open_up(self.root)
        pods = self.pods
        where = InContainer(image or container.image, container_limits(container.resources)) if in_container else None
        for attempt in range(retries + 1):
            paths = self._paths(data_dir, execution, attempt)
            os.makedirs(paths.output_prefix, exist_ok=True)
            open_up(paths.output_prefix)
            argv = render(args, paths, input_map)
            env = {**pods.backend_env(template, execution, attempt), **(container.env or {})}
            pod = f"{execution}-n0-{attempt}"
            try:
                if template.type == replicas.PYTORCH_TASK_TYPE and template.type in self.enabled_plugins:
                    ended = self._run_job(template, pod, argv, env, paths, where, attempt)
                else:
                    ended = pods.run(argv, env, where, pods.attempt_limit(template))
                result = pods.collect(template, paths, ended, attempt + 1, pod)
            except TaskFailed as failure:
                if failure.recoverable and attempt < retries:
                    continue
                raise
            result.outputs = (
                TypeEngine.literal_map_to_kwargs(ctx, result.literals, output_types) if result.literals.literals else {}
            )
            return result
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ steps

    def _run_job(self, template: TaskTemplate, name: str, argv, env, paths: Paths, where, attempt: int):
        """The PyTorchJob's pods (``replicas.py``); a job the operator fails is Flyte's retryable
        ``DownstreamSystemError`` (flyteplugins ``kfoperators/common/common_operator.go``, ``GetPhaseInfo``)."""
        pods = self.pods
        job = replicas.pytorch_job(template.custom, template.task_type_version, name, _free_port())
        losses = self.node_losses if attempt == 0 else ()
        try:
            return pods.run_job(job, argv, env, paths.output_prefix, where, pods.attempt_limit(template), losses)
        except replicas.JobFailed as failed:
            message, logs = failed.args[0], failed.args[1] if len(failed.args) > 1 else ""
            reason = f"Job failed:\n\tPyTorchJobFailed - Job {name} {message}"
            raise TaskFailed("DownstreamSystemError", reason, "RECOVERABLE", "USER", attempt + 1, logs) from None

    def _paths(self, data_dir: str, execution: str, attempt: int) -> Paths:
        unique = hashlib.sha1(f"{execution}/n0/{attempt}".encode()).hexdigest()[:20]
        raw = os.path.join(self.root, "raw", unique[:2], unique)
        # A retry reads the previous attempt's checkpoint (flytepropeller pkg/controller/nodes/task/
        # taskexec_context.go, ComputePreviousCheckpointPath); the first attempt has none.
        previous = self._paths(data_dir, execution, attempt - 1).checkpoint_prefix if attempt else ""
        return Paths(
            input_path=os.path.join(data_dir, "inputs.pb"),
            input_prefix=data_dir,
            output_prefix=os.path.join(data_dir, str(attempt)),
            raw_output_prefix=raw,
            task_template_path=os.path.join(data_dir, "task.pb"),
            per_retry_unique_key=f"a{unique}",
            checkpoint_prefix=os.path.join(raw, "_flytecheckpoints"),
            previous_checkpoint_prefix=previous,
        )

    @property
    def pods(self) -> PodRunner:
        """What runs this emulator's pods (``pods.py``): single tasks, PyTorchJob replicas, ArrayNode elements."""
        return PodRunner(
            self.root, self.project, self.domain, self.env, self.secrets, self.mounts, self.network, self.timeout
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
