"""The SQL task on a real PostgreSQL server on 127.0.0.1: secrets, types, transactions, failures."""

import pandas as pd
import pyarrow.parquet as pq
import pytest
from flytekit import Secret
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.sql import SQLAlchemyConfig, SQLAlchemyTask, SQLConfig, SQLTask

PASSWORD = Secret(group="warehouse", key="password")


@pytest.fixture(scope="module")
def pg(postgres):
    postgres.execute(
        "drop table if exists items; create table items (id int, big bigint, name text, price numeric(10,2), "
        "ratio double precision, ok boolean, day date, at timestamp, atz timestamptz, note text);"
        "insert into items select g, g * 1000000000::bigint, 'item ' || g, g * 1.25, g / 7.0, g % 2 = 0, "
        "date '2024-01-01' + g, timestamp '2024-01-01 00:00:00' + g * interval '1 hour', "
        "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', case when g % 3 = 0 then null else 'n' end "
        "from generate_series(1, 500) g;"
    )
    return postgres


@pytest.fixture
def password_env(pg, monkeypatch):
    """Flyte injects the secret as _FSEC_<GROUP>_<KEY>; locally flytekit reads the same variable."""
    monkeypatch.setenv("_FSEC_WAREHOUSE_PASSWORD", pg.password)
    return pg.password


def items_task(pg, reader="auto", **kwargs):
    return SQLTask(
        "items",
        "select * from items where id <= :n order by id",
        SQLConfig(url=pg.url_without_password, password_secret=PASSWORD, reader=reader, batch_rows=64, **kwargs),
        inputs={"n": int},
    )


def test_both_readers_give_identical_typed_outputs(pg, password_env):
    tables = [pq.read_table(items_task(pg, reader)(n=300).literal.uri) for reader in ("adbc", "sqlalchemy")]
    assert tables[0].equals(tables[1]), (tables[0].schema, tables[1].schema)
    schema = {f.name: str(f.type) for f in tables[0].schema}
    assert schema == {
        "id": "int32",
        "big": "int64",
        "name": "string",
        "price": "string",
        "ratio": "double",
        "ok": "bool",
        "day": "date32[day]",
        "at": "timestamp[us]",
        "atz": "timestamp[us, tz=UTC]",
        "note": "string",
    }
    assert tables[0].num_rows == 300 and tables[0]["price"][0].as_py() == "1.25"


def test_compat_sqlalchemy_task_with_secret_connect_args(pg, password_env):
    t = SQLAlchemyTask(
        "c",
        "select name from items where id = {{.inputs.id}}",
        task_config=SQLAlchemyConfig(uri=pg.url_without_password, secret_connect_args={"password": PASSWORD}),
        inputs={"id": int},
    )
    assert t(id=4).open(pd.DataFrame).all()["name"].tolist() == ["item 4"]


def test_failed_statement_rolls_back_the_whole_transaction(pg, password_env):
    config = SQLConfig(url=pg.url_without_password, password_secret=PASSWORD)
    t = SQLTask("w", "delete from items where id > 490; select 1/0", config, output_schema_type=None)
    with pytest.raises(Exception, match="division by zero"):
        t()
    count = SQLTask("n", "select count(*) as n from items", config)
    assert count().open(pd.DataFrame).all()["n"].tolist() == [500]


def test_secret_value_never_reaches_logs_errors_templates_or_outputs(pg, tmp_path):
    """Runs that use the password (successfully, against a dead server, via a whole-URL secret) at DEBUG logging."""
    dead_url = pg.url.replace(f":{pg.port}/", ":9/")
    emulator = Emulator(
        str(tmp_path),
        secrets={("warehouse", "password"): pg.password, ("warehouse", "url"): dead_url},
        env={"FLYTE_SDK_LOGGING_LEVEL": "10"},
    )
    ok = items_task(pg)
    dead = SQLTask("dead", "select 1", SQLConfig(url_secret=Secret(group="warehouse", key="url")))
    assert pg.password not in str(emulator.template(ok).to_flyte_idl())
    result = emulator.run(ok, {"n": 5})
    assert pg.password not in result.logs
    with pytest.raises(TaskFailed) as failure:
        emulator.run(dead, retries=0)
    assert (
        failure.value.recoverable and "cannot connect to postgresql://prebuilt:***@127.0.0.1:9" in failure.value.message
    )
    assert pg.password not in failure.value.logs
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 5 and not any(pg.password.encode() in p.read_bytes() for p in written)


def test_a_secret_echoed_by_the_database_is_masked_in_the_error(pg, tmp_path):
    """Whatever the executor raises is scrubbed: here PostgreSQL quotes the value back in its error."""
    emulator = Emulator(str(tmp_path), secrets={("warehouse", "password"): pg.password})
    echo = SQLTask(
        "echo",
        "select cast(:value as int) as n",
        SQLConfig(url=pg.url_without_password, password_secret=PASSWORD),
        inputs={"value": str},
    )
    with pytest.raises(TaskFailed) as failure:
        emulator.run(echo, {"value": pg.password})
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    assert 'invalid input syntax for type integer: "***"' in failure.value.message
    assert pg.password not in failure.value.message


