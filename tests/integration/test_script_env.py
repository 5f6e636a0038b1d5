"""Dependency environments for code bundles: detection from real project files, and real installs (uv, and the
pip fallback) from the package index configured for pip/uv on this machine."""

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
from flytekitplugins.prebuilt.executors.script.locks import KINDS, MARKER, DependencySpec, detect
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError

PY = "%d.%d" % sys.version_info[:2]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def make_lib(directory: Path, name: str = "mylib", value: str = "1") -> Path:
    """A tiny local package (setuptools, PEP 517)."""
    write(directory / "pyproject.toml", f"""
        [project]
        name = "{name}"
        version = "0.1"

        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
    """)
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


# ====================================================================================== detect: requirements.txt


def test_requirements_txt_with_includes_comments_continuations_markers_and_options(project):
    write(project / "requirements.txt", r"""
        # pinned for the job
        --index-url https://pypi.org/simple
        --extra-index-url=https://pkgs.example.com/simple

        six==1.16.0   # inline comment
        idna>=3 ; python_version >= "3.8"
        requests[socks] == 2.31.0 \
            ; sys_platform != "win32"
        -r sub/more.txt
        tomli==2.0.1 \
            --hash=sha256:939de3e7a6161af0c887ef91b7d41a53e7c5a1ca976325f429cb46ea9bc30ecc
        six==1.16.0
        git+https://github.com/pytoolz/toolz.git@0.12.0#egg=toolz
    """)
    write(project / "sub/more.txt", """
        --pre
        packaging ; sys_platform == "linux"  # from an included file
        -r ../base.txt
    """)
    write(project / "base.txt", "attrs==23.1.0\n")

    spec = detect(project)

    assert spec.kind == "requirements"
    assert spec.python_version == PY
    assert spec.requirements == (
        "--index-url https://pypi.org/simple",
        "--extra-index-url https://pkgs.example.com/simple",
        "--pre",
        "six==1.16.0",
        'idna>=3 ; python_version >= "3.8"',
        'requests[socks] == 2.31.0 ; sys_platform != "win32"',
        'packaging ; sys_platform == "linux"',
        "attrs==23.1.0",
        "tomli==2.0.1 --hash=sha256:939de3e7a6161af0c887ef91b7d41a53e7c5a1ca976325f429cb46ea9bc30ecc",
        "git+https://github.com/pytoolz/toolz.git@0.12.0#egg=toolz",
    )
    assert spec.packages == spec.requirements[3:]
    assert len(spec.key) == 24 and int(spec.key, 16) >= 0


def test_requirements_local_paths_inside_the_project_become_absolute(project):
    make_lib(project / "libs/mylib")
    write(project / "wheels/README", "a find-links directory\n")
    write(project / "requirements.txt", f"""
        --find-links wheels
        ./libs/mylib[extra] ; python_version >= "3"
        mylib @ {(project / 'libs/mylib').as_uri()}
    """)
    spec = detect(project)
    lib = project.resolve() / "libs/mylib"
    assert spec.requirements == (
        f"--find-links {project.resolve() / 'wheels'}",
        f'{lib}[extra] ; python_version >= "3"',
        f"mylib @ {lib.as_uri()}",
    )


def test_auto_detection_order(project):
    assert detect(project).kind == "none"
    assert detect(project).requirements == ()
    write(project / "Pipfile.lock", json.dumps({"default": {"six": {"version": "==1.16.0"}}}))
    assert detect(project).kind == "pipenv"
    make_lib(project / "libs/mylib")
    write(project / "poetry.lock", POETRY_2)
    assert detect(project).kind == "poetry"
    write(project / "requirements.txt", "six==1.16.0\n")
    assert detect(project).kind == "requirements"
    # an explicit kind wins over the order
    assert detect(project, "pipenv").kind == "pipenv"
    assert detect(project, "none").requirements == ()


# ====================================================================================== detect: poetry.lock

PYPROJECT_POETRY_1 = """
    [tool.poetry]
    name = "demo"
    version = "0.1.0"
    description = ""
    authors = ["Dev <dev@example.com>"]

    [tool.poetry.dependencies]
    python = "^3.9"
    click = "^8.1"
    six = "1.16.0"
    requests = {version = "^2.31", extras = ["socks"]}
    pywin32 = {version = "^306", markers = "sys_platform == 'win32'"}
    pyyaml = {version = "^6.0", optional = true}

    [tool.poetry.extras]
    yaml = ["pyyaml"]

    [tool.poetry.group.dev.dependencies]
    pytest = "^7.4"

    [build-system]
    requires = ["poetry-core"]
    build-backend = "poetry.core.masonry.api"
"""


