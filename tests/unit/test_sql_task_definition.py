import json
import subprocess
import sys
from collections import OrderedDict
from importlib import metadata
from pathlib import Path

import pytest
from flytekit import Secret
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.kit import ConfigError, default_image
from flytekitplugins.prebuilt.kit.contract import canonical_json, identity
from flytekitplugins.prebuilt.sql import (
    SQLAlchemyConfig,
    SQLAlchemyTask,
    SQLConfig,
    SQLite3Config,
    SQLite3Task,
    SQLTask,
)

GOLDEN = Path(__file__).parent / "golden" / "sql_custom_v1.json"
SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())


def golden_task(**kwargs):
    return SQLTask(
        "golden",
        "select id, name from people where id >= {{ .inputs.min_id }} and name in :names",
        SQLConfig(url="postgresql://reader@db:5432/app", password_secret=Secret(group="db", key="password")),
        inputs={"min_id": int, "names": list[str]},
        **kwargs,
    )


def registered(task):
    return get_serializable(OrderedDict(), SETTINGS, task).template


def test_custom_matches_the_golden_file():
    """The serialized contract is pinned: changing it needs a schema version decision."""
    custom = registered(golden_task()).custom
    assert json.loads(canonical_json(custom)) == json.loads(GOLDEN.read_text())


def test_identity_is_stable_and_content_addressed():
    task = golden_task(container_image="registry.example/sql:1")
    assert task.identity == identity(json.loads(GOLDEN.read_text()), "registry.example/sql:1")
    assert task.identity == "pb1-" + __import__("hashlib").sha256(
        canonical_json({"custom": json.loads(GOLDEN.read_text()), "image": "registry.example/sql:1"}).encode()
    ).hexdigest()[:32]
    other_image = golden_task(container_image="registry.example/sql:2")
    assert other_image.identity != task.identity


def test_cache_on_uses_identity_and_a_changed_query_changes_it():
    a = SQLTask("a", "select 1", SQLConfig(url="sqlite:////x.db"), cache=True)
    b = SQLTask("a", "select 2", SQLConfig(url="sqlite:////x.db"), cache=True)
    assert a.metadata.cache and a.metadata.cache_version == a.identity
    assert b.metadata.cache_version != a.metadata.cache_version
    pinned = SQLTask("a", "select 1", SQLConfig(url="sqlite:////x.db"), cache=True, cache_version="mine")
    assert pinned.metadata.cache_version == "mine"
    assert not SQLTask("a", "select 1", SQLConfig(url="sqlite:////x.db")).metadata.cache


def test_template_requests_secrets_and_points_at_this_versions_image():
    template = registered(golden_task())
    assert [(s.group, s.key) for s in template.security_context.secrets] == [("db", "password")]
    assert template.container.image == default_image("sql")
    assert template.type == "prebuilt-sql" and template.task_type_version == 1
    assert template.container.args[-5:] == [
        "--resolver",
        "flytekit.core.python_customized_container_task.default_task_template_resolver",
        "--",
        "{{.taskTemplatePath}}",
        "flytekitplugins.prebuilt.executors.sql.SQLExecutor",
    ]


def test_default_image_ignores_the_registering_machines_environment(monkeypatch):
    monkeypatch.setenv("FLYTE_INTERNAL_IMAGE", "somewhere/else:latest")
    assert registered(golden_task()).container.image == default_image("sql")
    assert registered(golden_task(container_image="mine/sql:7")).container.image == "mine/sql:7"


def test_compat_classes_keep_upstream_signatures():
    sqlite = SQLite3Task("s", "select * from t where a = '{{.inputs.a}}'", inputs={"a": str}, task_config=SQLite3Config(uri="s3://b/c.zip", compressed=True))
    assert sqlite.get_custom(SETTINGS)["statements"] == ["select * from t where a = :a"]
    assert sqlite.config.sqlite_file == "s3://b/c.zip" and sqlite.config.compressed
    alchemy = SQLAlchemyTask(
        "a",
        "insert into t values ({{.inputs.a}})",
        task_config=SQLAlchemyConfig(uri="postgresql://u@h/db", secret_connect_args={"password": Secret(group="g", key="k")}),
        inputs={"a": int},
        output_schema_type=None,
    )
    assert list(alchemy.python_interface.outputs) == ["rows_affected"]
    assert [(s.group, s.key) for s in alchemy.security_context.secrets] == [("g", "k")]
    with pytest.raises(ConfigError, match="task_config.uri"):
        SQLite3Task("s", "select 1", task_config=None)


def test_bad_output_type_fails_at_definition():
    with pytest.raises(ConfigError) as error:
        SQLTask("x", "select 1", SQLConfig(url="sqlite:////x.db"), output_schema_type=int)
    assert error.value.field == "output_schema_type"


AUTHOR_SCRIPT = """
from collections import OrderedDict
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.sql import SQLTask, SQLConfig, SQLite3Task, SQLite3Config
t = SQLTask("t", "select * from x where a = :a", SQLConfig(url="postgresql://u@h/d"), inputs={"a": int})
s = SQLite3Task("s", "select 1", task_config=SQLite3Config(uri="s3://b/x.db"))
settings = SerializationSettings(project="p", domain="d", version="v", image_config=ImageConfig.auto_default_image())
print(get_serializable(OrderedDict(), settings, t).template.custom["prebuilt"])
"""


def test_author_side_needs_flytekit_only(tmp_path):
    """In a venv holding flytekit and this package only (no sqlalchemy, pyarrow, pandas), tasks define and serialize."""
    venv, python = tmp_path / "venv", str(tmp_path / "venv" / "bin" / "python")
    root = str(Path(__file__).resolve().parents[2])
    flytekit = f"flytekit=={metadata.version('flytekit')}"
    uv = str(Path(sys.executable).parent / "uv")  # a dev dependency
    for command in (
        [uv, "venv", "-q", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "-q", "--python", python, flytekit],
        [uv, "pip", "install", "-q", "--python", python, "--no-deps", "-e", root],
    ):
        subprocess.run(command, check=True, capture_output=True)
    missing = subprocess.run([python, "-c", "import sqlalchemy"], capture_output=True)
    assert missing.returncode != 0, "the author-side venv must not have sqlalchemy"
    done = subprocess.run([python, "-c", AUTHOR_SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'type': 'sql'" in done.stdout
