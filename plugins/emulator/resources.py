"""The container's CPU and memory limits, as the task's pod on a cluster would have them.

flytepropeller gives the pod the template's resources; a limit that is not set takes the request's
value (flyteplugins ``go/tasks/pluginmachinery/flytek8s/container_helper.go``,
``AdjustOrDefaultResource``: "using the Request when the Limit is unset"). The Docker runner applies
these limits, so a task that needs more memory than it asked for is OOM-killed locally as on the
cluster. Kubernetes nodes run without swap, so the memory limit is the swap limit too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from flytekit.models.task import Resources
from flytekitplugins.prebuilt.kit.quantities import parse_quantity

NAMES = {
    Resources.ResourceName.CPU: "cpu",
    Resources.ResourceName.MEMORY: "memory",
    Resources.ResourceName.GPU: "gpu",
}


@dataclass(frozen=True)
class ContainerLimits:
    memory_bytes: Optional[int] = None
    cpus: Optional[float] = None
    gpus: int = 0  # NVIDIA GPUs, given to the container as the device plugin gives them to a pod

    def docker_arguments(self) -> dict[str, Any]:
        """Keyword arguments for the Docker SDK's ``containers.run``."""
        arguments: dict[str, Any] = {}
        if self.memory_bytes:
            arguments.update(mem_limit=self.memory_bytes, memswap_limit=self.memory_bytes)
        if self.cpus:
            arguments["nano_cpus"] = int(self.cpus * 1e9)
        if self.gpus:  # `docker run --gpus N` (needs the NVIDIA container toolkit)
            from docker.types import DeviceRequest

            arguments["device_requests"] = [DeviceRequest(count=self.gpus, capabilities=[["gpu"]])]
        return arguments


def container_limits(resources: Optional[Resources]) -> ContainerLimits:
    """The effective CPU, memory and GPU limits of a template's container resources (limit, else request)."""
    if resources is None:
        return ContainerLimits()
    given: dict[str, tuple[str, str]] = {}
    for kind, entries in (("requests", resources.requests), ("limits", resources.limits)):  # limits win
        for entry in entries or []:
            if entry.name in NAMES and entry.value:
                given[NAMES[entry.name]] = (kind, entry.value)
    memory = cpu = None
    if "memory" in given:
        kind, value = given["memory"]
        memory = math.ceil(parse_quantity(value, f"{kind}.memory"))
    if "cpu" in given:
        kind, value = given["cpu"]
        cpu = float(parse_quantity(value, f"{kind}.cpu"))
    gpus = 0
    if "gpu" in given:
        kind, value = given["gpu"]
        gpus = int(parse_quantity(value, f"{kind}.gpu"))
    return ContainerLimits(memory_bytes=memory, cpus=cpu, gpus=gpus)
