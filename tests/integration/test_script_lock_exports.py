"""The pins of lock files as each format's own tool exports them (Poetry's and pipenv's export, run for real in one
offline process: a network namespace with loopback only), and our rules on top. The projects are the fixture folders
of tests/unit/fixtures/locks/ (see its README); detection and the requirements rules are unit tests
(tests/unit/test_script_locks.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.unit.test_script_locks import FIXTURES, WINDOWS, copy, installed, pins

# Derives the requirements of each project given on the command line, in a process without a network (a new
# network namespace: only a loopback interface), and prints {project: {"lines": [...]} or {"error": "..."}}.
DERIVE = """
import json, sys
from flytekitplugins.prebuilt.executors.script import locks
from flytekitplugins.prebuilt.kit.errors import UserError
result = {}
for project in sys.argv[1:]:
    try:
        result[project] = {"lines": locks.requirements_for_install(locks.detect(project))}
    except UserError as error:
        result[project] = {"error": str(error)}
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def derived(tmp_path_factory) -> dict[str, dict]:
    """Every lock-tool case of this file, derived in one offline process (so the exports need no network)."""
    root = tmp_path_factory.mktemp("locks")
    projects = {
        name: copy(name, root) for name in ("poetry-2", "poetry-1.1-category", "poetry-2.0-no-groups", "pipenv")
    }
    stale = projects["stale poetry"] = copy("poetry-2", root / "stale")  # pyproject.toml changed after locking
    pyproject = stale / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"six (==1.16.0)"', '"six (==1.17.0)"'))
    broken = projects["broken poetry.lock"] = copy("poetry-2", root / "broken")
    (broken / "poetry.lock").write_text("[[package]\nname = ")
    for fixture, lock, old, new in [
        ("poetry-2", "poetry.lock", 'url = "libs/mylib"', 'url = "../libs/mylib"'),
        ("pipenv", "Pipfile.lock", '"./libs/mylib"', '"../libs/mylib"'),
    ]:
        shutil.copytree(FIXTURES / fixture / "libs", root / f"outside-{fixture}/libs")  # beside the project
        project = projects[f"{fixture}, package outside"] = copy(fixture, root / f"outside-{fixture}")
        (project / lock).write_text((project / lock).read_text().replace(old, new))

    command = ["unshare", "--map-root-user", "--net", sys.executable, "-c", DERIVE, *map(str, projects.values())]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    by_path = json.loads(done.stdout.splitlines()[-1])
    return {name: {**by_path[str(path)], "project": path} for name, path in projects.items()}


def test_poetry_2_lock_main_group_with_markers_as_poetry_exports_it(derived):
    case = derived["poetry-2"]
    lines, lib = case["lines"], case["project"] / "libs/mylib"
    assert sorted(pins(lines)) == ["click", "colorama", "mylib", "pywin32", "six", "toolz", "torch"]  # main group
    assert installed(lines) == {
        "click": "==8.1.8",
        "mylib": str(lib),  # develop = true: installed as a copy, from its absolute path
        "six": "==1.16.0",
        "toolz": "git+https://github.com/pytoolz/toolz.git@245b5a7b3a34ec9e43ba9e3ba10cb1f0e6fb6fd8",
        "torch": "==2.5.1+cpu",
    }
    assert {"colorama", "pywin32"} <= set(installed(lines, WINDOWS))  # their markers are kept
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines  # the explicit source of torch
    assert not any(line.startswith("-e") for line in lines)


@pytest.mark.parametrize("case", ["poetry-1.1-category", "poetry-2.0-no-groups"])
def test_poetry_1_locks_main_group_with_markers_as_poetry_exports_them(derived, case):
    lines = derived[case]["lines"]
    # no pytest/iniconfig (dev group), no pyyaml (an extra not asked for); pysocks comes with requests[socks]
    assert sorted(pins(lines)) == [
        "certifi",
        "charset-normalizer",
        "click",
        "colorama",
        "idna",
        "pywin32",
        "requests[socks]",
        "six",
        "urllib3",
    ]
    assert installed(lines)["requests[socks]"] == "==2.31.0"
    assert "colorama" not in installed(lines) and "pywin32" not in installed(lines)  # Windows only
    assert installed(lines, WINDOWS)["pywin32"] == "==306"


def test_pipfile_lock_default_section_as_pipenv_exports_it(derived):
    case = derived["pipenv"]
    lines, lib = case["lines"], case["project"] / "libs/mylib"
    assert installed(lines) == {
        "idna": "==3.6",
        "internal-lib": "==1.2.3",
        "mylib": str(lib),  # editable in the lock: installed as a copy
        "pysocks": "==1.7.1",
        "requests[socks]": "==2.31.0",
        "six": "==1.16.0",
        "toolz": "git+https://github.com/pytoolz/toolz.git@245b5a7b3a34ec9e43ba9e3ba10cb1f0e6fb6fd8",
    }  # not pytest: 'develop' is not installed
    # the private index is kept; PyPI, the installer's default, is left out so a configured mirror applies
    assert [line for line in lines if line.startswith("-")] == ["--extra-index-url https://pkgs.example.com/simple"]


def test_a_stale_or_broken_poetry_lock_is_refused_with_poetrys_message(derived):
    assert (
        "pyproject.toml changed significantly since poetry.lock was last generated" in derived["stale poetry"]["error"]
    )
    broken = derived["broken poetry.lock"]["error"]
    assert "poetry.lock: poetry export failed with exit code 1" in broken and "at line 1, column 10" in broken


@pytest.mark.parametrize("case", ["poetry-2, package outside", "pipenv, package outside"])
def test_a_locked_local_package_outside_the_project_is_refused(derived, case):
    assert "outside the project directory" in derived[case]["error"]
    assert str(derived[case]["project"].parent / "libs/mylib") in derived[case]["error"]


# ====================================================================================== requirements files
