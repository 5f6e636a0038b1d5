"""Read a SQLite query's rows as Arrow record batches: Python's ``sqlite3`` rows, converted a column at a time.

SQLite is read by Python's ``sqlite3`` whichever reader the task names (docs/sql.md, "One SQLite engine"):
ADBC's SQLite driver bundles another SQLite build, whose arithmetic differs in the last digit
(``round(avg(x), 2)``), which binds datetimes in another text form and turns a column of mixed values into bytes.

SQLAlchemy binds the parameters and runs the statements, as it does for statements without results, but the
rows are taken from its DB-API cursor (``fetchmany``), without a SQLAlchemy ``Row`` per row. Each column then
becomes one Arrow array, its type inferred by pyarrow from its values; the inference already refuses most mixes
(an integer next to text), so a per-value check is left only where it would coerce silently (text among bytes).
Reading the values out of sqlite3 (a Python object each) is most of the time that is left.

Rows are read ``CHUNK_ROWS`` at a time, so that memory holds few of their Python objects whatever ``batch_rows``
is; the parquet sink coalesces the chunks into row groups of ``batch_rows``.

SQLite types values, not columns. A column's type is set by the first batch (``batch_rows`` rows, its chunks
typed together): integers with reals are float64 (losslessly: a ``NUMERIC`` column stores ``1.00`` as 1); any
other mix, there or in a later chunk, is a USER error naming the column and the types it holds. Where the values
do not say the type (no rows, only NULLs, whole numbers in a ``NUMERIC(10,2)`` column), a table column's declared
type does (``sqlite_declared_types``); an expression with no values is int64.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import re
import uuid
from typing import Any, Callable, Iterator, Sequence

import pyarrow as pa
from flytekitplugins.prebuilt.executors.sql.readers import bound, mixed_types_error

_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


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


# Rows read from sqlite3 at a time: their Python objects (about 300 bytes a row) are what memory holds of them, so
# a chunk is kept small; the Arrow batches (a fifth of that) are coalesced into row groups by the parquet sink.
CHUNK_ROWS = 10_000


def sqlite_batches(
    connection, statements: list[str], params: dict[str, Any], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Run all statements on ``connection`` (a SQLAlchemy connection to SQLite); stream the last one's rows."""
    for statement in statements[:-1]:
        connection.execute(*bound(statement, params))
    declared = sqlite_declared_types(lambda sql: _rows(connection, sql), statements[-1], params)
    result = connection.execute(*bound(statements[-1], params))
    names = list(result.keys())  # raises, as SQLAlchemy does, when the statement returns no rows
    cursor, chunk = result.cursor, min(batch_rows, CHUNK_ROWS)
    paused = gc.isenabled()
    gc.disable()  # millions of tuples, none cyclic: the collector would walk them over and over
    try:
        first = _FirstBatch(names)
        while first.read < batch_rows and (rows := _fetch(cursor, min(chunk, batch_rows - first.read))):
            first.add(rows)
            del rows
        declared = declared if len(declared) == len(names) else [None] * len(names)
        if not first.read:  # no rows: the declared types, where the columns have them
            schema = pa.schema([(name, known or pa.int64()) for name, known in zip(names, declared)])
            yield pa.RecordBatch.from_pylist([], schema=schema)
            return
        schema = first.schema(declared)
        yield from first.batches(schema)
        while rows := _fetch(cursor, chunk):
            columns = list(zip(*rows))
            del rows
            arrays = [_later_array(f, values, seen) for f, values, seen in zip(schema, columns, first.kinds)]
            del columns  # before the next rows are read: memory holds one chunk of Python values, not two
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
    finally:
        result.close()
        if paused:
            gc.enable()


