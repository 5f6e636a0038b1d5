"""Executor of the ``sql`` task type: bound parameters in, parquet out, secrets never shown."""

from __future__ import annotations

import contextlib
import datetime
import html
import os
import shutil
import sys
import tempfile
import urllib.parse
from typing import Any

from flytekit.core.context_manager import FlyteContextManager
from flytekit.loggers import logger
from flytekit.models import literals
from flytekit.models.types import LiteralType
from flytekitplugins.prebuilt.executors.sql.deadline import Deadline, QueryTimedOut, canceller
from flytekitplugins.prebuilt.executors.sql.pg_url import PostgresURL
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError
from flytekitplugins.prebuilt.kit.executor import PrebuiltExecutor, Run, write_deck_file
from flytekitplugins.prebuilt.kit.objects import fetch_object
from flytekitplugins.prebuilt.sql.config import ADBC_DIALECTS, RESULTS, SQLConfig, url_dialect
from flytekitplugins.prebuilt.sql.query import IDENTIFIER_MARK_RE, ParsedQuery, check_identifier, reads_only
from flytekitplugins.prebuilt.sql.spec import SPEC

DECK_SAMPLE_ROWS = 10
# Dialects the sql image ships a driver for (its smoke test connects an engine for each).
IMAGE_DIALECTS = ("sqlite://", "postgresql+psycopg2://", "mysql+pymysql://")


