"""Dependency environments for code bundles: real installs (uv, and the pip fallback) from the package index
configured for pip/uv on this machine. How lock files are read: tests/unit/test_script_locks.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.executors.script import environments as script_env
from flytekitplugins.prebuilt.executors.script import locks
from flytekitplugins.prebuilt.executors.script.environments import (
    ensure_environment,
    environment_variables,
    venv_python,
)
from flytekitplugins.prebuilt.executors.script.locks import KINDS, MARKER, detect
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def make_lib(directory: Path, name: str = "mylib", value: str = "1") -> Path:
    """A tiny local package (setuptools, PEP 517)."""
    write(
        directory / "pyproject.toml",
        f"""
        [project]
        name = "{name}"
        version = "0.1"

        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
    """,
    )
    write(directory / name / "__init__.py", f"VALUE = {value}\n")
    return directory


def run_python(venv: Path, code: str) -> str:
    result = subprocess.run([str(venv_python(venv)), "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def project(tmp_path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


class Builds(list):
    """The venvs the real build step was called for; ``delay`` slows it down (to make builders overlap)."""

    delay = 0.0


@pytest.fixture
def count_builds(monkeypatch) -> Builds:
    calls = Builds()
    real = script_env._build

    def build(spec, venv, **kwargs):
        calls.append(venv)
        time.sleep(calls.delay)
        return real(spec, venv, **kwargs)

    monkeypatch.setattr(script_env, "_build", build)
    return calls


# ====================================================================================== environments


def test_install_then_reuse(project, cache, count_builds):
    write(project / "requirements.txt", "six==1.16.0\nwheel==0.42.0\n")
    spec = detect(project)

    venv = ensure_environment(spec, cache)

    assert venv == cache / f"requirements-{spec.key}"
    assert run_python(venv, "import six, sys; print(six.__version__, sys.prefix)") == f"1.16.0 {venv}"
    marker = json.loads((venv / MARKER).read_text())
    assert marker["key"] == spec.key and marker["requirements"] == list(spec.requirements)
    # console scripts run, although the env was built in another folder and renamed (uv venv --relocatable)
    assert subprocess.run([str(venv / "bin/wheel"), "version"], capture_output=True).returncode == 0
    assert list((venv / "lib").glob("python*/site-packages/__pycache__/six.*.pyc"))  # --compile-bytecode
    assert len(count_builds) == 1

    stamp = (venv / MARKER).stat().st_mtime_ns
    assert ensure_environment(spec, cache) == venv
    assert ensure_environment(detect(project), str(cache)) == venv
    assert (venv / MARKER).stat().st_mtime_ns == stamp
    assert len(count_builds) == 1  # no reinstall


def test_pip_only_options_become_uv_flags(project, cache):
    write(project / "requirements.txt", "--pre\n--trusted-host pypi.org\n--prefer-binary\nsix==1.16.0\n")
    venv = ensure_environment(detect(project), cache)
    assert run_python(venv, "import six; print(six.__version__)") == "1.16.0"
    given = (venv / locks.REQUIREMENTS_COPY).read_text()
    if json.loads((venv / MARKER).read_text())["installer"] == "uv":  # uv would warn about them in the file
        assert given == "six==1.16.0\n"


def test_each_kind_end_to_end(project, cache):
    write(
        project / "pyproject.toml",
        """
        [tool.poetry]
        name = "demo"
        version = "0.1.0"
        [tool.poetry.dependencies]
        python = "^3.9"
        tomli = "2.0.1"
    """,
    )
    write(
        project / "poetry.lock",
        """
        [[package]]
        name = "tomli"
        version = "2.0.1"
        description = "A lil' TOML parser"
        optional = false
        python-versions = ">=3.7"
        groups = ["main"]
        files = []

        [metadata]
        lock-version = "2.1"
        python-versions = "^3.9"
        # Poetry's hash of the pyproject.toml above: `poetry export` refuses a lock that does not match it
        content-hash = "29d5d1993c80002744676a933440830a88d668e4495ab5eb7e12ad3ad52c3828"
    """,
    )
    write(
        project / "Pipfile.lock",
        json.dumps(
            {"_meta": {"sources": []}, "default": {"idna": {"version": "==3.6", "markers": "python_version >= '3.5'"}}}
        ),
    )
    make_lib(project / "libs/mylib", value="42")
    write(project / "requirements.txt", "./libs/mylib\n")

    checks = {
        "requirements": ("import mylib; print(mylib.VALUE)", "42"),
        "poetry": ("import tomli; print(tomli.__name__)", "tomli"),
        "pipenv": ("import idna; print(idna.__version__)", "3.6"),
        "none": ("import sys; print(sys.prefix != sys.base_prefix)", "True"),
    }
    venvs = set()
    for kind in KINDS:
        venv = ensure_environment(detect(project, kind), cache)
        assert venv.name.startswith(f"{kind}-")
        assert run_python(venv, checks[kind][0]) == checks[kind][1]
        venvs.add(venv)
    assert len(venvs) == len(KINDS)


def test_none_kind_and_system_site_packages(project, cache):
    spec = detect(project)
    assert spec.kind == "none"
    plain = ensure_environment(spec, cache)
    system = ensure_environment(spec, cache, system_site_packages=True)
    assert plain != system and system.name == f"none-{spec.key}-system"
    assert "include-system-site-packages = true" in (system / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in (plain / "pyvenv.cfg").read_text()
    assert run_python(plain, "import sys; print(sys.version_info[:2] == (%d, %d))" % sys.version_info[:2]) == "True"


def test_environment_variables(cache, project):
    venv = ensure_environment(detect(project), cache)
    variables = environment_variables(venv)
    assert variables["VIRTUAL_ENV"] == str(venv)
    assert variables["PATH"].split(os.pathsep)[0] == str(venv / "bin")
    assert variables["PATH"].split(os.pathsep)[1:] == [p for p in os.environ["PATH"].split(os.pathsep) if p]
    found = subprocess.run(
        ["python", "-c", "import sys; print(sys.prefix)"],
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == str(venv)


def test_failed_install_is_a_user_error_and_leaves_no_entry(project, cache):
    write(project / "requirements.txt", "six==1.16.0\nthis-package-does-not-exist-prebuilt==1.0\n")
    spec = detect(project)
    with pytest.raises(UserError) as raised:
        ensure_environment(spec, cache)
    message = str(raised.value)
    assert "exit code" in message and "pip install" in message
    assert "this-package-does-not-exist-prebuilt" in message.split("lines of output ---", 1)[1]  # installer output
    assert not isinstance(raised.value, TransientError)
    assert [p.name for p in cache.iterdir() if p.is_dir()] == []  # only the lock file is left
    assert not (cache / spec.name).exists()


def test_unreachable_index_is_transient(project, cache, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    write(project / "requirements.txt", f"--index-url http://127.0.0.1:{port}/simple\nsix==1.16.0\n")
    spec = detect(project)
    with pytest.raises(TransientError, match="(?i)connection refused"):
        ensure_environment(spec, cache)
    assert not (cache / spec.name).exists()


def test_install_past_the_timeout_is_transient(project, cache):
    write(project / "requirements.txt", "six==1.16.0\n")
    spec = detect(project)
    with pytest.raises(TransientError, match="timed out|out of time"):
        ensure_environment(spec, cache, timeout=0.01)
    assert not (cache / spec.name).exists()


def test_constraints_file(project, cache):
    write(project / "requirements.txt", "-c constraints/pins.txt\nsix\n")
    write(project / "constraints/pins.txt", "six==1.16.0\n")
    spec = detect(project)
    assert spec.requirements == (f"--constraint {project.resolve() / 'constraints/pins.txt'}", "six")
    venv = ensure_environment(spec, cache)
    assert run_python(venv, "import six; print(six.__version__)") == "1.16.0"
    write(project / "constraints/pins.txt", "six==1.15.0\n")
    assert detect(project).key != spec.key  # the constraints' content is part of the key


def test_incomplete_environment_is_rebuilt(project, cache, count_builds):
    write(project / "requirements.txt", "six==1.16.0\n")
    spec = detect(project)
    leftover = cache / spec.name
    write(leftover / "bin/junk", "from a crashed build\n")  # no marker: never reused
    (leftover / MARKER).with_suffix(".tmp").write_text("{")
    venv = ensure_environment(spec, cache)
    assert venv == leftover and not (venv / "bin/junk").exists()
    assert run_python(venv, "import six; print(six.__version__)") == "1.16.0"
    assert len(count_builds) == 1
    # a marker of another spec (or a torn one) does not count either
    (venv / MARKER).write_text("{not json")
    ensure_environment(spec, cache)
    assert len(count_builds) == 2


def test_python_version_mismatch(project, cache):
    spec = detect(project, python_version="3.99")
    with pytest.raises(UserError, match="3.99"):
        ensure_environment(spec, cache)


def test_concurrent_threads_install_once(project, cache, count_builds):
    write(project / "requirements.txt", "six==1.16.0\n")
    spec = detect(project)
    count_builds.delay = 0.5  # the first builder holds the lock while the second arrives
    results, errors = [], []

    def call():
        try:
            results.append(ensure_environment(spec, cache))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(count_builds) == 1
    assert results == [cache / spec.name] * 3
    assert run_python(results[0], "import six; print(six.__version__)") == "1.16.0"


CONCURRENT_SCRIPT = """
import sys, time
from flytekitplugins.prebuilt.executors.script import environments as script_env, locks

