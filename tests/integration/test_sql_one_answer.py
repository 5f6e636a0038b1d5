"""One answer whatever the reader: the same SQLite query through either reader gives the same rows, schema and
errors (docs/sql.md, "How results are read"). SQLite is read by Python's sqlite3 on every path."""

import datetime
import sqlite3

import pyarrow.parquet as pq
import pytest
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.kit import UserError
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

READERS = ["adbc", "sqlalchemy"]


def table(task, **inputs):
    return pq.read_table(task(**inputs).literal.uri)


def user_error(task, **inputs) -> Exception:
    """The error a run ends with; it must be a USER error, which Flyte does not retry."""
    with pytest.raises(Exception) as failure:
        task(**inputs)
    assert isinstance(failure.value.value, UserError), failure.value
    return failure.value


@pytest.mark.parametrize("reader", READERS)
def test_datetime_inputs_bind_as_pythons_sqlite3_binds_them(people_db, reader):
    """SQLite compares dates as text, stored as '2020-01-02 00:00:00': a bound datetime must have that form, or
    `born >= :since` loses the boundary day."""
    t = SQLTask(
        "since",
        "select count(*) as n from people where born >= :since and born < :until and date(born) <= :day",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
        inputs={"since": datetime.datetime, "until": datetime.datetime, "day": datetime.date},
    )
    since, until = datetime.datetime(2020, 1, 2), datetime.datetime(2020, 1, 3)
    assert table(t, since=since, until=until, day=datetime.date(2020, 1, 2))["n"].to_pylist() == [2]


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_runs_the_sqlite_of_pythons_sqlite3(people_db, reader):
    """One SQLite build: float arithmetic (`round(avg(x), 2)`, `ntile`) differs between builds in the last digit."""
    t = SQLTask(
        "v",
        "select sqlite_version() as v, round(avg(score * 1.1), 2) as a from people",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
    )
    with sqlite3.connect(people_db) as db:
        expected = db.execute("select round(avg(score * 1.1), 2) from people").fetchone()[0]
    assert table(t).to_pylist() == [{"v": sqlite3.sqlite_version, "a": expected}]


@pytest.mark.parametrize("reader", READERS)
def test_an_in_memory_database_reads_on_every_reader(reader):
    """`sqlite://` is read by sqlite3 too, whose rows the prefetch thread reads (sqlite3 checks threads)."""
    t = SQLTask("mem", "select :n * 2 as doubled", SQLConfig(url="sqlite://", reader=reader), inputs={"n": int})
    assert table(t, n=21)["doubled"].to_pylist() == [42]


@pytest.mark.parametrize("reader", READERS)
def test_a_column_of_mixed_types_is_a_user_error_naming_it(people_db, reader):
    with sqlite3.connect(people_db) as db:
        db.execute("create table loose (k integer, v)")
        db.executemany("insert into loose values (?, ?)", [(1, 1), (2, 3.5), (3, "x"), (4, None)])
    mixed = SQLTask("m", "select k, v from loose order by k", SQLConfig(url=f"sqlite:///{people_db}", reader=reader))
    message = str(user_error(mixed))
    assert "column 'v'" in message and "INTEGER, REAL, TEXT" in message and "CAST" in message
    numbers = SQLTask(
        "n", "select v from loose where k < 3 order by k", SQLConfig(url=f"sqlite:///{people_db}", reader=reader)
    )
    result = table(numbers)  # integers and reals in one column: float64, losslessly
    assert str(result.schema.field("v").type) == "double" and result["v"].to_pylist() == [1.0, 3.5]


def test_an_empty_result_of_untyped_expressions_has_one_schema(people_db):
    """Expressions have no declared type in SQLite: with no rows both readers say int64 (docs/sql.md)."""
    schemas = [
        table(
            SQLTask(
                "e",
                "select null as nil, :tag as tag, score * 2 as twice, id from people where id < :low",
                SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
                inputs={"tag": str, "low": int},
            ),
            tag="t",
            low=0,
        ).schema
        for reader in READERS
    ]
    assert schemas[0] == schemas[1]
    assert {f.name: str(f.type) for f in schemas[0]} == {
        "nil": "int64",
        "tag": "int64",
        "twice": "int64",
        "id": "int64",
    }


