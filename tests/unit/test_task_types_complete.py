"""Every task type has all its pieces (docs/authoring.md, "The rest of the pieces"); a missing one is named.

Its project-file keys are part of its spec (``TaskTypeSpec.project``), and the project front-end (plugins/project/)
names no type, so that a new type is a type of project files with no change outside its own folders
(test_project_new_type.py adds one that way; test_project_schema.py keeps the published schema.json the generated one).
"""

import ast
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
import tomllib
from flytekitplugins.prebuilt.kit.executor import PrebuiltExecutor
from flytekitplugins.prebuilt.kit.project_keys import ProjectKeys
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec, task_types
from flytekitplugins.prebuilt.kit.task import PrebuiltTask
from flytekitplugins.prebuilt.project.schema import common_keys, config_properties, project_schema
from flytekitplugins.prebuilt.project.shorthands import SHORTHANDS

from build_tools.source_hash import built_on

ROOT = Path(__file__).resolve().parents[2]
SIZE_BUDGET = re.compile(r"^Size budget: \d+ MB$", re.MULTILINE)


def found_task_types(root: Path) -> set[str]:
    """A type is named by any of its pieces, so that a type missing some of them is still checked."""
    return (
        {p.parent.name for p in (root / "plugins").glob("*/spec.py") if p.parent.name != "kit"}
        | {p.parent.name for p in (root / "executors").glob("*/__init__.py")}
        | {p.parent.name for p in (root / "images").glob("*/Dockerfile")}
    )


def missing_files(root: Path, task_type: str, schema_version: int = 1) -> list[str]:
    """The pieces of ``task_type`` that are not in the tree at ``root``."""
    missing = [
        piece
        for piece in (
            f"plugins/{task_type}/spec.py",
            f"plugins/{task_type}/task.py",
            f"executors/{task_type}/__init__.py",
            f"images/{task_type}/Dockerfile",
            f"images/{task_type}/README.md",
        )
        if not (root / piece).is_file()
    ]
    readme = root / "images" / task_type / "README.md"
    if readme.is_file() and not SIZE_BUDGET.search(readme.read_text()):
        missing.append(f"images/{task_type}/README.md: a 'Size budget: N MB' line")
    if not ((root / "docs" / f"{task_type}.md").is_file() or (root / "docs" / task_type / "README.md").is_file()):
        missing.append(f"docs/{task_type}.md or docs/{task_type}/README.md")
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    if task_type not in extras:
        missing.append(f"pyproject.toml: the extra [project.optional-dependencies] {task_type}")
    golden = f"tests/unit/golden/{task_type}_custom_v{schema_version}.json"
    if not (root / golden).is_file():
        missing.append(golden)
    return missing


def test_the_pieces_name_the_same_task_types_as_the_specs():
    assert found_task_types(ROOT) == set(task_types()) and {"sql", "script"} <= set(task_types())


@pytest.mark.parametrize("task_type", sorted(found_task_types(ROOT)))
def test_every_piece_is_there(task_type):
    spec = task_types().get(task_type)
    assert spec is not None, f"plugins/{task_type}/spec.py declares no SPEC = TaskTypeSpec(name={task_type!r}, ...)"
    assert missing_files(ROOT, task_type, spec.schema_version) == []
    executor = spec.executor_class()
    assert issubclass(executor, PrebuiltExecutor) and executor.SPEC is spec
    assert executor.__module__ == f"flytekitplugins.prebuilt.executors.{task_type}"
    module = __import__(f"flytekitplugins.prebuilt.{task_type}.task", fromlist=["_"])
    tasks = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, PrebuiltTask) and getattr(v, "SPEC", None) is spec
    ]
    assert tasks, f"plugins/{task_type}/task.py defines no PrebuiltTask subclass with SPEC = its spec"


@pytest.mark.parametrize("task_type", sorted(task_types()))
def test_a_type_declares_the_types_it_builds_on(task_type):
    """``builds_on`` (what its image's source hash covers besides its own folders) is exactly the types whose
    executor its executor extends, directly or not: the train executor is a script executor."""
    specs = task_types()
    executor = specs[task_type].executor_class()
    extended = {n for n, s in specs.items() if n != task_type and issubclass(executor, s.executor_class())}
    assert set(built_on(task_type)) == extended


def test_builds_on_is_a_tuple_of_other_types():
    sql = task_types()["sql"]
    for wrong in ("script", ["script"], ("sql",)):
        with pytest.raises(TypeError, match="builds_on"):
            TaskTypeSpec("sql", 1, sql.config, sql.executor, sql.extras, builds_on=wrong)


