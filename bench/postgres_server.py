"""A throwaway PostgreSQL cluster on 127.0.0.1 for the benchmark, and its table ``t`` (id, name, value, created).

The same server binaries as the tests use (``make postgres`` installs them); password authentication, as a
warehouse would have it. The table is generated inside PostgreSQL (``generate_series``), so building 10M rows takes
seconds, and ``VACUUM ANALYZE`` leaves it as a long-lived table is: visibility map set, statistics known.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from typing import Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
from tests.postgres_cluster import ServerMissing, cluster  # noqa: E402

GENERATE = """
SET client_min_messages = warning;
DROP TABLE IF EXISTS {name};
CREATE TABLE {name} (id int PRIMARY KEY, name text, value float8, created timestamp);
INSERT INTO {name}
SELECT g, 'name_' || md5(g::text), (g::bigint * 7919 % 1000000) / 100.0,
       timestamp '2020-09-13 12:26:40' + g * interval '7 seconds'
FROM generate_series(1, {rows}) g;
VACUUM ANALYZE {name};
"""


class Server:
    def __init__(self, port: int, password: str, bin_dir: str):
        self.port, self.password, self.bin_dir = port, password, bin_dir
        self.user, self.database = "bench", "postgres"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL with the password (the benchmark's own throwaway one)."""
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def url_without_password(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def psql(self, sql: str, *args: str) -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port)]
        command += ["-U", self.user, "-d", self.database, *args, "-f", "-"]  # statements one by one (VACUUM)
        done = subprocess.run(command, input=sql, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"psql failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def make_table(self, name: str, rows: int) -> str:
        """Create table ``name`` with ``rows`` rows unless it already holds exactly that many."""
        try:
            if int(self.psql(f"select count(*) from {name}", "-At").strip()) == rows:
                return name
        except RuntimeError:
            pass
        start = time.perf_counter()
        self.psql(GENERATE.format(name=name, rows=int(rows)))
        print(f"built {name}: {rows:,} rows in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        return name


@contextlib.contextmanager
def server(parent: str) -> Iterator[Server]:
    """A cluster under ``parent`` (the tests' throwaway cluster, tuned for reading: larger shared buffers, no fsync)."""
    try:
        with cluster("bench", parent, "-c shared_buffers=512MB -c fsync=off", stop_mode="fast") as started:
            yield Server(started.port, started.password, started.bin_dir)
    except ServerMissing as missing:
        sys.exit(str(missing))
