"""Built environments in the object store, so that a pod with an empty disk reuses one instead of installing it.

On a cluster every pod starts with an empty disk: the environment cache (``environments``) helps only where a
volume is mounted. So a pod that builds an environment also uploads it, as one archive, and a later pod (any
node, any execution) downloads and unpacks it instead of installing: the archive is the environment exactly as
built, and the environments are ``uv venv --relocatable`` so they may be unpacked anywhere.

Where: ``$PREBUILT_ENV_STORE`` (any Flyte data-layer URI: ``s3://bucket/prebuilt-envs``; ``off`` turns it off).
By default, on a cluster, ``<scheme>://<bucket>/prebuilt-envs`` in the bucket of the task's raw output prefix (the
one every pod may already write to); nowhere when that prefix is a local folder (a local run keeps its environments
on this machine's disk anyway).

Key: ``<store>/<platform>/<kind>-<key>.tar.gz``. The environment's own key (the lock files' bytes, the local
packages' content, Python X.Y, the machine; for the train type the framework too), and ``platform``: a hash of what
an environment built here depends on beyond it, i.e. what an image digest would stand for as far as the
environment can tell. A pod cannot read its image's digest (Kubernetes shows it only in the pod's status), so it
hashes the base interpreter (its path, its full version and build), the C library, the architecture and the
image's system packages (dpkg's status file). Two images that differ in any of those never share an environment.

Races: two pods that build the same key at once both upload; each archive is complete and either is right. An
object store's PUT makes an object appear whole or not at all, so an archive is uploaded under its final key only
once it is complete (on a local folder: written beside it, then renamed). A reader that finds an archive it cannot
unpack (truncated, or not an environment of its key) builds the environment itself and uploads it again, which
replaces the bad one. Uploading is best effort: a failed upload is logged, never a failed task.

Trust: an environment runs the task's code, so the store is trusted like the bucket holding its outputs; point
``$PREBUILT_ENV_STORE`` at a prefix only your pods can write, or turn it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from flytekit.core.context_manager import FlyteContextManager
from flytekit.loggers import logger
from flytekitplugins.prebuilt.executors.script import process

STORE_VARIABLE = "PREBUILT_ENV_STORE"
OFF = ("off", "none", "false", "0")
DEFAULT_FOLDER = "prebuilt-envs"
ARCHIVE_FORMAT = 1  # part of every key: bump when the archive's layout changes
DPKG_STATUS = "/var/lib/dpkg/status"
TAR_TIMEOUT_SECONDS = 900


def store_prefix(raw_output_prefix: Optional[str] = None) -> Optional[str]:
    """Where environments are stored, or None: ``$PREBUILT_ENV_STORE``, else the bucket of the raw output prefix
    (by default the current context's)."""
    given = os.environ.get(STORE_VARIABLE, "").strip()
    if given.lower() in OFF:
        return None
    if given:
        return given.rstrip("/")
    if raw_output_prefix is None:
        raw_output_prefix = FlyteContextManager.current_context().file_access.raw_output_prefix or ""
    parts = urlsplit(raw_output_prefix)
    if parts.scheme in ("", "file") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/{DEFAULT_FOLDER}"


def platform_key() -> str:
    """What an environment built here depends on besides its own key (see the module docstring)."""
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    try:
        system = hashlib.sha256(Path(DPKG_STATUS).read_bytes()).hexdigest()
    except OSError:
        system = ""
    payload = [ARCHIVE_FORMAT, base, sys.version, platform.machine(), platform.libc_ver(), system]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def archive_uri(store: str, name: str) -> str:
    return f"{store}/{platform_key()}/{name}.tar.gz"


FETCHED, MISSING, UNUSABLE = "fetched", "missing", "unusable"


def fetch(store: str, name: str, destination: Path) -> str:
    """Unpack the stored environment ``name`` into ``destination`` (absent): FETCHED, MISSING, or UNUSABLE (an
    archive that cannot be read or unpacked; ``destination`` is then removed)."""
    uri = archive_uri(store, name)
    file_access = FlyteContextManager.current_context().file_access
    started = time.monotonic()
    try:
        if not file_access.exists(uri):
            logger.info(f"no stored environment at {uri}")
            return MISSING
    except Exception as error:  # an unreachable store is a miss: the environment is built here
        logger.warning(f"cannot look for a stored environment at {uri}: {error}")
        return MISSING
    with tempfile.TemporaryDirectory(prefix="prebuilt-env-fetch-") as scratch:
        local = os.path.join(scratch, "env.tar.gz")
        try:
            file_access.get_data(uri, local)
            destination.mkdir(parents=True)
            _tar(["-x", "-z", "-f", local, "-C", str(destination)], f"unpacking {uri}")
        except Exception as error:
            logger.warning(f"cannot use the stored environment {uri} ({error}); building it here")
            shutil.rmtree(destination, ignore_errors=True)
            return UNUSABLE
    logger.info(f"environment {name} fetched from {uri} in {time.monotonic() - started:.1f}s")
    return FETCHED


def publish(store: str, name: str, venv: Path, replace: bool = False) -> None:
    """Upload the built environment ``venv`` as ``name`` unless the store has it (or ``replace``); never raises."""
    uri = archive_uri(store, name)
    file_access = FlyteContextManager.current_context().file_access
    started = time.monotonic()
    try:
        if not replace and file_access.exists(uri):
            return
        with tempfile.TemporaryDirectory(prefix="prebuilt-env-publish-") as scratch:
            local = os.path.join(scratch, f"{name}.tar.gz")
            # gzip -1: a third of the size for little time (docs/benchmarks.md); tar keeps bin/python's symlink
            _tar(["-c", "-I", "gzip -1", "-f", local, "-C", str(venv), "."], f"packing {venv}")
            if urlsplit(uri).scheme in ("", "file"):  # a folder: written beside its final name, then renamed
                final = file_access.strip_file_header(uri)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                partial = f"{final}.{uuid.uuid4().hex[:8]}.partial"
                shutil.copyfile(local, partial)
                os.replace(partial, final)
            else:  # an object store's PUT: the object appears complete, or not at all
                file_access.put_data(local, uri)
            size = os.path.getsize(local)
        logger.info(f"environment {name} stored at {uri} ({size / 2**20:.0f} MiB, {time.monotonic() - started:.1f}s)")
    except Exception as error:
        logger.warning(f"cannot store the environment {name} at {uri}: {error}")


def _tar(arguments: list[str], what: str) -> None:
    done = process.run(["tar", *arguments], timeout=TAR_TIMEOUT_SECONDS, grace=5)
    if done.timed_out or done.returncode != 0:
        raise RuntimeError(f"{what}: tar failed ({done.returncode}): {done.output.strip()[-500:]}")
