"""No module of plugins/ or executors/ reaches into another module's private names (issue 15, "private reach-ins"):
neither ``from X import _name`` nor ``obj._name`` where ``obj`` is not ``self``/``cls``, unless the module itself
defines ``_name`` (a function, class or variable of its own, an attribute it sets on ``self``) and only reads it.
What a module needs from another is that module's public API.

The few exceptions are third-party private names with no public equivalent, each with why it is needed."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("plugins", "executors")

# (module path, private name) -> why it is used
ALLOWED = {
    # flytekit builds its own task types' containers and pod specs with these (flytekit/core/python_auto_container.py,
    # core/container_task.py, core/python_customized_container_task.py, tools/translator.py); there is no public API.
    ("plugins/kit/task.py", "_get_container_definition"): "flytekit's container builder",
    ("plugins/kit/task.py", "_serialize_pod_spec"): "flytekit's pod spec serializer",
    ("plugins/map/task.py", "_serialize_pod_spec"): "flytekit's pod spec serializer",
    # flytekit's ArrayNodeMapTask names its sub-node the same way (flytekit/core/array_node_map_task.py,
    # `self.sub_node_metadata._name = self.name`): NodeMetadata has no setter.
    ("plugins/map/task.py", "_name"): "NodeMetadata's name, set as flytekit's ArrayNodeMapTask sets it",
    # The element index as flytekit's own map tasks compute it (flytekit/core/array_node_map_task.py: the variable
    # BATCH_JOB_ARRAY_INDEX_VAR_NAME names, plus the offset); computing it here would fork flytekit.
    ("plugins/map/runtime.py", "_compute_array_job_index"): "flytekit's array element index",
    # os._exit is public, documented API of the standard library (https://docs.python.org/3/library/os.html#os._exit).
    ("executors/script/process.py", "_exit"): "os._exit",
    ("executors/train/rank.py", "_exit"): "os._exit",
    # adbc_driver_manager's own DB-API reads an ADBC stream this way (adbc_driver_manager/dbapi.py); the reader has
    # no public constructor from a C stream handle.
    ("executors/sql/adbc.py", "_import_from_c"): "ADBC stream reader",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own_names(tree: ast.Module) -> set[str]:
    """Names the module itself defines: functions, classes, assigned names, attributes assigned on self/cls."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
    return names


def reach_ins(path: Path) -> list[tuple[int, str, str]]:
    """(line, private name, what) for each private name of another module that ``path`` uses."""
    tree = ast.parse(path.read_text(), str(path))
    own = _own_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [
                (node.lineno, a.name, f"from {node.module} import {a.name}") for a in node.names if _private(a.name)
            ]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            on_self = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            # reading an attribute the module defines is its own business; setting another object's never is
            if not on_self and (node.attr not in own or isinstance(node.ctx, ast.Store)):
                found.append((node.lineno, node.attr, ast.unparse(node)))
    return sorted(found)


def _all_reach_ins() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for line, name, what in reach_ins(path):
                found.setdefault((relative, name), []).append(f"{relative}:{line}: {what}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = _all_reach_ins()
    unexpected = [where for key, places in found.items() if key not in ALLOWED for where in places]
    assert not unexpected, "private names of other modules used (use or add a public API):\n" + "\n".join(unexpected)


def test_every_allowed_exception_is_still_needed():
    stale = sorted(set(ALLOWED) - set(_all_reach_ins()))
    assert not stale, f"no longer used, remove from ALLOWED: {stale}"


def test_the_check_sees_both_kinds_of_reach_in(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "from pkg.other import _helper\n"
        "class A:\n"
        "    def f(self, emulator):\n"
        "        self._mine = 1\n"
        "        emulator._backend_env()\n"
        "        emulator._metadata = None\n"
        "        return self._mine, other._mine\n"
    )
    assert [(line, name) for line, name, _ in reach_ins(module)] == [
        (1, "_helper"),
        (5, "_backend_env"),
        (6, "_metadata"),
    ]