def test_missing_secret_is_a_user_error_naming_it(pg, tmp_path):
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(tmp_path)).run(items_task(pg), {"n": 1})
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    assert "config.password_secret" in failure.value.message and "warehouse" in failure.value.message


def test_unreachable_database_is_recoverable_and_retried(pg, tmp_path):
    closed = SQLTask("down", "select 1", SQLConfig(url="postgresql://prebuilt@127.0.0.1:9/postgres"), retries=2)
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(tmp_path)).run(closed)
    assert (failure.value.origin, failure.value.kind, failure.value.attempts) == ("USER", "RECOVERABLE", 3)
    assert "cannot connect to postgresql://prebuilt@127.0.0.1:9/postgres" in failure.value.message


@pytest.mark.docker
def test_postgres_from_the_image_with_an_injected_secret(pg, tmp_path, sql_image, password_env):
    emulator = Emulator(str(tmp_path), secrets={("warehouse", "password"): pg.password})
    in_image = emulator.run(items_task(pg), {"n": 50}, in_container=True)
    local = items_task(pg)(n=50)
    pd.testing.assert_frame_equal(in_image.outputs["results"].open(pd.DataFrame).all(), local.open(pd.DataFrame).all())
    assert pg.password not in in_image.logs


@pytest.mark.parametrize("path", ["in-process", "emulated"])
@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_an_empty_result_keeps_the_column_types(pg, password_env, tmp_path, reader, path):
    """No rows: the types still come from the database (PostgreSQL's type OIDs), as when rows come back."""
    t = items_task(pg, reader)
    if path == "in-process":
        empty = pq.read_table(t(n=0).literal.uri)
    else:
        emulator = Emulator(str(tmp_path), secrets={("warehouse", "password"): pg.password})
        empty = pq.read_table(emulator.run(t, {"n": 0}).literals.literals["results"].scalar.structured_dataset.uri)
    assert empty.num_rows == 0
    assert empty.schema == pq.read_table(items_task(pg, reader)(n=3).literal.uri).schema
    assert str(empty.schema.field("name").type) == "string" and str(empty.schema.field("ratio").type) == "double"


@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_limit_and_offset_take_bound_counts(pg, password_env, reader):
    """Both PostgreSQL drivers bind a count in LIMIT/OFFSET (the rule in docs/sql.md allows int inputs there)."""
    t = SQLTask(
        "page",
        "select id from items order by id limit {{.inputs.size}} offset :skip",
        SQLConfig(url=pg.url_without_password, password_secret=PASSWORD, reader=reader),
        inputs={"size": int, "skip": int},
    )
    assert t(size=3, skip=10).open(pd.DataFrame).all()["id"].tolist() == [11, 12, 13]


@pytest.mark.docker
def test_the_image_reaches_postgres_by_service_name_on_a_compose_network(compose_postgres, sql_image, tmp_path):
    """As a pod reaches a database through its Service: the container joins the compose network (not the host's) and
    connects to ``db:5432``; the password comes from an injected Flyte secret and never reaches the logs."""
    compose_postgres.execute(
        "drop table if exists regions; create table regions (region text, amount numeric(8,2));"
        "insert into regions values ('north', 10.5), ('south', 4), ('north', 2.25);"
    )
    task = SQLTask(
        "regions",
        "select region, sum(amount)::float8 as total from regions group by region order by region",
        SQLConfig(url=compose_postgres.service_url_without_password, password_secret=PASSWORD),
    )
    emulator = Emulator(
        str(tmp_path), secrets={("warehouse", "password"): compose_postgres.password}, network=compose_postgres.network
    )
    result = emulator.run(task, in_container=True, retries=0)
    rows = result.outputs["results"].open(pd.DataFrame).all()
    assert rows.to_dict("list") == {"region": ["north", "south"], "total": [12.75, 4.0]}
    assert compose_postgres.password not in result.logs
    with pytest.raises(TaskFailed, match='could not translate host name "db"'):  # the host's network has no `db`
        Emulator(str(tmp_path), secrets={("warehouse", "password"): compose_postgres.password}).run(
            task, in_container=True, retries=0
        )


@pytest.mark.postgres
@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_the_tasks_timeout_cancels_the_statement_on_the_server(pg, password_env, reader):
    """The task's timeout stops the query through the driver (ADBC's or psycopg2's cancel): USER:Timeout."""
    import datetime

    from flytekitplugins.prebuilt.kit import UserError

    slow = SQLTask(
        "slow",
        "select pg_sleep(60) as slept",
        SQLConfig(url=pg.url_without_password, password_secret=PASSWORD, reader=reader),
        timeout=datetime.timedelta(seconds=1),
    )
    with pytest.raises(Exception) as failure:
        slow()
    assert isinstance(failure.value.value, UserError) and failure.value.error_code == "USER:Timeout"
