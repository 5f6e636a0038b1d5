"""One benchmark run: ``SELECT * FROM t`` through one SQL task type, in this process, to parquet.

Each run is its own process so that peak RSS (measured by ``bench/run.py``) belongs to one method
alone. The wall time printed here covers the task call only (the query, the parquet write and
flytekit's output handling); ``run.py`` also times the whole process, imports included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import time

METHODS = ("ours", "upstream-sqlite3", "upstream-sqlalchemy")
QUERY = "SELECT * FROM t"


def make_task(method: str, db: str):
    """The task object for ``method``; upstream tasks as their docs show them."""
    if method == "ours":
        from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

        return SQLTask("bench_ours", QUERY, SQLConfig(url=f"sqlite:///{db}"))
    if method == "upstream-sqlite3":  # default output: FlyteSchema, written as parquet by flytekit
        from flytekit.extras.sqlite3.task import SQLite3Config, SQLite3Task

        return SQLite3Task("bench_sqlite3", QUERY, task_config=SQLite3Config(uri=db))
    if method == "upstream-sqlalchemy":
        from flytekit.types.structured import StructuredDataset
        from flytekitplugins.sqlalchemy import SQLAlchemyConfig, SQLAlchemyTask

        return SQLAlchemyTask(
            "bench_sqlalchemy", QUERY, SQLAlchemyConfig(uri=f"sqlite:///{db}"), output_schema_type=StructuredDataset
        )
    raise ValueError(method)


def output_dir(result) -> str:
    """Where the task's parquet landed: a StructuredDataset's literal uri or a FlyteSchema's remote path."""
    literal = getattr(result, "literal", None)
    uri = (
        getattr(result, "uri", None)
        or (literal.uri if literal is not None else None)
        or getattr(result, "remote_path", None)
    )
    if not uri or not os.path.isdir(uri):
        raise SystemExit(f"no local parquet directory in the result: {result!r}")
    return uri


def parquet_rows(directory: str) -> int:
    """Rows in every parquet file under ``directory``, from the footers (proves they were written)."""
    import pyarrow.parquet as pq

    files = [os.path.join(d, f) for d, _, names in os.walk(directory) for f in names]
    if not files:
        raise SystemExit(f"no parquet files under {directory}")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--keep", action="store_true", help="keep the parquet output (deleted by default)")
    args = parser.parse_args()
    db = os.path.abspath(args.db)
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        expected = con.execute("SELECT count(*) FROM t").fetchone()[0]

    task = make_task(args.method, db)
    start = time.perf_counter()
    result = task()
    wall = time.perf_counter() - start

    directory = output_dir(result)
    rows = parquet_rows(directory)
    if rows != expected:
        raise SystemExit(f"{args.method}: {rows} rows in parquet, the table has {expected}")
    out_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(directory) for f in names)
    if not args.keep:
        shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps({"method": args.method, "rows": rows, "wall_s": round(wall, 3), "parquet_bytes": out_bytes}))


if __name__ == "__main__":
    main()
