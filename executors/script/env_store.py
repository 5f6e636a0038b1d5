"""Built environments in an object store, so that a pod with an empty disk reuses one instead of installing it.

On a cluster every pod starts with an empty disk: the environment cache (``environments``) helps only where a
volume is mounted. So a pod that builds an environment also uploads it, as one archive, and a later pod (any
node, any execution) downloads and unpacks it instead of installing: the archive is the environment exactly as
built, and the environments are ``uv venv --relocatable`` so they may be unpacked anywhere.

Trust (docs/security.md, "Trust boundaries"): an environment runs the task's code, so whoever can write the store
runs code in every later task of the same key. Hence:

- Where: only ``$PREBUILT_ENV_STORE`` (any Flyte data-layer URI), set by the platform; unset or ``off``: no store.
  It is never derived from the raw-output bucket, which every pod may write (flytekitplugins-prebuilt issue 17).
- A task with nothing to install never uses the store (``environments``): such an environment is built in a second,
  and every such task has the same key, so one planted archive would run in all of them.
- Digests: the archive's sha256 is uploaded after it, as ``<archive>.sha256``; a reader downloads the archive,
  checks it against that digest and only then unpacks it. A truncated, altered or digest-less archive is rebuilt
  and replaced, never unpacked. Digests stop corruption and a writer who can replace the archive but not the
  digest; a writer of both (one store) can replace both. ``$PREBUILT_ENV_STORE_READONLY=1`` makes pods only
  restore, so the store can be read-only for them and written by the platform's build identity alone.
- Unpacking is GNU tar's, confined to the target: members with ``..`` are skipped, leading ``/`` stripped, and a
  link to outside the target is extracted last (a placeholder until then), so nothing is written through it.
- Time: every request waits at most ``$PREBUILT_ENV_STORE_TIMEOUT`` seconds (30) for an answer, and a download
  that receives nothing for that long is stalled; a fetch uses at most half of the time left before the build's
  deadline (``ensure_environment``'s ``timeout``), an upload what is left. A stalled store is a miss: the
  environment is installed here, and not uploaded. Each transfer runs in a thread that is waited for that long,
  not longer (flytekit's data persistence takes no timeout that holds for every fsspec backend: its ``exists`` and
  the retried ``get``/``put`` of ``flytekit/core/data_persistence.py``); an abandoned transfer ends when its
  library gives up, and only writes to a scratch file already deleted, or an archive no digest names.

Key: ``<store>/<platform>/<kind>-<key>.tar.gz``. The environment's own key (the lock files' bytes, the local
packages' content, Python X.Y, the machine; for the train type the framework too), and ``platform``: a hash of what
an environment built here depends on beyond it, i.e. what an image digest would stand for as far as the
environment can tell. A pod cannot read its image's digest (Kubernetes shows it only in the pod's status), so it
hashes the base interpreter (its path, its full version and build), the C library, the architecture and the
image's system packages (dpkg's status file). Two images that differ in any of those never share an environment.

Races: two pods that build the same key at once both upload; each archive is complete and either is right. An
object store's PUT makes an object appear whole or not at all (on a local folder: written beside it, then
renamed). A reader between one pod's archive and its digest sees a mismatch and rebuilds: wasted work, never a
wrong environment. Uploading is best effort: a failed upload is logged, never a failed task.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Optional, TypeVar
from urllib.parse import urlsplit

from flytekit.core.context_manager import FlyteContextManager
from flytekit.exceptions.user import FlyteDataNotFoundException
from flytekit.loggers import logger
from flytekitplugins.prebuilt.executors.script import process
from flytekitplugins.prebuilt.kit.errors import UserError

STORE_VARIABLE = "PREBUILT_ENV_STORE"
READONLY_VARIABLE = "PREBUILT_ENV_STORE_READONLY"
TIMEOUT_VARIABLE = "PREBUILT_ENV_STORE_TIMEOUT"
OFF = ("off", "none", "false", "0")
YES, NO = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
DEFAULT_TIMEOUT_SECONDS = 30.0
FETCH_SHARE = 0.5  # of the time left before the build's deadline: the rest is for installing, should the fetch fail
ARCHIVE_FORMAT = 1  # part of every key: bump when the archive's layout changes
DIGEST_SUFFIX = ".sha256"
DIGEST = re.compile(r"[0-9a-f]{64}")
DPKG_STATUS = "/var/lib/dpkg/status"
TAR_TIMEOUT_SECONDS = 900
TRANSFER_THREAD = "prebuilt-env-store"  # one name: flytekit's loop_manager keeps one event loop per thread name

T = TypeVar("T")


def store_prefix() -> Optional[str]:
    """Where environments are stored: ``$PREBUILT_ENV_STORE``, or None (unset or off). Also checks the other
    variables of the store, so that a mistake in one fails the task naming it."""
    given = os.environ.get(STORE_VARIABLE, "").strip()
    if not given or given.lower() in OFF:
        return None
    request_timeout()
    read_only()
    return given.rstrip("/")


def request_timeout() -> float:
    """``$PREBUILT_ENV_STORE_TIMEOUT``: how long a request to the store may go without an answer (seconds)."""
    given = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not given:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(given)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise UserError(f"{TIMEOUT_VARIABLE}={given!r}: expected a positive number of seconds")
    return seconds


def read_only() -> bool:
    """``$PREBUILT_ENV_STORE_READONLY``: pods only restore environments, never upload one."""
    given = os.environ.get(READONLY_VARIABLE, "").strip().lower()
    if given not in YES + NO:
        raise UserError(f"{READONLY_VARIABLE}={given!r}: expected 1 or 0 (true/false, yes/no, on/off)")
    return given in YES


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


def digest_uri(store: str, name: str) -> str:
    """Where the archive's sha256 is kept: beside it, written after it."""
    return archive_uri(store, name) + DIGEST_SUFFIX


