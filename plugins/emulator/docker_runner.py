"""Run a rendered container in Docker (Docker SDK), as the cluster would run the task's pod."""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from flytekitplugins.prebuilt.docker_engine import DockerUnavailable, docker_client
from flytekitplugins.prebuilt.emulator.resources import ContainerLimits

SYSTEM_FOLDERS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr",
                  "/var")  # fmt: skip


def mount_problem(path: str) -> Optional[str]:
    """Why the host path ``path`` cannot be mounted at the same path in a task's container, or None: Docker refuses
    ``/`` as a destination and parses ``:`` as its separator, and a system folder would hide the image's own."""
    if not os.path.isabs(path):
        return f"{path}: expected an absolute path"
    normal = "/" + os.path.normpath(path).lstrip("/")  # POSIX keeps a leading "//"
    if normal == "/":
        return f"{path}: the root folder cannot be mounted; mount the folder the task needs"
    if normal in SYSTEM_FOLDERS:
        return f"{path}: a system folder of the image cannot be mounted over; mount the folder the task needs"
    if ":" in normal:
        return f"{path}: a path with ':' cannot be mounted (Docker's separator)"
    return None


class ContainerExit(NamedTuple):
    code: int
    logs: str
    oom_killed: bool  # the kernel killed a process of the container for exceeding its memory limit
    timed_out: bool = False  # stopped at the time it was given


class RunningContainer:
    """A started container: ``poll`` and ``stop`` it (as one pod of a job), then ``finish`` it."""

    def __init__(self, container):
        self._container = container
        self.timed_out = False  # ``wait`` killed it at its timeout

    def poll(self) -> Optional[int]:
        self._container.reload()
        state = self._container.attrs.get("State", {})
        return None if state.get("Running") or state.get("Status") == "created" else int(state.get("ExitCode", 0))

    def stop(self) -> None:
        self._container.stop(timeout=10)  # SIGTERM, then SIGKILL: as the kubelet deletes a pod

    def kill(self) -> None:
        """SIGKILL to everything in it at once: its node is gone."""
        self._container.kill()

    def output(self) -> str:
        return self._container.logs(stdout=True, stderr=True).decode("utf-8", "replace")

    def wait(self, timeout: float) -> int:
        from requests.exceptions import ReadTimeout  # what the Docker SDK's wait raises at its timeout

        try:
            return self._container.wait(timeout=timeout)["StatusCode"]
        except ReadTimeout:  # still running at its timeout: stopped as the kubelet deletes a pod
            self.stop()
            self.timed_out = True
            return 124
        except Exception:
            self._container.kill()
            return 124

    def finish(self, code: int) -> ContainerExit:
        """The container's exit, its logs and whether it was OOM-killed; the container is removed."""
        try:
            logs = self._container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            self._container.reload()
            oom_killed = bool(self._container.attrs.get("State", {}).get("OOMKilled"))
        finally:
            self._container.remove(force=True)
        return ContainerExit(code, logs, oom_killed, self.timed_out)


def start_container(
    image: str,
    argv: list[str],
    env: dict[str, str],
    mounts: list[str],
    network: str,
    limits: Optional[ContainerLimits] = None,
) -> RunningContainer:
    """Start ``argv`` in ``image`` with ``mounts`` bound at the same paths and the pod's CPU/memory ``limits``."""
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
    return RunningContainer(container)


def run_container(
    image: str,
    argv: list[str],
    env: dict[str, str],
    mounts: list[str],
    network: str,
    timeout: float,
    limits: Optional[ContainerLimits] = None,
) -> ContainerExit:
    """Run a container to its end (``start_container``'s arguments), at most ``timeout`` seconds."""
    running = start_container(image, argv, env, mounts, network, limits)
    return running.finish(running.wait(timeout))
