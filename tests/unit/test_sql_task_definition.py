import json
from collections import OrderedDict
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
    assert (
        task.identity
        == "pb1-"
        + __import__("hashlib")
        .sha256(canonical_json({"custom": json.loads(GOLDEN.read_text()), "image": "registry.example/sql:1"}).encode())
        .hexdigest()[:32]
    )
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
    sqlite = SQLite3Task(
        "s",
        "select * from t where a = '{{.inputs.a}}'",
        inputs={"a": str},
        task_config=SQLite3Config(uri="s3://b/c.zip", compressed=True),
    )
    assert sqlite.get_custom(SETTINGS)["statements"] == ["select * from t where a = :a"]
    assert sqlite.config.sqlite_file == "s3://b/c.zip" and sqlite.config.compressed
    alchemy = SQLAlchemyTask(
        "a",
        "insert into t values ({{.inputs.a}})",
        task_config=SQLAlchemyConfig(
            uri="postgresql://u@h/db", secret_connect_args={"password": Secret(group="g", key="k")}
        ),
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


@pytest.mark.parametrize(
    "make_task",
    [
        lambda q, i: SQLTask("t", q, SQLConfig(url="sqlite:////x.db"), inputs=i),
        lambda q, i: SQLite3Task("t", q, inputs=i, task_config=SQLite3Config(uri="s3://b/x.db")),
        lambda q, i: SQLAlchemyTask("t", q, task_config=SQLAlchemyConfig(uri="postgresql://u@h/db"), inputs=i),
    ],
)
def test_every_sql_class_refuses_a_placeholder_that_is_not_a_value(make_task):
    with pytest.raises(ConfigError, match=r"input 'col' is a whole ORDER BY item.*\| identifier") as error:
        make_task("select * from tracks order by {{.inputs.col}}", {"col": str})
    assert error.value.field == "query_template"
    with pytest.raises(ConfigError, match="whole SELECT list item"):
        make_task("select {{.inputs.col}} from tracks", {"col": str})
    make_task("select * from tracks order by {{.inputs.col | identifier}} limit {{.inputs.n}}", {"col": str, "n": int})


def test_output_columns_as_upstream():
    from typing import Annotated

    from flytekit import kwtypes
    from flytekit.types.schema import FlyteSchema
    from flytekit.types.structured import StructuredDataset

    config = SQLite3Config(uri="s3://b/x.db")
    assert SQLite3Task("t", "select 1", task_config=config).output_columns is None
    typed = SQLite3Task("t", "select 1", task_config=config, output_schema_type=FlyteSchema[kwtypes(a=int, b=str)])
    assert typed.output_columns == ["a", "b"]
    annotated = Annotated[StructuredDataset, kwtypes(c=float)]
    assert SQLite3Task("t", "select 1", task_config=config, output_schema_type=annotated).output_columns == ["c"]
    alchemy = SQLAlchemyConfig(uri="postgresql://u@h/db")
    assert SQLAlchemyTask("t", "select 1", task_config=alchemy).output_columns is None
    assert SQLAlchemyTask("t", "delete from t", task_config=alchemy, output_schema_type=None).output_columns is None


NESTED = {
    "ssl": {"ca": "/etc/ssl/ca.pem", "key": "/etc/ssl/client-key.pem", "check_hostname": False},
    "init_command": "SET time_zone = '+00:00'",
    "options": ["-c", "statement_timeout=5000"],
    "port": 3307,
}


def test_connect_args_take_nested_mappings_and_lists():
    task = SQLAlchemyTask(
        "t", "select 1", task_config=SQLAlchemyConfig(uri="mysql+pymysql://u@h/db", connect_args=NESTED)
    )
    custom = task.get_custom(SETTINGS)
    assert custom["connect_args"] == NESTED
    assert SQLConfig.from_custom({k: custom[k] for k in ("url", "connect_args")}).connect_args == NESTED


@pytest.mark.parametrize(
    "connect_args, field",
    [
        ({"ssl": {"password": "x"}}, "config.connect_args.ssl.password"),
        ({"ssl": {"ca": "/ca.pem", "options": {"api_key": "x"}}}, "config.connect_args.ssl.options.api_key"),
        ({"servers": [{"token": "x"}]}, "config.connect_args.servers[0].token"),
        ({"key": "not-a-path"}, "config.connect_args.key"),
        ({"ssl": {"cert": "-----BEGIN PRIVATE KEY-----\nMII..."}}, "config.connect_args.ssl.cert"),
        ({"ssl": {"ca": object()}}, "config.connect_args.ssl.ca"),
        ({"ssl": {1: "x"}}, "config.connect_args.ssl"),
    ],
)
def test_connect_args_refuse_credentials_at_any_depth(connect_args, field):
    with pytest.raises(ConfigError) as error:
        SQLConfig(url="mysql+pymysql://u@h/db", connect_args=connect_args).validate()
    assert error.value.field == field


@pytest.mark.parametrize("url", ["postgresql://u@h:notaport/db", "postgresql://u@h:70000/db", "mysql://u@h:/db"])
def test_a_port_that_is_not_a_port_is_refused_at_definition(url):
    """Every attempt would fail at run time (it was a SYSTEM error, retried for nothing)."""
    with pytest.raises(ConfigError, match="port .* is not a number from 1 to 65535") as error:
        SQLTask("t", "select 1", SQLConfig(url=url))
    assert error.value.field == "config.url"


def test_urls_with_a_port_or_several_hosts_are_accepted():
    for url in ("postgresql://u@h:5432/db", "postgresql://u@h/db", "postgresql://u@h1:5432,h2:5433/db"):
        SQLTask("t", "select 1", SQLConfig(url=url))
