"""Run a rendered container in Docker (Docker SDK), as the cluster would run the task's pod."""

from __future__ import annotations


class DockerUnavailable(RuntimeError):
    pass


def docker_client():
    """A connected Docker SDK client, or DockerUnavailable saying what to do."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise DockerUnavailable("Docker support needs the docker package: pip install 'flytekitplugins-prebuilt[emulator]'") from None
    try:
        client = docker.from_env()
        client.ping()
        return client
    except DockerException as e:
        raise DockerUnavailable(f"no Docker engine answers ({e}); start one (scripts/ensure-docker.sh)") from None


def run_container(image: str, argv: list[str], env: dict[str, str], mounts: list[str], network: str, timeout: float) -> tuple[int, str]:
    """Run ``argv`` in ``image`` with ``mounts`` bound at the same paths; return (exit code, logs)."""
    client = docker_client()  # first: it explains a missing docker package or engine
    from docker.errors import DockerException, ImageNotFound

    try:
        client.images.get(image)
    except ImageNotFound:
        try:  # as the kubelet would: pull what the template names (by tag or by digest)
            client.images.pull(image)
        except DockerException as e:
            raise DockerUnavailable(f"image {image} is not present and cannot be pulled ({e}); build it with `make images`") from None
    container = client.containers.run(
        image,
        command=argv,  # as args: Kubernetes keeps the image's ENTRYPOINT (tini) when a pod gives no command,
        environment=env,  # and flytekit's container tasks give none (command=[], args=[pyflyte-execute, ...])
        volumes={path: {"bind": path, "mode": "rw"} for path in mounts},
        network_mode=network,
        detach=True,
    )
    try:
        try:
            code = container.wait(timeout=timeout)["StatusCode"]
        except Exception:
            container.kill()
            code = 124
        logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return code, logs
