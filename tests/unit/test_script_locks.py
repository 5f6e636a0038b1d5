"""Lock files of script bundles (executors/script/locks/): the environment key from the files' bytes, the pins from
each format's own tool (run for real, offline, in tests/integration/test_script_lock_exports.py), and our rules on
top. The projects are the fixture folders in tests/unit/fixtures/locks/ (see its README); installs are tested in
tests/integration/test_script_env.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.executors.script import locks
from flytekitplugins.prebuilt.executors.script.locks import DependencySpec, detect, requirements_for_install
from flytekitplugins.prebuilt.kit.errors import UserError
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

FIXTURES = Path(__file__).parent / "fixtures" / "locks"
PY = "%d.%d" % sys.version_info[:2]
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"}


def copy(name: str, where: Path) -> Path:
    """A copy of the fixture project ``name`` under ``where`` (tests edit their copies; the key must not depend on
    where a project lies)."""
    return Path(shutil.copytree(FIXTURES / name, where / name)).resolve()


def pins(lines) -> dict[str, tuple[str, Marker | None]]:
    """Requirement lines by name ('requests[socks]'; a local path by its last folder): (pin or URL or path, marker)."""
    result = {}
    for line in lines:
        if line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:  # a path, as pip takes them
            path, _, marker = line.partition(" ; ")
            result[Path(path).name] = (path, Marker(marker) if marker else None)
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        result[requirement.name + extras] = (requirement.url or str(requirement.specifier), requirement.marker)
    return result


def installed(lines, environment: dict[str, str] | None = None) -> dict[str, str]:
    """What the lines install on this machine (or with ``environment``'s marker values): name -> pin."""
    return {name: pin for name, (pin, marker) in pins(lines).items() if marker is None or marker.evaluate(environment)}


# ====================================================================================== the tools, offline


def test_requirements_file_with_includes_comments_continuations_markers_and_options(tmp_path):
    spec = detect(copy("requirements", tmp_path))

    assert (spec.kind, spec.python_version) == ("requirements", PY)
    assert len(spec.key) == 24 and int(spec.key, 16) >= 0
    assert requirements_for_install(spec) == [
        "--index-url https://pypi.org/simple",  # the user's own index options are kept as written
        "--extra-index-url https://pkgs.example.com/simple",
        "--pre",
        "six==1.16.0",
        'idna>=3 ; python_version >= "3.8"',
        'requests[socks] == 2.31.0 ; sys_platform != "win32"',
        'packaging ; sys_platform == "linux"',
        "attrs==23.1.0",
        "tomli==2.0.1 --hash=sha256:939de3e7a6161af0c887ef91b7d41a53e7c5a1ca976325f429cb46ea9bc30ecc",
        "git+https://github.com/pytoolz/toolz.git@0.12.0#egg=toolz",
    ]
    assert spec.packages == spec.requirements[3:]
    assert spec.requirements is spec.requirements  # derived once


def test_requirements_local_references_inside_the_project_become_absolute(tmp_path):
    project = copy("requirements-local", tmp_path)
    lib = project / "libs/mylib"
    with open(project / "requirements.txt", "a") as stream:
        stream.write(f"mylib @ {lib.as_uri()}\n")
    assert requirements_for_install(detect(project)) == [
        f"--find-links {project / 'wheels'}",
        f"--constraint {project / 'constraints/pins.txt'}",
        f'{lib}[extra] ; python_version >= "3"',
        "six",
        f"mylib @ {lib.as_uri()}",
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ("-e ./libs/mylib\n", r"requirements\.txt:2: editable requirements are not supported"),
        ("--editable=git+https://github.com/pytoolz/toolz.git#egg=toolz\n", "editable"),
        ("-r ../outside.txt\n", "outside the project directory"),
        ("-r link.txt\n", "outside the project directory"),  # a symlink that leads out
        ("../elsewhere\n", "outside the project directory"),
        ("~/somewhere/pkg\n", "outside the project directory"),
        ("-r missing.txt\n", "does not exist"),
        ("-r loop.txt\n", "include each other"),
        ("--use-feature=truststore\n", "unsupported option"),
        ("--index-url\n", "needs a value"),
    ],
)
def test_bad_requirements_are_refused_by_detect(tmp_path, content, message):
    (tmp_path / "outside.txt").write_text("six\n")
    shutil.copytree(FIXTURES / "requirements-local/libs/mylib", tmp_path / "elsewhere")
    project = copy("requirements-local", tmp_path)
    (project / "link.txt").symlink_to(tmp_path / "outside.txt")
    (project / "loop.txt").write_text("-r requirements.txt\n")
    (project / "requirements.txt").write_text("six==1.16.0\n" + content)
    with pytest.raises(UserError, match=message):
        detect(project)


@pytest.mark.parametrize(
    "line, message",
    [
        ("six=1.16.0\n", "requirements.txt:2: 'six=1.16.0' is not a valid requirement"),
        ('./libs/mylib ; python_version >>> "3"\n', "requirements.txt:2: .* is not a valid requirement"),
    ],
)
def test_invalid_requirements_and_markers_are_refused_before_installing(tmp_path, line, message):
    project = copy("requirements-local", tmp_path)
    (project / "requirements.txt").write_text("six==1.16.0\n" + line)
    spec = detect(project)  # bytes only: packaging checks the lines when they are derived
    with pytest.raises(UserError, match=message):
        requirements_for_install(spec)


# ====================================================================================== detect


