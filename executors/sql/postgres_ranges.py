"""A plain read of one PostgreSQL table, split into block (``ctid``) ranges read over several connections at once,
every reader inside one snapshot.

One connection's ``COPY`` is bound by one server backend's CPU; a large ``SELECT ... FROM t`` is read faster by
several backends at once, each scanning its own range of the table's blocks (a TID range scan, PostgreSQL 14+).
Correctness is kept by PostgreSQL's snapshot export: the first reader (the task's connection) opens a ``REPEATABLE
READ`` transaction and calls ``pg_export_snapshot()``; each other reader opens its own and imports it (``SET
TRANSACTION SNAPSHOT``) before its first query, while the first one's transaction is still open, so all of them see
the table as it was at one instant, as a single reader would, whatever commits meanwhile
(postgresql.org/docs/current/functions-admin.html#FUNCTIONS-SNAPSHOT-SYNCHRONIZATION). Each range is written to its
own parquet files, named so that their order is the ranges' order (the physical order one sequential scan gives).

Only a statement that is, conservatively, a plain read of one table is split (``split_point``): ``SELECT`` of ``*``
or plain columns ``FROM`` one table, with an optional ``WHERE`` and nothing else (no ``ORDER BY``, ``LIMIT``,
``GROUP BY``, ``DISTINCT``, join, set operation or locking clause). Everything else runs as before on one
connection, and so does a table that is small, not a plain table, or on a server that cannot export snapshots.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import re
from typing import Any, Callable, Optional

import pyarrow as pa
from flytekit.loggers import logger
from flytekitplugins.prebuilt.executors.sql.parquet_sink import ParquetDirectorySink, prefetch
from flytekitplugins.prebuilt.sql.lexing import Lexeme, lexemes, tokens

MAX_READERS = 4
MIN_BLOCKS_PER_READER = 4096  # 32 MB of 8 kB blocks: below that a range is not worth a connection
BATCH_BYTES = 4 * 1024 * 1024  # ADBC's batch size hint per reader (its default, 16 MB, times the readers and queues)
# top-level words after which a statement is not a plain read of rows in scan order
NOT_PLAIN = {
    "order", "limit", "offset", "fetch", "group", "having", "window", "union", "intersect", "except", "for",
    "join", "natural", "cross", "inner", "left", "right", "full", "lateral", "only", "tablesample", "returning",
    "into", "distinct", "all", "on", "using", "from", "select", "with", "values",
}  # fmt: skip
SNAPSHOT_ID = re.compile(r"^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")


@dataclasses.dataclass(frozen=True)
class SplitPoint:
    """Where a statement is cut to add a block range: ``head`` up to ``WHERE`` (or the whole statement), the
    ``WHERE`` condition (``''``: none), and the table as written."""

    head: str
    condition: str
    table: str

    def ranged(self, first_block: int, end_block: Optional[int]) -> str:
        """The statement limited to blocks ``[first_block, end_block)`` (``None``: to the end of the table)."""
        limits = [f"ctid >= '({int(first_block)},0)'::tid"]
        if end_block is not None:
            limits.append(f"ctid < '({int(end_block)},0)'::tid")
        where = " AND ".join(limits)
        if self.condition:  # on its own lines: a trailing -- comment in it cannot swallow the parenthesis
            where += f" AND (\n{self.condition}\n)"
        return f"{self.head}\nWHERE {where}"


def split_point(statement: str) -> Optional[SplitPoint]:
    """The statement's split point if it is a plain read of one table (module docstring), else None."""
    words = lexemes(statement)
    table = _plain_read_table(words)
    if table is None:
        return None
    where = _top_level_where(statement)
    if where is None:
        return SplitPoint(statement.rstrip().rstrip(";"), "", table)
    return SplitPoint(statement[:where].rstrip(), statement[where + len("where") :].strip().rstrip(";"), table)


def _plain_read_table(words: list[Lexeme]) -> Optional[str]:
    """``select <* | columns> from <table> [[as] alias] [where ...]``: the table as written, else None."""
    if len(words) < 4 or words[0] != Lexeme("word", "select"):
        return None
    at = _select_list_end(words, 1)
    if at is None or words[at] != Lexeme("word", "from"):
        return None
    table, at = _dotted_name(words, at + 1)
    if table is None:
        return None
    if at < len(words) and words[at] == Lexeme("word", "as"):
        at += 1
    if at < len(words) and _is_name(words[at]) and words[at].text != "where":
        at += 1  # the table's alias
    if at == len(words) or (words[at] == Lexeme("word", "where") and _where_is_plain(words[at + 1 :])):
        return table
    return None


