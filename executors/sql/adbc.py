"""The ADBC (PostgreSQL) reader: batches come out of C, no Python rows, and no SQLAlchemy imported.

A query's ``:name`` parameters (SQLAlchemy ``text()`` syntax, what ``parse_query`` renders) become PostgreSQL's
``$n`` here, as SQLAlchemy's ``numeric_dollar`` rendering does (same regular expressions: ``sqlalchemy.sql.elements.
TextClause._bind_params_regex`` and ``sqlalchemy.sql.compiler.BIND_PARAMS_ESC``), so that a task read by ADBC does
not import SQLAlchemy (0.3 to 0.6 s and 20 MB) for a query it does not run.
"""

from __future__ import annotations

import contextlib
import datetime
import re
import struct
from typing import Any, Iterator, Optional

import pyarrow as pa

BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])", re.UNICODE)
ESCAPED_COLON = re.compile(r"\x5c(:\w*)(?![:\w])", re.UNICODE)
EMPTY_IN = "(SELECT CAST(NULL AS INTEGER) WHERE 1!=1)"  # SQLAlchemy's rendering of an empty expanding list


@contextlib.contextmanager
def adbc_connection(url, autocommit: bool = False):
    """A low-level ADBC connection, in a transaction unless ``autocommit``. (The DB-API module imports
    pyarrow.dataset: +0.3 s and +48 MB for nothing we use.)"""
    import adbc_driver_manager
    import adbc_driver_postgresql as driver
    from flytekitplugins.prebuilt.executors.sql.connection_urls import libpq_uri

    database = driver.connect(libpq_uri(url))
    try:
        connection = adbc_driver_manager.AdbcConnection(database)
        try:
            if not autocommit:
                connection.set_autocommit(False)
            yield connection
        finally:
            connection.close()
    finally:
        database.close()


def adbc_batches(
    connection, statements: list[str], params: dict[str, Any], batch_bytes: Optional[int] = None
) -> Iterator[pa.RecordBatch]:
    """Run all statements on one ADBC (PostgreSQL) connection; stream the last one's rows (batches of about
    ``batch_bytes``; None: the driver's default)."""
    from adbc_driver_manager._reader import AdbcRecordBatchReader  # what the DB-API uses: ADBC errors, not Arrow's

    for statement in statements[:-1]:
        with _adbc_statement(connection, *numeric_dollar(statement, params)) as prior:
            prior.execute_update()
    sql, values = numeric_dollar(statements[-1], params)
    with _adbc_statement(connection, readable_query(connection, sql, values), values) as last:
        if batch_bytes:
            last.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(batch_bytes)})
        stream, _ = last.execute_query()
        reader = AdbcRecordBatchReader._import_from_c(stream.address)
        empty = True
        for batch in reader:
            empty = False
            yield _plain(batch)
        schema = reader.schema
    if empty:  # no rows: still hand on the columns (pa.nulls: from_pylist would import pandas)
        yield _plain(pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema))


def readable_query(connection, sql: str, values: list[Any]) -> str:
    """``sql``, or, when ADBC would hand over some of its columns undecoded, ``sql`` wrapped so that PostgreSQL
    renders those as its own text output (what psql shows, and the SQLAlchemy reader reads).

    The driver has no Arrow type for many PostgreSQL types (tsvector, inet, point, timetz, xml, bit, ranges, ...):
    it passes their binary wire format on as opaque bytes, which a reader of the parquet file cannot decode; an
    interval becomes Arrow's month-day-nano interval, which parquet cannot store. The result's types come from the
    server before any row is read (``execute_schema``: a prepare and describe, one round trip). Columns are
    renamed positionally in the wrapper (``AS q(c0, c1, ...)``) and given back their names, so that a result with
    two columns of one name still reaches the executor's own check of names."""
    import adbc_driver_manager

    with _adbc_statement(connection, sql, values) as statement:
        try:
            described = statement.execute_schema()
        except adbc_driver_manager.NotSupportedError:
            return sql
        schema = pa.Schema._import_from_c(described.address)
    as_text = [_needs_text(field.type) for field in schema]
    if not any(as_text):
        return sql
    columns = ", ".join(
        f"{_as_text(f'q.c{i}') if text else f'q.c{i}'} AS {_quoted(field.name)}"
        for i, (field, text) in enumerate(zip(schema, as_text))
    )
    return f"SELECT {columns}\nFROM (\n{sql}\n) AS q({', '.join(f'c{i}' for i in range(len(schema)))})"


