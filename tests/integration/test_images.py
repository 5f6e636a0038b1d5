"""Each image: runs its smoke template as non-root, holds everything its executor imports, stays within
its size budget. Publishing and pinning by digest: tests/integration/test_release.py."""

import ast
import re
import subprocess

import docker
import pytest

from build_tools.building import Builder
from build_tools.checkout import task_types
from tests.conftest import ROOT, built_image

pytestmark = pytest.mark.docker


def executor_imports(task_type: str) -> set[str]:
    """Top-level modules the executor imports, at module level or lazily inside functions, following our
    own modules (flytekitplugins.prebuilt.*) transitively."""
    found, seen, todo = set(), set(), [f"flytekitplugins.prebuilt.executors.{task_type}"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")[2:]  # after flytekitplugins.prebuilt
        folder = ROOT / "executors" if parts[:1] == ["executors"] else ROOT / "plugins"
        path = folder.joinpath(*parts[1:] if parts[:1] == ["executors"] else parts)
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not path.is_file():
            continue
        tree = ast.parse(path.read_text())
        optional = {  # imports guarded by `except ImportError` are fallbacks, not requirements
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.Try)
            and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers
            )
            for statement in node.body
            for inner in ast.walk(statement)
        }
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            )
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flytekitplugins.prebuilt"):
                names += [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("flytekitplugins.prebuilt"):
                    todo.append(name)
                else:
                    found.add(name.split(".")[0])
    return found - {"__future__"}


def test_the_executor_import_scan_sees_lazy_imports():
    assert {"sqlalchemy", "pyarrow", "adbc_driver_postgresql", "flytekit"} <= executor_imports("sql")
    assert "flytekit" in executor_imports("script") and "sqlalchemy" not in executor_imports("script")


def assert_check_passes(image: str, check: str) -> None:
    """Run a Python check inside the image; it prints 'complete' when everything it tried worked."""
    done = subprocess.run(["docker", "run", "--rm", image, "python", "-c", check], capture_output=True, text=True)
    assert done.stdout.strip() == "complete", done.stderr[-2000:]


def test_sql_image_holds_everything_its_executor_imports(sql_image):
    from flytekitplugins.prebuilt.executors.sql import IMAGE_DIALECTS

    check = (
        f"import importlib, sqlalchemy\n"
        f"for m in {sorted(executor_imports('sql'))!r}: importlib.import_module(m)\n"
        f"for u in {list(IMAGE_DIALECTS)!r}: "
        "sqlalchemy.create_engine(u + ('' if u.startswith('sqlite') else 'u@h/db'))\n"
        f"print('complete')"
    )
    assert_check_passes(sql_image, check)


def test_script_image_holds_its_executor_imports_and_the_installers(script_image):
    check = (
        f"import importlib, shutil, subprocess\n"
        f"for m in {sorted(executor_imports('script'))!r}: importlib.import_module(m)\n"
        "for tool in ('uv', 'pip', 'poetry', 'pipenv'): "
        "subprocess.run([tool, '--version'], check=True, capture_output=True)\n"
        f"print('complete')"
    )
    assert_check_passes(script_image, check)


@pytest.mark.parametrize("task_type", task_types())
def test_image_runs_as_non_root_within_its_size_budget(task_type):
    image = built_image(task_type)
    user = subprocess.run(["docker", "run", "--rm", image, "id", "-u"], capture_output=True, text=True, check=True)
    assert user.stdout.strip() != "0"
    budget = re.search(r"Size budget: (\d+) MB", (ROOT / "images" / task_type / "README.md").read_text())
    assert budget, f"images/{task_type}/README.md states no size budget"
    size_mb = docker.from_env().images.get(image).attrs["Size"] / 1e6
    assert size_mb <= int(budget.group(1)), f"{image} is {size_mb:.0f} MB, over its {budget.group(1)} MB budget"


def test_offline_build_from_a_wheelhouse_without_any_network():
    """The air-gapped build: local base when the official one cannot be pulled, wheels only, network 'none'."""
    from build_tools.wheelhouse import fill_wheelhouse

    wheelhouse = str(ROOT / "build" / "wheelhouse")
    fill_wheelhouse(["sql"], wheelhouse)
    tag = "prebuilt-offline-check:sql"
    Builder(wheelhouse=wheelhouse, network="none").build("sql", force=True, tag=tag)
    try:
        done = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                tag,
                "python",
                "-c",
                "import flytekitplugins.prebuilt.executors.sql, adbc_driver_postgresql, psycopg2; print('ok')",
            ],
            capture_output=True,
            text=True,
        )
        assert done.stdout.strip() == "ok", done.stderr[-2000:]
    finally:
        docker.from_env().images.remove(tag, force=True)