def _select_list_end(words: list[Lexeme], at: int) -> Optional[int]:
    """The index after ``*`` or ``name[.name] [as alias], ...`` (an alias needs ``as``), else None."""
    if words[at] == Lexeme("op", "*"):
        return at + 1
    while True:
        name, at = _dotted_name(words, at)
        if name is None or at >= len(words):
            return None
        if words[at] == Lexeme("word", "as"):
            if at + 1 >= len(words) or not _is_name(words[at + 1]):
                return None
            at += 2
        if at >= len(words) or words[at] != Lexeme("punct", ","):
            return at if at < len(words) else None
        at += 1


def _dotted_name(words: list[Lexeme], at: int) -> tuple[Optional[str], int]:
    parts = []
    while at < len(words) and _is_name(words[at]):
        parts.append(words[at].text)
        at += 1
        if at + 1 < len(words) and words[at] == Lexeme("op", ".") and _is_name(words[at + 1]):
            at += 1
            continue
        break
    return (".".join(parts) if parts else None), at


def _is_name(word: Lexeme) -> bool:
    return word.kind == "name" or (word.kind == "word" and word.text not in NOT_PLAIN and word.text != "as")


def _where_is_plain(words: list[Lexeme]) -> bool:
    """A condition on each row alone: no top-level clause after it, no ``;`` (a second statement)."""
    depth = 0
    for word in words:
        if word == Lexeme("punct", "("):
            depth += 1
        elif word == Lexeme("punct", ")"):
            depth -= 1
        elif word.kind == "punct" and word.text == ";":
            return False
        elif depth == 0 and word.kind == "word" and word.text in NOT_PLAIN - {"all"}:
            return False
    return depth == 0


def _top_level_where(statement: str) -> Optional[int]:
    """The offset of the ``WHERE`` keyword outside parentheses, literals and comments (None: no WHERE)."""
    depth = 0
    for kind, start, end in tokens(statement):
        if kind != "code":
            continue
        for match in re.finditer(r"[()]|\bwhere\b", statement[start:end], re.IGNORECASE):
            text = match.group(0)
            if text == "(":
                depth += 1
            elif text == ")":
                depth -= 1
            elif depth == 0:
                return start + match.start()
    return None


# ---------------------------------------------------------------- planning


@dataclasses.dataclass(frozen=True)
class Plan:
    snapshot: str
    ranges: list[tuple[int, Optional[int]]]  # [first_block, end_block) per reader; the last one is open


PLAN_SQL = (
    "SELECT pg_export_snapshot(), c.relkind::text, "
    "pg_relation_size(c.oid) / current_setting('block_size')::bigint, "
    "current_setting('server_version_num')::int "
    "FROM pg_class c WHERE c.oid = to_regclass($1)"
)


