"""One PostgreSQL benchmark run, in this process: ``SELECT * FROM <table>`` to parquet by one method, or a one-row
query by our task.

Run by ``bench/postgres_run.py``, one process per run so that peak RSS belongs to one method alone. The URL (with
the benchmark server's throwaway password) comes in ``BENCH_PG_URL``, never on a command line. The wall time printed
is the work alone: every method's modules are imported before its clock starts (DuckDB's, ConnectorX's, upstream's
task module; for ours, what its reader imports: pyarrow and the ADBC driver), then the task call, or for DuckDB and
ConnectorX connecting to parquet written. The parent also times the whole process, imports included. The row count
is checked from the parquet footers.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time

METHODS = ("ours", "ours-one-connection", "upstream-sqlalchemy", "duckdb", "connectorx")


def ours(table: str, out: str, connections: int = 0):
    """Our task as configured by default (``read_connections=0``: the table in block ranges, one per core)."""
    _import_our_reader()
    from flytekit import Secret
    from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

    os.environ["_FSEC_BENCH_URL"] = os.environ["BENCH_PG_URL"]  # as Flyte injects a secret
    config = SQLConfig(url_secret=Secret(group="bench", key="url"), read_connections=connections)
    task = SQLTask("bench_ours", f"SELECT * FROM {table}", config)
    start = time.perf_counter()
    result = task()
    return time.perf_counter() - start, result.literal.uri


def upstream_sqlalchemy(table: str, out: str):
    from flytekit.types.structured import StructuredDataset
    from flytekitplugins.sqlalchemy import SQLAlchemyConfig, SQLAlchemyTask

    task = SQLAlchemyTask(
        "bench_sqlalchemy",
        f"SELECT * FROM {table}",
        SQLAlchemyConfig(uri=os.environ["BENCH_PG_URL"]),
        output_schema_type=StructuredDataset,
    )
    start = time.perf_counter()
    result = task()
    return time.perf_counter() - start, result.literal.uri


def duckdb_scan(table: str, out: str):
    """DuckDB's postgres extension (shipped by the duckdb-extension-postgres-scanner package: no download) reads the
    table in parallel over several connections and writes parquet."""
    import duckdb
    import duckdb_extension_postgres_scanner

    extension = glob.glob(
        os.path.join(os.path.dirname(duckdb_extension_postgres_scanner.__file__), "**/*.duckdb_extension"),
        recursive=True,
    )[0]
    start = time.perf_counter()
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.load_extension(extension)
    os.environ.update(_libpq_environment(os.environ["BENCH_PG_URL"]))  # ATTACH takes no parameters: libpq's variables
    con.execute("ATTACH '' AS pg (TYPE postgres, READ_ONLY)")
    con.execute(f"COPY (SELECT * FROM pg.public.{table}) TO '{out}/part-0.parquet' (FORMAT parquet)")
    con.close()
    return time.perf_counter() - start, out


def connectorx_read(table: str, out: str):
    """ConnectorX with two partitions on the primary key, as its docs show a parallel read, then one parquet file."""
    import connectorx as cx
    import pyarrow.parquet as pq

    start = time.perf_counter()
    arrow = cx.read_sql(
        os.environ["BENCH_PG_URL"], f"SELECT * FROM {table}", return_type="arrow", partition_on="id", partition_num=2
    )
    pq.write_table(arrow, os.path.join(out, "part-0.parquet"))
    return time.perf_counter() - start, out


def one_row(table: str) -> dict:
    """Our task's one-row query, called once in a process that has imported what its reader needs (pyarrow,
    ADBC): what the call costs, and whether it imported SQLAlchemy or pandas (it should import neither)."""
    _import_our_reader()
    from flytekit import Secret
    from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

    os.environ["_FSEC_BENCH_URL"] = os.environ["BENCH_PG_URL"]
    task = SQLTask(
        "bench_one",
        f"SELECT * FROM {table} WHERE id = :id",
        SQLConfig(url_secret=Secret(group="bench", key="url")),
        inputs={"id": int},
    )
    start = time.perf_counter()
    result = task(id=12345)
    wall = time.perf_counter() - start
    rows = parquet_rows(result.literal.uri)
    imported = sorted(m for m in ("sqlalchemy", "pandas.core") if m in sys.modules)
    return {"method": "ours-one-row", "rows": rows, "wall_s": round(wall, 3), "imported": imported}


def _import_our_reader() -> None:
    """What our PostgreSQL reader imports on its first call, as the peers' modules are imported before their clocks."""
    import adbc_driver_manager  # noqa: F401
    import adbc_driver_postgresql  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def emulated(which: str, table: str) -> dict:
    """A one-row query as Flyte runs it: a fresh ``pyflyte-execute`` (the emulator's subprocess), ours on
    PostgreSQL (``table``) against upstream's SQLite3Task on a SQLite file (``table`` is its path)."""
    from flytekit import Secret
    from flytekitplugins.prebuilt.emulator import Emulator

    root = tempfile.mkdtemp(prefix="bench-emulator-")
    cache = {"PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX", "")}
    emulator = Emulator(root, secrets={("bench", "url"): os.environ["BENCH_PG_URL"]}, env=cache)
    if which == "ours":
        from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

        task = SQLTask(
            "bench_emulated_ours",
            f"SELECT * FROM {table} WHERE id = :id",
            SQLConfig(url_secret=Secret(group="bench", key="url")),
            inputs={"id": int},
        )
    else:
        from flytekit.extras.sqlite3.task import SQLite3Config, SQLite3Task

        task = SQLite3Task(
            "bench_emulated_sqlite3",
            "SELECT * FROM t WHERE id = {{ .inputs.id }}",
            inputs={"id": int},
            task_config=SQLite3Config(uri=table),
        )
    start = time.perf_counter()
    emulator.run(task, {"id": 42}, retries=0)
    wall = time.perf_counter() - start
    shutil.rmtree(root, ignore_errors=True)
    return {"method": f"emulated-{which}", "rows": 1, "wall_s": round(wall, 3)}


