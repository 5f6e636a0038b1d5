"""Benchmark SQL -> parquet: our SQLTask against upstream's SQLite3Task and SQLAlchemyTask.

Every run is a fresh process (``bench/sql_to_parquet.py``), so its peak RSS (``ru_maxrss`` from
``os.wait4``) is that method's alone, and runs are interleaved (A1 B1 C1 A2 ...) so that noise from
a shared machine falls on every method alike. Medians are reported. ``ours`` also runs at
``--also-rows`` to show that its memory does not grow with the result. Raw runs go to
``bench/results/``; the summary rewrites this benchmark's section of ``docs/benchmarks.md``
(``<!-- sql-bench:start -->`` to ``<!-- sql-bench:end -->``), leaving the rest of the file alone.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time

from doc_sections import write_section  # bench/ is on sys.path: run.py is run as a script
from make_table import make_table
from sql_to_parquet import METHODS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DOC = os.path.join(ROOT, "docs", "benchmarks.md")

BASELINE = "upstream-sqlite3"
PACKAGES = (
    "flytekit",
    "flytekitplugins-prebuilt",
    "flytekitplugins-sqlalchemy",
    "pandas",
    "pyarrow",
    "sqlalchemy",
    "adbc-driver-manager",
)
TARGET_SPEED, TARGET_MEMORY, TARGET_FLAT = 5.0, 0.1, 0.25
# Children cache bytecode (under bench/results/) as an installed image would: with
# PYTHONDONTWRITEBYTECODE every process recompiles flytekit and pandas, seconds that say nothing about SQL.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CHILD_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(RESULTS, "pycache")


def run_once(method: str, db: str, log: str) -> dict:
    """One child process; its wall time and peak RSS come from the parent's side."""
    start = time.perf_counter()
    with open(log, "w") as err:
        child = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "sql_to_parquet.py"), "--method", method, "--db", db],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=CHILD_ENV,
        )
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    process_wall = time.perf_counter() - start
    if child.returncode:
        with open(log) as err:
            sys.exit(f"{method} failed ({child.returncode}); see {log}:\n" + err.read()[-3000:])
    record = json.loads(out.strip().splitlines()[-1])  # upstream prints to stdout too: the JSON line is last
    record.update(
        process_wall_s=round(process_wall, 3),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),  # less sensitive than wall time to a busy machine
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),  # ru_maxrss is KiB on Linux
    )
    return record


