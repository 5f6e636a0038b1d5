"""Pods, as the emulator runs them for a single task, each replica of a PyTorchJob and each element of an ArrayNode.

A *pod* here is one container run of the rendered template's command (``pyflyte-execute`` or
``pyflyte-map-execute``) with the environment the backend gives it (flytepropeller's ``FLYTE_INTERNAL_*`` variables,
the ``_FSEC_*`` secrets the template requests, plus whatever the caller adds: a replica's or an element's own
variables), run in a subprocess or in a Docker container of the task's image; once it ends, its outputs are
collected from its output prefix as flytepropeller reads them (``error*.pb`` first, then ``outputs.pb``).

``PodRunner`` does those three steps; the callers (``platform.py``, ``array_node.py``) lay out the storage, render
the command and decide on retries.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

from flyteidl.core import errors_pb2, literals_pb2
from flytekit.models import literals
from flytekit.models.core.errors import ContainerError, ErrorDocument
from flytekit.models.core.execution import ExecutionError
from flytekit.models.task import TaskTemplate
from flytekitplugins.prebuilt.emulator import replicas
from flytekitplugins.prebuilt.emulator.docker_runner import ContainerExit
from flytekitplugins.prebuilt.emulator.outcomes import EmulatedRun, TaskFailed, oom_kill_failure
from flytekitplugins.prebuilt.emulator.rendering import Paths
from flytekitplugins.prebuilt.emulator.resources import ContainerLimits

MAX_OUTPUT_BYTES = 2 * 1024 * 1024  # storage.limits.maxDownloadMBs default


@dataclass(frozen=True)
class InContainer:
    """Run pods in Docker: ``image`` with the pod's CPU and memory ``limits``."""

    image: str
    limits: ContainerLimits = field(default_factory=ContainerLimits)


