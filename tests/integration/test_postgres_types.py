"""PostgreSQL types without an Arrow type of their own (tsvector, inet, point, timetz, xml, bit, interval, ranges,
...) are read as the server's text output, what psql prints, by both readers and on every path; arrays of plain
types are lists; JSON is its text. ADBC alone would hand the first ones over as their binary wire bytes (or, for an
interval, a type parquet cannot store), SQLAlchemy's psycopg2 as Python's repr of its own objects."""

import pyarrow.parquet as pq
import pytest
from flytekit import Secret
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

PASSWORD = Secret(group="warehouse", key="password")
AS_PSQL_PRINTS = {
    "tv": "'a' 'b'",
    "ip": "10.0.0.1",
    "net": "10.0.0.0/8",
    "pt": "(1,2)",
    "tz": "12:00:00+02",
    "x": "<a>x</a>",
    "b": "1010",
    "span": "1 day 02:00:00",
    "spans": '{"1 day",02:00:00}',
    "r": "[1,5)",
    "j": '{"k" : 1}',
    "jb": '{"k": 1}',
    "tags": ["a", "b"],
    "ints": [1, 2],
    "mood": "happy",
    "ips": "{10.0.0.1,10.0.0.2}",
    "rs": '{"[1,5)","[2,3)"}',
    "jbs": ['{"k": 1}', "[]"],
}


@pytest.fixture(scope="module")
def pg(postgres):
    postgres.execute(
        "drop table if exists odd; drop type if exists mood; create type mood as enum ('happy', 'sad');"
        "create table odd (id int, tv tsvector, ip inet, net cidr, pt point, tz timetz, x xml, b bit(4), "
        "span interval, spans interval[], r int4range, j json, jb jsonb, tags text[], ints int[], mood mood, "
        "ips inet[], rs int4range[], jbs jsonb[]);"
        "insert into odd values (1, 'a b', '10.0.0.1', '10.0.0.0/8', point(1, 2), '12:00+02', '<a>x</a>', B'1010', "
        "'1 day 2 hours', array['1 day', '2 hours']::interval[], int4range(1, 5), '{\"k\" : 1}', '{\"k\" : 1}', "
        "array['a', 'b'], array[1, 2], 'happy', array['10.0.0.1', '10.0.0.2']::inet[], "
        "array[int4range(1, 5), int4range(2, 3)], array['{\"k\" : 1}', '[]']::jsonb[]), (2, null, null, null, null, "
        "null, null, null, null, null, null, null, null, null, null, null, null, null, null)"
    )
    return postgres


def odd_task(pg, reader: str) -> SQLTask:
    config = SQLConfig(url=pg.url_without_password, password_secret=PASSWORD, reader=reader)
    return SQLTask(f"odd_{reader}", "select * from odd order by id", config)


@pytest.mark.postgres
@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_types_without_an_arrow_type_read_as_psql_prints_them(pg, monkeypatch, reader):
    monkeypatch.setenv("_FSEC_WAREHOUSE_PASSWORD", pg.password)
    first, missing = pq.read_table(odd_task(pg, reader)().literal.uri).to_pylist()
    assert {name: first[name] for name in AS_PSQL_PRINTS} == AS_PSQL_PRINTS
    assert all(value is None for name, value in missing.items() if name != "id")


@pytest.mark.postgres
def test_both_readers_and_the_emulated_run_give_one_table(pg, monkeypatch, tmp_path):
    monkeypatch.setenv("_FSEC_WAREHOUSE_PASSWORD", pg.password)
    adbc, sqlalchemy = (pq.read_table(odd_task(pg, reader)().literal.uri) for reader in ("adbc", "sqlalchemy"))
    assert adbc.equals(sqlalchemy), (adbc.schema, sqlalchemy.schema)
    emulator = Emulator(str(tmp_path), secrets={("warehouse", "password"): pg.password})
    for reader in ("adbc", "sqlalchemy"):
        emulated = emulator.run(odd_task(pg, reader))
        assert pq.read_table(emulated.literals.literals["results"].scalar.structured_dataset.uri).equals(adbc), reader


@pytest.mark.docker
@pytest.mark.postgres
def test_the_image_reads_them_as_in_process(pg, monkeypatch, tmp_path, sql_image):
    monkeypatch.setenv("_FSEC_WAREHOUSE_PASSWORD", pg.password)
    emulator = Emulator(str(tmp_path), secrets={("warehouse", "password"): pg.password})
    in_image = emulator.run(odd_task(pg, "adbc"), in_container=True)
    local = pq.read_table(odd_task(pg, "adbc")().literal.uri)
    assert pq.read_table(in_image.literals.literals["results"].scalar.structured_dataset.uri).equals(local)