def test_auto_detection_order(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    assert detect(project).kind == "none" and detect(project).requirements == ()
    shutil.copy(FIXTURES / "pipenv/Pipfile.lock", project)
    assert detect(project).kind == "pipenv"
    shutil.copy(FIXTURES / "poetry-2/poetry.lock", project)
    shutil.copy(FIXTURES / "poetry-2/pyproject.toml", project)
    assert detect(project).kind == "poetry"
    (project / "requirements.txt").write_text("six==1.16.0\n")
    assert detect(project).kind == "requirements"
    assert detect(project, "pipenv").kind == "pipenv"  # an explicit kind wins over the order
    assert detect(project, "none").requirements == ()


@pytest.mark.parametrize("kind", ["requirements", "poetry", "pipenv"])
def test_explicit_kind_without_its_file(tmp_path, kind):
    with pytest.raises(UserError, match=locks.FILES[kind]):
        detect(tmp_path, kind)


def test_poetry_lock_needs_its_pyproject(tmp_path):
    project = copy("poetry-2", tmp_path)
    (project / "pyproject.toml").unlink()
    with pytest.raises(UserError, match="needs the pyproject.toml it was locked from"):
        detect(project)


def test_other_bad_inputs(tmp_path):
    with pytest.raises(UserError, match="unknown dependency kind"):
        detect(tmp_path, "conda")
    with pytest.raises(UserError, match="does not exist"):
        detect(tmp_path / "nope")
    with pytest.raises(UserError, match="python_version"):
        detect(tmp_path, python_version="3")
    (tmp_path / "Pipfile.lock").write_text("[]")
    with pytest.raises(UserError, match='expected a JSON object with a "default" section'):
        detect(tmp_path)
    with pytest.raises(UserError, match="unknown dependency kind"):
        DependencySpec("conda", (), "0" * 24)


def test_a_given_spec_is_immutable_and_derives_nothing():
    spec = DependencySpec("requirements", ["--pre", "six==1.16.0"], "0" * 24)
    assert (spec.requirements, spec.packages, spec.name) == (
        ("--pre", "six==1.16.0"),
        ("six==1.16.0",),
        "requirements-" + "0" * 24,
    )
    with pytest.raises(AttributeError, match="immutable"):
        spec.key = "1" * 24
    with pytest.raises(ValueError, match="project_dir"):
        DependencySpec("poetry", None, "0" * 24)


# ====================================================================================== keys

# In a fresh interpreter, as a task's executor starts: detect on each project given, with starting a process made
# impossible (once imports are done: importing flytekit runs `file`); prints the keys and whether packaging's
# requirement parser was imported.
WARM = """
import json, subprocess, sys
from flytekitplugins.prebuilt.executors.script import locks
def refuse(*args, **kwargs):
    raise AssertionError(f"detect started a process: {args[0]!r}")
subprocess.Popen = refuse
keys = {project: locks.detect(project).key for project in sys.argv[1:]}
print(json.dumps({"keys": keys, "packaging.requirements": "packaging.requirements" in sys.modules}))
"""


def test_detect_reads_bytes_only_runs_no_tool_and_imports_no_parser(tmp_path):
    projects = [
        copy(name, tmp_path)
        for name in ("requirements", "requirements-local", "poetry-2", "poetry-2.0-no-groups", "pipenv")
    ]
    done = subprocess.run([sys.executable, "-c", WARM, *map(str, projects)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["packaging.requirements"] is False
    assert result["keys"] == {str(project): detect(project).key for project in projects}  # same in every process


def test_the_key_is_the_bytes_the_tool_reads_and_local_content_not_the_location(tmp_path):
    def key(project: Path, **kwargs) -> str:
        return detect(project, **kwargs).key

    def edit(path: Path, old: str, new: str) -> None:
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))

    for name, pinned, lib in [
        ("requirements-local", "constraints/pins.txt", "libs/mylib/mylib/__init__.py"),
        ("poetry-2", "poetry.lock", "libs/mylib/mylib/__init__.py"),
        ("pipenv", "Pipfile.lock", "libs/mylib/mylib/__init__.py"),
    ]:
        base = copy(name, tmp_path / "a")
        assert key(copy(name, tmp_path / "b")) == key(base), name  # the same bundle unpacked elsewhere
        changed = copy(name, tmp_path / "pin")
        edit(changed / pinned, "1.16.0", "1.15.0")
        assert key(changed) != key(base), name
        changed = copy(name, tmp_path / "lib")
        edit(changed / lib, "VALUE = 1", "VALUE = 2")
        assert key(changed) != key(base), name
        assert key(base, python_version="3.99") != key(base)
    base = tmp_path / "a"
    # requirements: every included file counts, byte for byte (a comment too: one more build, never a stale env)
    requirements = copy("requirements", tmp_path / "a")
    changed = copy("requirements", tmp_path / "comment")
    edit(changed / "base.txt", "attrs==23.1.0", "attrs==23.1.0  # pinned")
    assert key(changed) != key(requirements)
    # poetry: pyproject.toml counts (a lock no longer matching it must fail the export, not reuse an environment)
    changed = copy("poetry-2", tmp_path / "pyproject")
    edit(changed / "pyproject.toml", 'version = "0.1.0"', 'version = "0.2.0"')
    assert key(changed) != key(base / "poetry-2")
    # pipenv: the Pipfile does not (`pipenv requirements` reads only the lock)
    changed = copy("pipenv", tmp_path / "pipfile")
    edit(changed / "Pipfile", "[dev-packages]", "[dev-packages]\nruff = '*'")
    assert key(changed) == key(base / "pipenv")
    assert len({key(base / "pipenv", kind=kind) for kind in ("pipenv", "none")}) == 2