@dataclass(frozen=True)
class PodRunner:
    """Runs pods (see the module docstring) with the settings of an ``Emulator``: its object store ``root`` (the
    working folder of a subprocess, mounted at the same path in a container, with ``mounts``), ``project`` and
    ``domain``, the backend's ``env`` and ``secrets``, the containers' ``network``, and ``timeout``: how long a
    pod may run when its task sets no ``timeout`` of its own."""

    root: str
    project: str
    domain: str
    env: dict[str, str]
    secrets: dict[tuple[str, str], str]
    mounts: list[str]
    network: str
    timeout: float

    def backend_env(self, template: TaskTemplate, execution: str, attempt: int) -> dict[str, str]:
        """The environment flytepropeller gives a pod of ``template``: its execution's variables, the emulator's
        ``env``, and the secrets the template requests, named as flytekit's SecretsManager looks them up."""
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

    def run(
        self, argv: list[str], env: dict[str, str], where: Optional[InContainer] = None, limit: Optional[float] = None
    ) -> ContainerExit:
        """Run one pod to its end, at most ``limit`` seconds (``attempt_limit``; else ``timeout``): a subprocess, or
        a container when ``where``. One still running then is stopped as the kubelet deletes a pod (SIGTERM, then
        SIGKILL), and its exit says ``timed_out``."""
        limit = self.timeout if limit is None else limit
        if where is not None:
            from flytekitplugins.prebuilt.emulator.docker_runner import run_container

            return run_container(where.image, argv, env, self.volumes, self.network, limit, where.limits)
        pod = LocalPod(argv, env, self.root)
        try:
            code = pod.wait(limit)
        except subprocess.TimeoutExpired:
            pod.stop()
            logs = pod.finish(124).logs
            return ContainerExit(124, f"timed out after {limit:g}s\n{logs}", oom_killed=False, timed_out=True)
        return pod.finish(code)

    def attempt_limit(self, template: TaskTemplate) -> float:
        """How long one attempt of ``template`` may run: the task's ``timeout`` (flytekit's task metadata), which
        flytepropeller's compiler makes the node's execution deadline (``pkg/compiler/transformers/k8s/node.go``),
        when it sets one; else the emulator's own ``timeout``."""
        return task_timeout(template) or self.timeout

    def run_job(
        self,
        job: replicas.Job,
        argv: list[str],
        env: dict[str, str],
        prefix: str,
        where: Optional[InContainer] = None,
        limit: Optional[float] = None,
        losses: tuple[replicas.NodeLoss, ...] = (),
    ) -> ContainerExit:
        """Run every pod of a PyTorchJob at once, each with ``env`` and its own, at most ``limit`` seconds (as
        ``run``), losing the nodes ``losses`` names (``replicas.JobRun``); the job's exit code (the first failure's;
        an elastic job's 0 once a worker succeeded), its pods' logs, and whether one was OOM-killed. ``prefix``:
        the output prefix they share. Raises ``replicas.JobFailed`` when the operator fails the job."""
        from flytekitplugins.prebuilt.emulator.docker_runner import start_container

        limit = self.timeout if limit is None else limit

        def start(pod: replicas.Pod) -> replicas.RunningPod:
            pod_env = {**env, **pod.env}
            if where is not None:
                return start_container(where.image, argv, pod_env, self.volumes, self.network, where.limits)
            return LocalPod(argv, pod_env, self.root)

        run = replicas.JobRun(job, start, losses)
        try:
            started_at = time.monotonic()
            codes = run.run(limit, failed=lambda: any(f.startswith("error") for f in os.listdir(prefix)))
            timed_out = time.monotonic() - started_at >= limit and 124 in codes
        except BaseException as error:
            run.stop()
            logs = _job_logs(run, [124] * len(run.running))
            if isinstance(error, replicas.JobFailed):
                error.args = (*error.args, logs)
            raise
        exits = [started.finish(code) for started, code in zip(run.running, codes)]
        logs = _job_logs(run, codes, exits)
        if job.elastic and 0 in codes:  # the operator: an elastic job succeeds once a worker has
            code = 0
        else:
            code = next((e.code for e in exits if e.code), 0)
        return ContainerExit(code, logs, any(e.oom_killed for e in exits), timed_out)

    @property
    def volumes(self) -> list[str]:
        """Host paths a container sees at the same path: the object store and the emulator's ``mounts``."""
        return [self.root, *self.mounts]

    def collect(
        self, template: TaskTemplate, paths: Paths, ended: ContainerExit, attempts: int, pod: str
    ) -> EmulatedRun:
        """What pod ``pod`` (its name, for an OOM kill's message) of ``template`` produced under ``paths``, as
        flytepropeller reads it: ``TaskFailed`` for the task's timeout, an OOM kill, an error document, a non-zero
        exit, missing or too large outputs; else the run, its ``outputs`` left for the caller to convert."""
        deadline = task_timeout(template)
        if ended.timed_out and deadline:  # without one, the emulator's own limit: a non-zero exit (SYSTEM)
            raise timeout_failure(deadline, attempts, ended.logs)
        if ended.oom_killed:
            raise oom_kill_failure(pod, ended.code, attempts, ended.logs)
        code, logs, prefix = ended.code, ended.logs, paths.output_prefix
        error_files = sorted(f for f in os.listdir(prefix) if f.startswith("error") and f.endswith(".pb"))
        if error_files:
            raise _earliest_error([os.path.join(prefix, name) for name in error_files], attempts, logs)
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


