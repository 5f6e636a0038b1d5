"""Read a query's rows as Arrow record batches, with the fastest reader the database has.

- ``adbc``: Arrow-native drivers (PostgreSQL): batches come out of C, no Python rows (``adbc``, which imports
  no SQLAlchemy; a plain read of one large table is split into block ranges: ``postgres_ranges``).
- ``sqlalchemy``: any SQLAlchemy dialect, streamed with a server-side cursor in ``batch_rows``
  partitions and turned into Arrow column by column (with the garbage collector paused: it costs
  about half the time of this loop otherwise).

SQLite is read by Python's ``sqlite3`` only, whichever reader the task names: ADBC's SQLite driver bundles
another SQLite build, whose arithmetic differs in the last digit (``round(avg(x), 2)``), which binds datetimes
in another text form, and which turns a column of mixed values into bytes. One engine gives one answer, the
one upstream's ``SQLite3Task`` gives.

Both readers produce the same schema for the same query: column types come from the database where the
driver reports them (PostgreSQL type OIDs) and from the values otherwise (a column with no values in the
first batch is int64; integers and reals in one column are float64; other mixes are refused). An empty
SQLite result takes the columns' declared types instead (``sqlite_declared_schema``).
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import gc
import uuid
from typing import Any, Iterator

import pyarrow as pa
from flytekitplugins.prebuilt.kit.errors import UserError
from sqlalchemy import bindparam, create_engine, text
from sqlalchemy.engine import URL

# PostgreSQL type OIDs -> Arrow types, as the ADBC PostgreSQL driver maps them
PG_TYPES = {
    16: pa.bool_(),
    17: pa.binary(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1042: pa.string(),
    1043: pa.string(),
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1700: pa.string(),
    2950: pa.string(),
    114: pa.string(),
    3802: pa.string(),
}
# SQLite's storage classes, by the Python type sqlite3 returns them as (sqlite.org/datatype3.html, 2)
STORAGE_CLASSES = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}
# the Python types of the values a column of each Arrow type may hold (None: NULL)
SQLITE_VALUE_TYPES = {
    pa.int64(): {int, type(None)},
    pa.float64(): {int, float, type(None)},
    pa.string(): {str, type(None)},
    pa.binary(): {bytes, type(None)},
}


def bound(statement: str, params: dict[str, Any]):
    """A text() clause with the parameters it uses bound (lists expanded for IN (...))."""
    clause = text(statement)
    names = set(clause.compile().params)  # the names it binds (its :name placeholders)
    expanding = [bindparam(k, expanding=True) for k, v in params.items() if k in names and isinstance(v, list)]
    return clause.bindparams(*expanding), {k: v for k, v in params.items() if k in names}


def sqlite_value(value: Any) -> Any:
    """A parameter as Python's sqlite3 binds it: a datetime, date or time as its ISO 8601 text with a space
    (``2024-01-01 00:00:00``; sqlite3's default adapters, deprecated in Python 3.12, written out here), the form
    SQLite's date functions return and stored data holds, since SQLite compares them as text."""
    if isinstance(value, list):
        return [sqlite_value(v) for v in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return value


# ---------------------------------------------------------------- SQLAlchemy


@contextlib.contextmanager
def sqlalchemy_connection(url: URL, connect_args: dict[str, Any]):
    if url.get_backend_name() == "sqlite":
        # the rows are read on the prefetch thread (parquet_sink.prefetch), one thread at a time; SQLAlchemy allows
        # that for files, not for in-memory databases (``sqlite://``), whose pool keeps sqlite3's thread check
        connect_args = {"check_same_thread": False, **connect_args}
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def sqlalchemy_batches(
    connection, statements: list[str], params: dict[str, Any], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    for statement in statements[:-1]:
        connection.execute(*bound(statement, params))
    clause, used = bound(statements[-1], params)
    result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(clause, used)
    names = list(result.keys())
    oids = [getattr(d, "type_code", None) for d in (result.cursor.description or [])] if result.cursor else []
    schema, sqlite = None, connection.dialect.name == "sqlite"
    paused = gc.isenabled()
    gc.disable()
    try:
        for rows in result.partitions(batch_rows):
            columns = list(zip(*rows))
            if schema is None:
                schema = pa.schema(
                    [
                        (n, _column_type(columns[i], oids[i] if i < len(oids) else None, connection))
                        for i, n in enumerate(names)
                    ]
                )
            arrays = [_to_arrow(c, f, sqlite) for c, f in zip(columns, schema)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        if schema is None:  # no rows: types from the database where it tells them
            schema = pa.schema(
                [(n, _column_type((), oids[i] if i < len(oids) else None, connection)) for i, n in enumerate(names)]
            )
            if connection.dialect.name == "sqlite":
                schema = sqlite_declared_schema(
                    lambda sql: _sqlalchemy_rows(connection, sql), statements[-1], params, schema
                )
            yield pa.RecordBatch.from_pylist([], schema=schema)
    finally:
        if paused:
            gc.enable()


def _sqlalchemy_rows(connection, sql: str) -> list[tuple]:
    result = connection.exec_driver_sql(sql)
    return [tuple(row) for row in result] if result.returns_rows else []


def _column_type(values, type_code, connection) -> pa.DataType:
    if connection.dialect.name == "postgresql" and isinstance(type_code, int):
        return PG_TYPES.get(type_code, pa.string())
    sample = next((v for v in values if v is not None), None)
    if sample is None:
        return pa.int64()  # ADBC SQLite's choice for a column with no values
    if isinstance(sample, bool):
        return pa.bool_()
    if isinstance(sample, int):  # integers and reals in one column (SQLite NUMERIC stores 1.0 as 1): float64
        return pa.float64() if any(isinstance(v, float) for v in values) else pa.int64()
    if isinstance(sample, float):
        return pa.float64()
    if isinstance(sample, (bytes, bytearray, memoryview)):
        return pa.binary()
    if isinstance(sample, datetime.datetime):
        return pa.timestamp("us", tz="UTC") if sample.tzinfo else pa.timestamp("us")
    if isinstance(sample, datetime.date):
        return pa.date32()
    if isinstance(sample, datetime.time):
        return pa.time64("us")
    return pa.string()  # str, Decimal (as ADBC renders numeric), UUID, JSON, ...


def _to_arrow(values, column: pa.Field, sqlite: bool) -> pa.Array:
    arrow_type = column.type
    if sqlite:
        _check_storage_classes(values, column)
    if pa.types.is_string(arrow_type):
        values = [None if v is None else v if isinstance(v, str) else _text(v) for v in values]
    elif pa.types.is_timestamp(arrow_type) and arrow_type.tz:
        values = [None if v is None else v.astimezone(datetime.timezone.utc) for v in values]
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        raise _mixed(column, values) from None


def _check_storage_classes(values, column: pa.Field) -> None:
    """SQLite types values, not columns: every value must fit the column's type as its first rows set it (integers
    may join reals: float64), or Arrow would truncate 3.5 to 3 and turn text into bytes, silently."""
    allowed = SQLITE_VALUE_TYPES.get(column.type)
    if allowed is not None and not set(map(type, values)) <= allowed:
        raise _mixed(column, values)


def _mixed(column: pa.Field, values) -> UserError:
    """A column whose values are not all of one type: the task's to fix."""
    seen = sorted({STORAGE_CLASSES.get(type(v), type(v).__name__) for v in values if v is not None})
    return UserError(
        f"column {column.name!r} holds values of several types ({', '.join(seen)}; read as {column.type} from its "
        f"first rows): a parquet column has one type; CAST it in the query, e.g. CAST({column.name} AS TEXT)"
    )


def _text(value: Any) -> str:
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)


# ---------------------------------------------------------------- SQLite: declared column types


def sqlite_declared_schema(rows, statement: str, params: dict[str, Any], inferred: pa.Schema) -> pa.Schema:
    """The schema of an empty SQLite result from the columns' declared types (TEXT stays string, REAL float).

    SQLite types values, not columns, so both readers infer a column's type from its values; with no rows
    there are none. A temporary view over the statement (every parameter NULL: a view takes none, and
    no value is ever pasted) tells the declared type of each column that is a table column
    (``PRAGMA table_info``); an expression has none and keeps the inferred type. ``rows(sql)`` runs SQL
    on the task's connection (so tables made by earlier statements are seen) and returns tuples.
    """
    from sqlalchemy.dialects.sqlite import dialect

    clause, used = bound(statement, params)
    nulls = {name: [None] if isinstance(value, list) else None for name, value in used.items()}
    probe = clause.bindparams(**nulls).compile(
        dialect=dialect(), compile_kwargs={"literal_binds": True, "render_postcompile": True}
    )
    view = f"prebuilt_result_types_{uuid.uuid4().hex}"
    try:
        rows(f'create temp view "{view}" as {probe.string}')
    except Exception:  # not a SELECT (e.g. INSERT ... RETURNING): keep what the reader inferred
        return inferred
    try:
        declared = [row[0] for row in rows(f"select type from pragma_table_info('{view}', 'temp') order by cid")]
    finally:
        with contextlib.suppress(Exception):  # it would go with the connection anyway
            rows(f'drop view temp."{view}"')
    if len(declared) != len(inferred):
        return inferred
    return pa.schema([(f.name, sqlite_declared_type(d) or f.type) for f, d in zip(inferred, declared)])


def sqlite_declared_type(declared: str | None) -> pa.DataType | None:
    """The Arrow type of a SQLite declared type, by SQLite's affinity rules (sqlite.org/datatype3.html, 3.1), as
    the readers type that column's values: dates and times are stored as text. None: no declared type."""
    name = (declared or "").upper()
    if not name:
        return None
    if "INT" in name:
        return pa.int64()
    if any(word in name for word in ("CHAR", "CLOB", "TEXT")):
        return pa.string()
    if "BLOB" in name:
        return pa.binary()
    if any(word in name for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if "DATE" in name or "TIME" in name:
        return pa.string()  # NUMERIC affinity, but SQLite keeps ISO-8601 text as text
    return None  # other NUMERIC affinity (NUMERIC, DECIMAL, BOOLEAN): integers or reals, as stored