def poetry_1_lock(with_category: bool) -> str:
    """A poetry 1.x lock: lock-version 1.1 ('category', files under [metadata.files]) or 2.0 (poetry 1.5-1.8:
    no category, files per package)."""
    def category(value: str) -> str:
        return f'category = "{value}"\n' if with_category else ""

    def files(name: str) -> str:
        return "" if with_category else f'files = [\n    {{file = "{name}.whl", hash = "sha256:00"}},\n]\n'

    packages = [
        ("certifi", "2023.11.17", "main", ""),
        ("charset-normalizer", "3.3.2", "main", ""),
        ("click", "8.1.7", "main", """
            [package.dependencies]
            colorama = {version = "*", markers = "platform_system == \\"Windows\\""}
        """),
        ("colorama", "0.4.6", "main" if with_category else "", ""),
        ("idna", "3.6", "main", ""),
        ("iniconfig", "2.0.0", "dev", ""),
        ("pysocks", "1.7.1", "main", ""),
        ("pytest", "7.4.3", "dev", """
            [package.dependencies]
            colorama = {version = "*", markers = "sys_platform == \\"win32\\""}
            iniconfig = "*"
        """),
        ("pywin32", "306", "main", ""),
        ("pyyaml", "6.0.1", "main", "optional"),
        ("requests", "2.31.0", "main", """
            [package.dependencies]
            certifi = ">=2017.4.17"
            charset-normalizer = ">=2,<4"
            idna = ">=2.5,<4"
            PySocks = {version = ">=1.5.6,<1.5.7 || >1.5.7", optional = true, markers = "extra == \\"socks\\""}
            urllib3 = ">=1.21.1,<3"

            [package.extras]
            socks = ["PySocks (>=1.5.6,!=1.5.7)"]
            use-chardet-on-py3 = ["chardet (>=3.0.2,<6)"]
        """),
        ("six", "1.16.0", "main", ""),
        ("urllib3", "2.1.0", "main", ""),
    ]
    text = ""
    for name, version, group, extra in packages:
        optional = "true" if extra == "optional" else "false"
        text += f'[[package]]\nname = "{name}"\nversion = "{version}"\ndescription = "{name}"\n'
        text += category(group or "main") + f'optional = {optional}\npython-versions = ">=3.7"\n' + files(name)
        if extra and extra != "optional":
            text += textwrap.dedent(extra)
        text += "\n"
    text += '[extras]\nyaml = ["pyyaml"]\n\n[metadata]\n'
    text += f'lock-version = "{"1.1" if with_category else "2.0"}"\npython-versions = "^3.9"\ncontent-hash = "ab12"\n'
    if with_category:
        text += '\n[metadata.files]\nsix = [\n    {file = "six-1.16.0-py2.py3-none-any.whl", hash = "sha256:00"},\n]\n'
    return text


MAIN_POETRY_1 = (
    "certifi==2023.11.17",
    "charset-normalizer==3.3.2",
    "click==8.1.7",
    'colorama==0.4.6 ; platform_system == "Windows"',  # from the edge click -> colorama; pytest is dev
    "idna==3.6",
    "pysocks==1.7.1",  # wanted through requests[socks]: its 'extra' marker is dropped
    "pywin32==306 ; sys_platform == 'win32'",
    "requests==2.31.0",
    "six==1.16.0",
    "urllib3==2.1.0",
)


@pytest.mark.parametrize("with_category", [True, False], ids=["lock-1.1-category", "lock-2.0-reachable"])
def test_poetry_1x_lock(project, with_category):
    write(project / "pyproject.toml", PYPROJECT_POETRY_1)
    write(project / "poetry.lock", poetry_1_lock(with_category))
    spec = detect(project, "poetry")
    assert spec.kind == "poetry"
    assert spec.requirements == MAIN_POETRY_1


def test_poetry_1x_lock_without_pyproject_takes_main_packages_without_markers(project):
    write(project / "poetry.lock", poetry_1_lock(with_category=True))
    spec = detect(project)
    assert spec.kind == "poetry"
    assert "colorama==0.4.6" in spec.requirements  # no dependency graph roots: no derived markers
    assert "pytest==7.4.3" not in spec.requirements and "pyyaml==6.0.1" not in spec.requirements