class LocalPod:
    """One pod of a job as a subprocess, started at once (``docker_runner.RunningContainer``'s counterpart), in a
    session of its own: everything in it can be killed at once, as a lost node takes its pod's processes."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str):
        self._log = tempfile.TemporaryFile()
        argv, env = local_command(argv, env)
        self._popen = subprocess.Popen(
            argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )

    def poll(self) -> Optional[int]:
        return self._popen.poll()

    def kill(self) -> None:
        """SIGKILL to its process group (torchrun's ranks, in sessions of their own, die with torchrun)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait()

    def output(self) -> str:
        """What it has written so far."""
        return os.pread(self._log.fileno(), 16 * 1024 * 1024, 0).decode("utf-8", "replace")

    def wait(self, timeout: float) -> int:
        """Its exit code; ``subprocess.TimeoutExpired`` if it runs longer than ``timeout`` seconds."""
        return self._popen.wait(timeout)

    def stop(self) -> None:
        self._popen.terminate()
        try:
            self._popen.wait(10)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()

    def finish(self, code: int) -> ContainerExit:
        """Its exit and its output; the log file is closed."""
        self._log.seek(0)
        logs = self._log.read().decode("utf-8", "replace")
        self._log.close()
        return ContainerExit(code, logs, oom_killed=False)


def _job_logs(run: replicas.JobRun, codes: list[int], exits: Optional[list[ContainerExit]] = None) -> str:
    """Every pod's log, the replaced ones first (a lost node's pod, a restarted container), each under a header."""
    parts = []
    for name, pod, why in run.earlier:
        parts.append(f"--- pod {name} ({why})\n{pod.finish(pod.poll() or 0).logs}")
    for pod, code, index in zip(run.running, codes, range(len(codes))):
        ended = exits[index] if exits is not None else pod.finish(code)
        parts.append(f"--- pod {run.job.pods[index].name} (exit code {ended.code})\n{ended.logs}")
    return "".join(parts)


def local_command(argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """``argv`` with pyflyte-execute from this interpreter's bin folder, and this machine's environment without
    anything a pod would not have (secrets, Flyte's internal variables) plus ``env``."""
    bin_dir = os.path.dirname(sys.executable)
    if argv and not os.path.isabs(argv[0]) and os.path.exists(os.path.join(bin_dir, argv[0])):
        argv = [os.path.join(bin_dir, argv[0]), *argv[1:]]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("_FSEC_", "FLYTE_INTERNAL_", "_F_"))}
    return argv, {**clean, **env}


def task_timeout(template: TaskTemplate) -> Optional[float]:
    """The task's ``timeout`` in seconds (``TaskMetadata.timeout``), None when unset or zero (no deadline)."""
    timeout = template.metadata.timeout if template.metadata else None
    seconds = timeout.total_seconds() if timeout else 0
    return seconds if seconds > 0 else None


def timeout_failure(seconds: float, attempts: int, logs: str) -> TaskFailed:
    """flytepropeller's failure of an attempt that ran past the node's execution deadline (``pkg/controller/nodes/
    executor.go``, ``handleQueuedOrRunningNode``): ``TimeoutExpired``, a USER error, retryable (the attempt counts
    against the task's retries); the pod is aborted and what it wrote is not read."""
    message = f"task execution timeout [{go_duration(seconds)}] expired"
    return TaskFailed("TimeoutExpired", message, "RECOVERABLE", "USER", attempts, logs)


def go_duration(seconds: float) -> str:
    """``seconds`` as Go's ``time.Duration.String`` writes it: ``500ms``, ``1.5s``, ``2m0s``, ``1h30m0s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    text = f"{rest:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def _earliest_error(paths: list[str], attempts: int, logs: str) -> TaskFailed:
    """The task's failure from its pods' error documents (several: ``error-<uuid>.pb``): the earliest, as
    flytepropeller picks it (pluginmachinery/ioutils/remote_file_output_reader.go, the "Earliest" strategy)."""
    documents = [_read_proto(path, errors_pb2.ErrorDocument) for path in paths]
    first = min(documents, key=lambda d: d.error.timestamp.ToNanoseconds())
    error = ErrorDocument.from_flyte_idl(first).error
    kind = "RECOVERABLE" if error.kind == ContainerError.Kind.RECOVERABLE else "NON_RECOVERABLE"
    origin = "USER" if error.origin == ExecutionError.ErrorKind.USER else "SYSTEM"
    return TaskFailed(error.code, error.message, kind, origin, attempts, logs)


def _read_proto(path: str, message_type):
    message = message_type()
    with open(path, "rb") as f:
        message.ParseFromString(f.read())
    return message