class SQLExecutor(PrebuiltExecutor[SQLConfig, ParsedQuery]):
    SPEC = SPEC

    def run(self, run: Run[SQLConfig, ParsedQuery]) -> Any:
        deadline = Deadline(run.template.metadata.timeout if run.template.metadata else None)
        params = {name: _parameter(name, kind, run.inputs.get(name)) for name, kind in run.extras.parameters.items()}
        with tempfile.TemporaryDirectory(prefix="prebuilt-sql-") as scratch:
            url, connect_args = self.connection_url(run, scratch)
            if url.get_backend_name() == "sqlite":
                from flytekitplugins.prebuilt.executors.sql.sqlite_reader import sqlite_value

                params = {name: sqlite_value(value) for name, value in params.items()}
            statements = [_with_identifiers(s, run.inputs, url) for s in run.extras.statements]
            try:
                if RESULTS in run.output_names:
                    return self.query(run, url, connect_args, statements, params, scratch, deadline)
                return self.execute(url, connect_args, statements, params, deadline)
            except Exception as error:
                if deadline.passed and not isinstance(error, QueryTimedOut):
                    raise deadline.error() from None
                if _from_driver(error):
                    raise _database_error(error) from None
                raise

    # ----------------------------------------------------------- connection

    def connection_url(self, run: Run[SQLConfig, ParsedQuery], scratch: str):
        """The URL to connect to, and the DBAPI's other connect arguments. A query that ADBC will read gets a
        ``pg_url.PostgresURL`` (SQLAlchemy is not imported for it), every other task SQLAlchemy's ``URL``."""
        from flytekitplugins.prebuilt.executors.sql.connection_urls import sqlalchemy_url, url_from_secret

        config = run.config
        writes = RESULTS not in run.output_names or not reads_only(run.extras.statements)
        if config.sqlite_file:
            from sqlalchemy.engine import URL

            local = _fetch_sqlite_file(config.sqlite_file, config.compressed, scratch)
            url = _existing_sqlite(URL.create("sqlite", database=local), writes, config.field_name("sqlite_file"))
        else:
            field = config.field_name("url_secret" if config.url_secret else "url")
            text = run.secret("url_secret") if config.url_secret else config.url
            parse = _adbc_url_parser(run, text) or sqlalchemy_url
            if config.url_secret:
                url = url_from_secret(text, field, config.url_secret, run.scrubber, parse)
            else:
                try:
                    url = parse(text)
                except ValueError:
                    raise UserError(f"{field}: not a SQLAlchemy URL") from None
            url = _existing_sqlite(url, writes, field, show_path=not config.url_secret)
        if config.password_secret:
            url = url.set(password=run.secret("password_secret"))
        connect_args = _driver_values(config.connect_args)
        for key in config.secret_connect_args:
            value = run.secret(f"secret_connect_args.{key}", config.secret_connect_args[key])
            if key == "password":  # the DBAPI's password: set on the URL so every reader uses it
                url = url.set(password=value)
            else:
                connect_args[key] = value
        return url, connect_args

    def reader(self, run: Run[SQLConfig, ParsedQuery], url, connect_args) -> str:
        """SQLite: Python's sqlite3 whatever the config says, so that every task and every reader runs one SQLite
        build (``sqlite_reader``'s docstring). PostgreSQL: ADBC unless told otherwise."""
        if url.get_backend_name() == "sqlite":
            return "sqlite3"
        if run.config.reader != "auto":
            if run.config.reader == "adbc" and url.get_backend_name() not in ADBC_DIALECTS:
                raise UserError(f"{run.config.field_name('reader')}: ADBC reads {' and '.join(ADBC_DIALECTS)} only")
            return run.config.reader
        return "adbc" if url.get_backend_name() in ADBC_DIALECTS and not connect_args else "sqlalchemy"

    # ----------------------------------------------------------- statements

    def execute(self, url, connect_args, statements: list[str], params: dict[str, Any], deadline: Deadline) -> int:
        """DDL/DML: every statement in one transaction, all rolled back if one fails."""
        from flytekitplugins.prebuilt.executors.sql.readers import bound, sqlalchemy_connection

        with contextlib.ExitStack() as stack:
            with _connecting(url):
                connection = stack.enter_context(sqlalchemy_connection(url, connect_args))
            stack.enter_context(deadline.cancelling(canceller(connection)))
            total = 0
            with connection.begin():
                for statement in statements:
                    result = connection.execute(*bound(statement, params))
                    total += max(result.rowcount or 0, 0)
            return total

    def query(
        self, run: Run[SQLConfig, ParsedQuery], url, connect_args, statements, params, scratch: str, deadline: Deadline
    ) -> literals.LiteralMap:
        """Stream the last statement's rows into parquet files under the raw output prefix."""
        reader = self.reader(run, url, connect_args)
        logger.info(f"sql: reading {url.render_as_string(hide_password=True)} with the {reader} reader")
        ctx = FlyteContextManager.current_context()
        remote_dir = ctx.file_access.get_random_remote_directory()
        # a local raw output prefix (a local run) is written in place: copying the files there costs as much again
        local_dir = remote_dir if os.path.isabs(remote_dir) else os.path.join(scratch, "results")
        os.makedirs(local_dir)
        with contextlib.ExitStack() as stack:
            with _connecting(url):
                connection = stack.enter_context(self.connect(reader, url, connect_args))
            split, written = self.split_point(run, url, statements), None
            if split is not None:
                written = self.read_ranges(run, url, connection, split, params, local_dir, deadline)
            if written is None:
                written = self.read_one(run, reader, connection, statements, params, local_dir, deadline)
        logger.info(f"sql: {written.rows:,} rows in {len(written.files)} parquet file(s)")
        if local_dir != remote_dir:
            ctx.file_access.put_data(local_dir, remote_dir, is_multipart=True)
        _publish_deck(written, written.sample, len(written.files))
        output_type = run.template.interface.outputs[RESULTS].type
        return literals.LiteralMap({RESULTS: _dataset_literal(remote_dir, output_type)})

    @contextlib.contextmanager
    def connect(self, reader: str, url, connect_args):
        """The reader's connection: ADBC's without a transaction yet (``read_ranges`` opens its own; ``read_one``
        begins one), SQLAlchemy's in a transaction that commits when the block ends without error."""
        if reader == "adbc":
            from flytekitplugins.prebuilt.executors.sql.adbc import adbc_connection

            with adbc_connection(url, autocommit=True) as connection:
                yield connection
        else:
            from flytekitplugins.prebuilt.executors.sql.readers import sqlalchemy_connection

            with sqlalchemy_connection(url, connect_args) as connection, connection.begin():
                yield connection

    def split_point(self, run, url, statements: list[str]):
        """Where to cut a plain read of one PostgreSQL table into block ranges (``postgres_ranges``), or None: not
        ADBC's, several statements, ``max_rows``, ``read_connections=1``, or not a plain read."""
        config = run.config
        if not isinstance(url, PostgresURL) or len(statements) != 1 or config.max_rows or config.read_connections == 1:
            return None
        from flytekitplugins.prebuilt.executors.sql import postgres_ranges

        return postgres_ranges.split_point(statements[0])

    def read_ranges(self, run, url, first, split, params, local_dir: str, deadline: Deadline):
        """Block ranges read on ``first`` and more connections, one snapshot; None when the table is not one to split
        (small, a view, ...)."""
        from flytekitplugins.prebuilt.executors.sql import postgres_ranges

        def cancelling(connection):
            return deadline.cancelling(canceller(connection))

        config = run.config
        readers = postgres_ranges.connect_readers(first, url, split, params, config.read_connections, cancelling)
        if readers is None:
            return None
        with readers:
            return postgres_ranges.read_ranges(readers, split, params, local_dir, config, deadline.check)

    def read_one(self, run, reader: str, connection, statements, params, local_dir: str, deadline: Deadline):
        """Every statement on one connection, in one transaction, the last one's rows streamed into parquet."""
        import pyarrow as pa
        from flytekitplugins.prebuilt.executors.sql.parquet_sink import ParquetDirectorySink, prefetch

        config = run.config
        if reader == "adbc":
            from flytekitplugins.prebuilt.executors.sql.adbc import adbc_batches

            connection.set_autocommit(False)  # begins the transaction
            batches = adbc_batches(connection, statements, params)
        else:
            from flytekitplugins.prebuilt.executors.sql.readers import sqlalchemy_batches
            from flytekitplugins.prebuilt.executors.sql.sqlite_reader import sqlite_batches

            read = sqlite_batches if reader == "sqlite3" else sqlalchemy_batches
            batches = read(connection, statements, params, config.batch_rows)
        with deadline.cancelling(canceller(connection)):
            sink, sample = None, None
            for batch in prefetch(_limit(batches, config.max_rows)):
                deadline.check()
                if sink is None:
                    sink = ParquetDirectorySink(local_dir, batch.schema, config.batch_rows, config.rows_per_file)
                    sample = batch.slice(0, DECK_SAMPLE_ROWS)
                elif batch.schema != sink.schema:
                    batch = _conform(batch, sink.schema, sink.rows)
                sink.write(batch)
            if sink is None:  # the driver yielded no batch at all
                sink = ParquetDirectorySink(local_dir, pa.schema([]), config.batch_rows, config.rows_per_file)
            sink.close()
            sink.sample = sample
            if reader == "adbc":
                connection.commit()
        return sink