POETRY_2 = """
    # This file is automatically @generated by Poetry 2.0.1 and should not be changed by hand.

    [[package]]
    name = "click"
    version = "8.1.8"
    description = "Composable command line interface toolkit"
    optional = false
    python-versions = ">=3.7"
    groups = ["main"]
    files = [
        {file = "click-8.1.8-py3-none-any.whl", hash = "sha256:63c132bbbed01578a06712a2d1f497bb62d9c1c0d329b7903a866228027263b2"},
    ]

    [package.dependencies]
    colorama = {version = "*", markers = "platform_system == \\"Windows\\""}

    [[package]]
    name = "colorama"
    version = "0.4.6"
    description = "Cross-platform colored terminal text."
    optional = false
    python-versions = "!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*,!=3.5.*,!=3.6.*,>=2.7"
    groups = ["main", "dev"]
    markers = {main = "platform_system == \\"Windows\\"", dev = "sys_platform == \\"win32\\""}
    files = []

    [[package]]
    name = "mylib"
    version = "0.1"
    description = ""
    optional = false
    python-versions = "*"
    groups = ["main"]
    files = []
    develop = true

    [package.source]
    type = "directory"
    url = "libs/mylib"

    [[package]]
    name = "pysocks"
    version = "1.7.1"
    description = "A Python SOCKS client module."
    optional = true
    python-versions = ">=2.7"
    groups = ["main"]
    markers = "extra == \\"socks\\""
    files = []

    [[package]]
    name = "pytest"
    version = "8.3.4"
    description = "pytest: simple powerful testing with Python"
    optional = false
    python-versions = ">=3.8"
    groups = ["dev"]
    files = []

    [[package]]
    name = "pywin32"
    version = "308"
    description = "Python for Window Extensions"
    optional = false
    python-versions = "*"
    groups = ["main"]
    markers = "sys_platform == \\"win32\\""
    files = []

    [[package]]
    name = "six"
    version = "1.16.0"
    description = "Python 2 and 3 compatibility utilities"
    optional = false
    python-versions = ">=2.7, !=3.0.*, !=3.1.*, !=3.2.*"
    groups = ["main"]
    files = []

    [[package]]
    name = "toolz"
    version = "0.12.0"
    description = "List processing tools and functional utilities"
    optional = false
    python-versions = ">=3.5"
    groups = ["main"]
    files = []

    [package.source]
    type = "git"
    url = "https://github.com/pytoolz/toolz.git"
    reference = "0.12.0"
    resolved_reference = "245b5a7b3a34ec9e43ba9e3ba10cb1f0e6fb6fd8"

    [[package]]
    name = "torch"
    version = "2.5.1+cpu"
    description = "Tensors and Dynamic neural networks"
    optional = false
    python-versions = ">=3.8.0"
    groups = ["main"]
    files = []

    [package.source]
    type = "legacy"
    url = "https://download.pytorch.org/whl/cpu"
    reference = "pytorch-cpu"

    [extras]
    socks = ["pysocks"]

    [metadata]
    lock-version = "2.1"
    python-versions = ">=3.9,<4.0"
    content-hash = "0f5a2b4c"
"""


def test_poetry_2x_lock(project):
    write(project / "pyproject.toml", """
        [project]
        name = "demo"
        version = "0.1.0"
        requires-python = ">=3.9,<4.0"
        dependencies = ["click (>=8.1)", "six (==1.16.0)", "mylib @ ./libs/mylib"]
        [project.optional-dependencies]
        socks = ["pysocks"]
    """)
    make_lib(project / "libs/mylib")
    write(project / "poetry.lock", POETRY_2)
    spec = detect(project, "poetry")
    lib = project.resolve() / "libs/mylib"
    assert spec.requirements == (
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "click==8.1.8",
        'colorama==0.4.6 ; platform_system == "Windows"',
        f"mylib @ {lib.as_uri()}",
        'pywin32==308 ; sys_platform == "win32"',
        "six==1.16.0",
        "toolz @ git+https://github.com/pytoolz/toolz.git@245b5a7b3a34ec9e43ba9e3ba10cb1f0e6fb6fd8",
        "torch==2.5.1+cpu",
    )


def test_poetry_directory_source_outside_the_project_is_refused(tmp_path, project):
    make_lib(tmp_path / "elsewhere")
    write(project / "poetry.lock", POETRY_2.replace('url = "libs/mylib"', 'url = "../elsewhere"'))
    with pytest.raises(UserError, match="outside the project directory"):
        detect(project)


