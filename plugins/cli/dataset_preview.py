"""A dataset output's first rows as a small text table, as the sql task's Deck shows them
(executors/sql/__init__.py, ``_publish_deck``): its row count from the parquet footers, the first rows read
with pyarrow (the sql extra's), never the whole dataset."""

from __future__ import annotations

import os
import typing

ROWS = 10
WIDTH = 30  # a longer cell is cut, ending with "..."


def preview(uri: str, rows: int = ROWS) -> list[str]:
    """``N rows, M columns`` and the first ``rows`` of the parquet dataset at ``uri`` (a local file or folder) as
    aligned columns; one line saying why not when it cannot be read here."""
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    if not os.path.exists(path):
        return [f"(not a local path: {uri})"]
    try:
        import pyarrow.dataset as ds
    except ImportError:
        return ["(install pyarrow, the sql extra, to see its first rows)"]
    try:
        dataset = ds.dataset(path, format="parquet")
        total = dataset.count_rows()
        head = dataset.head(rows)
    except Exception as error:  # not parquet, or unreadable: the path is still printed
        return [f"(cannot read it as parquet: {' '.join(str(error).split())})"]
    shown = f", the first {head.num_rows}" if head.num_rows < total else ""
    summary = f"{total:,} row(s), {len(head.schema.names)} column(s){shown}"
    return [summary, *table(head.schema.names, [list(row.values()) for row in head.to_pylist()])]


def table(names: list[str], rows: list[list[typing.Any]]) -> list[str]:
    """Left-aligned columns two spaces apart, a header line first."""
    cells = [[_cell(name) for name in names]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(names))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]


def _cell(value: typing.Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."
