"""Read a query's rows as Arrow record batches, with the fastest reader the database has.

- ``adbc``: Arrow-native drivers (PostgreSQL): batches come out of C, no Python rows (``adbc``, which imports
  no SQLAlchemy; a plain read of one large table is split into block ranges: ``postgres_ranges``).
- ``sqlalchemy``: any SQLAlchemy dialect, streamed with a server-side cursor in ``batch_rows``
  partitions and turned into Arrow column by column (with the garbage collector paused: it costs
  about half the time of this loop otherwise).

SQLite is read by Python's ``sqlite3`` only, whichever reader the task names (``sqlite_reader``).

Both readers produce the same schema for the same query: column types come from the database where the
driver reports them (PostgreSQL type OIDs) and from the values otherwise (a column with no values in the
first batch is int64; integers and reals in one column are float64; other mixes are refused).
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import gc
from typing import Any, Iterable, Iterator, Sequence

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
    # arrays of those: lists, as ADBC reads them
    1000: pa.list_(pa.bool_()),
    1005: pa.list_(pa.int16()),
    1007: pa.list_(pa.int32()),
    1016: pa.list_(pa.int64()),
    1021: pa.list_(pa.float32()),
    1022: pa.list_(pa.float64()),
    1009: pa.list_(pa.string()),
    1014: pa.list_(pa.string()),
    1015: pa.list_(pa.string()),
    1182: pa.list_(pa.date32()),
    1115: pa.list_(pa.timestamp("us")),
    1185: pa.list_(pa.timestamp("us", tz="UTC")),
    199: pa.list_(pa.string()),  # json[]
    3807: pa.list_(pa.string()),  # jsonb[]
}
# PostgreSQL types psycopg2 turns into Python values whose str() is not PostgreSQL's text (interval as
# "1 day, 0:00:00", timetz as "12:00:00+02:00", int4range as "NumericRange(1, 5, '[)')"), and their arrays: read as
# the server's text, as the ADBC reader reads them (adbc.readable_query)
PG_AS_SERVER_TEXT = (
    1186, 1187,  # interval, interval[]
    1266, 1270,  # timetz, timetz[]
    3904, 3906, 3908, 3910, 3912, 3926,  # int4range, numrange, tsrange, tstzrange, daterange, int8range
    3905, 3907, 3909, 3911, 3913, 3927,  # their arrays
    1041, 651, 1017, 143, 1561, 3643,  # inet[], cidr[], point[], xml[], bit[], tsvector[]
)  # fmt: skip
# SQLite's storage classes, by the Python type sqlite3 returns them as (sqlite.org/datatype3.html, 2)
STORAGE_CLASSES = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}


def bound(statement: str, params: dict[str, Any]):
    """A text() clause with the parameters it uses bound (lists expanded for IN (...))."""
    clause = text(statement)
    names = set(clause.compile().params)  # the names it binds (its :name placeholders)
    expanding = [bindparam(k, expanding=True) for k, v in params.items() if k in names and isinstance(v, list)]
    return clause.bindparams(*expanding), {k: v for k, v in params.items() if k in names}


# ---------------------------------------------------------------- SQLAlchemy


@contextlib.contextmanager
def sqlalchemy_connection(url: URL, connect_args: dict[str, Any]):
    if url.get_backend_name() == "sqlite":
        # the rows are read on the prefetch thread (parquet_sink.prefetch), one thread at a time; SQLAlchemy allows
        # that for files, not for in-memory databases (``sqlite://``), whose pool keeps sqlite3's thread check
        connect_args = {"check_same_thread": False, **connect_args}
    psycopg2 = url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg2"
    engine = create_engine(url, connect_args=connect_args, **({"json_deserializer": _unchanged} if psycopg2 else {}))
    if psycopg2:
        _read_as_server_text(engine)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _read_as_server_text(engine) -> None:
    """psycopg2 connections of ``engine`` read PG_AS_SERVER_TEXT as the server's text (and, through the engine's
    ``json_deserializer``, JSON as its text, not a dict whose str() is Python's repr)."""
    from psycopg2 import extensions
    from sqlalchemy import event

    as_text = extensions.new_type(PG_AS_SERVER_TEXT, "PREBUILT_SERVER_TEXT", lambda value, cursor: value)

    @event.listens_for(engine, "connect")
    def register(dbapi_connection, record) -> None:
        extensions.register_type(as_text, dbapi_connection)


def _unchanged(text: str) -> str:
    return text


def sqlalchemy_batches(
    connection, statements: list[str], params: dict[str, Any], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    for statement in statements[:-1]:
        connection.execute(*bound(statement, params))
    clause, used = bound(statements[-1], params)
    result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(clause, used)
    names = list(result.keys())
    oids = [getattr(d, "type_code", None) for d in (result.cursor.description or [])] if result.cursor else []
    schema = None
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
            arrays = [_to_arrow(c, f) for c, f in zip(columns, schema)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        if schema is None:  # no rows: types from the database where it tells them
            schema = pa.schema(
                [(n, _column_type((), oids[i] if i < len(oids) else None, connection)) for i, n in enumerate(names)]
            )
            yield pa.RecordBatch.from_pylist([], schema=schema)
    finally:
        if paused:
            gc.enable()


def _column_type(values, type_code, connection) -> pa.DataType:
    if connection.dialect.name == "postgresql" and isinstance(type_code, int):
        return PG_TYPES.get(type_code, pa.string())
    sample = next((v for v in values if v is not None), None)
    if sample is None:
        return pa.int64()  # ADBC SQLite's choice for a column with no values
    if isinstance(sample, bool):
        return pa.bool_()
    if isinstance(sample, int):  # integers and reals in one column: float64
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


def _to_arrow(values, column: pa.Field) -> pa.Array:
    arrow_type = column.type
    if pa.types.is_string(arrow_type):
        values = [None if v is None else v if isinstance(v, str) else _text(v) for v in values]
    elif pa.types.is_timestamp(arrow_type) and arrow_type.tz:
        values = [None if v is None else v.astimezone(datetime.timezone.utc) for v in values]
    try:
        return pa.array(values, type=arrow_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        raise mixed_types_error(column.name, column.type, values) from None


def mixed_types_error(
    name: str, arrow_type: pa.DataType, values: Sequence[Any], first_types: Iterable[type] = ()
) -> UserError:
    """A column whose values are not all of one type: the task's to fix. ``first_types``: those of the rows that
    set its type, when ``values`` are a later batch's."""
    kinds = {type(v) for v in values} | set(first_types)
    seen = sorted({STORAGE_CLASSES.get(kind, kind.__name__) for kind in kinds if kind is not type(None)})
    return UserError(
        f"column {name!r} holds values of several types ({', '.join(seen)}; read as {arrow_type} from its "
        f"first rows): a parquet column has one type; CAST it in the query, e.g. CAST({name} AS TEXT)"
    )


def _text(value: Any) -> str:
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)