@pytest.mark.parametrize("path", ["in-process", "emulated"])
@pytest.mark.parametrize("reader", READERS)
def test_duplicate_column_names_are_a_user_error_suggesting_aliases(people_db, tmp_path, reader, path):
    t = SQLTask(
        "dup",
        "select a.name, b.name, a.id from people a join people b on a.id = b.id + 1",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
    )
    if path == "in-process":
        message = str(user_error(t))
    else:
        with pytest.raises(TaskFailed) as failure:
            Emulator(str(tmp_path)).run(t, retries=0)
        assert failure.value.origin == "USER" and not failure.value.recoverable
        message = failure.value.message
    assert "several columns named 'name'" in message and "aliases" in message


@pytest.mark.parametrize("reader", READERS)
def test_a_quoted_placeholder_binds_the_text_of_its_value(people_db, reader):
    """Upstream pastes `'{{ .inputs.year }}'` as the text '2020'; bound as the int 2020 it equals no text."""
    t = SQLTask(
        "year",
        "select count(*) as n from people where strftime('%Y', born) = '{{ .inputs.year }}'",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
        inputs={"year": int},
    )
    assert table(t, year=2020)["n"].to_pylist() == [50] and table(t, year=2021)["n"].to_pylist() == [0]


@pytest.mark.parametrize("reader", READERS)
def test_the_tasks_timeout_stops_a_query_that_never_ends(people_db, reader):
    forever = SQLTask(
        "forever",
        "with recursive r(i) as (select 1 union all select i + 1 from r) select count(*) as n from r",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
        timeout=datetime.timedelta(seconds=1),
    )
    error = user_error(forever)
    assert error.error_code == "USER:Timeout" and "timeout (0:00:01)" in str(error)


def loose_table(db_path, rows) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute("create table loose (k integer, v)")  # v: no declared type, each value keeps its own
        db.executemany("insert into loose values (?, ?)", rows)


@pytest.mark.parametrize(
    "rows, types, read_as",
    [
        ([(1, 1), (2, 2), (3, 2.0)], "INTEGER, REAL", "int64"),  # 2.0 in a later batch would be stored as 2
        ([(1, None), (2, None), (3, "x")], "TEXT", "int64"),  # no values in the first batch: int64
        ([(1, b"a"), (2, "x")], "BLOB, TEXT", "binary"),  # pyarrow would store the text as its bytes
        ([(1, "a"), (2, "b"), (3, b"c")], "BLOB, TEXT", "string"),
    ],
)
def test_a_value_of_another_type_in_any_batch_is_a_user_error(people_db, rows, types, read_as):
    """The first batch (batch_rows=2 here) sets a column's type; no later value is converted to it silently."""
    loose_table(people_db, rows)
    t = SQLTask("l", "select v from loose order by k", SQLConfig(url=f"sqlite:///{people_db}", batch_rows=2))
    message = str(user_error(t))
    assert f"column 'v' holds values of several types ({types}; read as {read_as} from its first rows)" in message


@pytest.mark.parametrize(
    "rows, arrow_type",
    [
        ([(1, 1.5), (2, 2.5), (3, 3), (4, None)], "double"),  # an integer among reals, in a later batch: float64
        ([(1, "a"), (2, "b"), (3, None), (4, None)], "string"),  # a later batch of NULLs only
        ([(1, b"a"), (2, None), (3, b"\xff")], "binary"),
    ],
)
def test_later_batches_keep_the_first_batchs_types_and_sqlite3s_values(people_db, rows, arrow_type):
    loose_table(people_db, rows)
    t = SQLTask("l", "select v from loose order by k", SQLConfig(url=f"sqlite:///{people_db}", batch_rows=2))
    result = table(t)
    with sqlite3.connect(people_db) as db:
        expected = [v for (v,) in db.execute("select v from loose order by k")]
    assert str(result.schema.field("v").type) == arrow_type and result["v"].to_pylist() == expected


def test_a_row_the_database_fails_to_compute_after_the_first_batch_is_a_user_error(people_db):
    """SQLite computes rows as they are read: an error at row 5 comes from reading, not from executing."""
    t = SQLTask(
        "overflow",
        "select case when id = 5 then abs(-9223372036854775807 - 1) else id end as v from people",
        SQLConfig(url=f"sqlite:///{people_db}", batch_rows=2),
    )
    assert "the database rejected the query: OperationalError: integer overflow" in str(user_error(t))


