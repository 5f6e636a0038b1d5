"""The SQL task on real SQLite databases, in-process (flytekit local execution)."""

import datetime
import logging
import sqlite3
import zipfile
from typing import List

import pandas as pd
import pyarrow.parquet as pq
import pytest
from flytekit import task, workflow
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.sql import SQLConfig, SQLite3Config, SQLite3Task, SQLTask, compat


def frame(result) -> pd.DataFrame:
    return result.open(pd.DataFrame).all()


def test_bound_input_feeds_a_python_task(people_db):
    people = SQLTask(
        "people",
        "select id, name from people where id >= {{ .inputs.min_id }} order by id",
        SQLConfig(url=f"sqlite:///{people_db}"),
        inputs={"min_id": int},
    )

    @task
    def count(df: pd.DataFrame) -> int:
        return len(df)

    @workflow
    def wf(min_id: int) -> int:
        return count(df=people(min_id=min_id))

    assert wf(min_id=45) == 5


@pytest.mark.parametrize(
    "make_task",
    [
        lambda db: SQLTask(
            "q",
            "select * from people where name = '{{.inputs.name}}'",
            SQLConfig(url=f"sqlite:///{db}"),
            inputs={"name": str},
        ),
        lambda db: SQLite3Task(
            "q",
            "select * from people where name = '{{.inputs.name}}'",
            inputs={"name": str},
            task_config=SQLite3Config(uri=str(db)),
        ),
        lambda db: compat.SQLAlchemyTask(
            "q",
            "select * from people where name = '{{.inputs.name}}'",
            task_config=compat.SQLAlchemyConfig(uri=f"sqlite:///{db}"),
            inputs={"name": str},
        ),
    ],
)
def test_injection_matches_no_rows(people_db, make_task):
    """Upstream pastes the input into the SQL; here it is a bound value, so the quote trick matches nothing."""
    t = make_task(people_db)
    assert len(frame(t(name="x' or '1'='1"))) == 0
    assert frame(t(name="name7"))["id"].tolist() == [7]


def test_results_stream_into_several_files_with_coalesced_row_groups(people_db):
    t = SQLTask(
        "all",
        "select * from people order by id",
        SQLConfig(url=f"sqlite:///{people_db}", batch_rows=8, rows_per_file=20),
    )
    result = t()
    files = sorted(p for p in __import__("pathlib").Path(result.literal.uri).rglob("*.parquet"))
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [20, 20, 10]
    assert [pq.ParquetFile(files[0]).metadata.row_group(i).num_rows for i in range(3)] == [8, 8, 4]
    assert frame(result)["id"].tolist() == list(range(50))


def test_max_rows_and_empty_results_keep_the_schema(people_db):
    limited = SQLTask(
        "l", "select id from people order by id", SQLConfig(url=f"sqlite:///{people_db}", max_rows=3, batch_rows=2)
    )
    assert frame(limited())["id"].tolist() == [0, 1, 2]
    empty = SQLTask("e", "select id, name from people where id < 0", SQLConfig(url=f"sqlite:///{people_db}"))
    assert list(frame(empty()).columns) == ["id", "name"]


@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_lists_dates_and_identifiers(people_db, reader):
    t = SQLTask(
        "q",
        "select id from {{ .inputs.table | identifier }} where id in :ids and born >= :day order by id",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
        inputs={"table": str, "ids": List[int], "day": datetime.date},
    )
    assert frame(t(table="people", ids=[1, 2, 30], day=datetime.date(2020, 1, 3)))["id"].tolist() == [2, 30]
    with pytest.raises(Exception, match="not a plain identifier"):
        t(table="people; drop table people", ids=[1], day=datetime.date(2020, 1, 1))


def test_both_readers_give_identical_outputs(people_db):
    with sqlite3.connect(people_db) as db:
        db.execute("create table mixed (i integer, t text, f real, b blob, n integer, ts timestamp)")
        db.executemany(
            "insert into mixed values (?, ?, ?, ?, ?, ?)",
            [(i, f"t{i}", i / 3, bytes([i % 256]), None, "2024-01-01 10:00:00") for i in range(300)],
        )
    tables = []
    for reader in ("adbc", "sqlalchemy"):
        result = SQLTask(
            "m", "select * from mixed order by i", SQLConfig(url=f"sqlite:///{people_db}", reader=reader, batch_rows=64)
        )()
        tables.append(pq.read_table(result.literal.uri))
    assert tables[0].schema == tables[1].schema
    assert tables[0].equals(tables[1])