FETCHED, MISSING, UNUSABLE, STALLED = "fetched", "missing", "unusable", "stalled"


class StoreTimeout(Exception):
    """The store did not answer in time."""


class Unusable(Exception):
    """The stored archive is not one to unpack (no digest, or not the one its digest names)."""


def fetch(store: str, name: str, destination: Path, *, deadline: Optional[float] = None) -> str:
    """Unpack the stored environment ``name`` into ``destination`` (absent), once its digest matches: FETCHED,
    MISSING, UNUSABLE (truncated, altered, digest-less or not unpackable; ``destination`` is then removed) or
    STALLED (the store did not answer in time). ``deadline`` (``time.monotonic()``): the build's; the fetch uses
    at most ``FETCH_SHARE`` of the time left before it."""
    uri, access = archive_uri(store, name), _file_access()
    now = time.monotonic()
    until = now + FETCH_SHARE * max(0.0, deadline - now) if deadline is not None else float("inf")
    started = time.monotonic()
    try:
        if not _bounded(lambda: access.exists(uri), f"looking for {uri}", until):
            logger.info(f"no stored environment at {uri}")
            return MISSING
    except StoreTimeout as error:
        logger.warning(f"the environment store does not answer ({error}); building the environment here")
        return STALLED
    except process.Interrupted:
        raise
    except Exception as error:  # an unreachable store is a miss: the environment is built here
        logger.warning(f"cannot look for a stored environment at {uri}: {error}")
        return MISSING
    try:
        with tempfile.TemporaryDirectory(prefix="prebuilt-env-fetch-") as scratch:
            local = _download_verified(access, store, name, scratch, until)
            destination.mkdir(parents=True)
            _tar(["-x", "-z", "-f", local, "-C", str(destination)], f"unpacking {uri}", until)
    except process.Interrupted:
        shutil.rmtree(destination, ignore_errors=True)
        raise
    except Exception as error:
        stalled = isinstance(error, StoreTimeout)
        logger.warning(f"cannot use the stored environment {uri} ({error}); building it here")
        shutil.rmtree(destination, ignore_errors=True)
        return STALLED if stalled else UNUSABLE
    logger.info(f"environment {name} fetched from {uri} in {time.monotonic() - started:.1f}s")
    return FETCHED


def _download_verified(access, store: str, name: str, scratch: str, until: float) -> str:
    """The archive ``name``, downloaded into ``scratch``, whose sha256 is the one its digest object names."""
    uri, digest_at = archive_uri(store, name), digest_uri(store, name)
    expected_at, local = os.path.join(scratch, "env.sha256"), os.path.join(scratch, "env.tar.gz")
    try:
        _bounded(lambda: access.get_data(digest_at, expected_at), f"reading {digest_at}", until)
    except FlyteDataNotFoundException:
        raise Unusable(f"it has no digest ({digest_at})") from None
    expected = Path(expected_at).read_text(encoding="ascii", errors="replace").strip()
    if not DIGEST.fullmatch(expected):
        raise Unusable(f"its digest object {digest_at} holds no sha256")
    _bounded(lambda: access.get_data(uri, local), f"downloading {uri}", until, growing=local)
    actual = _sha256(local)
    if actual != expected:
        raise Unusable(f"its sha256 is {actual}, its digest object says {expected}")
    return local