project, cache, log = sys.argv[1:]
real = script_env._build

def build(*args, **kwargs):
    with open(log, "a") as stream:
        stream.write("build\\n")
    time.sleep(1)
    return real(*args, **kwargs)

script_env._build = build
print(script_env.ensure_environment(locks.detect(project), cache))
"""


def test_concurrent_processes_install_once(tmp_path, project, cache):
    write(project / "requirements.txt", "six==1.16.0\n")
    log = tmp_path / "builds.log"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_SCRIPT, str(project), str(cache), str(log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    paths = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert paths == {str(cache / detect(project).name)}
    assert log.read_text().splitlines() == ["build"]


def test_pip_fallback_without_uv(project, cache, monkeypatch):
    monkeypatch.setattr(script_env, "_find_uv", lambda: None)
    write(project / "requirements.txt", "six==1.16.0\n")
    venv = ensure_environment(detect(project), cache)
    assert run_python(venv, "import six; print(six.__version__)") == "1.16.0"
    assert json.loads((venv / MARKER).read_text())["installer"] == "pip"


def test_uv_is_found_beside_the_interpreter(monkeypatch, tmp_path):
    fake = tmp_path / "bin"
    write(fake / "uv", "#!/bin/sh\n").chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    monkeypatch.setattr(sys, "executable", str(fake / "python"))
    assert script_env._find_uv() == str(fake / "uv")
    (fake / "uv").unlink()
    assert script_env._find_uv() is None


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_an_environment_built_in_another_folder_works_at_its_final_path(project, cache, monkeypatch, installer):
    if installer == "pip":
        monkeypatch.setattr(script_env, "_find_uv", lambda: None)
    write(project / "requirements.txt", "wheel==0.42.0\n")
    venv = ensure_environment(detect(project), cache)
    assert json.loads((venv / MARKER).read_text())["installer"] == installer
    done = subprocess.run([str(venv / "bin/wheel"), "version"], capture_output=True, text=True)
    assert done.stdout.startswith("wheel 0.42.0"), done.stderr
    # nothing names the build folder: console scripts, activation scripts, pyvenv.cfg
    assert [
        p.name
        for p in [venv / "pyvenv.cfg", *(venv / "bin").iterdir()]
        if p.is_file() and b".building-" in p.read_bytes()
    ] == []
    activated = subprocess.run(
        ["bash", "-c", f". {venv}/bin/activate && echo $VIRTUAL_ENV && command -v python"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert activated.stdout.split() == [str(venv), str(venv / "bin/python")]
    # the .pyc files were compiled in the build folder, yet code objects (tracebacks) name the final path
    (source,) = venv.glob("lib/python*/site-packages/wheel/cli/__init__.py")
    assert list(source.parent.glob("__pycache__/__init__.*.pyc"))
    assert run_python(venv, "import wheel.cli as m; print(m.main.__code__.co_filename)") == str(source)


SLOW_BACKEND = """
\"\"\"A PEP 517 backend that, while $SLOW_HOLD exists, waits before building (after creating $SLOW_STARTED).\"\"\"
import base64, hashlib, os, time, zipfile

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    hold = os.environ.get("SLOW_HOLD")
    if hold:
        open(os.environ["SLOW_STARTED"], "w").close()
        while os.path.exists(hold):
            time.sleep(0.1)
    files = {"slowpkg/__init__.py": b"VALUE = 1\\n",
             "slowpkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\\nName: slowpkg\\nVersion: 0.1\\n",
             "slowpkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\n"
                                            b"Root-Is-Purelib: true\\nTag: py3-none-any\\n"}
    digest = lambda data: base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record = "".join(f"{path},sha256={digest(data)},{len(data)}\\n" for path, data in files.items())
    name = "slowpkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
        wheel.writestr("slowpkg-0.1.dist-info/RECORD", record + "slowpkg-0.1.dist-info/RECORD,,\\n")
    return name
