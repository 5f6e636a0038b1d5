"""The contract between the two sides: declared once per type, serialized as the golden files hold, read back typed."""

import ast
import json
import subprocess
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pytest
from flytekit import Secret
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.kit import ConfigError, PrebuiltConfig, ProjectKeys, TaskTypeSpec, UserError
from flytekitplugins.prebuilt.kit.contract import canonical_json
from flytekitplugins.prebuilt.script import ScriptConfig, ScriptTask
from flytekitplugins.prebuilt.script.spec import SPEC as SCRIPT
from flytekitplugins.prebuilt.script.spec import BundleRef, ScriptExtras
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask
from flytekitplugins.prebuilt.sql.query import ParsedQuery
from flytekitplugins.prebuilt.sql.spec import SPEC as SQL

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())


def golden_script_task():
    return ScriptTask(
        "golden",
        source=str(GOLDEN / "script_src"),
        config=ScriptConfig(
            command=("python", "main.py", "{{.inputs.n}}"),
            env={"MODE": "fast"},
            secret_env={"TOKEN": Secret(group="api", key="token")},
            deadline_seconds=60,
        ),
        inputs={"n": int, "name": str},
        outputs={"tripled": int, "greeting": str},
    )


def test_script_custom_is_what_0_1_0_serialized():
    """tests/unit/golden/script_custom_v1.json was written by release 0.1.0 for the same task."""
    custom = get_serializable(OrderedDict(), SETTINGS, golden_script_task()).template.custom
    assert canonical_json(custom) == canonical_json(json.loads((GOLDEN / "script_custom_v1.json").read_text()))


def test_the_executor_receives_typed_config_and_extras():
    config, extras = SCRIPT.load(golden_script_task().get_custom(SETTINGS))
    assert isinstance(config, ScriptConfig) and config.command == ("python", "main.py", "{{.inputs.n}}")
    assert isinstance(extras, ScriptExtras) and isinstance(extras.bundle, BundleRef)
    assert extras.bundle.sha256 == json.loads((GOLDEN / "script_custom_v1.json").read_text())["bundle"]["sha256"]
    task = SQLTask("t", "select * from t where a = :a", SQLConfig(url="sqlite://"), inputs={"a": int})
    config, query = SQL.load(task.get_custom(SETTINGS))
    assert (
        isinstance(query, ParsedQuery)
        and query.parameters == {"a": "int"}
        and query.statements == ("select * from t where a = :a",)
    )


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: c.update(surprise=1), "custom.surprise"),
        (lambda c: c["bundle"].update(inline="not base64!"), "custom.bundle.inline"),
        (lambda c: c["bundle"].update(sha256="abc"), "custom.bundle.sha256"),
        (lambda c: c["bundle"].update(uri="s3://b/x.zip"), "custom.bundle.inline"),
        (lambda c: c.pop("bundle") and c.update(bundle="zip"), "custom.bundle"),
    ],
)
def test_a_tampered_template_is_refused_naming_the_field(change, field):
    custom = golden_script_task().get_custom(SETTINGS)
    change(custom)
    with pytest.raises(ConfigError) as error:
        SCRIPT.load(custom)
    assert error.value.field == field


def test_another_type_or_version_is_refused():
    custom = golden_script_task().get_custom(SETTINGS)
    with pytest.raises(UserError, match="for task type 'script', not 'sql'"):
        SQL.load(custom)
    custom["prebuilt"]["version"] = 2
    with pytest.raises(UserError, match="version 2 of task type 'script' is newer than"):
        SCRIPT.load(custom)


def test_get_custom_hands_out_a_copy():
    task = golden_script_task()
    first = get_serializable(OrderedDict(), SETTINGS, task).template.custom
    task.get_custom(SETTINGS)["command"].append("--evil")
    task.get_custom(SETTINGS)["bundle"]["sha256"] = "0" * 64
    assert canonical_json(task.get_custom(SETTINGS)) == canonical_json(first)


def test_a_spec_refuses_a_field_in_both_config_and_extras():
    @dataclass(frozen=True)
    class Clashing(PrebuiltConfig):
        url: str = ""

    with pytest.raises(TypeError, match=r"\['url'\] is both"):
        TaskTypeSpec("x", 1, SQLConfig, "x.X", ProjectKeys(), extras=Clashing)


# ------------------------------------------------------------------------------------------- imports


def our_modules() -> dict[str, Path]:
    modules = {}
    for folder, package in (
        ("plugins", "flytekitplugins.prebuilt"),
        ("executors", "flytekitplugins.prebuilt.executors"),
    ):
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            modules[".".join((package, *parts))] = path
    return modules


def imports_of(path: Path, name: str, is_package: bool) -> set[str]:
    """Every module an import statement in the file loads (at any depth: lazy imports count), parents included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def test_no_import_loop_anywhere():
    modules = our_modules()
    graph = {
        # a module's own parent packages are already loading when it runs: importing them is no loop
        name: sorted(
            m
            for m in imports_of(path, name, path.name == "__init__.py")
            if m in modules and m != name and not name.startswith(m + ".")
        )
        for name, path in modules.items()
    }
    state, loops = {}, []

    def visit(node, stack):
        state[node] = "open"
        for target in graph[node]:
            if state.get(target) == "open":
                loops.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert loops == [], loops


def test_the_runtime_side_never_loads_author_side_task_classes():
    code = (
        "import sys\n"
        "import flytekitplugins.prebuilt.executors.sql, flytekitplugins.prebuilt.executors.script\n"
        "print(sorted(m for m in sys.modules if m.startswith('flytekitplugins.prebuilt')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for author_only in ("sql.task", "sql.compat", "script.task", "kit.task", "emulator", "cli"):
        assert f"'flytekitplugins.prebuilt.{author_only}'" not in loaded