# --------------------------------------------------------------- helpers


def _parameter(name: str, kind: str, value: Any) -> Any:
    """Restore the Python type the author declared (Flyte's literals do not tell a date from a datetime); for a
    ``text:<kind>`` parameter, the text form of that value (``str()``, datetimes in UTC without an offset)."""
    if value is None:
        return None
    if kind.startswith("text:"):  # a quoted upstream placeholder: the text upstream's interpolation put there
        return str(_parameter(name, kind[5:], value))
    if kind == "date" and isinstance(value, datetime.datetime):
        return value.date()
    if kind == "datetime" and isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)  # Flyte datetimes are UTC
    if kind.startswith("list["):
        return [_parameter(name, kind[5:-1], v) for v in value]
    return value


def _adbc_url_parser(run: Run[SQLConfig, ParsedQuery], text: str):
    """``PostgresURL.parse`` when the task's rows will be read by ADBC (a query, on PostgreSQL, ``reader`` auto or
    adbc, no connect argument but a password), else None (SQLAlchemy parses it)."""
    config = run.config
    if RESULTS not in run.output_names or config.reader == "sqlalchemy" or config.connect_args:
        return None
    if set(config.secret_connect_args) - {"password"} or url_dialect(text.strip()) != "postgresql":
        return None
    from flytekitplugins.prebuilt.executors.sql.pg_url import PostgresURL

    return PostgresURL.parse


def _from_driver(error: Exception) -> bool:
    """An error the database or its driver raised (ADBC's, or SQLAlchemy's where it was imported)."""
    if type(error).__module__.startswith("adbc_driver"):
        return True
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, exc.SQLAlchemyError)


def _with_identifiers(statement: str, inputs: dict[str, Any], url) -> str:
    """Substitute ``{{ .inputs.x | identifier }}`` marks with checked identifiers quoted by the dialect."""
    if not IDENTIFIER_MARK_RE.search(statement):
        return statement
    preparer = url if hasattr(url, "quote_identifier") else url.get_dialect()().identifier_preparer

    def quoted(match) -> str:
        name = match.group(1)
        try:
            value = check_identifier(name, inputs.get(name))
        except ValueError as e:
            raise UserError(str(e)) from None
        return ".".join(preparer.quote_identifier(part) for part in value.split("."))

    return IDENTIFIER_MARK_RE.sub(quoted, statement)


