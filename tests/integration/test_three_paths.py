"""The same cases give the same outputs in-process, through the emulator (subprocess), and in the image."""

import os
import sqlite3

import pandas as pd
import pytest
from flytekit import kwtypes
from flytekit.extras.sqlite3.task import SQLite3Config as UpstreamConfig
from flytekit.extras.sqlite3.task import SQLite3Task as UpstreamTask
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

from tests.conftest import make_people_db


@pytest.fixture
def storage(tmp_path):
    """An emulator storage root that also holds the database, so the container sees it at the same path."""
    root = tmp_path / "store"
    root.mkdir()
    db = make_people_db(root / "people.db")
    with sqlite3.connect(db) as c:
        c.execute("create table ledger (id integer, amount real)")
    os.chmod(db, 0o666)
    return root, db


def cases(db):
    url = f"sqlite:///{db}"
    return [
        (
            SQLTask(
                "by_min",
                "select id, name, score, born from people where id >= {{.inputs.min_id}} order by id",
                SQLConfig(url=url, batch_rows=7, rows_per_file=20),
                inputs={"min_id": int},
            ),
            {"min_id": 12},
        ),
        (
            SQLTask(
                "agg",
                "select count(*) as n, sum(score) as s from people where name in :names",
                SQLConfig(url=url, reader="sqlalchemy"),
                inputs={"names": list[str]},
            ),
            {"names": ["name1", "name2", "x' or '1'='1"]},
        ),
        (
            SQLTask(
                "write",
                "insert into ledger values (1, 2.5), (2, :amount)",
                SQLConfig(url=url),
                inputs={"amount": float},
                output_schema_type=None,
            ),
            {"amount": 1.0},
        ),
    ]


def normalize(outputs):
    return {k: (v.open(pd.DataFrame).all() if hasattr(v, "open") else v) for k, v in outputs.items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k])
        else:
            assert a[k] == b[k]


def in_process(task, inputs):
    result = task(**inputs)
    name = list(task.python_interface.outputs)[0]
    return normalize({name: result})


def test_in_process_equals_emulated_subprocess(storage):
    root, db = storage
    emulator = Emulator(str(root))
    for task, inputs in cases(db):
        assert_same(in_process(task, inputs), normalize(emulator.run(task, inputs).outputs))


@pytest.mark.docker
def test_in_process_equals_the_real_image(storage, sql_image):
    root, db = storage
    emulator = Emulator(str(root))
    for task, inputs in cases(db):
        emulated = emulator.run(task, inputs, in_container=True)
        assert emulated.deck_path or "rows_affected" in emulated.outputs
        assert_same(in_process(task, inputs), normalize(emulated.outputs))


def test_emulator_runs_upstream_sqlite3task(storage):
    """Upstream's own template task runs correctly: the emulator follows the contract, not our code."""
    root, db = storage
    upstream = UpstreamTask(
        "up",
        "select id, name from people where id < {{.inputs.n}}",
        inputs=kwtypes(n=int),
        task_config=UpstreamConfig(uri=str(db)),
    )
    result = Emulator(str(root)).run(upstream, {"n": 3})
    assert result.outputs["results"].open().all()["id"].tolist() == [0, 1, 2]


def test_deck_lands_next_to_the_outputs(storage):
    root, db = storage
    task, inputs = cases(db)[0]
    result = Emulator(str(root)).run(task, inputs)
    assert result.files == ["deck.html", "outputs.pb"]
    deck = open(result.deck_path).read()
    assert "38 rows" in deck and "score" in deck and "name12" in deck


def test_user_errors_land_in_error_pb_as_user_non_recoverable(storage):
    root, db = storage
    bad = SQLTask("bad", "select * from nowhere", SQLConfig(url=f"sqlite:///{db}"), retries=3)
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(root)).run(bad)
    assert (failure.value.origin, failure.value.kind, failure.value.attempts) == ("USER", "NON_RECOVERABLE", 1)
    assert "no such table: nowhere" in failure.value.message


def test_unknown_schema_version_is_refused_clearly(storage):
    root, db = storage
    emulator = Emulator(str(root))
    task, inputs = cases(db)[0]
    template = emulator.template(task)
    template.custom["prebuilt"]["version"] = 99
    with pytest.raises(TaskFailed) as failure:
        emulator.run(template, inputs)
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    assert "schema version 99" in failure.value.message and "newer than" in failure.value.message
