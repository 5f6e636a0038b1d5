"""docs/benchmarks.md holds one section per benchmark script, each between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``, so that a script rewrites its own results and leaves the others' alone."""

from __future__ import annotations

import os
import re

INTRO = """# Benchmarks

Each section below is written by its own script, between HTML comment markers; text outside the markers is
kept. `make bench` runs every script.

- [SQL query to parquet](#sql-query-to-parquet): `bench/run.py`, our `SQLTask` against upstream flytekit's.
- [PostgreSQL to parquet](#postgresql-to-parquet): `bench/postgres_run.py` (also `make bench-postgres` alone), our
  `SQLTask` against upstream's `SQLAlchemyTask`, DuckDB, ConnectorX and a binary `COPY`; a one-row query.
- [Script task environments](#script-task-environments): `bench/script_env.py`, uv vs pip cold installs and
  the warm-start overhead of a `ScriptTask`.
- [Environments across pods](#environments-across-pods): `bench/env_store.py`, a fresh pod with the environment
  store vs a cold install.
- [Training](#training-train-type): `bench/train_task.py`, `TrainTask` vs plain torchrun.

The machine may be shared with other work, so timings are noisy: compare rows within one section only.
"""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _migrate(text: str) -> str:
    """A doc from before the sections (bench/run.py wrote the whole file) becomes the ``sql-bench`` section,
    its headings one level down, under the intro."""
    if not text.strip() or ":start -->" in text:
        return text
    start, end = markers("sql-bench")
    demoted = re.sub(r"^(#+) ", r"#\1 ", text.strip(), flags=re.MULTILINE)
    return f"{INTRO}\n{start}\n{demoted}\n{end}\n"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` set to ``body`` (appended if absent), the intro on top."""
    text = _migrate(text)
    start, end = markers(name)
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"
    if not text.startswith("# Benchmarks\n"):
        text = f"{INTRO}\n{text}"
    return text


def write_section(path: str, name: str, body: str) -> None:
    text = open(path).read() if os.path.exists(path) else ""
    with open(path, "w") as f:
        f.write(replace_section(text, name, body))