"""

BUILDER_SCRIPT = """
import sys
from flytekitplugins.prebuilt.executors.script import environments, locks, process

project, cache = sys.argv[1:]
with process.interruptible():
    try:
        print(environments.ensure_environment(locks.detect(project), cache))
    except process.Interrupted as error:
        print("interrupted:", error.error_code, flush=True)
        sys.exit(3)
"""


@pytest.fixture
def slow_builder(tmp_path, project, cache):
    """A builder process installing a local package whose build waits while the returned ``hold`` file exists."""
    write(
        project / "slowpkg/pyproject.toml",
        """
        [project]
        name = "slowpkg"
        version = "0.1"

        [build-system]
        requires = []
        build-backend = "slow_backend"
        backend-path = ["."]
    """,
    )
    write(project / "slowpkg/slow_backend.py", SLOW_BACKEND)
    write(project / "requirements.txt", "./slowpkg\n")
    hold, started = tmp_path / "hold", tmp_path / "started"
    hold.write_text("")
    builder = subprocess.Popen(
        [sys.executable, "-c", BUILDER_SCRIPT, str(project), str(cache)],
        env={**os.environ, "SLOW_HOLD": str(hold), "SLOW_STARTED": str(started)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        end = time.monotonic() + 120
        while not started.exists():
            assert builder.poll() is None and time.monotonic() < end, (
                builder.stdout.read() if builder.poll() is not None else ""
            )
            time.sleep(0.1)
        yield builder, hold
    finally:
        hold.unlink(missing_ok=True)  # lets any build backend still waiting finish
        if builder.poll() is None:
            builder.kill()
        builder.communicate()


def installers_for(cache: Path) -> list[int]:
    """The running ``pip install`` processes (uv's or pip's) that install into a folder of ``cache``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"install" in argv and b"pip" in argv and any(os.fsencode(cache) in arg for arg in argv):
            found.append(int(entry.name))
    return found


