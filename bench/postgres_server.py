"""A throwaway PostgreSQL cluster on 127.0.0.1 for the benchmark, and its table ``t`` (id, name, value, created).

The same server binaries as the tests use (``make postgres`` installs them); password authentication, as a
warehouse would have it. The table is generated inside PostgreSQL (``generate_series``), so building 10M rows takes
seconds, and ``VACUUM ANALYZE`` leaves it as a long-lived table is: visibility map set, statistics known.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Iterator

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(parent: str) -> Iterator[Server]:
    """Start a cluster under ``parent`` (initdb refuses root: run as ``postgres`` or ``nobody`` then); stop it."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not binaries or not binaries[-1]:
        sys.exit("PostgreSQL server binaries are missing: run `make postgres` (scripts/ensure-postgres.sh)")
    bin_dir = os.path.dirname(binaries[-1])
    os.makedirs(parent, exist_ok=True)
    base = tempfile.mkdtemp(prefix="pg-", dir=parent)
    password = "pw-" + secrets.token_hex(12)
    with open(os.path.join(base, "pw"), "w") as f:
        f.write(password)
    run_as: list[str] = []
    if os.geteuid() == 0:
        user = "postgres" if _user_exists("postgres") else "nobody"
        for path in (base, os.path.join(base, "pw")):
            shutil.chown(path, user)
        run_as = ["runuser", "-u", user, "--"]
    port, data = _free_port(), os.path.join(base, "data")
    subprocess.run(
        [*run_as, f"{bin_dir}/initdb", "-D", data, "-U", "bench", "-A", "scram-sha-256", f"--pwfile={base}/pw"],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c shared_buffers=512MB -c fsync=off"
    subprocess.run(
        [*run_as, f"{bin_dir}/pg_ctl", "-D", data, "-l", f"{base}/log", "-w", "start", "-o", options],
        check=True,
        capture_output=True,
    )
    try:
        yield Server(port, password, bin_dir)
    finally:
        subprocess.run([*run_as, f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