def publish(store: str, name: str, venv: Path, replace: bool = False, *, deadline: Optional[float] = None) -> None:
    """Upload the built environment ``venv`` as ``name``, then its digest, unless the store has both (or
    ``replace``), or pods only read the store (``$PREBUILT_ENV_STORE_READONLY``); never raises. No request
    outlives ``deadline`` (``time.monotonic()``)."""
    uri, digest_at, access = archive_uri(store, name), digest_uri(store, name), _file_access()
    until = deadline if deadline is not None else float("inf")
    started = time.monotonic()
    try:
        if read_only():
            logger.info(f"not storing the environment {name}: ${READONLY_VARIABLE} is set (pods only restore)")
            return
        if not replace and _bounded(lambda: _stored(access, uri, digest_at), f"looking for {uri}", until):
            return  # by another pod, meanwhile
        with tempfile.TemporaryDirectory(prefix="prebuilt-env-publish-") as scratch:
            local = os.path.join(scratch, f"{name}.tar.gz")
            # gzip -1: a third of the size for little time (docs/benchmarks.md); tar keeps bin/python's symlink
            _tar(["-c", "-I", "gzip -1", "-f", local, "-C", str(venv), "."], f"packing {venv}", until)
            digest = os.path.join(scratch, f"{name}.tar.gz{DIGEST_SUFFIX}")
            Path(digest).write_text(_sha256(local) + "\n", encoding="ascii")
            _upload(access, local, uri, until)
            _upload(access, digest, digest_at, until)  # after the archive: a digest names an archive already complete
            size = os.path.getsize(local)
        logger.info(f"environment {name} stored at {uri} ({size / 2**20:.0f} MiB, {time.monotonic() - started:.1f}s)")
    except process.Interrupted:
        raise
    except Exception as error:
        logger.warning(f"cannot store the environment {name} at {uri}: {error}")


def _stored(access, uri: str, digest_at: str) -> bool:
    return access.exists(uri) and access.exists(digest_at)


def _upload(access, local: str, uri: str, until: float) -> None:
    """``local`` to ``uri``, which appears whole or not at all."""
    if urlsplit(uri).scheme in ("", "file"):  # a folder: written beside its final name, then renamed
        final = access.strip_file_header(uri)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        partial = f"{final}.{uuid.uuid4().hex[:8]}.partial"
        shutil.copyfile(local, partial)
        os.replace(partial, final)
    else:  # an object store's PUT: the object appears complete, or not at all
        _bounded(lambda: access.put_data(local, uri), f"uploading {uri}", until, size=os.path.getsize(local))


def _bounded(work: Callable[[], T], what: str, until: float, growing: str = "", size: int = 0) -> T:
    """``work()`` in a thread, waited for at most ``request_timeout()`` seconds and never past ``until``
    (``time.monotonic()``); :class:`StoreTimeout` beyond. With ``growing`` (the local file a download writes) the
    wait starts again whenever the file grew; with ``size`` (bytes to upload) it is longer by a second per MiB.
    A thread past its wait is abandoned (see the module docstring)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name=TRANSFER_THREAD, daemon=True)
    worker.start()
    patience = request_timeout() + size / 2**20
    since, seen = time.monotonic(), -1  # since the start, or the download's last byte
    while worker.is_alive():
        worker.join(process.POLL_SECONDS)
        process.raise_if_interrupted()
        now = time.monotonic()
        if growing and _size(growing) > seen:
            since, seen = now, _size(growing)
        if worker.is_alive() and (now - since >= patience or now >= until):
            raise StoreTimeout(f"{what}: no answer for {now - since:.0f}s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")  # type: ignore[return-value]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_access():
    """The context's data persistence, read in the caller's thread (the context is a ContextVar: a new thread
    would see a default one)."""
    return FlyteContextManager.current_context().file_access


def _tar(arguments: list[str], what: str, until: float = float("inf")) -> None:
    timeout = max(1.0, min(TAR_TIMEOUT_SECONDS, until - time.monotonic()))
    done = process.run(["tar", *arguments], timeout=timeout, grace=5)
    if done.timed_out or done.returncode != 0:
        raise RuntimeError(f"{what}: tar failed ({done.returncode}): {done.output.strip()[-500:]}")
