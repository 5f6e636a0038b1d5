"""The ADBC path's own parsing, against SQLAlchemy's where it stands in for it: which statements are split into
block ranges (``postgres_ranges.split_point``), ``:name`` to ``$n`` (``adbc.numeric_dollar``), URLs
(``pg_url.PostgresURL``) and one-value parameter arrays (``adbc.one_value_array``)."""

import datetime
import decimal

import pyarrow as pa
import pytest
from flytekitplugins.prebuilt.executors.sql.adbc import numeric_dollar, one_value_array
from flytekitplugins.prebuilt.executors.sql.pg_url import PostgresURL
from flytekitplugins.prebuilt.executors.sql.postgres_ranges import split_point


@pytest.mark.parametrize(
    "statement, table, condition",
    [
        ("select * from t", "t", ""),
        ("SELECT * FROM public.t", "public.t", ""),
        ('select id, "Name" as n, t.v from "My Table" t', '"My Table"', ""),
        ("select * from t as x where x.a > :since and b in (select b from u)", "t", "x.a > :since and b in "),
        ("select * from t where a = 'order by' -- limit 5\n", "t", "a = 'order by' -- limit 5"),
        ("select * from t where extract(year from d) = 2024", "t", "extract(year from d) = 2024"),
    ],
)
def test_plain_reads_of_one_table_are_split(statement, table, condition):
    split = split_point(statement)
    assert split is not None and split.table == table and split.condition.startswith(condition)


@pytest.mark.parametrize(
    "statement",
    [
        "select * from t order by id",
        "select * from t limit 10",
        "select * from t where a = 1 order by a",
        "select * from t offset 3",
        "select count(*) from t",
        "select a, count(*) from t group by a",
        "select distinct a from t",
        "select a + 1 as b from t",
        "select a::text from t",
        "select * from t join u on t.id = u.id",
        "select * from t, u",
        "select * from only t",
        "select * from t for update",
        "select * from t tablesample system (10)",
        "select * from generate_series(1, 10) g",
        "select * from (select * from t) s",
        "with x as (select * from t) select * from x",
        "select * from t union all select * from u",
        "select * from t where a is distinct from b",
        "insert into t select * from u returning *",
        "select * from t where a = 1 for share",
    ],
)
def test_everything_else_runs_on_one_connection(statement):
    assert split_point(statement) is None


def test_a_range_is_added_to_the_condition_in_parentheses_on_lines_of_its_own():
    split = split_point("select * from t where a = 1 or b = 2 -- note")
    assert split.ranged(10, 20) == (
        "select * from t\nWHERE ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid AND (\na = 1 or b = 2 -- note\n)"
    )
    assert split_point("select * from t").ranged(5, None) == "select * from t\nWHERE ctid >= '(5,0)'::tid"


@pytest.mark.parametrize(
    "statement, params",
    [
        ("select * from t where a = :x and b in (:ids) and c = :x", {"x": 1, "ids": [1, 2, 3]}),
        ("select * from t where d in (:none) and e = :y", {"none": [], "y": "s"}),
        ("select '\\:literal', a::text, :z from t", {"z": 1.5}),
        ("select :unbound, :x from t", {"x": 2}),
    ],
)
def test_parameters_are_numbered_as_sqlalchemy_numbers_them(statement, params):
    from flytekitplugins.prebuilt.executors.sql.readers import bound
    from sqlalchemy.dialects.postgresql import dialect

    clause, used = bound(statement, params)
    compiled = clause.bindparams(**used).compile(
        dialect=dialect(paramstyle="numeric_dollar"), compile_kwargs={"render_postcompile": True}
    )
    assert numeric_dollar(statement, params) == (
        compiled.string,
        [compiled.params[name] for name in compiled.positiontup],
    )


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://u@h:5432/db",
        "postgresql+psycopg2://u:p%40ss@[::1]:5433/d?sslmode=require&options=-c%20x&a=1&a=2",
        "postgresql://h/db",
        "postgresql:///db?host=/var/run/postgresql",
        "postgresql://us%20er:pw@host",
    ],
)
def test_postgres_urls_parse_and_render_as_sqlalchemys(text):
    from sqlalchemy.engine import make_url

    ours, theirs = PostgresURL.parse(text), make_url(text)
    for name in ("drivername", "username", "password", "host", "port", "database"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert dict(ours.query) == dict(theirs.query)
    assert ours.render_as_string() == theirs.render_as_string() and "p@ss" not in repr(ours)
    assert ours.set(password="x y").render_as_string(False) == theirs.set(password="x y").render_as_string(False)


def test_an_unparsable_url_is_a_value_error_that_does_not_quote_it():
    with pytest.raises(ValueError) as error:
        PostgresURL.parse("postgresql://u:secret@h:port/db")
    assert "secret" not in str(error.value)


@pytest.mark.parametrize(
    "value",
    [None, True, 0, -(2**63), 1.5, "héllo", "", b"\x00x", datetime.date(1900, 1, 1), datetime.datetime(2024, 2, 29, 1)],
)
def test_parameter_arrays_are_typed_as_pyarrow_types_them(value):
    ours, theirs = one_value_array(value), pa.array([value])
    ours.validate(full=True)
    assert ours.type == theirs.type and ours.equals(theirs)


def test_other_parameter_types_are_left_to_pyarrow():
    assert one_value_array(decimal.Decimal("1.25")).equals(pa.array([decimal.Decimal("1.25")]))


def test_read_connections_is_checked_and_in_the_template_only_when_set():
    from flytekitplugins.prebuilt.kit import ConfigError
    from flytekitplugins.prebuilt.sql import SQLConfig

    for wrong in (-1, 17, 2.5):
        with pytest.raises(ConfigError, match="read_connections"):
            SQLConfig(url="postgresql://u@h/db", read_connections=wrong).check()
    assert "read_connections" not in SQLConfig(url="postgresql://u@h/db").to_custom()
    assert SQLConfig(url="postgresql://u@h/db", read_connections=3).to_custom()["read_connections"] == 3
