"""The requirement lines a project's dependency files install, derived (only when an environment is built) by each
format's own tool: ``poetry export`` (poetry-plugin-export) for ``poetry.lock``, ``pipenv requirements`` for
``Pipfile.lock``; a requirements file is its own list. Our rules then apply to them (``requirements_file``)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from flytekit.loggers import logger
from flytekitplugins.prebuilt.executors.script.locks.files import read_bytes
from flytekitplugins.prebuilt.executors.script.locks.kinds import FILES
from flytekitplugins.prebuilt.executors.script.locks.requirements_file import RequirementsReader
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError

OUTPUT_TAIL_LINES = 40  # of a failed tool's (or installer's) output, in its error
EXPORT_TIMEOUT_SECONDS = 600  # for one `poetry export` / `pipenv requirements` (they read files: seconds)


def derive(kind: str, root: Path) -> list[str]:
    """The requirement lines of ``kind`` in ``root``, as ``requirements_for_install`` documents."""
    if kind == "none":
        return []
    reader = RequirementsReader(root, building=True)
    if kind == "requirements":
        reader.read_file(root / FILES["requirements"])
    elif kind == "poetry":
        reader.read_tool_output(_poetry_export(root), "`poetry export`", root / FILES["poetry"])
    else:
        reader.read_tool_output(_pipenv_requirements(root), "`pipenv requirements`", root / FILES["pipenv"])
    lines = reader.lines()
    logger.info(f"{root}: {kind} dependencies, {len(lines)} requirement lines")
    return lines


def _poetry_export(root: Path) -> str:
    """The main group of ``poetry.lock``, exported by Poetry itself (poetry-plugin-export): reachability from
    pyproject's dependencies, markers and sources as Poetry resolves them. Reads files only, no network."""
    _need("poetry_plugin_export", "reading poetry.lock needs Poetry and poetry-plugin-export")
    command = [
        sys.executable,
        "-m",
        "poetry",
        "export",
        "--format",
        "requirements.txt",
        "--without-hashes",
        "--no-interaction",
        "--no-ansi",
        "--directory",
        str(root),
    ]
    env = {**os.environ, "POETRY_NO_INTERACTION": "1"}
    return _run_tool(command, cwd=root, env=env, what="poetry.lock: poetry export")


def _pipenv_requirements(root: Path) -> str:
    """The ``default`` section of ``Pipfile.lock``, exported by pipenv itself. It runs on a copy of the lock, beside
    an empty Pipfile (``pipenv requirements`` reads only the lock; so the key leaves the Pipfile out), in a
    temporary folder: pipenv otherwise looks for a Pipfile in parent folders and reads a .env file."""
    _need("pipenv", "reading Pipfile.lock needs pipenv")
    with tempfile.TemporaryDirectory(prefix="prebuilt-pipenv-") as scratch:
        pipfile = Path(scratch, "Pipfile")
        pipfile.write_bytes(b"")
        Path(scratch, "Pipfile.lock").write_bytes(read_bytes(root / "Pipfile.lock"))
        env = {
            **os.environ,
            "PIPENV_PIPFILE": str(pipfile),
            "PIPENV_VERBOSITY": "-1",
            "PIPENV_DONT_LOAD_ENV": "1",
            "PIPENV_IGNORE_VIRTUALENVS": "1",
            "PIPENV_NOSPIN": "1",
            "NO_COLOR": "1",
        }
        return _run_tool(
            [sys.executable, "-m", "pipenv", "requirements"],
            cwd=Path(scratch),
            env=env,
            what="Pipfile.lock: pipenv requirements",
        )


def _need(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"{what} in the executor's environment ({sys.executable}): "
            f"install flytekitplugins-prebuilt[script] (the script image has them)"
        )


def _run_tool(command: list[str], *, cwd: Path, env: dict[str, str], what: str) -> str:
    """Run an export tool; its standard output (its messages go to standard error)."""
    shown = shlex.join(command)
    logger.info(f"deriving requirements: {shown}")
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            stdin=subprocess.DEVNULL,
            timeout=EXPORT_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise TransientError(f"{what} timed out after {EXPORT_TIMEOUT_SECONDS}s: {shown}") from None
    except OSError as error:
        raise UserError(f"{what}: cannot run {shown}: {error}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-OUTPUT_TAIL_LINES:])
        raise UserError(
            f"{what} failed with exit code {done.returncode}: {shown}\n"
            f"--- last {OUTPUT_TAIL_LINES} lines of output ---\n{tail}"
        )
    return done.stdout
