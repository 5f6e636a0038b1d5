"""Dependency environments for user code bundles: one virtualenv per distinct set of locked requirements.

``locks.detect`` says what to install (a ``DependencySpec``);
:func:`ensure_environment` returns ``<cache_dir>/<kind>-<key>/``, a virtualenv with those requirements
installed, building it only when no complete one is there, so a warm start installs nothing.

Where an environment is built: in a temporary folder, renamed into place
-------------------------------------------------------------------------
A crashed or killed builder must never block the next one, so nothing is ever built at the final path:

- Builders of one key are serialized by an ``fcntl.flock`` on ``<cache_dir>/<kind>-<key>.lock`` (a separate
  file that is never deleted, so the lock itself has no races). The lock is per open file, so it serializes
  threads of one process as well as processes; the kernel drops it when a builder dies.
- Under the lock, a builder re-checks for a complete environment (another builder may have just finished: then
  it reuses that one), removes what dead builders of this key left (``.<kind>-<key>.building-*``), creates the
  venv in a new ``.<kind>-<key>.building-<random>`` beside the final path, installs, writes ``.prebuilt-complete``
  (the spec as JSON), and renames the folder into place (replacing an incomplete one, if any). On any failure it
  removes its folder before re-raising.
- A reader takes an environment only if the marker parses, names this key, and ``bin/python`` still resolves
  (an interpreter that went away makes the environment stale: it is rebuilt).
- Pods start with an empty disk: under the lock, before building, a builder looks in the environment store
  (``env_store``: the object store the platform configured, keyed by this key and the image's platform) and
  unpacks what it finds into its build folder once its digest matches, taken on the same marker check; after a
  build it uploads the environment there. Requests to the store end before the build's deadline; a stalled store
  is a miss. A spec with nothing to install never uses the store (``env_store``'s docstring says why).

A virtualenv names its own path in ``bin/activate`` and in the shebang of every console script that the installer
writes, so the venv must not care where it was built. With uv it is made ``uv venv --relocatable``: console
scripts start with a ``/bin/sh`` trampoline that runs the ``python`` beside them, activation scripts compute their
own location. The ``pip`` fallback cannot do that: the build path is rewritten to the final path in ``bin/``'s
scripts and in ``pyvenv.cfg`` before the rename. Compiled ``.pyc`` files record the build path too, but CPython
replaces it with the real source path when it loads them (``importlib._bootstrap_external``,
``_imp._fix_co_filename``), so tracebacks name the final path.

Every program runs through :mod:`.process` (its own process group, stopped whole on timeout or when the executor
is told to stop). When the executor itself is SIGKILLed, the kernel kills the installer it started
(``PR_SET_PDEATHSIG``), so an orphaned ``uv pip install`` never keeps writing; a build backend that uv had started
may finish on its own, but only inside uv's and the dead builder's temporary folders.

Other choices
-------------
- ``system_site_packages=True`` environments live under ``<kind>-<key>-system`` so the two flavours of one spec
  never share a directory.
- Local packages (``./libs/mylib``, a wheel in the bundle, poetry ``directory``/``file`` sources, Pipfile
  ``path`` entries) must lie inside the project directory. They are installed as regular (non-editable) copies,
  since a cached environment outlives the bundle it was built from; their *content* is hashed into the key while
  their location is not, so the same bundle unpacked in another temporary directory reuses the environment.
  ``-e``/``--editable`` lines in requirements files are refused.
- Locked kinds are installed with dependency resolution on (not ``--no-deps``): the pins fix the versions, and a
  lock file that misses a package still gives a working environment.
- uv is found as ``uv`` on ``PATH``, else next to ``sys.executable`` (the image's ``/opt/prebuilt/bin/uv``); only
  when there is none do we fall back to ``python -m venv`` + ``pip``. Bytecode is compiled at install time.
- Failures: a wrong spec or a failed install is a :class:`UserError` carrying the command, its exit code and the
  last lines of its output; a failure whose output looks like the network (refused or reset connections, DNS,
  timeouts, 5xx from the index) or an install past ``timeout`` is a :class:`TransientError`, so retries apply.

POSIX only (``fcntl``), like the images this runs in.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import platform
import re
import shlex
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from flytekit.loggers import logger
from flytekitplugins.prebuilt.executors.script import env_store, process
from flytekitplugins.prebuilt.executors.script.locks import (
    MARKER,
    OUTPUT_TAIL_LINES,
    REQUIREMENTS_COPY,
    DependencySpec,
    current_python,
)
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError

INSTALLER_GRACE_SECONDS = 5  # between SIGTERM and SIGKILL when an install is stopped
STORE_FROM_CONTEXT = "<from the context>"  # ensure_environment's default store: env_store.store_prefix()


def venv_python(venv: str | os.PathLike) -> Path:
    """The interpreter of a virtualenv."""
    return Path(venv) / "bin" / "python"


def environment_variables(venv: str | os.PathLike) -> dict[str, str]:
    """Variables that make a process use ``venv``: VIRTUAL_ENV, and PATH (from ``os.environ``) with the venv's
    ``bin`` first. Merge them into the environment of the process that runs the user's entry point."""
    venv = Path(venv).absolute()
    bin_dir = str(venv / "bin")
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
    return {"VIRTUAL_ENV": str(venv), "PATH": os.pathsep.join([bin_dir, *rest])}


