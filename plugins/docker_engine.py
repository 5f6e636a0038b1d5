"""The connection to a Docker engine, shared by the emulator (running images) and the image builder."""

from __future__ import annotations


class DockerUnavailable(RuntimeError):
    """No usable Docker engine; the message says what to do."""


def docker_client():
    """A connected Docker SDK client, or DockerUnavailable saying what to do."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise DockerUnavailable(
            "Docker support needs the docker package: pip install 'flytekitplugins-prebuilt[emulator]'"
        ) from None
    try:
        client = docker.from_env()
        client.ping()
        return client
    except DockerException as e:
        raise DockerUnavailable(f"no Docker engine answers ({e}); start one (scripts/ensure-docker.sh)") from None