def gone_within(seconds: float, check) -> bool:
    end = time.monotonic() + seconds
    while check():
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


def test_a_builder_killed_mid_install_blocks_nobody_and_leaves_no_installer(slow_builder, project, cache):
    builder, hold = slow_builder
    assert installers_for(cache)  # uv pip install is running, into a temporary folder beside the final path
    (building,) = cache.glob(".requirements-*.building-*")
    spec = detect(project)
    assert not (cache / spec.name).exists()

    builder.kill()  # SIGKILL: no handler, no cleanup
    builder.wait()
    # the kernel killed the installer with the executor that started it (PR_SET_PDEATHSIG)
    assert gone_within(5, lambda: installers_for(cache)), installers_for(cache)
    assert building.exists()  # what the dead builder left
    hold.unlink()

    venv = ensure_environment(spec, cache)  # the next build: neither the dead lock holder nor its folder block it
    assert venv == cache / spec.name
    assert run_python(venv, "import slowpkg; print(slowpkg.VALUE)") == "1"
    assert not building.exists() and sorted(p.name for p in cache.iterdir()) == [spec.name, f"{spec.name}.lock"]


def test_sigterm_mid_install_stops_the_installer_and_removes_the_build(slow_builder, project, cache):
    builder, hold = slow_builder
    builder.send_signal(signal.SIGTERM)
    output, _ = builder.communicate(timeout=60)
    assert builder.returncode == 3 and "interrupted: USER:Interrupted" in output, output
    assert installers_for(cache) == []
    assert sorted(p.name for p in cache.iterdir()) == [f"{detect(project).name}.lock"]  # no build folder left