def _libpq_environment(url: str) -> dict[str, str]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    return {
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": parts.path.lstrip("/"),
    }


def parquet_rows(directory: str) -> int:
    import pyarrow.parquet as pq

    files = [os.path.join(d, f) for d, _, names in os.walk(directory) for f in names]
    if not files:
        raise SystemExit(f"no parquet files under {directory}")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def ours_one_connection(table: str, out: str):
    """Our task with ``read_connections=1``: one connection, as before the split reads."""
    return ours(table, out, connections=1)


RUNNERS = {
    "ours": ours,
    "ours-one-connection": ours_one_connection,
    "upstream-sqlalchemy": upstream_sqlalchemy,
    "duckdb": duckdb_scan,
    "connectorx": connectorx_read,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--method", choices=(*METHODS, "ours-one-row", "emulated-ours", "emulated-sqlite3"), required=True
    )
    parser.add_argument("--table", required=True)
    parser.add_argument("--rows", type=int, required=True, help="rows the table holds (checked)")
    args = parser.parse_args()
    if args.method == "ours-one-row":
        print(json.dumps(one_row(args.table)))
        return
    if args.method.startswith("emulated-"):
        print(json.dumps(emulated(args.method.split("-", 1)[1], args.table)))
        return
    out = tempfile.mkdtemp(prefix="bench-pg-")
    wall, directory = RUNNERS[args.method](args.table, out)
    rows = parquet_rows(directory)
    if rows != args.rows:
        raise SystemExit(f"{args.method}: {rows} rows in parquet, the table has {args.rows}")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(directory) for f in names)
    shutil.rmtree(directory, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"method": args.method, "rows": rows, "wall_s": round(wall, 3), "parquet_bytes": size}))


if __name__ == "__main__":
    main()