# ====================================================================================== detect: Pipfile.lock

PIPFILE_LOCK = {
    "_meta": {
        "hash": {"sha256": "7d0c1b4d2e"},
        "pipfile-spec": 6,
        "requires": {"python_version": "3.11"},
        "sources": [
            {"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": True},
            {"name": "private", "url": "https://pkgs.example.com/simple", "verify_ssl": True},
        ],
    },
    "default": {
        "six": {
            "hashes": ["sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"],
            "index": "pypi",
            "markers": "python_version >= '2.7' and python_version not in '3.0, 3.1, 3.2'",
            "version": "==1.16.0",
        },
        "requests": {"extras": ["socks"], "hashes": [], "index": "pypi", "version": "==2.31.0"},
        "idna": {"hashes": [], "index": "pypi", "markers": "python_version >= '3.5'", "version": "==3.6"},
        "internal-lib": {"hashes": [], "index": "private", "version": "==1.2.3"},
        "mylib": {"editable": True, "path": "./libs/mylib"},
        "toolz": {"git": "https://github.com/pytoolz/toolz.git", "ref": "245b5a7b3a34ec9e43ba9e3ba10cb1f0e6fb6fd8"},
    },
    "develop": {"pytest": {"hashes": [], "index": "pypi", "version": "==8.3.4"}},
}


def test_pipfile_lock(project):
    make_lib(project / "libs/mylib")
    write(project / "Pipfile.lock", json.dumps(PIPFILE_LOCK, indent=4))
    spec = detect(project)
    assert spec.kind == "pipenv"
    lib = project.resolve() / "libs/mylib"
    assert spec.requirements == (
        "--extra-index-url https://pkgs.example.com/simple",
        "idna==3.6 ; python_version >= '3.5'",
        "internal-lib==1.2.3",
        f"mylib @ {lib.as_uri()}",
        "requests[socks]==2.31.0",
        "six==1.16.0 ; python_version >= '2.7' and python_version not in '3.0, 3.1, 3.2'",
        "toolz @ git+https://github.com/pytoolz/toolz.git@245b5a7b3a34ec9e43ba9e3ba10cb1f0e6fb6fd8",
    )
    assert not any(line.startswith("pytest") for line in spec.requirements)  # develop is not installed


# ====================================================================================== detect: errors


@pytest.mark.parametrize("kind", ["requirements", "poetry", "pipenv"])
def test_explicit_kind_without_its_file(project, kind):
    with pytest.raises(UserError, match={"requirements": "requirements.txt", "poetry": "poetry.lock",
                                         "pipenv": "Pipfile.lock"}[kind]):
        detect(project, kind)


@pytest.mark.parametrize("content, message", [
    ("-e ./libs/mylib\n", "editable"),
    ("--editable=git+https://github.com/pytoolz/toolz.git#egg=toolz\n", "editable"),
    ("-r ../outside.txt\n", "outside the project directory"),
    ("-r link.txt\n", "outside the project directory"),  # a symlink that leads out
    ("../elsewhere\n", "outside the project directory"),
    ("~/somewhere/pkg\n", "outside the project directory"),
    ("-r missing.txt\n", "does not exist"),
    ("-r loop.txt\n", "include each other"),
    ("--use-feature=truststore\n", "unsupported option"),
    ("--index-url\n", "needs a value"),
])
def test_bad_requirements_are_user_errors(tmp_path, project, content, message):
    write(tmp_path / "outside.txt", "six\n")
    make_lib(tmp_path / "elsewhere")
    make_lib(project / "libs/mylib")
    (project / "link.txt").symlink_to(tmp_path / "outside.txt")
    write(project / "loop.txt", "-r requirements.txt\n")
    write(project / "requirements.txt", "six==1.16.0\n" + content)
    with pytest.raises(UserError, match=message):
        detect(project)


def test_other_bad_inputs(tmp_path, project):
    with pytest.raises(UserError, match="unknown dependency kind"):
        detect(project, "conda")
    with pytest.raises(UserError, match="does not exist"):
        detect(tmp_path / "nope")
    write(project / "poetry.lock", "[[package]\nname = ")
    with pytest.raises(UserError, match="poetry.lock"):
        detect(project)
    with pytest.raises(UserError, match="unknown dependency kind"):
        DependencySpec("conda", (), "0" * 24)