def _fetch(cursor, size: int) -> list[tuple]:
    """The next rows, a failing one raising as SQLAlchemy raises it at ``execute`` (its ``DBAPIError``): SQLite
    computes rows as they are read, so a query can fail at any row (``integer overflow``)."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError

    try:
        return cursor.fetchmany(size)
    except sqlite3.Error as error:
        raise DBAPIError.instance(None, None, error, sqlite3.Error) from None


class _FirstBatch:
    """The first ``batch_rows`` rows, added a chunk at a time and typed together, as one batch of them would be:
    each column's chunks are typed by pyarrow from their values, then given one type (``unified``)."""

    def __init__(self, names: list[str]):
        self.names, self.read = names, 0
        self.chunks: list[list[pa.Array]] = []
        self.kinds: list[set[type]] = [set() for _ in names]  # the Python types of each column's values
        self.samples: list[Any] = [None] * len(names)  # each column's first value that is not NULL
        self.mixed: set[int] = set()  # columns a chunk of which mixes types

    def add(self, rows: list[tuple]) -> None:
        self.read += len(rows)
        columns = list(zip(*rows))
        arrays = []
        for index, values in enumerate(columns):
            self.kinds[index].update(map(type, values))
            if self.samples[index] is None:
                self.samples[index] = next((v for v in values if v is not None), None)
            try:
                arrays.append(pa.array(values))
            except _ARROW_ERRORS:
                self.mixed.add(index)  # refused by schema(), after the whole batch is read: every type it holds
                arrays.append(pa.nulls(len(values)))
        self.chunks.append(arrays)

    def schema(self, declared: list[pa.DataType | None]) -> pa.Schema:
        """Each column's type from its values; from its declared type where it has no values (else int64, as
        ADBC's SQLite driver typed it) and where it is a decimal of whole numbers (NUMERIC(10,2) holding 2.00)."""
        types = []
        for index, name in enumerate(self.names):
            unified = _unified({chunk[index].type for chunk in self.chunks})
            kinds = self.kinds[index]
            if index in self.mixed or unified is None or (pa.types.is_binary(unified) and str in kinds):
                raise mixed_types_error(name, _read_as(self.samples[index], kinds), (), kinds)
            if pa.types.is_null(unified):
                unified = declared[index] or pa.int64()
            elif unified == pa.int64() and declared[index] == pa.float64():
                unified = pa.float64()
            types.append(unified)
        return pa.schema(list(zip(self.names, types)))

    def batches(self, schema: pa.Schema) -> list[pa.RecordBatch]:
        converted = []
        for arrays in self.chunks:
            columns = []
            for field, array, kinds in zip(schema, arrays, self.kinds):
                try:
                    columns.append(array if array.type == field.type else array.cast(field.type))
                except _ARROW_ERRORS:  # an integer a float64 cannot hold exactly (above 2**53), among reals
                    raise mixed_types_error(field.name, field.type, (), kinds) from None
            converted.append(pa.RecordBatch.from_arrays(columns, schema=schema))
        return converted


def _unified(types: set[pa.DataType]) -> pa.DataType | None:
    """One type for chunks of these types: NULLs take the others' type (none: null), integers with reals are
    float64; None where they mix otherwise."""
    types = {t for t in types if not pa.types.is_null(t)}
    if not types:
        return pa.null()
    if len(types) == 1:
        return types.pop()
    if types == {pa.int64(), pa.float64()}:
        return pa.float64()
    return None


def _read_as(sample: Any, kinds: set[type]) -> pa.DataType:
    """The type the first rows would have set (from the first value that is not NULL), for the error message."""
    if isinstance(sample, int):
        return pa.float64() if float in kinds else pa.int64()
    return {float: pa.float64(), str: pa.string(), bytes: pa.binary()}.get(type(sample), pa.int64())


def _later_array(field: pa.Field, values: Sequence[Any], first_types: set[type]) -> pa.Array:
    """A column of a later chunk, in the type the first batch set (with values of ``first_types``)."""
    try:
        array = pa.array(values)
        if array.type == field.type:
            if pa.types.is_binary(array.type) and str in set(map(type, values)):
                raise mixed_types_error(field.name, field.type, values, first_types)  # text stored as its bytes
            return array
        if pa.types.is_null(array.type):
            return pa.nulls(len(values), field.type)
        if pa.types.is_integer(array.type) and pa.types.is_floating(field.type):
            return array.cast(field.type)  # safe: an integer a float cannot hold exactly is refused
    except _ARROW_ERRORS:
        pass
    raise mixed_types_error(field.name, field.type, values, first_types)


def _rows(connection, sql: str) -> list[tuple]:
    result = connection.exec_driver_sql(sql)
    return [tuple(row) for row in result] if result.returns_rows else []


# ---------------------------------------------------------------- declared column types


def sqlite_declared_types(rows: Callable[[str], list[tuple]], statement: str, params: dict[str, Any]) -> list:
    """The Arrow type of each column of the statement's result by its declared type (TEXT string, REAL float, ...;
    None: an expression, which has none); [] when the statement is no SELECT.

    SQLite types values, not columns, so a column's type is inferred from its values; where there are none (no
    rows, or only NULLs) the declared type says it. A temporary view over the statement (every parameter NULL: a
    view takes none, and no value is ever pasted) tells the declared type of each column that is a table column
    (``PRAGMA table_info``); the view is compiled, never run. ``rows(sql)`` runs SQL on the task's connection (so
    tables made by earlier statements are seen) and returns tuples.
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
    except Exception:  # not a SELECT (e.g. INSERT ... RETURNING), or one SQLite refuses (it says why when run)
        return []
    try:
        declared = [row[0] for row in rows(f"select type from pragma_table_info('{view}', 'temp') order by cid")]
    finally:
        with contextlib.suppress(Exception):  # it would go with the connection anyway
            rows(f'drop view temp."{view}"')
    return [sqlite_declared_type(d) for d in declared]


def sqlite_declared_type(declared: str | None) -> pa.DataType | None:
    """The Arrow type of a SQLite declared type, by SQLite's affinity rules (sqlite.org/datatype3.html, 3.1), as
    the reader types that column's values: dates and times are stored as text. None: no declared type."""
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
    scale = re.search(r"\(\s*\d+\s*,\s*(\d+)\s*\)", name)
    if scale and int(scale.group(1)) > 0:  # NUMERIC(10,2), DECIMAL(8,3): reals (1.98), as a non-empty result reads
        return pa.float64()
    return None  # other NUMERIC affinity (NUMERIC, DECIMAL(10,0), BOOLEAN): integers or reals, as stored