def test_statements_without_results_run_in_one_transaction(people_db):
    url = f"sqlite:///{people_db}"
    change = SQLTask(
        "c",
        "update people set score = 0 where id < :n; delete from people where id = 49",
        SQLConfig(url=url),
        inputs={"n": int},
        output_schema_type=None,
    )
    assert change(n=10) == 11
    failing = SQLTask(
        "f", "delete from people; insert into missing_table values (1)", SQLConfig(url=url), output_schema_type=None
    )
    with pytest.raises(Exception, match="missing_table"):
        failing()
    with sqlite3.connect(people_db) as db:
        assert db.execute("select count(*) from people").fetchone()[0] == 49  # the delete was rolled back


def test_sqlite_file_from_a_compressed_archive(people_db, tmp_path):
    archive = tmp_path / "people.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(people_db, "people.db")
    t = SQLite3Task(
        "z", "select count(*) as n from people", task_config=SQLite3Config(uri=str(archive), compressed=True)
    )
    assert frame(t())["n"].tolist() == [50]


def test_upstream_flyteschema_output_type_still_works(people_db):
    from flytekit import kwtypes
    from flytekit.types.schema import FlyteSchema

    t = SQLite3Task(
        "s",
        "select id, name from people where id < 3",
        task_config=SQLite3Config(uri=str(people_db)),
        output_schema_type=FlyteSchema[kwtypes(id=int, name=str)],
    )
    assert t().open().all()["id"].tolist() == [0, 1, 2]


def test_declared_columns_in_structured_dataset_types(people_db):
    from typing import Annotated

    from flytekit import kwtypes

    t = SQLTask(
        "s",
        "select id, name from people where id < 2",
        SQLConfig(url=f"sqlite:///{people_db}"),
        output_schema_type=Annotated[StructuredDataset, kwtypes(id=int, name=str)],
    )
    assert frame(t())["name"].tolist() == ["name0", "name1"]


def test_database_errors_are_user_errors_without_retry(people_db, caplog):
    t = SQLTask("bad", "select * from nowhere", SQLConfig(url=f"sqlite:///{people_db}"))
    with caplog.at_level(logging.INFO), pytest.raises(Exception, match="no such table: nowhere") as error:
        t()
    from flytekitplugins.prebuilt.kit import UserError

    assert isinstance(error.value.value, UserError)  # reported as USER, NON_RECOVERABLE: no retry
    assert error.value.error_code == "USER:PrebuiltUserError"


def result_schema(task, path, root, **inputs):
    """The parquet schema of ``task``'s results, run in-process or through the emulator."""
    if path == "in-process":
        return pq.read_table(task(**inputs).literal.uri).schema
    literal = Emulator(str(root)).run(task, inputs).literals.literals["results"]
    return pq.read_table(literal.scalar.structured_dataset.uri).schema


@pytest.mark.parametrize("path", ["in-process", "emulated"])
@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_an_empty_result_keeps_the_declared_column_types(people_db, tmp_path, reader, path):
    """SQLite types values, not columns; with no rows the declared types decide (expressions have none: int64)."""
    with sqlite3.connect(people_db) as db:
        db.execute("create table typed (i integer, t text, f real, b blob, v varchar(20), d date, n numeric)")
    t = SQLTask(
        "e",
        "select i, t, f, b, v, d, n, i + 1 as expr from typed where i > :low",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
        inputs={"low": int},
    )
    empty = result_schema(t, path, tmp_path, low=0)
    assert {f.name: str(f.type) for f in empty} == {
        "i": "int64",
        "t": "string",
        "f": "double",
        "b": "binary",
        "v": "string",
        "d": "string",
        "n": "int64",
        "expr": "int64",
    }
    with sqlite3.connect(people_db) as db:
        db.execute("insert into typed values (1, 'a', 1.5, x'00', 'v', '2024-01-01', 7)")
    assert result_schema(t, path, tmp_path, low=0) == empty  # the same types as when rows come back


@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_counts_and_named_values_bind_where_the_rule_allows_them(people_db, reader):
    """LIMIT/OFFSET take int inputs (SQLite binds them); a value in the select list is fine once it is named."""
    t = SQLTask(
        "page",
        "select id, :tag as tag from people order by id limit {{.inputs.size}} offset :skip",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
        inputs={"size": int, "skip": int, "tag": str},
    )
    df = frame(t(size=3, skip=10, tag="batch-1"))
    assert df["id"].tolist() == [10, 11, 12] and df["tag"].tolist() == ["batch-1"] * 3