def plan(connection, split: SplitPoint, readers: int, params: dict[str, Any]) -> Optional[Plan]:
    """In the first reader's transaction (``connection``, REPEATABLE READ): export its snapshot and cut the table's
    blocks into ``readers`` ranges, or None when splitting would not pay (or PostgreSQL cannot)."""
    from flytekitplugins.prebuilt.executors.sql.adbc import adbc_rows

    rows = adbc_rows(connection, PLAN_SQL, [split.table])
    if not rows:
        return None  # not a table name PostgreSQL resolves (a view of another schema, a CTE name, ...)
    snapshot, relkind, blocks, version = rows[0]
    if relkind not in ("r", "m") or version < 140000 or not SNAPSHOT_ID.match(snapshot):
        return None  # views, partitioned and foreign tables have no blocks; TID range scans are PostgreSQL 14+
    count = min(readers, int(blocks) // MIN_BLOCKS_PER_READER)
    if count < 2 or (split.condition and not _scans_the_table(connection, split, params)):
        return None
    step = -(-int(blocks) // count)
    ranges = [(i * step, (i + 1) * step if i < count - 1 else None) for i in range(count)]
    return Plan(snapshot, ranges)


def _scans_the_table(connection, split: SplitPoint, params: dict[str, Any]) -> bool:
    """Whether PostgreSQL reads the whole table for the statement anyway (a sequential scan, parallel or not): a
    condition an index answers (``WHERE id = :id``) is read faster by one connection than by range scans."""
    import json

    from flytekitplugins.prebuilt.executors.sql.adbc import adbc_rows, numeric_dollar

    sql, values = numeric_dollar(f"{split.head}\nWHERE {split.condition}\n", params)
    (explained,) = adbc_rows(connection, f"EXPLAIN (FORMAT JSON) {sql}", values)[0]
    node = json.loads(explained)[0]["Plan"]
    while node.get("Node Type") in ("Gather", "Result") and len(node.get("Plans", ())) == 1:
        node = node["Plans"][0]
    return node.get("Node Type") in ("Seq Scan", "Parallel Seq Scan")


def reader_count(setting: int) -> int:
    """Readers for ``read_connections`` (0: as many as the pod has cores, at least 2, at most MAX_READERS)."""
    if setting:
        return setting
    return max(2, min(MAX_READERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))


# ---------------------------------------------------------------- reading


@dataclasses.dataclass
class RangesResult:
    """What the single-reader path's sink tells the executor: schema, rows, files, and the first rows."""

    schema: pa.Schema
    rows: int
    files: list[str]
    sample: Optional[pa.RecordBatch]


class RangeSink(ParquetDirectorySink):
    """A sink whose files are named after its range (``part-RRRRR-FFFFF.parquet``: name order is row order), and
    that writes no file for a range with no rows."""

    def __init__(self, directory: str, schema: pa.Schema, row_group_rows: int, rows_per_file: int, index: int):
        super().__init__(directory, schema, row_group_rows, rows_per_file)
        self.index = index

    def file_name(self, number: int) -> str:
        return f"part-{self.index:05d}-{number:05d}.parquet"

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class Readers:
    """The readers' connections, the first one's transaction exporting the snapshot the others imported; closes all
    but the first (the caller's)."""

    def __init__(self, stack: contextlib.ExitStack, connections: list, plan: Plan):
        self.stack, self.connections, self.plan = stack, connections, plan

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, *exc) -> None:
        self.stack.close()


class SpareConnections:
    """The other readers' connections, opened at once (each costs a round of authentication and ADBC's type catalog
    query); on exit, those not taken are closed as they come."""

    def __init__(self, url, count: int):
        from flytekitplugins.prebuilt.executors.sql.adbc import adbc_connection

        def open_one() -> tuple:
            context = adbc_connection(url, autocommit=True)
            return context, context.__enter__()

        self._pool = concurrent.futures.ThreadPoolExecutor(max(count, 1), thread_name_prefix="sql-connect")
        self._futures = [self._pool.submit(open_one) for _ in range(count)]

    def take(self, count: int) -> list[tuple]:
        """``count`` (context, connection) pairs; raises the first failure to connect."""
        taken, self._futures = self._futures[:count], self._futures[count:]
        concurrent.futures.wait(taken)
        failed = next((f.exception() for f in taken if f.exception() is not None), None)
        if failed is not None:
            for future in taken:
                _close_quietly(future)
            raise failed
        return [future.result() for future in taken]

    def __enter__(self) -> SpareConnections:
        return self

    def __exit__(self, *exc) -> None:
        for future in self._futures:
            future.add_done_callback(_close_quietly)
        self._futures = []
        self._pool.shutdown(wait=False)


def _close_quietly(future: concurrent.futures.Future) -> None:
    if future.exception() is None:
        with contextlib.suppress(Exception):
            future.result()[0].__exit__(None, None, None)


def connect_readers(
    first, url, split: SplitPoint, params: dict[str, Any], setting: int, cancelling
) -> Optional[Readers]:
    """On ``first`` (an ADBC connection in autocommit, the task's), export a snapshot and plan the ranges; open the
    other readers (at once), each importing that snapshot. None, ``first`` back in autocommit, when the table is not
    one to split or the server will not have it: the caller reads on ``first`` alone, and no other connection was
    opened. ``cancelling(connection)`` arms the task's deadline on a connection."""
    from flytekitplugins.prebuilt.executors.sql.adbc import adbc_execute

    stack = contextlib.ExitStack()
    try:
        found, others = _planned(first, split, reader_count(setting), params), None
        if found is not None:
            spares = stack.enter_context(SpareConnections(url, len(found.ranges) - 1))
            others = _importing(stack, spares, found, cancelling)
        if found is None or others is None:
            stack.close()
            adbc_execute(first, "ROLLBACK")
            return None
        stack.enter_context(cancelling(first))
        logger.info(f"sql: reading {split.table} in {len(found.ranges)} block ranges, one snapshot")
        return Readers(stack, [first, *others], found)
    except BaseException:
        stack.close()
        raise


def _planned(first, split: SplitPoint, readers: int, params: dict[str, Any]) -> Optional[Plan]:
    from flytekitplugins.prebuilt.executors.sql.adbc import adbc_execute

    try:
        adbc_execute(first, "BEGIN ISOLATION LEVEL REPEATABLE READ")
        return plan(first, split, readers, params)
    except Exception as error:  # e.g. a server that cannot export snapshots: one connection reads it
        logger.info(f"sql: {split.table} read on one connection: planning its ranges failed ({type(error).__name__})")
        return None


def _importing(stack: contextlib.ExitStack, spares: SpareConnections, found: Plan, cancelling) -> Optional[list]:
    """The other readers, each in a REPEATABLE READ transaction that imported the snapshot; None when the server
    refuses more connections (``max_connections``) or the import. The first reader's transaction stays open
    meanwhile, which keeps the snapshot importable."""
    from flytekitplugins.prebuilt.executors.sql.adbc import adbc_execute

    connections = []
    try:
        for context, connection in spares.take(len(found.ranges) - 1):
            stack.push(context.__exit__)
            connections.append(connection)
        for connection in connections:
            stack.enter_context(cancelling(connection))
            adbc_execute(connection, "BEGIN ISOLATION LEVEL REPEATABLE READ")
            adbc_execute(connection, f"SET TRANSACTION SNAPSHOT '{found.snapshot}'")
    except Exception as error:  # the message may name the server: its type is enough here
        logger.info(f"sql: reading on one connection: a range reader could not start ({type(error).__name__})")
        return None
    return connections


def read_ranges(
    readers: Readers, split: SplitPoint, params: dict[str, Any], directory: str, config, check: Callable[[], None]
) -> RangesResult:
    """Read ``split``'s statement, one block range per reader, into parquet files under ``directory``;
    ``check()`` raises once the task's deadline passed."""
    from flytekitplugins.prebuilt.executors.sql.adbc import adbc_execute

    connections, ranges = readers.connections, readers.plan.ranges
    with concurrent.futures.ThreadPoolExecutor(len(connections), thread_name_prefix="sql-range") as pool:
        futures = [
            pool.submit(_read_range, c, split.ranged(*r), params, directory, config, i, check)
            for i, (c, r) in enumerate(zip(connections, ranges))
        ]
        try:
            sinks = [f.result() for f in futures]
        except BaseException:
            for connection in connections:  # stop the other readers' statements, then let their threads end
                with contextlib.suppress(Exception):
                    connection.cancel()
            raise
    for connection in connections:  # as on one connection: whatever the statement did is committed
        adbc_execute(connection, "COMMIT")
    return _result(sinks, directory, config)


def _read_range(connection, statement: str, params, directory: str, config, index: int, check) -> tuple:
    from flytekitplugins.prebuilt.executors.sql.adbc import adbc_batches

    batches = adbc_batches(connection, [statement], params, batch_bytes=BATCH_BYTES)
    sink, sample = None, None
    for batch in prefetch(batches, depth=2):
        check()
        if sink is None:
            sink = RangeSink(directory, batch.schema, config.batch_rows, config.rows_per_file, index)
            sample = batch.slice(0, 10)
        sink.write(batch)
    sink.close()
    return sink, sample


def _result(sinks: list[tuple], directory: str, config) -> RangesResult:
    schema = sinks[0][0].schema
    for sink, _ in sinks[1:]:
        if sink.schema != schema:  # one statement, one type per column: a driver change would show here
            raise RuntimeError(f"block ranges read with different schemas: {schema} and {sink.schema}")
    files = [path for sink, _ in sinks for path in sink.files]
    rows = sum(sink.rows for sink, _ in sinks)
    if not files:  # no rows at all: one empty file carries the columns, as on one connection
        empty = ParquetDirectorySink(directory, schema, config.batch_rows, config.rows_per_file)
        empty.close()
        files = empty.files
    sample = next((s for _, s in sinks if s is not None and s.num_rows), sinks[0][1])
    return RangesResult(schema, rows, files, sample)
