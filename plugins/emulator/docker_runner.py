"""Run a rendered container in Docker (Docker SDK), as the cluster would run the task's pod."""

from __future__ import annotations

from typing import NamedTuple, Optional

from flytekitplugins.prebuilt.docker_engine import DockerUnavailable, docker_client
from flytekitplugins.prebuilt.emulator.resources import ContainerLimits


class ContainerExit(NamedTuple):
    code: int
    logs: str
    oom_killed: bool  # the kernel killed a process of the container for exceeding its memory limit


def run_container(
    image: str,
    argv: list[str],
    env: dict[str, str],
    mounts: list[str],
    network: str,
    timeout: float,
    limits: Optional[ContainerLimits] = None,
) -> ContainerExit:
    """Run ``argv`` in ``image`` with ``mounts`` bound at the same paths and the pod's CPU/memory ``limits``."""
    client = docker_client()  # first: it explains a missing docker package or engine
    from docker.errors import DockerException, ImageNotFound

    try:
        client.images.get(image)
    except ImageNotFound:
        try:  # as the kubelet would: pull what the template names (by tag or by digest)
            client.images.pull(image)
        except DockerException as e:
            raise DockerUnavailable(
                f"image {image} is not present and cannot be pulled ({e}); build it with `make images`"
            ) from None
    container = client.containers.run(
        image,
        command=argv,  # as args: Kubernetes keeps the image's ENTRYPOINT (tini) when a pod gives no command,
        environment=env,  # and flytekit's container tasks give none (command=[], args=[pyflyte-execute, ...])
        volumes={path: {"bind": path, "mode": "rw"} for path in mounts},
        network_mode=network,
        detach=True,
        **(limits or ContainerLimits()).docker_arguments(),
    )
    try:
        try:
            code = container.wait(timeout=timeout)["StatusCode"]
        except Exception:
            container.kill()
            code = 124
        logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        container.reload()
        oom_killed = bool(container.attrs.get("State", {}).get("OOMKilled"))
    finally:
        container.remove(force=True)
    return ContainerExit(code, logs, oom_killed)
