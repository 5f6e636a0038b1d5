"""Results of untyped expressions, empty ones included, have one schema whatever the reader and the path (issue 16).

An expression has no declared type (SQLite) or a type only the server knows (PostgreSQL), and a result with no rows
has no value to infer one from: each reader (ADBC, SQLAlchemy; SQLite's sqlite3 under both), in-process and through
the emulator (pyflyte-execute in a subprocess), must write the same parquet schema, the one docs/sql.md states.
"""

import os

import pyarrow.parquet as pq
from flytekit import Secret
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

READERS = ["adbc", "sqlalchemy"]
PASSWORD = Secret(group="warehouse", key="password")
# name -> (query, its schema on SQLite, on PostgreSQL); `{false}` is each database's false, `{table}` its table
QUERIES = {
    "no_rows": (
        "select 1 + id as y, name || 'x' as z, score * 2 as twice, name, count(*) as c, max(score) as top "
        "from {table} where {false} group by id, name, score",
        # SQLite: an expression has no declared type and no value: int64; name is declared TEXT
        {"y": "int64", "z": "int64", "twice": "int64", "name": "string", "c": "int64", "top": "int64"},
        # PostgreSQL: the expression's type, from the server
        {"y": "int32", "z": "string", "twice": "double", "name": "string", "c": "int64", "top": "double"},
    ),
    "one_row_of_null_and_a_count": (  # a NULL's type, and count(*) over no rows (one row: 0)
        "select null as n, count(*) as c from {table} where {false}",
        {"n": "int64", "c": "int64"},
        {"n": "string", "c": "int64"},
    ),
}


def schemas(url: str, table: str, false: str, root, **config) -> dict[tuple, dict[str, dict[str, str]]]:
    """{(reader, path): {query name: {column: type}}} for every query."""
    emulator = Emulator(str(root), secrets=config.pop("secrets", {}))
    found: dict[tuple, dict[str, dict[str, str]]] = {}
    for reader in READERS:
        for name, (query, *_) in QUERIES.items():
            task = SQLTask(
                f"empty_{name}", query.format(table=table, false=false), SQLConfig(url=url, reader=reader, **config)
            )
            for path, result in (("in-process", task()), ("emulated", emulator.run(task).outputs["results"])):
                schema = pq.read_schema(_first_file(result.literal.uri))
                found.setdefault((reader, path), {})[name] = {f.name: str(f.type) for f in schema}
    return found


def _first_file(directory: str) -> str:
    return os.path.join(directory, sorted(os.listdir(directory))[0])


def test_sqlite_every_reader_and_path_writes_one_schema(tmp_path):
    from tests.conftest import make_people_db

    db = make_people_db(tmp_path / "people.db")
    found = schemas(f"sqlite:///{db}", "people", "0", tmp_path / "store")
    expected = {name: sqlite for name, (_, sqlite, _) in QUERIES.items()}
    assert found == {key: expected for key in found} and len(found) == 4


def test_postgresql_every_reader_and_path_writes_one_schema(postgres, tmp_path, monkeypatch):
    postgres.execute(
        "drop table if exists empty_people; create table empty_people (id int, name text, score double precision);"
        "insert into empty_people values (1, 'a', 1.5)"
    )
    monkeypatch.setenv("_FSEC_WAREHOUSE_PASSWORD", postgres.password)  # in-process: flytekit reads it from here
    found = schemas(
        postgres.url_without_password,
        "empty_people",
        "false",
        tmp_path / "store",
        password_secret=PASSWORD,
        secrets={("warehouse", "password"): postgres.password},
    )
    expected = {name: pg for name, (_, _, pg) in QUERIES.items()}
    assert found == {key: expected for key in found} and len(found) == 4
