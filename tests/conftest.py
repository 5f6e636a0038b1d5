"""Shared fixtures: a real PostgreSQL server on 127.0.0.1, the built images, SQLite databases, and the compose file's
services in containers (a registry, PostgreSQL on a compose network) through pytest-docker."""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.postgres_cluster import ServerMissing, cluster

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _flyte_env():
    os.environ.setdefault("FLYTE_EXIT_ON_USER_EXCEPTION", "0")  # as flytekit's plugin tests do


def _logger_states() -> list:
    import flytekit.loggers  # noqa: F401  (configures flytekit's loggers, flytekit/loggers.py)

    loggers = [logging.getLogger(name) for name in ("flytekit", "user_space", "developer")]
    return [(lg, lg.disabled, lg.level, lg.propagate, list(lg.handlers), list(lg.filters)) for lg in loggers]


_LOGGERS_AT_START = _logger_states()  # before any test module is imported


@pytest.fixture(autouse=True)
def _flytekit_loggers_as_at_start():
    """Each test starts with flytekit's loggers as the session did: an in-process command that an earlier test ran
    (or imported) reconfigures them, and a test reading flytekit's log would then read nothing."""
    for lg, disabled, level, propagate, handlers, filters in _LOGGERS_AT_START:
        lg.disabled, lg.propagate, lg.handlers[:], lg.filters[:] = disabled, propagate, handlers, filters
        lg.setLevel(level)


# ------------------------------------------------------------------ marks, derived from what a test uses
# A test's marks say what it needs, so that `make unit` and `pytest -m "not docker"` are real lanes. They are derived
# from the fixtures it requests (a hand-written mark can lie); a test that needs Docker without one of these fixtures
# (it builds an image itself) carries the mark by hand, and the guard below makes a missing mark fail loudly.
NEEDS = {
    "docker": {"sql_image", "script_image", "train_image", "docker_services", "registry", "compose_postgres"},
    "postgres": {"postgres", "compose_postgres"},
}
UNIT = ROOT / "tests" / "unit"


def pytest_collection_modifyitems(config, items):
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for mark, fixtures in NEEDS.items():
            if used & fixtures and not item.get_closest_marker(mark):
                item.add_marker(mark)
        needs = [mark for mark in NEEDS if item.get_closest_marker(mark)]
        if needs and Path(item.fspath).is_relative_to(UNIT):
            raise pytest.UsageError(f"{item.nodeid} needs {', '.join(needs)}: unit tests need no services")


NO_DOCKER_HOST = "unix:///nonexistent/no-docker-mark.sock"


@pytest.fixture(autouse=True)
def _no_docker_unless_marked(request, monkeypatch):
    """A test without the `docker` mark that reaches Docker (the SDK or the CLI, in this process or a child) fails:
    its engine address points nowhere."""
    if not request.node.get_closest_marker("docker"):
        monkeypatch.setenv("DOCKER_HOST", NO_DOCKER_HOST)


def make_people_db(path: Path, rows: int = 50) -> Path:
    """SQLite table people(id, name, score, born) with `rows` rows."""
    with sqlite3.connect(path) as db:
        db.execute("create table people (id integer, name text, score real, born timestamp)")
        db.executemany(
            "insert into people values (?, ?, ?, ?)",
            [(i, f"name{i}", i * 0.5, f"2020-01-{1 + i % 28:02d} 00:00:00") for i in range(rows)],
        )
    return path


@pytest.fixture
def people_db(tmp_path) -> Path:
    return make_people_db(tmp_path / "people.db")


# ------------------------------------------------------------------ PostgreSQL


class Postgres:
    def __init__(self, port: int, password: str):
        self.port, self.password, self.user = port, password, "prebuilt"

    @property
    def url_without_password(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/postgres"

    def execute(self, sql: str) -> None:
        import psycopg2

        with psycopg2.connect(self.url) as connection, connection.cursor() as cursor:
            cursor.execute(sql)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password (scram) authentication."""
    try:
        with cluster("prebuilt") as server:
            yield Postgres(server.port, server.password)
    except ServerMissing as missing:
        pytest.fail(str(missing))


# ------------------------------------------------------------------ Docker image


def built_image(task_type: str) -> str:
    """The task type's image for this package version, as `make images` built it from the current sources. Tests
    never build an image (`make test` builds each once, before them): a missing or stale one fails, saying so."""
    from build_tools.building import Builder

    tag = Builder().up_to_date(task_type)
    if tag is None:
        pytest.fail(f"the {task_type} image is missing or older than the sources: run `make images` first")
    return tag


@pytest.fixture(scope="session")
def sql_image() -> str:
    return built_image("sql")


@pytest.fixture(scope="session")
def script_image() -> str:
    return built_image("script")


@pytest.fixture(scope="session")
def train_image() -> str:
    return built_image("train")


@pytest.fixture(scope="session")
def train_env_cache(tmp_path_factory) -> Path:
    """One environment cache for the training tests: the digits example's scikit-learn is installed once."""
    return tmp_path_factory.mktemp("train-env-cache")


# ------------------------------------------------------------------ services in containers (pytest-docker)
# tests/docker-compose.yml: a registry and a PostgreSQL server, from images built here (scripts/make-test-services.sh),
# started once per session by pytest-docker's `docker_services` (docker-compose up / down -v) when a test needs one.


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """Debian's docker-compose 1.29 (scripts/ensure-docker.sh installs it): this engine has no `docker compose`."""
    return "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "tests" / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    """Build the services' images when their folders changed, then start them. Compose 1.29 has no `up --wait`: each
    service's fixture waits for it with pytest-docker's `wait_until_responsive`."""
    subprocess.run(["bash", str(ROOT / "scripts/ensure-docker.sh")], check=True)
    subprocess.run(["bash", str(ROOT / "scripts/make-test-services.sh")], check=True)
    os.environ.setdefault("PREBUILT_TEST_DB_PASSWORD", "pw-" + secrets.token_hex(12))  # read by the compose file
    return ["up -d"]


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def registry(docker_services, docker_ip) -> str:
    """The compose file's registry (Debian's docker-registry, no auth), as `host:port` on 127.0.0.1."""
    address = f"{docker_ip}:{docker_services.port_for('registry', 5000)}"
    docker_services.wait_until_responsive(check=lambda: _answers(f"http://{address}/v2/"), timeout=30, pause=0.2)
    return address


class ComposePostgres(Postgres):
    """The compose file's PostgreSQL: ``url`` from this machine (its published port), ``service_url_without_password``
    from a container on ``network`` (by service name, ``db:5432``, as a pod reaches a database)."""

    def __init__(self, port: int, password: str, network: str):
        super().__init__(port, password)
        self.network = network

    @property
    def service_url_without_password(self) -> str:
        return f"postgresql://{self.user}@db:5432/postgres"

    def accepts_connections(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url, connect_timeout=1).close()
            return True
        except psycopg2.OperationalError:
            return False


@pytest.fixture(scope="session")
def compose_postgres(docker_services, docker_compose_project_name) -> ComposePostgres:
    database = ComposePostgres(
        docker_services.port_for("db", 5432),
        os.environ["PREBUILT_TEST_DB_PASSWORD"],
        f"{docker_compose_project_name}_default",  # compose's network for the project
    )
    docker_services.wait_until_responsive(check=database.accepts_connections, timeout=60, pause=0.2)
    return database
