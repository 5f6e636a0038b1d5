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

A template of task type ``pytorch`` runs as Flyte's Kubeflow PyTorch plugin runs it, when that plugin is enabled
(``enabled_plugins``, as flytepropeller's config): one replica per pod of the PyTorchJob, each a subprocess or a
container with the training operator's environment (``replicas.py``). Without the plugin, flytepropeller runs
any task type it has no plugin for with its container plugin, as one pod: so does the emulator.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

from flyteidl.core import errors_pb2, literals_pb2
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.core.array_node_map_task import ArrayNodeMapTask
from flytekit.core.base_task import PythonTask
from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.core.utils import write_proto_to_file
from flytekit.models import literals
from flytekit.models.core.errors import ContainerError, ErrorDocument
from flytekit.models.task import TaskTemplate
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.emulator import replicas
from flytekitplugins.prebuilt.emulator.inputs import input_literals
from flytekitplugins.prebuilt.emulator.outcomes import EmulatedRun, TaskFailed, oom_kill_failure, open_up
from flytekitplugins.prebuilt.emulator.rendering import Paths, render, uses_task_template
from flytekitplugins.prebuilt.emulator.resources import ContainerLimits, container_limits

MAX_OUTPUT_BYTES = 2 * 1024 * 1024  # storage.limits.maxDownloadMBs default


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
    timeout: float = 600
    enabled_plugins: tuple[str, ...] = (replicas.PYTORCH_TASK_TYPE,)  # backend plugins beside the container plugin

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
        input_map = input_literals(template.id.name, inputs or {}, input_types)
        write_proto_to_file(input_map.to_flyte_idl(), os.path.join(data_dir, "inputs.pb"))
        container = template.container
        args = list(container.command) + list(container.args)
        if uses_task_template(args):
            write_proto_to_file(template.to_flyte_idl(), os.path.join(data_dir, "task.pb"))
        open_up(self.root)
        logs = ""
        for attempt in range(retries + 1):
            paths = self._paths(data_dir, execution, attempt)
            os.makedirs(paths.output_prefix, exist_ok=True)
            open_up(paths.output_prefix)
            argv = render(args, paths, input_map)
            env = {
                **self._backend_env(template, execution, attempt),
                **{k: v for k, v in (container.env or {}).items()},
            }
            oom_killed = False
            limits = container_limits(container.resources)
            if template.type == replicas.PYTORCH_TASK_TYPE and template.type in self.enabled_plugins:
                pods = replicas.pytorch_job(
                    template.custom, template.task_type_version, f"{execution}-n0-{attempt}", _free_port()
                )
                where = (image or container.image, limits) if in_container else None
                code, logs, oom_killed = self._job(pods, argv, env, where, paths.output_prefix)
            elif in_container:
                code, logs, oom_killed = self._docker(image or container.image, argv, env, limits)
            else:
                code, logs = self._subprocess(argv, env)
            try:
                if oom_killed:
                    raise oom_kill_failure(f"{execution}-n0-{attempt}", code, attempt + 1, logs)
                result = self._collect(template, paths, code, logs, attempt + 1)
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

    def _backend_env(self, template: TaskTemplate, execution: str, attempt: int) -> dict[str, str]:
        env = {
            "FLYTE_INTERNAL_EXECUTION_WORKFLOW": f"{self.project}:{self.domain}:emulated",
            "FLYTE_INTERNAL_EXECUTION_ID": execution,
            "FLYTE_INTERNAL_EXECUTION_PROJECT": self.project,
            "FLYTE_INTERNAL_EXECUTION_DOMAIN": self.domain,
            "FLYTE_ATTEMPT_NUMBER": str(attempt),
            "FLYTE_INTERNAL_TASK_PROJECT": template.id.project,
            "FLYTE_INTERNAL_TASK_DOMAIN": template.id.domain,
            "FLYTE_INTERNAL_TASK_NAME": template.id.name,
            "FLYTE_INTERNAL_TASK_VERSION": template.id.version,
            **self.env,
        }
        requested = template.security_context.secrets if template.security_context else []
        for secret in requested:  # propeller's webhook injects only what the template requests
            value = self.secrets.get((secret.group or "", secret.key))
            if value is not None:  # named as flytekit's SecretsManager looks it up: _FSEC_<GROUP>_<VERSION>_<KEY>
                parts = filter(None, (secret.group, secret.group_version, secret.key))
                env["_FSEC_" + "_".join(part.upper() for part in parts)] = value
        return env

    def _subprocess(self, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
        argv, env = _local_command(argv, env)
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.timeout, cwd=self.root)
        except subprocess.TimeoutExpired as e:
            return 124, f"timed out after {self.timeout}s\n{e.stdout or ''}{e.stderr or ''}"
        return done.returncode, done.stdout + done.stderr

    def _job(
        self,
        pods: list[replicas.Pod],
        argv: list[str],
        env: dict[str, str],
        container: Optional[tuple[str, ContainerLimits]],
        prefix: str,
    ) -> tuple[int, str, bool]:
        """Run every pod of a PyTorchJob at once, as subprocesses or as containers of ``(image, limits)``; the
        job's exit code (the first failure's), its pods' logs, and whether one was OOM-killed."""
        from flytekitplugins.prebuilt.emulator.docker_runner import start_container

        running: list = []
        try:
            for pod in pods:
                pod_env = {**env, **pod.env}
                if container:
                    mounts = [self.root, *self.mounts]
                    running.append(start_container(container[0], argv, pod_env, mounts, self.network, container[1]))
                else:
                    running.append(_Process(argv, pod_env, self.root))
            codes = replicas.wait_for_job(
                running, self.timeout, failed=lambda: any(f.startswith("error") for f in os.listdir(prefix))
            )
        except BaseException:
            for pod in running:
                pod.stop()
                pod.finish(124)
            raise
        exits = [pod.finish(code) for pod, code in zip(running, codes)]
        logs = "".join(f"--- pod {pod.name} (exit code {exit.code})\n{exit.logs}" for pod, exit in zip(pods, exits))
        return next((e.code for e in exits if e.code), 0), logs, any(e.oom_killed for e in exits)

    def _docker(
        self, image: str, argv: list[str], env: dict[str, str], limits: ContainerLimits
    ) -> tuple[int, str, bool]:
        from flytekitplugins.prebuilt.emulator.docker_runner import run_container

        return run_container(
            image,
            argv,
            env,
            mounts=[self.root, *self.mounts],
            network=self.network,
            timeout=self.timeout,
            limits=limits,
        )

    def _collect(self, template: TaskTemplate, paths: Paths, code: int, logs: str, attempts: int) -> EmulatedRun:
        prefix = paths.output_prefix
        error_files = sorted(f for f in os.listdir(prefix) if f.startswith("error") and f.endswith(".pb"))
        if error_files:
            # several pods' errors (error-<uuid>.pb): the earliest is the task's, as flytepropeller picks it
            # (pluginmachinery/ioutils/remote_file_output_reader.go, the "Earliest" aggregation strategy)
            documents = [_read_proto(os.path.join(prefix, name), errors_pb2.ErrorDocument) for name in error_files]
            first = min(documents, key=lambda d: d.error.timestamp.ToNanoseconds())
            error = ErrorDocument.from_flyte_idl(first).error
            raise TaskFailed(
                error.code,
                error.message,
                _kind(error.kind),
                _origin(error.origin),
                attempts,
                logs,
            )
        if code != 0:
            raise TaskFailed(
                "ContainerFailed",
                f"exit code {code}; last output:\n{logs[-4000:]}",
                "RECOVERABLE",
                "SYSTEM",
                attempts,
                logs,
            )
        outputs_pb = os.path.join(prefix, "outputs.pb")
        if template.interface.outputs:
            if not os.path.exists(outputs_pb):
                raise TaskFailed(
                    "OutputsNotFound", f"no outputs.pb under {prefix}", "RECOVERABLE", "SYSTEM", attempts, logs
                )
            if os.path.getsize(outputs_pb) > MAX_OUTPUT_BYTES:
                raise TaskFailed(
                    "OutputSizeExceeded", "outputs.pb is larger than 2 MB", "NON_RECOVERABLE", "SYSTEM", attempts, logs
                )
        output_map = (
            literals.LiteralMap.from_flyte_idl(_read_proto(outputs_pb, literals_pb2.LiteralMap))
            if os.path.exists(outputs_pb)
            else literals.LiteralMap({})
        )
        deck = os.path.join(prefix, "deck.html")
        return EmulatedRun(
            outputs={},
            literals=output_map,
            output_prefix=prefix,
            attempts=attempts,
            logs=logs,
            deck_path=deck if os.path.exists(deck) else None,
            files=sorted(os.listdir(prefix)),
        )


class _Process:
    """One pod of a job as a subprocess (``docker_runner.RunningContainer``'s counterpart)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str):
        self._log = tempfile.TemporaryFile()
        argv, env = _local_command(argv, env)
        self._popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd)

    def poll(self) -> Optional[int]:
        return self._popen.poll()

    def stop(self) -> None:
        self._popen.terminate()
        try:
            self._popen.wait(10)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()

    def finish(self, code: int):
        from flytekitplugins.prebuilt.emulator.docker_runner import ContainerExit

        self._log.seek(0)
        logs = self._log.read().decode("utf-8", "replace")
        self._log.close()
        return ContainerExit(code, logs, oom_killed=False)


def _local_command(argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` with pyflyte-execute from this interpreter's bin folder, and this machine's environment without
    anything a pod would not have (secrets, Flyte's internal variables) plus ``env``."""
    bin_dir = os.path.dirname(sys.executable)
    if argv and not os.path.isabs(argv[0]) and os.path.exists(os.path.join(bin_dir, argv[0])):
        argv = [os.path.join(bin_dir, argv[0]), *argv[1:]]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("_FSEC_", "FLYTE_INTERNAL_", "_F_"))}
    return argv, {**clean, **env}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _read_proto(path: str, message_type):
    message = message_type()
    with open(path, "rb") as f:
        message.ParseFromString(f.read())
    return message


def _kind(kind: int) -> str:
    return "RECOVERABLE" if kind == ContainerError.Kind.RECOVERABLE else "NON_RECOVERABLE"


def _origin(origin: int) -> str:
    from flytekit.models.core.execution import ExecutionError

    return "USER" if origin == ExecutionError.ErrorKind.USER else "SYSTEM"
