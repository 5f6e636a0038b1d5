"""Every task type has all its pieces (docs/authoring.md, "The rest of the pieces"); a missing one is named."""

import re
import shutil
from pathlib import Path

import pytest
import tomllib
from flytekitplugins.prebuilt.kit.executor import PrebuiltExecutor
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec, task_types
from flytekitplugins.prebuilt.kit.task import PrebuiltTask

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
