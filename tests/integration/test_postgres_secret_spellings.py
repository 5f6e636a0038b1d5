"""A password with spaces, ``@ % : / ? #``, quotes and non-ASCII, given as a ``password_secret`` or inside a
``url_secret`` (unencoded), on a real PostgreSQL: it connects with both readers, and when the server rejects it or
cannot be reached, no spelling of it reaches the error document, the log or the files of the run (issue 17)."""

import logging

import pyarrow.parquet as pq
import pytest
from flytekit import Secret
from flytekit.loggers import logger as flytekit_logger
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

from tests.unit.test_secret_spellings import NASTY, leaked_spellings

pytestmark = pytest.mark.postgres

PASSWORD, URL = Secret(group="warehouse", key="password"), Secret(group="warehouse", key="url")
SECRETS_ENV = {"password": "_FSEC_WAREHOUSE_PASSWORD", "url": "_FSEC_WAREHOUSE_URL"}


@pytest.fixture(scope="module")
def users(postgres):
    """``nasty`` logs in with NASTY; ``victim`` has another password, so NASTY is rejected for it."""
    import psycopg2

    with psycopg2.connect(postgres.url) as connection, connection.cursor() as cursor:
        cursor.execute("drop role if exists nasty; drop role if exists victim")
        cursor.execute("create role nasty login password %s", (NASTY,))
        cursor.execute("create role victim login password 'victim-real-password'")
    return postgres


def task(kind: str, reader: str, user: str, port: int):
    """The secrets it reads: ``password`` (NASTY) and ``url``, whose password is NASTY, not percent-encoded."""
    location = f"127.0.0.1:{port}/postgres"
    if kind == "password_secret":
        config = SQLConfig(url=f"postgresql://{user}@{location}", password_secret=PASSWORD, reader=reader)
    else:
        config = SQLConfig(url_secret=URL, reader=reader)
    return SQLTask("spellings", "select 1 as one", config, retries=0), {
        "password": NASTY,
        "url": f"postgresql://{user}:{NASTY}@{location}",
    }


@pytest.mark.parametrize("kind", ["password_secret", "url_secret"])
@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_a_password_holding_url_characters_connects(users, monkeypatch, capfd, reader, kind):
    t, values = task(kind, reader, "nasty", users.port)
    for name, value in values.items():
        monkeypatch.setenv(SECRETS_ENV[name], value)
    assert pq.read_table(t().literal.uri).column("one").to_pylist() == [1]
    assert leaked_spellings(NASTY, "".join(capfd.readouterr())) == []


def failing_run(t, values: dict, path: str, tmp_path, monkeypatch, capfd) -> tuple[str, str]:
    """Run ``t`` expecting a connection failure at DEBUG logging; return (error message, everything else seen)."""
    if path == "in-process":
        for name, value in values.items():
            monkeypatch.setenv(SECRETS_ENV[name], value)
        monkeypatch.setattr(flytekit_logger, "level", logging.DEBUG)
        with pytest.raises(Exception) as failure:
            t()
        chain, error = [], failure.value
        while error is not None:
            chain.append(f"{type(error).__name__}: {error}")
            error = error.__cause__ or error.__context__
        return chain[0], "\n".join(chain) + "".join(capfd.readouterr())
    secrets = {("warehouse", name): value for name, value in values.items()}
    emulator = Emulator(str(tmp_path), secrets=secrets, env={"FLYTE_SDK_LOGGING_LEVEL": "10"})
    with pytest.raises(TaskFailed) as failure:
        emulator.run(t, in_container=path == "image")
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    return failure.value.message, failure.value.logs + files.decode("utf-8", "replace")


SERVERS = {"rejects": "password authentication failed", "unreachable": "cannot connect to postgresql://"}
# every combination in-process; through pyflyte-execute (about 10 s a run) and the image, the cases of issue 17:
# ADBC with a password_secret (libpq quoted it back half-encoded), a url_secret with a raw '@' (its tail was shown)
CASES = [
    *(
        pytest.param(server, reader, kind, "in-process", id=f"{server}-{reader}-{kind}-in-process")
        for server in SERVERS
        for reader in ("adbc", "sqlalchemy")
        for kind in ("password_secret", "url_secret")
    ),
    pytest.param("rejects", "adbc", "password_secret", "emulated", id="rejects-adbc-password_secret-emulated"),
    pytest.param(
        "unreachable", "sqlalchemy", "url_secret", "emulated", id="unreachable-sqlalchemy-url_secret-emulated"
    ),
    pytest.param(
        "rejects", "adbc", "url_secret", "image", id="rejects-adbc-url_secret-image", marks=pytest.mark.docker
    ),
]


@pytest.mark.parametrize("server, reader, kind, path", CASES)
def test_no_spelling_of_the_password_reaches_the_error_the_log_or_the_files(
    users, tmp_path, monkeypatch, capfd, request, server, reader, kind, path
):
    if path == "image":
        request.getfixturevalue("sql_image")
    port = users.port if server == "rejects" else 9  # nothing listens on port 9 of 127.0.0.1
    t, values = task(kind, reader, "victim", port)
    message, seen = failing_run(t, values, path, tmp_path, monkeypatch, capfd)
    assert SERVERS[server] in message
    assert f"postgresql://victim:***@127.0.0.1:{port}/postgres" in message  # the password's place, masked
    assert leaked_spellings(NASTY, message) == [] and leaked_spellings(NASTY, seen) == []
