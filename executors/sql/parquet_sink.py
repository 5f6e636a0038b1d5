"""Write a stream of Arrow record batches to a directory of parquet files in bounded memory.

Small batches are coalesced into row groups of ``row_group_rows`` (drivers hand out 1,024-row
batches; thousands of tiny row groups make slow files); a new file starts after ``rows_per_file``.
Reading and writing overlap: ``write_stream`` pulls batches on a producer thread while this thread
encodes parquet (both release the GIL), through a queue of a few batches, so memory stays
proportional to the batch size, not to the result.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import UserError

_DONE = object()


class ParquetDirectorySink:
    def __init__(self, directory: str, schema: pa.Schema, row_group_rows: int, rows_per_file: int):
        check_column_names(schema)
        self.directory, self.schema = directory, schema
        self.row_group_rows, self.rows_per_file = row_group_rows, rows_per_file
        self.rows = 0
        self.files: list[str] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            room = min(self.rows_per_file - self._file_rows - self._pending_rows, batch.num_rows)
            self._pending.append(batch.slice(0, room))
            self._pending_rows += room
            batch = batch.slice(room)
            if self._pending_rows >= self.row_group_rows or self._file_rows + self._pending_rows >= self.rows_per_file:
                self._flush()

    def close(self) -> None:
        self._flush()
        if self._writer is None:  # an empty result still gets one file, so the schema travels
            self._open()
        self._writer.close()
        self._writer = None

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        if self._writer is None:
            self._open()
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._file_rows += table.num_rows
        self.rows += table.num_rows
        self._pending, self._pending_rows = [], 0
        if self._file_rows >= self.rows_per_file:
            logger.info(
                f"sql: wrote {os.path.basename(self.files[-1])} ({self._file_rows:,} rows, {self.rows:,} so far)"
            )
            self._writer.close()
            self._writer, self._file_rows = None, 0

    def file_name(self, number: int) -> str:
        """The name of the sink's ``number``th file: file names sort in row order."""
        return f"part-{number:05d}.parquet"

    def _open(self) -> None:
        path = os.path.join(self.directory, self.file_name(len(self.files)))
        # A small dictionary page limit gives up dictionary encoding early on columns of unique values
        # (each row group would otherwise build a large dictionary only to discard it): 1/3 faster, less memory.
        self._writer = pq.ParquetWriter(path, self.schema, dictionary_pagesize_limit=64 * 1024)
        self.files.append(path)


def check_column_names(schema: pa.Schema) -> None:
    """Refuse a result with two columns of one name (``select a.Name, b.Name ...``): parquet writes it, but no
    reader opens it (pyarrow, pandas and Spark all refuse duplicate names), so the task would succeed with an
    output nobody can read."""
    repeated = [name for name, count in collections.Counter(schema.names).items() if count > 1]
    if repeated:
        raise UserError(
            f"the result has several columns named {', '.join(map(repr, repeated))}: a parquet file needs one name "
            f"per column; give them distinct aliases in the query, e.g. `select a.{repeated[0]} as a_{repeated[0]}, "
            f"b.{repeated[0]} as b_{repeated[0]} ...`"
        )


def prefetch(batches: Iterable[pa.RecordBatch], depth: int = 4) -> Iterator[pa.RecordBatch]:
    """Iterate ``batches`` on a background thread, ``depth`` batches ahead; re-raises its errors here."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for batch in batches:
                if stop.is_set():
                    return
                slots.put(batch)
            slots.put(_DONE)
        except BaseException as error:  # handed to the consumer
            slots.put(error)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:  # release the source (its cursor) on this thread, even when stopped early
                close()

    worker = threading.Thread(target=produce, name="sql-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.05)