# ====================================================================================== keys


def test_key_depends_on_content_only(tmp_path):
    def project_at(name: str, requirements: str, lib_value: str = "1") -> Path:
        root = tmp_path / name
        make_lib(root / "libs/mylib", value=lib_value)
        write(root / "requirements.txt", requirements)
        return root

    base = detect(project_at("a", "six==1.16.0\n./libs/mylib\n"))
    # same content elsewhere (bundles unpack into fresh directories): same key, though the paths differ
    moved = detect(project_at("b", "six==1.16.0\n./libs/mylib\n"))
    assert moved.key == base.key and moved.requirements != base.requirements
    # comments, blank lines and spacing do not count
    assert detect(project_at("c", "# deps\n\nsix==1.16.0    # pinned\n  ./libs/mylib\n")).key == base.key
    assert detect(project_at("a2", "six==1.16.0\n./libs/mylib\n")).key == base.key  # stable across calls
    # what is installed does
    assert detect(project_at("d", "six==1.15.0\n./libs/mylib\n")).key != base.key
    assert detect(project_at("e", "six==1.16.0\n./libs/mylib\n", lib_value="2")).key != base.key
    assert detect(tmp_path / "a", python_version="3.99").key != base.key
    assert detect(tmp_path / "a", "none").key != base.key


def test_lock_keys(project):
    write(project / "Pipfile.lock", json.dumps(PIPFILE_LOCK))
    make_lib(project / "libs/mylib")
    first = detect(project)
    reordered = dict(PIPFILE_LOCK, default=dict(reversed(list(PIPFILE_LOCK["default"].items()))))
    write(project / "Pipfile.lock", json.dumps(reordered, indent=2))
    assert detect(project).key == first.key
    changed = json.loads(json.dumps(PIPFILE_LOCK))
    changed["default"]["six"]["version"] = "==1.15.0"
    write(project / "Pipfile.lock", json.dumps(changed))
    assert detect(project).key != first.key


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
    write(project / "pyproject.toml", """
        [tool.poetry]
        name = "demo"
        version = "0.1.0"
        [tool.poetry.dependencies]
        python = "^3.9"
        tomli = "2.0.1"
    """)
    write(project / "poetry.lock", """
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
        content-hash = "00"
    """)
    write(project / "Pipfile.lock", json.dumps({"_meta": {"sources": []}, "default": {
        "idna": {"version": "==3.6", "markers": "python_version >= '3.5'"}}}))
    make_lib(project / "libs/mylib", value="42")
    write(project / "requirements.txt", "./libs/mylib\n")

    checks = {"requirements": ("import mylib; print(mylib.VALUE)", "42"),
              "poetry": ("import tomli; print(tomli.__name__)", "tomli"),
              "pipenv": ("import idna; print(idna.__version__)", "3.6"),
              "none": ("import sys; print(sys.prefix != sys.base_prefix)", "True")}
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
    found = subprocess.run(["python", "-c", "import sys; print(sys.prefix)"], env={**os.environ, **variables},
                           capture_output=True, text=True, check=True)
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
    processes = [subprocess.Popen([sys.executable, "-c", CONCURRENT_SCRIPT, str(project), str(cache), str(log)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
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
    assert [p.name for p in [venv / "pyvenv.cfg", *(venv / "bin").iterdir()]
            if p.is_file() and b".building-" in p.read_bytes()] == []
    activated = subprocess.run(["bash", "-c", f". {venv}/bin/activate && echo $VIRTUAL_ENV && command -v python"],
                               capture_output=True, text=True, check=True)
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
             "slowpkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
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
    write(project / "slowpkg/pyproject.toml", """
        [project]
        name = "slowpkg"
        version = "0.1"

        [build-system]
        requires = []
        build-backend = "slow_backend"
        backend-path = ["."]
    """)
    write(project / "slowpkg/slow_backend.py", SLOW_BACKEND)
    write(project / "requirements.txt", "./slowpkg\n")
    hold, started = tmp_path / "hold", tmp_path / "started"
    hold.write_text("")
    builder = subprocess.Popen([sys.executable, "-c", BUILDER_SCRIPT, str(project), str(cache)],
                               env={**os.environ, "SLOW_HOLD": str(hold), "SLOW_STARTED": str(started)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 120
        while not started.exists():
            assert builder.poll() is None and time.monotonic() < end, builder.stdout.read() if builder.poll() is not None else ""
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
