"""What an emulated run ends with: its outputs (``EmulatedRun``), or the failure Flyte would report
(``TaskFailed``); shared by single tasks (``platform.py``) and array nodes (``array_node.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Optional

from flytekit.models import literals


class TaskFailed(Exception):
    """The task failed the way Flyte would report it: ``kind`` RECOVERABLE/NON_RECOVERABLE, ``origin`` USER/SYSTEM."""

    def __init__(self, code: str, message: str, kind: str, origin: str, attempts: int, logs: str = ""):
        super().__init__(f"[{origin}/{kind}] {code}: {message}")
        self.code, self.message, self.kind, self.origin = code, message, kind, origin
        self.attempts, self.logs = attempts, logs

    @property
    def recoverable(self) -> bool:
        return self.kind == "RECOVERABLE"


@dataclass
class EmulatedRun:
    outputs: dict[str, Any]  # Python values (by the task's interface)
    literals: literals.LiteralMap
    output_prefix: str
    attempts: int
    logs: str
    deck_path: Optional[str] = None
    files: list[str] = field(default_factory=list)


def oom_kill_failure(container_name: str, code: int, attempts: int, logs: str) -> TaskFailed:
    """Flyte's report of an OOM-killed container: code ``OOMKilled``, a USER error that is RECOVERABLE (retried while
    the task's retries allow). flyteplugins ``go/tasks/pluginmachinery/flytek8s/pod_helper.go``: ``DemystifyFailure``
    for a failed pod, ``DemystifySuccess`` for a pod that exited 0 although one of its processes was OOM-killed, both
    ``PhaseInfoRetryableFailure`` (``Kind: USER``, ``pluginmachinery/core/phase.go``). An ``error.pb`` the task may
    have written before is not read, as on the cluster."""
    if code == 0:
        message = "Pod reported success despite being OOMKilled"
    else:
        message = (
            "Pod failed. No message received from kubernetes.\r\n"
            f"[{container_name}] terminated with exit code ({code}). Reason [OOMKilled]. Message: \n."
        )
    return TaskFailed("OOMKilled", message, "RECOVERABLE", "USER", attempts, logs)


def open_up(path: str) -> None:
    """Let the container's non-root user write where a bucket would let it."""
    for directory, _, _ in os.walk(path):
        os.chmod(directory, 0o777)
