"""SQLite databases are opened, never created, on every path a task runs (in-process and emulated).

A missing file is the task's error (USER, NON_RECOVERABLE) that says so and leaves nothing behind; a remote
``sqlite_file`` that cannot be fetched for another reason is recoverable; messages carry no nested
'CODE: error=' prefixes. Files are opened read-only when the task only reads.
"""

import functools
import http.server
import logging
import socket
import sqlite3
import threading

import pandas as pd
import pytest
from flytekit.exceptions.user import FlyteRecoverableException, FlyteUserRuntimeException
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.sql import SQLConfig, SQLite3Config, SQLite3Task, SQLTask

PATHS = ["in-process", "emulated"]
NESTED_PREFIXES = ("USER:Recoverable: error=", "USER:ValueError", "SYSTEM:DownloadDataError", "error=Value error")


def fail(path: str, task, root, inputs=None, retries=0):
    """Run ``task`` on ``path`` expecting a failure: (kind, message, attempts)."""
    if path == "in-process":
        with pytest.raises(FlyteUserRuntimeException) as failure:
            task(**(inputs or {}))
        value = failure.value.value
        kind = "RECOVERABLE" if isinstance(value, FlyteRecoverableException) else "NON_RECOVERABLE"
        return kind, str(value), 1
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(root)).run(task, inputs or {}, retries=retries)
    assert failure.value.origin == "USER"
    return failure.value.kind, failure.value.message, failure.value.attempts


@pytest.fixture
def served(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/www."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
@pytest.mark.parametrize("where", ["missing.db", "no_such_folder/missing.db"])
def test_a_missing_database_url_is_a_user_error_and_creates_nothing(tmp_path, path, reader, where):
    database = tmp_path / where
    t = SQLTask("q", "select * from people", SQLConfig(url=f"sqlite:///{database}", reader=reader))
    kind, message, _ = fail(path, t, tmp_path)
    assert kind == "NON_RECOVERABLE"
    assert f"config.url: the SQLite database {database} does not exist" in message
    assert "no such table" not in message and "allocate memory" not in message
    assert not database.exists() and not database.parent.joinpath("missing.db-journal").exists()


@pytest.mark.parametrize("path", PATHS)
def test_statements_without_results_do_not_create_a_missing_database_either(tmp_path, path):
    database = tmp_path / "missing.db"
    t = SQLTask(
        "w",
        "create table t (a int); insert into t values (1)",
        SQLConfig(url=f"sqlite:///{database}"),
        output_schema_type=None,
    )
    kind, message, _ = fail(path, t, tmp_path)
    assert kind == "NON_RECOVERABLE" and "does not exist" in message
    assert not database.exists()


@pytest.mark.parametrize("path", PATHS)
def test_statements_without_results_still_write_to_an_existing_database(tmp_path, path, people_db):
    t = SQLTask(
        "w",
        "insert into people (id, name) values (:id, 'new')",
        SQLConfig(url=f"sqlite:///{people_db}"),
        inputs={"id": int},
        output_schema_type=None,
    )
    if path == "in-process":
        assert t(id=100) == 1
    else:
        assert Emulator(str(tmp_path)).run(t, {"id": 100}).outputs["rows_affected"] == 1
    with sqlite3.connect(people_db) as db:
        assert db.execute("select name from people where id = 100").fetchall() == [("new",)]


@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_a_query_that_only_reads_opens_the_file_read_only(tmp_path, people_db, reader, caplog):
    reads = SQLTask("r", "select count(*) as n from people", SQLConfig(url=f"sqlite:///{people_db}", reader=reader))
    with caplog.at_level(logging.INFO, logger="flytekit"):
        assert reads().open(pd.DataFrame).all()["n"].tolist() == [50]
    assert "mode=ro" in caplog.text
    emulated = Emulator(str(tmp_path), env={"FLYTE_SDK_LOGGING_LEVEL": "20"}).run(reads)  # INFO
    assert emulated.outputs["results"].open(pd.DataFrame).all()["n"].tolist() == [50] and "mode=ro" in emulated.logs
    # a query with results that also writes (here: INSERT ... RETURNING) is opened for writing
    writes = SQLTask(
        "w",
        "insert into people (id, name) values (101, 'x') returning id",
        SQLConfig(url=f"sqlite:///{people_db}", reader=reader),
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="flytekit"):
        assert writes().open(pd.DataFrame).all()["id"].tolist() == [101]
    assert "mode=rw" in caplog.text


@pytest.mark.parametrize("path", PATHS)
def test_a_missing_local_sqlite_file_is_a_user_error(tmp_path, path):
    t = SQLite3Task("s", "select 1 as one", task_config=SQLite3Config(uri=str(tmp_path / "missing.db")))
    kind, message, _ = fail(path, t, tmp_path)
    assert kind == "NON_RECOVERABLE"
    assert f"config.sqlite_file: {tmp_path / 'missing.db'} does not exist" in message
    assert not any(prefix in message for prefix in NESTED_PREFIXES), message


@pytest.mark.parametrize("path", PATHS)
def test_a_missing_remote_sqlite_file_is_a_user_error(tmp_path, path, served, people_db):
    www, base = served
    (www / "people.db").write_bytes(people_db.read_bytes())
    found = SQLite3Task("s", "select count(*) as n from people", task_config=SQLite3Config(uri=f"{base}/people.db"))
    if path == "in-process":
        assert found().open(pd.DataFrame).all()["n"].tolist() == [50]
    else:
        assert Emulator(str(tmp_path)).run(found).outputs["results"].open(pd.DataFrame).all()["n"].tolist() == [50]
    missing = SQLite3Task("s", "select 1 as one", task_config=SQLite3Config(uri=f"{base}/missing.db"))
    kind, message, attempts = fail(path, missing, tmp_path, retries=2)
    assert (kind, attempts) == ("NON_RECOVERABLE", 1)
    assert f"config.sqlite_file: {base}/missing.db does not exist" in message
    assert not any(prefix in message for prefix in NESTED_PREFIXES), message


@pytest.mark.parametrize("path", PATHS)
def test_a_network_failure_fetching_a_sqlite_file_is_recoverable(tmp_path, path):
    uri = f"http://127.0.0.1:{closed_port()}/people.db"  # flytekit reports this as "File not found" too
    t = SQLite3Task("s", "select 1 as one", task_config=SQLite3Config(uri=uri))
    kind, message, attempts = fail(path, t, tmp_path, retries=1)
    assert kind == "RECOVERABLE" and attempts == (1 if path == "in-process" else 2)
    assert f"config.sqlite_file: cannot fetch {uri}: Cannot connect to host" in message
    assert "does not exist" not in message
    assert not any(prefix in message for prefix in NESTED_PREFIXES), message


@pytest.mark.parametrize("reader", ["adbc", "sqlalchemy"])
def test_an_authors_own_sqlite_uri_is_used_as_given(people_db, reader):
    """`sqlite:///file:...?mode=ro&uri=true` (docs/sql.md): both readers honour the URI's options."""
    url = f"sqlite:///file:{people_db}?mode=ro&uri=true"
    reads = SQLTask("r", "select count(*) as n from people", SQLConfig(url=url, reader=reader))
    assert reads().open(pd.DataFrame).all()["n"].tolist() == [50]
    writes = SQLTask("w", "insert into people (id) values (1) returning id", SQLConfig(url=url, reader=reader))
    with pytest.raises(FlyteUserRuntimeException, match="readonly database"):
        writes()