def ensure_environment(
    spec: DependencySpec,
    cache_dir: str | os.PathLike,
    *,
    python: str = sys.executable,
    system_site_packages: bool = False,
    timeout: float = 1800,
    store: Optional[str] = STORE_FROM_CONTEXT,
    store_seconds: Optional[float] = None,
) -> Path:
    """The virtualenv for ``spec`` under ``cache_dir`` (``<kind>-<key>``), built if there is no complete one.

    ``python`` is the base interpreter (its X.Y must be ``spec.python_version``). Kind 'none' gives an empty
    environment, so an entry point always runs with a known interpreter. ``timeout`` (seconds) bounds waiting for
    another builder plus building. See the module docstring for how builds are made atomic.

    ``store``: an object-store prefix where built environments are kept for pods with an empty disk
    (``env_store``): fetched from there instead of built when it has this one, uploaded there after a build.
    By default ``$PREBUILT_ENV_STORE`` (``env_store.store_prefix``); None: no store. Never for a spec with
    nothing to install. ``store_seconds`` bounds the store's requests in all (the task's deadline: a stalled store
    must not outlast it; installing instead is bounded by ``timeout``).
    """
    cache = Path(cache_dir).expanduser().absolute()
    name = spec.name + ("-system" if system_site_packages else "")
    venv = cache / name
    python = shutil.which(python) or python
    _check_python(spec, python)
    if _complete(venv, spec):  # no lock, no write: a read-only cache (e.g. baked into an image) works
        logger.info(f"reusing environment {venv} ({spec.kind}, key {spec.key})")
        return venv

    cache.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with _exclusive(cache / f"{name}.lock", venv, deadline):
        if _complete(venv, spec):
            logger.info(f"reusing environment {venv}, just built by another process")
            return venv
        _remove_leftovers(venv)
        build = venv.with_name(f".{name}.building-{uuid.uuid4().hex[:8]}")
        store = env_store.store_prefix() if store is STORE_FROM_CONTEXT else store
        store = store if store and _installs_something(spec) else None
        store_deadline = min(deadline, time.monotonic() + store_seconds) if store_seconds else deadline
        fetched = env_store.fetch(store, name, build, deadline=store_deadline) if store else env_store.MISSING
        if fetched == env_store.FETCHED:
            if _complete(build, spec):
                if os.path.lexists(venv):
                    _remove(venv)
                os.rename(build, venv)
                logger.info(f"reusing environment {venv}, fetched from the environment store (nothing installed)")
                return venv
            logger.warning(f"the stored environment {name} is not a complete build of its key; rebuilding it")
            _remove(build)
            fetched = env_store.UNUSABLE
        started = time.monotonic()
        try:
            installer = _build(
                spec, build, final=venv, python=python, system_site_packages=system_site_packages, deadline=deadline
            )
            seconds = time.monotonic() - started
            _write_marker(
                build,
                spec,
                python=python,
                installer=installer,
                system_site_packages=system_site_packages,
                seconds=seconds,
            )
            if os.path.lexists(venv):
                logger.warning(f"replacing incomplete environment {venv} (an earlier build did not finish)")
                _remove(venv)
            os.rename(build, venv)
        except BaseException:
            _remove(build)
            raise
        logger.info(f"environment {venv} ready in {seconds:.1f}s")
        if store and installer == "uv" and fetched != env_store.STALLED:  # relocatable (pip's are not); under the
            # lock: uploaded once. Not to a store that just stalled: it would hold the lock as long again
            env_store.publish(store, name, venv, replace=fetched == env_store.UNUSABLE, deadline=store_deadline)
    return venv