def installed_versions(packages) -> list[str]:
    """``name version`` of each of ``packages`` that is installed."""
    versions = []
    for name in packages:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def machine() -> list[str]:
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    with open("/proc/meminfo") as f:
        mem = next((int(line.split()[1]) // 1024**2 for line in f if line.startswith("MemTotal")), 0)
    versions = installed_versions(PACKAGES)
    return [
        f"- CPU: {os.cpu_count()} cores (nproc), {cpu}; memory {mem} GiB; {platform.platform()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- {', '.join(versions)}",
    ]


def summarize(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["method"], r["rows"]), []).append(r)
    rows = []
    for (method, n), group in groups.items():
        rows.append(
            {
                "method": method,
                "rows": n,
                "runs": len(group),
                **{
                    k: statistics.median(r[k] for r in group)
                    for k in ("wall_s", "process_wall_s", "cpu_s", "peak_rss_mb")
                },
            }
        )
    base = {r["rows"]: r for r in rows if r["method"] == BASELINE}
    for r in rows:
        b = base.get(r["rows"])
        r["speedup"] = b["wall_s"] / r["wall_s"] if b else None
        r["process_speedup"] = b["process_wall_s"] / r["process_wall_s"] if b else None
        r["memory_ratio"] = r["peak_rss_mb"] / b["peak_rss_mb"] if b else None
    return sorted(rows, key=lambda r: (-r["rows"], METHODS.index(r["method"])))


def verdict(summary: list[dict], rows: int, also_rows: int) -> list[str]:
    """The three targets, each against every upstream method measured in this run."""
    at = {(r["method"], r["rows"]): r for r in summary}
    ours = at.get(("ours", rows))
    upstream = [r for r in summary if r["rows"] == rows and r["method"] != "ours"]
    if not ours or not upstream:
        return ["- Targets not evaluated: `ours` and at least one upstream method must run at the full size."]
    lines = []
    speed = min(u["wall_s"] / ours["wall_s"] for u in upstream)
    lines.append(
        f"- Speed, ours >= {TARGET_SPEED:g}x faster than every upstream task (task call): "
        f"{'MET' if speed >= TARGET_SPEED else 'NOT MET'} (worst case {speed:.2f}x; whole process "
        f"{min(u['process_wall_s'] / ours['process_wall_s'] for u in upstream):.2f}x)"
    )
    memory = max(ours["peak_rss_mb"] / u["peak_rss_mb"] for u in upstream)
    lines.append(
        f"- Memory, ours' peak RSS <= 1/{round(1 / TARGET_MEMORY)} of upstream's: "
        f"{'MET' if memory <= TARGET_MEMORY else 'NOT MET'} (worst ratio {memory:.3f} = 1/{1 / memory:.1f})"
    )
    small = at.get(("ours", also_rows))
    if small:
        growth = ours["peak_rss_mb"] / small["peak_rss_mb"] - 1
        lines.append(
            f"- Memory flat from {also_rows:,} to {rows:,} rows (within {TARGET_FLAT:.0%}): "
            f"{'MET' if abs(growth) <= TARGET_FLAT else 'NOT MET'} ({small['peak_rss_mb']:.0f} -> "
            f"{ours['peak_rss_mb']:.0f} MB, {growth:+.0%})"
        )
    return lines


def write_doc(summary: list[dict], args, started: str, raw: str, doc: str = DOC) -> None:
    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    table = [
        (
            "| method | rows | median task wall s | median process wall s | median process CPU s | median peak RSS MB "
            f"| speed-up vs {BASELINE} (task / process) | memory ratio vs {BASELINE} |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary:
        speed = (
            f"{num(r['speedup'], '.2f')}x / {num(r['process_speedup'], '.2f')}x"
            if r["speedup"]
            else "(no upstream run)"
        )
        table.append(
            f"| {r['method']} | {r['rows']:,} | {r['wall_s']:.2f} | {r['process_wall_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['peak_rss_mb']:.0f} | {speed} | {num(r['memory_ratio'], '.3f')} |"
        )
    reproduce = (
        f".venv/bin/python bench/run.py --rows {args.rows} --repeats {args.repeats} --also-rows {args.also_rows}"
        "   # part of `make bench`"
    )
    text = f"""## SQL query to parquet

`SELECT * FROM t` on a SQLite table of {args.rows:,} rows (`id INTEGER, name TEXT, value REAL, created
TIMESTAMP`), run locally in-process through each task type until the result is parquet in flytekit's raw
output directory (the row count is checked from the parquet footers after each run):

- `ours`: `SQLTask(..., SQLConfig(url="sqlite:///..."))` (Python's sqlite3 cursor, columns to Arrow, streamed parquet);
- `upstream-sqlite3`: flytekit's `SQLite3Task` (pandas `read_sql_query`, `FlyteSchema` output);
- `upstream-sqlalchemy`: `flytekitplugins.sqlalchemy.SQLAlchemyTask` with `output_schema_type=StructuredDataset`.

Each run is its own process; after one uncounted warm-up run per method (bytecode and page caches), runs
are interleaved ({args.repeats} rounds) and medians reported. *Task wall* is
the task call alone; *process wall* is the whole child process (interpreter start and imports included);
*process CPU* is its user + system time (all threads; steadier than wall time on a busy machine); *peak RSS* is
the child's `ru_maxrss`. Memory ratio is peak RSS divided by `{BASELINE}`'s at the same size.

### Reproduce

```
{reproduce}
```

Raw runs: `{os.path.relpath(raw, ROOT)}` (git-ignored). Run on {started}:

{chr(10).join(machine())}

The machine may be shared with other work, so timings are noisy; compare methods within one run only.

### Results

{chr(10).join(table)}

### Targets

{chr(10).join(verdict(summary, args.rows, args.also_rows))}
"""
    write_section(doc, "sql-bench", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--also-rows", type=int, default=1_000_000, help="also run ours at this size (0: skip)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--doc", default=DOC, help="the markdown file whose sql-bench section is rewritten")
    args = parser.parse_args()

    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = os.path.join(RESULTS, f"logs-{stamp}")
    os.makedirs(logs, exist_ok=True)
    raw = os.path.join(RESULTS, f"runs-{stamp}.jsonl")
    db = make_table(os.path.join(RESULTS, f"t_{args.rows}.db"), args.rows)
    plan = [(m, db) for m in args.methods]
    if args.also_rows and args.also_rows != args.rows and "ours" in args.methods:
        plan.append(("ours", make_table(os.path.join(RESULTS, f"t_{args.also_rows}.db"), args.also_rows)))

    for method, path in plan:  # uncounted: fills the bytecode and OS page caches for every method alike
        run_once(method, path, os.path.join(logs, f"{method}-{os.path.basename(path)}-warmup.log"))
        print(f"[warm-up] {method} {os.path.basename(path)}", file=sys.stderr)
    runs = []
    with open(raw, "w") as out:
        for round_ in range(1, args.repeats + 1):
            for method, path in plan:
                name = os.path.basename(path).removesuffix(".db")
                record = run_once(method, path, os.path.join(logs, f"{method}-{name}-{round_}.log"))
                record["round"] = round_
                runs.append(record)
                out.write(json.dumps(record) + "\n")
                out.flush()
                print(
                    f"[{round_}/{args.repeats}] {method:20s} {record['rows']:>10,} rows  "
                    f"task {record['wall_s']:7.2f}s  process {record['process_wall_s']:7.2f}s  "
                    f"CPU {record['cpu_s']:6.2f}s  peak RSS {record['peak_rss_mb']:8.1f} MB",
                    file=sys.stderr,
                )

    summary = summarize(runs)
    with open(raw.replace("runs-", "summary-").replace(".jsonl", ".json"), "w") as f:
        json.dump(summary, f, indent=1)
    for line in verdict(summary, args.rows, args.also_rows):
        print(line, file=sys.stderr)
    if not args.no_doc:
        write_doc(summary, args, started, raw, args.doc)
        print(f"wrote the sql-bench section of {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
