"""What a task run in a container of our images needs from this machine, shared by the container tests."""

from __future__ import annotations

import os
from pathlib import Path


def env_cache_volume(tmp_path: Path) -> tuple[Path, dict[str, str], list[str]]:
    """A folder mounted as the environment cache (the image's user, uid 1000, writes it), with the emulator's
    ``env`` and ``mounts`` for it; and this machine's CA bundle where the package index is reached through a
    TLS-inspecting proxy (``PIP_CERT``)."""
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o777)
    env, mounts = {"PREBUILT_ENV_CACHE": str(volume)}, [str(volume)]
    if os.environ.get("PIP_CERT"):
        env["SSL_CERT_FILE"], mounts = os.environ["PIP_CERT"], [*mounts, os.environ["PIP_CERT"]]
    return volume, env, mounts