@pytest.mark.parametrize("reader", READERS)
def test_a_decimal_column_has_one_type_with_rows_and_without(people_db, reader):
    """Chinook's Invoice.Total is NUMERIC(10,2) holding 1.98: its rows read as float64, so an empty result (a day
    without invoices) must too, or the days' files would not concatenate. NUMERIC without a scale stays int64."""
    with sqlite3.connect(people_db) as db:
        db.execute("create table invoice (id integer, country nvarchar(40), total numeric(10,2), qty numeric)")
        db.executemany("insert into invoice values (?, ?, ?, ?)", [(1, "Norway", 1.98, 1), (2, "Germany", 13.86, 2)])
    t = SQLTask(
        "inv",
        "select country, total, qty from invoice where country = :c",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
        inputs={"c": str},
    )
    full, empty = table(t, c="Norway"), table(t, c="Atlantis")
    assert full.schema == empty.schema and empty.num_rows == 0
    assert {f.name: str(f.type) for f in empty.schema} == {"country": "string", "total": "double", "qty": "int64"}


def test_the_first_batch_sets_types_from_all_its_rows_however_they_are_read(people_db):
    """Rows are read from sqlite3 in chunks smaller than batch_rows (memory); the types are still those of the
    whole first batch: NULLs then text is text, integers then reals is float64, integers then text is an error."""
    from flytekitplugins.prebuilt.executors.sql.sqlite_reader import CHUNK_ROWS

    rows = CHUNK_ROWS + 2000  # the second chunk starts at k = CHUNK_ROWS
    with sqlite3.connect(people_db) as db:
        db.execute("create table late (k integer, t, r, m)")
        db.executemany(
            "insert into late values (?, ?, ?, ?)",
            [(k, None if k < CHUNK_ROWS else "x", 1 if k < CHUNK_ROWS else 0.5, 1 if k < CHUNK_ROWS else "y")
             for k in range(rows)],
        )  # fmt: skip
    url = f"sqlite:///{people_db}"
    result = table(SQLTask("late", "select t, r from late order by k", SQLConfig(url=url, batch_rows=rows)))
    assert {f.name: str(f.type) for f in result.schema} == {"t": "string", "r": "double"}
    with sqlite3.connect(people_db) as db:
        assert result.to_pylist() == [{"t": t, "r": r} for t, r in db.execute("select t, r from late order by k")]
    mixed = SQLTask("m", "select m from late order by k", SQLConfig(url=url, batch_rows=rows))
    assert "column 'm' holds values of several types (INTEGER, TEXT; read as int64" in str(user_error(mixed))


def test_of_several_mixed_columns_the_first_is_named_wherever_in_the_first_batch_it_mixes(people_db):
    from flytekitplugins.prebuilt.executors.sql.sqlite_reader import CHUNK_ROWS

    with sqlite3.connect(people_db) as db:
        db.execute("create table two (k integer, a, b)")
        rows = [(k, 1 if k < CHUNK_ROWS else "late", "early" if k == 0 else 2) for k in range(CHUNK_ROWS + 10)]
        db.executemany("insert into two values (?, ?, ?)", rows)
    t = SQLTask("two", "select a, b from two order by k", SQLConfig(url=f"sqlite:///{people_db}"))
    assert "column 'a' holds values of several types (INTEGER, TEXT; read as int64" in str(user_error(t))


def test_a_table_columns_declared_type_types_it_where_its_first_rows_do_not(people_db):
    """Chinook's Customer.Fax (NVARCHAR) is mostly NULL and Invoice.Total (NUMERIC(10,2)) may hold 2.00, stored as
    the integer 2: with first rows of NULLs or whole numbers, the declared type decides (string, float64), so a
    later value is no error and the schema is the one an empty result has."""
    with sqlite3.connect(people_db) as db:
        db.execute("create table customer (id integer, fax nvarchar(24), total numeric(10,2))")
        db.executemany(
            "insert into customer values (?, ?, ?)",
            [(1, None, 2.00), (2, None, 3), (3, "+47 22 44 22 23", 9.99), (4, None, 1.98)],
        )
    t = SQLTask(
        "c",
        "select fax, total from customer where id between :low and :high order by id",
        SQLConfig(url=f"sqlite:///{people_db}", batch_rows=2),
        inputs={"low": int, "high": int},
    )
    full, first_two, empty = table(t, low=1, high=4), table(t, low=1, high=2), table(t, low=9, high=9)
    assert full.schema == first_two.schema == empty.schema  # first_two: NULLs and whole numbers only
    assert {f.name: str(f.type) for f in full.schema} == {"fax": "string", "total": "double"}
    with sqlite3.connect(people_db) as db:
        expected = [{"fax": f, "total": t} for f, t in db.execute("select fax, total from customer order by id")]
    assert full.to_pylist() == expected  # 2 read as 2.0: equal to sqlite3's 2
