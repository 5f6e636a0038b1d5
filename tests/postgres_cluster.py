"""A throwaway PostgreSQL cluster on 127.0.0.1 with password (scram) authentication: the tests' server
(``tests/conftest.py``'s ``postgres``) and the benchmark's (``bench/postgres_server.py``). Plain Python, no pytest."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from typing import Iterator, NamedTuple, Optional


class Cluster(NamedTuple):
    port: int
    password: str
    bin_dir: str


class ServerMissing(RuntimeError):
    """PostgreSQL's server binaries are not installed."""


@contextlib.contextmanager
def cluster(
    user: str, parent: Optional[str] = None, options: str = "", stop_mode: str = "immediate"
) -> Iterator[Cluster]:
    """initdb a cluster owned by ``user`` in a new folder (under ``parent``), start it on a free port with
    ``options`` added to the server's, stop it (``pg_ctl -m stop_mode``) and remove it. initdb refuses root: as root
    it runs as ``postgres`` (or ``nobody``)."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not binaries or not binaries[-1]:
        raise ServerMissing("PostgreSQL server binaries are missing: run `make postgres` (scripts/ensure-postgres.sh)")
    bin_dir = os.path.dirname(binaries[-1])
    if parent:
        os.makedirs(parent, exist_ok=True)
    base = tempfile.mkdtemp(prefix="prebuilt-pg-", dir=parent)
    password = "pw-" + secrets.token_hex(12)
    with open(os.path.join(base, "pw"), "w") as f:
        f.write(password)
    run_as: list[str] = []
    if os.geteuid() == 0:
        owner = "postgres" if _user_exists("postgres") else "nobody"
        for path in (base, os.path.join(base, "pw")):
            shutil.chown(path, owner)
        run_as = ["runuser", "-u", owner, "--"]
    port, data = _free_port(), os.path.join(base, "data")
    subprocess.run(
        [*run_as, f"{bin_dir}/initdb", "-D", data, "-U", user, "-A", "scram-sha-256", f"--pwfile={base}/pw"],
        check=True,
        capture_output=True,
    )
    server_options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} {options}".strip()
    subprocess.run(
        [*run_as, f"{bin_dir}/pg_ctl", "-D", data, "-l", f"{base}/log", "-w", "start", "-o", server_options],
        check=True,
        capture_output=True,
    )
    try:
        yield Cluster(port, password, bin_dir)
    finally:
        subprocess.run([*run_as, f"{bin_dir}/pg_ctl", "-D", data, "-m", stop_mode, "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