def _needs_text(kind: pa.DataType) -> bool:
    """Opaque bytes (a type the driver does not decode) or an interval, also as the elements of an array."""
    if isinstance(kind, pa.OpaqueType):
        return pa.types.is_binary(kind.storage_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _needs_text(kind.value_type)
    return pa.types.is_interval(kind)


def _as_text(column: str) -> str:
    """The value's output function, as psql prints it (``format``'s ``%s``; a ``::text`` cast is not always that:
    ``inet``'s adds the netmask, ``10.0.0.1/32``); NULL stays NULL."""
    return f"CASE WHEN {column} IS NULL THEN NULL ELSE format('%s', {column}) END"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def adbc_execute(connection, sql: str) -> None:
    """One statement without parameters or rows (BEGIN, SET TRANSACTION SNAPSHOT, COMMIT)."""
    with _adbc_statement(connection, sql, []) as statement:
        statement.execute_update()


def adbc_rows(connection, sql: str, values: list[Any]) -> list[tuple]:
    """The rows of a small query with positional (``$n``) parameters, as Python tuples. (Not through ``COPY``, the
    driver's way for large results, which takes no ``EXPLAIN``.)"""
    from adbc_driver_manager._reader import AdbcRecordBatchReader

    with _adbc_statement(connection, sql, values) as statement:
        statement.set_options(**{"adbc.postgresql.use_copy": "false"})
        stream, _ = statement.execute_query()
        table = AdbcRecordBatchReader._import_from_c(stream.address).read_all()
    return [tuple(row.values()) for row in table.to_pylist()]


@contextlib.contextmanager
def _adbc_statement(connection, sql: str, values: list[Any]):
    import adbc_driver_manager

    statement = adbc_driver_manager.AdbcStatement(connection)
    try:
        statement.set_sql_query(sql)
        if values:  # one row of positional parameters, as the DB-API binds them
            columns = [one_value_array(v) for v in values]
            statement.bind(pa.RecordBatch.from_arrays(columns, names=[str(i) for i in range(len(values))]))
        yield statement
    finally:
        statement.close()


def one_value_array(value: Any) -> pa.Array:
    """A one-value Arrow array of ``value``, typed as ``pa.array([value])`` types it. Built from its bytes for the
    usual types: pyarrow's conversion of Python values imports pandas first (0.4 s and more, to ask whether the
    list is a pandas object), which a task reading PostgreSQL with ADBC otherwise never needs."""
    kind = type(value)
    if value is None:
        return pa.nulls(1)
    if kind is bool:
        return pa.Array.from_buffers(pa.bool_(), 1, [None, pa.py_buffer(bytes([int(value)]))])
    if kind is int and -(2**63) <= value < 2**63:
        return pa.Array.from_buffers(pa.int64(), 1, [None, pa.py_buffer(struct.pack("<q", value))])
    if kind is float:
        return pa.Array.from_buffers(pa.float64(), 1, [None, pa.py_buffer(struct.pack("<d", value))])
    if kind in (str, bytes):
        data = value.encode() if kind is str else value
        offsets = pa.py_buffer(struct.pack("<ii", 0, len(data)))
        return pa.Array.from_buffers(
            pa.string() if kind is str else pa.binary(), 1, [None, offsets, pa.py_buffer(data)]
        )
    if kind is datetime.date:
        days = (value - datetime.date(1970, 1, 1)).days
        return pa.Array.from_buffers(pa.date32(), 1, [None, pa.py_buffer(struct.pack("<i", days))])
    if kind is datetime.datetime and value.tzinfo is None:
        micros = (value - datetime.datetime(1970, 1, 1)) // datetime.timedelta(microseconds=1)
        return pa.Array.from_buffers(pa.timestamp("us"), 1, [None, pa.py_buffer(struct.pack("<q", micros))])
    return pa.array([value])  # anything else: pyarrow's own inference


def numeric_dollar(statement: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``statement`` with its ``:name`` parameters as ``$n`` (one number per name; a list expands to
    ``($a, $b, ...)`` for ``IN (:names)``), and the values in number order."""
    numbers: dict[str, str] = {}
    values: list[Any] = []

    def number(match: re.Match) -> str:
        name = match.group(1)
        if name not in numbers:
            value = params.get(name)
            if isinstance(value, list):
                if not value:
                    numbers[name] = EMPTY_IN
                else:
                    numbers[name] = "(" + ", ".join(f"${len(values) + i + 1}" for i in range(len(value))) + ")"
                    values.extend(value)
            else:
                values.append(value)
                numbers[name] = f"${len(values)}"
        return numbers[name]

    sql = BIND.sub(number, statement)
    return ESCAPED_COLON.sub(lambda m: m.group(1), sql), values


def _plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Storage values for extension columns (ADBC's opaque PostgreSQL numeric, ...), no driver metadata."""
    if not batch.schema.metadata and not any(
        f.metadata or isinstance(f.type, pa.BaseExtensionType) for f in batch.schema
    ):
        return batch
    columns = [c.storage if isinstance(c.type, pa.BaseExtensionType) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