def copy_of_sql_pieces(target: Path) -> Path:
    for piece in (
        "plugins/sql",
        "executors/sql",
        "images/sql",
        "docs/sql.md",
        "pyproject.toml",
        "tests/unit/golden/sql_custom_v1.json",
    ):
        source = ROOT / piece
        (target / piece).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target / piece)
    return target


@pytest.mark.parametrize(
    "remove, reported",
    [
        ("plugins/sql/spec.py", "plugins/sql/spec.py"),
        ("plugins/sql/task.py", "plugins/sql/task.py"),
        ("executors/sql/__init__.py", "executors/sql/__init__.py"),
        ("images/sql/Dockerfile", "images/sql/Dockerfile"),
        ("images/sql/README.md", "images/sql/README.md"),
        ("docs/sql.md", "docs/sql.md or docs/sql/README.md"),
        ("tests/unit/golden/sql_custom_v1.json", "tests/unit/golden/sql_custom_v1.json"),
    ],
)
def test_a_missing_piece_is_named(tmp_path, remove, reported):
    root = copy_of_sql_pieces(tmp_path)
    assert missing_files(root, "sql") == []
    (root / remove).unlink()
    assert reported in missing_files(root, "sql")
    assert "sql" in found_task_types(root) or remove != "plugins/sql/spec.py"


def test_a_missing_extra_or_size_budget_is_named(tmp_path):
    root = copy_of_sql_pieces(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(re.sub(r"(?m)^sql = \[", "sequel = [", pyproject.read_text()))
    readme = root / "images/sql/README.md"
    readme.write_text(SIZE_BUDGET.sub("", readme.read_text()))
    assert missing_files(root, "sql") == [
        "images/sql/README.md: a 'Size budget: N MB' line",
        "pyproject.toml: the extra [project.optional-dependencies] sql",
    ]


@pytest.mark.parametrize("task_type", sorted(task_types()))
def test_every_type_declares_its_project_keys(task_type):
    spec = task_types()[task_type]
    assert isinstance(spec.project, ProjectKeys), f"plugins/{task_type}/spec.py: SPEC has no project=ProjectKeys(...)"
    taken = {*common_keys(), *(s.key for s in SHORTHANDS), *config_properties(spec.config)}
    for key, piece in spec.project.keys.items():
        assert key not in taken, f"{task_type}: project key {key!r} is already a key of every task or of its config"
        assert piece.get("description"), f"{task_type}: project key {key!r} has no description (editors show it)"
        jsonschema.Draft202012Validator.check_schema(piece)
    assert set(spec.project.keys) <= set(project_schema()["$defs"][f"{task_type}_task"]["properties"])
    assert callable(spec.project.keywords)


def test_exactly_one_type_is_a_project_files_default():
    assert len([spec for spec in task_types().values() if spec.project_default]) == 1


def type_names_in(folder: Path, names: list[str]) -> list[str]:
    """Where the Python files under ``folder`` name a task type: a string naming one (as a word), or an import of a
    module of one (``flytekitplugins.prebuilt.<type>...``, ``...executors.<type>``)."""
    word = re.compile(rf"(?<![A-Za-z0-9])({'|'.join(map(re.escape, names))})(?![A-Za-z0-9])")  # script_task too
    module = re.compile(rf"^flytekitplugins\.prebuilt\.(executors\.)?({'|'.join(map(re.escape, names))})(\.|$)")
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in sorted(ast.walk(ast.parse(path.read_text())), key=lambda n: getattr(n, "lineno", 0)):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and word.search(node.value):
                found.append(f"{where}: the string names {word.search(node.value).group()!r}")
            elif isinstance(node, ast.Import):
                found += [f"{where}: imports {a.name}" for a in node.names if module.match(a.name)]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                found += [f"{where}: imports {m}" for m in imported if module.match(m)][:1]
    return found


def test_the_project_front_end_names_no_task_type():
    assert type_names_in(ROOT / "plugins" / "project", sorted(task_types())) == []


def test_a_task_type_named_in_the_front_end_is_found(tmp_path):
    (tmp_path / "compiling.py").write_text(
        "from flytekitplugins.prebuilt.sql.task import SQLTask\n"
        "from flytekitplugins.prebuilt import train\n"
        "def kind(fields):\n"
        "    return fields.get('type', 'script')\n"
        "DEFAULT = {'$ref': '#/$defs/sql_task'}\n"
    )
    assert type_names_in(tmp_path, ["script", "sql", "train"]) == [
        "compiling.py:1: imports flytekitplugins.prebuilt.sql.task",
        "compiling.py:2: imports flytekitplugins.prebuilt.train",
        "compiling.py:4: the string names 'script'",
        "compiling.py:5: the string names 'sql'",
    ]