class _connecting:
    """Failures while connecting are transient (the server may be back on retry), except bad credentials."""

    def __init__(self, url):
        self.where = url.render_as_string(hide_password=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is None or isinstance(error, (UserError, TransientError)):
            return False
        message = f"cannot connect to {self.where}: {error}"
        if "authentication" in str(error).lower() or "password" in str(error).lower():
            raise UserError(message) from None
        if self.where.startswith("sqlite"):
            raise UserError(message) from None
        raise TransientError(message) from None


def _database_error(error: Exception) -> UserError:
    """A statement the database refused: the task's SQL or inputs are wrong."""
    detail = getattr(error, "orig", None) or error
    return UserError(f"the database rejected the query: {type(detail).__name__}: {str(detail).strip()}")


def _limit(batches, max_rows: int):
    """At most ``max_rows`` rows; closes the source when done, so its statement is released."""
    try:
        left = max_rows or float("inf")
        for batch in batches:
            if batch.num_rows >= left:
                yield batch.slice(0, int(left))
                return
            left -= batch.num_rows
            yield batch
    finally:
        batches.close()


def _conform(batch, schema, rows_before: int):
    """Cast a later batch to the first batch's schema (SQLite columns may change type mid-way)."""
    import pyarrow as pa

    try:
        return pa.RecordBatch.from_arrays([c.cast(f.type) for c, f in zip(batch.columns, schema)], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        changed = [f"{f.name}: {f.type} -> {g.type}" for f, g in zip(schema, batch.schema) if f.type != g.type]
        raise UserError(
            f"column types changed after row {rows_before} ({', '.join(changed)}); every value of a column must "
            f"have one type: CAST it in the query"
        ) from None


def _fetch_sqlite_file(uri: str, compressed: bool, scratch: str) -> str:
    """Download a SQLite file through Flyte's data layer; unpack it safely when it is an archive."""
    local = os.path.join(scratch, "download", os.path.basename(uri.rstrip("/")) or "database")
    os.makedirs(os.path.dirname(local), exist_ok=True)
    fetch_object(uri, local, "config.sqlite_file")  # missing: USER, else RECOVERABLE (kit.objects)
    if not compressed:
        return local
    unpacked = os.path.join(scratch, "unpacked")
    try:
        shutil.unpack_archive(local, unpacked, filter="data")
    except TypeError:  # zip archives take no filter; zipfile itself refuses absolute and '..' paths
        shutil.unpack_archive(local, unpacked)
    except (shutil.ReadError, ValueError, OSError) as error:
        raise UserError(f"config.sqlite_file: {uri} is not a readable archive: {error}") from None
    files = [os.path.join(d, f) for d, _, names in os.walk(unpacked) for f in names]
    if len(files) != 1:
        raise UserError(
            f"config.sqlite_file: the archive {uri} must hold exactly one database file, it holds {len(files)}"
        )
    return files[0]


def _existing_sqlite(url, writes: bool, field: str, show_path: bool = True):
    """Open an existing SQLite file and never create one: SQLite's URI mode ``ro`` when the task only reads,
    ``rw`` otherwise (plain ``sqlite3.connect`` creates a missing file, empty, and the task then fails with
    'no such table'). In-memory databases and the author's own ``file:`` URIs (``?uri=true``) are left as given."""
    if url.get_backend_name() != "sqlite" or url.get_driver_name() != "pysqlite":
        return url
    database = url.database or ""
    if database in ("", ":memory:") or str(url.query.get("uri", "")).lower() in ("true", "1"):
        return url
    path = os.path.abspath(database)
    if not os.path.isfile(path):
        named = path if show_path else f"named by {field}"
        problem = "does not exist" if not os.path.exists(path) else "is not a file"
        raise UserError(f"{field}: the SQLite database {named} {problem}; a SQLite task opens existing files only")
    mode = "rw" if writes else "ro"
    return url.set(database="file:" + urllib.parse.quote(path), query={**url.query, "mode": mode, "uri": "true"})


def _driver_values(value: Any) -> Any:
    """``connect_args`` as the driver wants them: a template's Struct turns every number into a float, so an
    integral float is an int again (a port, a timeout in whole seconds)."""
    if isinstance(value, dict):
        return {k: _driver_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_driver_values(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _dataset_literal(uri: str, output_type: LiteralType) -> literals.Literal:
    if output_type.schema is not None:  # FlyteSchema outputs (upstream's default)
        return literals.Literal(scalar=literals.Scalar(schema=literals.Schema(uri=uri, type=output_type.schema)))
    metadata = literals.StructuredDatasetMetadata(structured_dataset_type=output_type.structured_dataset_type)
    if metadata.structured_dataset_type is not None and not metadata.structured_dataset_type.format:
        metadata.structured_dataset_type.format = "parquet"
    return literals.Literal(
        scalar=literals.Scalar(structured_dataset=literals.StructuredDataset(uri=uri, metadata=metadata))
    )


def _publish_deck(sink, sample, files: int) -> None:
    """A Flyte Deck with the schema, the row count and the first rows."""
    import flytekit

    rows = "".join(f"<tr><td>{html.escape(f.name)}</td><td>{html.escape(str(f.type))}</td></tr>" for f in sink.schema)
    body = (
        f"<h3>Result: {sink.rows:,} rows in {files} parquet file(s)</h3>"
        f"<h4>Schema</h4><table><tr><th>column</th><th>type</th></tr>{rows}</table>"
    )
    if sample is not None and sample.num_rows:
        head = "".join(f"<th>{html.escape(n)}</th>" for n in sample.schema.names)
        cells = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
            for row in sample.to_pylist()
        )
        body += f"<h4>First {sample.num_rows} rows</h4><table><tr>{head}</tr>{cells}</table>"
    flytekit.Deck("sql", body)
    write_deck_file(f"<html><head><meta charset='utf-8'><title>sql</title></head><body>{body}</body></html>")