def _installs_something(spec: DependencySpec) -> bool:
    """Whether ``spec`` installs packages; poetry and pipenv specs are taken to (knowing would run their tool,
    which a fetched environment spares). One that installs nothing is built in a second, and all such specs of a
    Python share their key: a stored one would be one archive that every such task runs."""
    return spec.kind != "none" and (spec.kind != "requirements" or bool(spec.packages))


def _remove_leftovers(venv: Path) -> None:
    """Remove the build and trash folders that dead builders of ``venv`` left (called under its lock, so no live
    builder owns them)."""
    for pattern in (f".{venv.name}.building-*", f".{venv.name}.removing-*"):
        for leftover in venv.parent.glob(pattern):
            logger.warning(f"removing {leftover} (left by a builder that did not finish)")
            _remove(leftover)


def _check_python(spec: DependencySpec, python: str) -> None:
    if _same_file(python, sys.executable):
        version = current_python()
    else:
        try:
            result = process.run(
                [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60, grace=1
            )
        except OSError as error:
            raise UserError(f"cannot run the interpreter {python}: {error}") from None
        if result.timed_out or result.returncode != 0:
            raise UserError(f"cannot run the interpreter {python}: {_tail(result.output) or 'it did not answer'}")
        version = result.output.strip().rsplit("\n", 1)[-1]  # printed last: any warning comes before it
    if version != spec.python_version:
        raise UserError(
            f"the dependency spec was computed for Python {spec.python_version}, but {python} is "
            f"Python {version}: call detect(..., python_version={version!r})"
        )


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _complete(venv: Path, spec: DependencySpec) -> bool:
    """Whether ``venv`` is a finished build of ``spec`` that can still run."""
    try:
        marker = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("key") != spec.key or marker.get("kind") != spec.kind:
        return False
    if not os.path.exists(venv_python(venv)):  # follows the symlink: False when the base interpreter went away
        logger.warning(f"environment {venv} lost its interpreter ({os.path.realpath(venv_python(venv))})")
        return False
    return True


@contextlib.contextmanager
def _exclusive(lock_path: Path, venv: Path, deadline: float) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info(f"waiting for another process building {venv}")
            while True:
                time.sleep(0.1)
                process.raise_if_interrupted()
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TransientError(f"timed out waiting for another process building {venv}") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove(path: Path) -> None:
    """Remove ``path``: renamed away first, so that it disappears at once even if deleting takes a while."""
    if not os.path.lexists(path):
        return
    trash = path.with_name(f".{path.name}.removing-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except OSError:
        trash = path
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            trash.unlink()


def _find_uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def _build(
    spec: DependencySpec, venv: Path, *, final: Path, python: str, system_site_packages: bool, deadline: float
) -> str:
    """Create ``venv`` and install ``spec`` into it, ready to be renamed to ``final``; returns the installer."""
    uv = _find_uv()
    installer = "uv" if uv else "pip"
    logger.info(f"creating environment {final} in {venv.name} with {installer} (python {python})")
    site = ["--system-site-packages"] if system_site_packages else []
    site += ["--prompt", final.name]  # activation scripts show the final name, not the build folder's
    if uv:
        _run(
            [uv, "venv", "--no-project", "--quiet", "--relocatable", "--python", python, *site, str(venv)],
            deadline,
            "uv venv",
        )
    else:
        without_pip = [] if spec.packages else ["--without-pip"]
        _run([python, "-m", "venv", *site, *without_pip, str(venv)], deadline, "python -m venv")
    if spec.packages:
        _install(spec, venv, uv, deadline)
    if not uv:
        _relocate(venv, final)
    return installer


def _install(spec: DependencySpec, venv: Path, uv: str | None, deadline: float) -> None:
    installer = "uv" if uv else "pip"

    lines, extra = list(spec.requirements), []
    if uv:
        # uv ignores (with a warning) these pip options inside a requirements file: --pre and --trusted-host
        # are command-line flags there, --prefer-binary has no equivalent.
        extra = ["--prerelease=allow"] if "--pre" in lines else []
        extra += [
            arg
            for line in lines
            if line.startswith("--trusted-host ")
            for arg in ("--allow-insecure-host", line.split(" ", 1)[1])
        ]
        lines = [line for line in lines if line.split(" ", 1)[0] not in ("--pre", "--trusted-host", "--prefer-binary")]
    requirements_file = venv / REQUIREMENTS_COPY
    requirements_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    logger.info(f"installing {len(spec.packages)} requirements with {installer} into {venv}")
    started = time.monotonic()
    if uv:
        command = [
            uv,
            "pip",
            "install",
            "--python",
            str(venv_python(venv)),
            "--compile-bytecode",
            *extra,
            "-r",
            str(requirements_file),
        ]
    else:
        command = [
            str(venv_python(venv)),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
            str(requirements_file),
        ]
    _run(command, deadline, f"installing dependencies ({spec.kind}, {len(spec.packages)} requirements)")
    logger.info(f"installed {len(spec.packages)} requirements into {venv} in {time.monotonic() - started:.1f}s")


def _relocate(venv: Path, final: Path) -> None:
    """Make a venv built by ``python -m venv`` and pip at ``venv`` name ``final`` instead: the shebangs of its
    console scripts, its activation scripts and ``pyvenv.cfg`` (text files only; binaries are left alone)."""
    old, new = os.fsencode(venv), os.fsencode(final)
    for path in [venv / "pyvenv.cfg", *sorted((venv / "bin").iterdir())]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old in data and b"\0" not in data:
            path.write_bytes(data.replace(old, new))  # keeps the file's mode


_NETWORK_RE = re.compile(
    "|".join(
        [
            r"error sending request",
            r"tcp connect error",
            r"connection (?:refused|reset|aborted|closed|timed out)",
            r"dns error",
            r"failed to lookup address",
            r"temporary failure in name resolution",
            r"name or service not known",
            r"nodename nor servname",
            r"network is unreachable",
            r"no route to host",
            r"timed out",
            r"newconnectionerror",
            r"connecttimeouterror",
            r"readtimeouterror",
            r"max retries exceeded",
            r"remotedisconnected",
            r"incompleteread",
            r"protocolerror",
            r"proxyerror",
            r"http status server error",
            r"\b50[0234] (?:internal server error|bad gateway|service unavailable|"
            r"gateway time-?out)",
        ]
    ),
    re.IGNORECASE,
)


def _looks_like_network(output: str) -> bool:
    return bool(_NETWORK_RE.search(output))


def _tail(output: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(output.rstrip().splitlines()[-lines:])


def _run(command: list[str], deadline: float, what: str) -> str:
    """Run ``command`` through :func:`process.run` (its own process group, stopped whole on timeout); its output
    on success."""
    remaining = deadline - time.monotonic()
    shown = shlex.join(command)
    if remaining <= 0:
        raise TransientError(f"{what}: out of time before running {shown}")
    try:
        result = process.run(command, timeout=remaining, grace=INSTALLER_GRACE_SECONDS)
    except OSError as error:
        raise UserError(f"{what}: cannot run {shown}: {error}") from None
    if result.timed_out:
        raise TransientError(
            f"{what} timed out after {remaining:.0f}s: {shown}\n--- last lines of output ---\n{_tail(result.output)}"
        )
    if result.returncode != 0:
        message = (
            f"{what} failed with exit code {result.returncode}: {shown}\n"
            f"--- last {OUTPUT_TAIL_LINES} lines of output ---\n{_tail(result.output)}"
        )
        if _looks_like_network(result.output):
            raise TransientError(message)
        raise UserError(message)
    return result.output


def _write_marker(
    venv: Path, spec: DependencySpec, *, python: str, installer: str, system_site_packages: bool, seconds: float
) -> None:
    record = {
        "kind": spec.kind,
        "key": spec.key,
        "requirements": list(spec.requirements),
        "python_version": spec.python_version,
        "machine": platform.machine(),
        "python": python,
        "installer": installer,
        "system_site_packages": system_site_packages,
        "seconds": round(seconds, 3),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    temporary = venv / f"{MARKER}.tmp"
    temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, venv / MARKER)
