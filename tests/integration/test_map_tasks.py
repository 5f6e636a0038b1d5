"""`map_task` over an SQLTask and a ScriptTask: locally (a workflow in this process, and `pyflyte run`: element by
element), under the emulator (an ArrayNode as flytepropeller's array handler runs it: one `pyflyte-map-execute` per
element, the index in `FLYTE_K8S_ARRAY_INDEX`) and in the image; one failing element under `min_success_ratio` leaves
None in its place, and fails the node when the ratio does not allow it."""

import functools
import os
import subprocess
import sys
import typing

import pandas as pd
import pytest
from flytekit import workflow
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.emulator.array_node import ArrayNodeFailed
from flytekitplugins.prebuilt.map import map_task
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask
from flytekitplugins.prebuilt.sql import SQLTask

from tests.conftest import make_people_db

TABLES = ["people", "missing", "people"]  # element 1 fails: no such table

STEP = """\
import json, os, sys
n, offset = int(sys.argv[1]), int(os.environ["PREBUILT_INPUT_OFFSET"])
if n < 0:
    sys.exit(f"cannot take the square of a negative input: {n}")
index = int(os.environ.get(os.environ.get("BATCH_JOB_ARRAY_INDEX_VAR_NAME", "-"), "-1"))
with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as f:
    json.dump({"square": n * n + offset, "index": index}, f)
"""


PYFLYTE_MODULE = """\
import typing
import pandas as pd
from flytekit import task, workflow
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.map import map_task
from flytekitplugins.prebuilt.sql import SQLTask

count_rows = SQLTask("count_rows", "select count(*) as n from {{{{ .inputs.table | identifier }}}}",
                     url="sqlite:///{db}", inputs={{"table": str}})
tolerant = map_task(count_rows, min_success_ratio=0.5)

@task
def numbers(results: list[typing.Optional[StructuredDataset]]) -> list[typing.Optional[int]]:
    return [None if r is None else int(r.open(pd.DataFrame).all()["n"][0]) for r in results]

@workflow
def counts(tables: list[str]) -> list[typing.Optional[int]]:
    return numbers(results=tolerant(table=tables))
"""


@pytest.fixture
def store(tmp_path):
    """An emulator storage root that also holds the database, so the image sees it at the same path."""
    root = tmp_path / "store"
    root.mkdir()
    db = make_people_db(root / "people.db", rows=7)
    os.chmod(db, 0o666)
    return root, db


def count_rows(db, **keywords):
    return SQLTask(
        "count_rows", "select count(*) as n from {{ .inputs.table | identifier }}", url=f"sqlite:///{db}",
        inputs={"table": str}, **keywords,
    )  # fmt: skip


def squares(tmp_path):
    source = tmp_path / "step"
    source.mkdir(exist_ok=True)
    (source / "step.py").write_text(STEP)
    return ScriptTask(
        "square",
        source=str(source),
        command=["python", "step.py", "{{.inputs.n}}"],
        inputs={"n": int, "offset": int},
        outputs={"square": int, "index": int},
        preset=ScriptPreset.of(dependencies="none", deadline_seconds=60),
    )


def counts(results):
    return [None if r is None else int(r.open(pd.DataFrame).all()["n"][0]) for r in results]


def test_sql_locally_in_a_workflow_a_failing_element_is_none_under_the_ratio(store):
    _, db = store
    tolerant = map_task(count_rows(db), min_success_ratio=0.5)
    strict = map_task(count_rows(db))

    @workflow
    def tolerant_wf(tables: list[str]) -> list[typing.Optional[StructuredDataset]]:
        return tolerant(table=tables)

    @workflow
    def strict_wf(tables: list[str]) -> list[StructuredDataset]:
        return strict(table=tables)

    assert counts(tolerant_wf(tables=TABLES)) == [7, None, 7]
    assert counts(strict_wf(tables=["people", "people"])) == [7, 7]
    with pytest.raises(Exception, match="missing"):
        strict_wf(tables=TABLES)


def test_sql_with_pyflyte_run(store, tmp_path):
    _, db = store
    (tmp_path / "wf_map.py").write_text(PYFLYTE_MODULE.format(db=db))
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "pyflyte"), "run", "wf_map.py", "counts",
         "--tables", '["people", "missing"]'],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[7, None]" in done.stdout


def test_sql_emulated_one_pod_per_element_as_the_array_handler_runs_them(store):
    root, db = store
    run = Emulator(str(root)).run(map_task(count_rows(db), min_success_ratio=0.5), {"table": TABLES})
    assert counts(run.outputs["results"]) == [7, None, 7]
    failed = run.elements[1]
    assert isinstance(failed, TaskFailed) and failed.origin == "USER" and "missing" in failed.message
    assert "outputs.pb" in run.files  # the ArrayNode's gathered outputs, nil where element 1 failed
    assert run.literals.literals["results"].collection.literals[1].scalar.none_type is not None


def test_sql_emulated_the_node_fails_when_the_ratio_cannot_be_met_and_stops_starting_elements(store):
    root, db = store
    with pytest.raises(ArrayNodeFailed) as failure:
        Emulator(str(root)).run(map_task(count_rows(db), concurrency=1), {"table": ["missing", "people"]})
    assert failure.value.message.startswith("[0]: ") and "missing" in failure.value.message
    assert isinstance(failure.value.elements[0], TaskFailed)
    assert failure.value.elements[1] is None  # never started: one at a time, and the node was already failing


def test_script_fans_out_locally_with_a_bound_input(tmp_path):
    mapped = map_task(functools.partial(squares(tmp_path), offset=1), min_success_ratio=0.5)

    @workflow
    def wf(ns: list[int]) -> list[typing.Optional[int]]:
        square, _ = mapped(n=ns)
        return square

    assert wf(ns=[2, -1, 3]) == [5, None, 10]
    square, index = mapped(n=[4], offset=0)
    assert (square, index) == ([16], [-1])  # no array index in a local run


def test_script_emulated_each_element_sees_its_index_and_item(tmp_path):
    (tmp_path / "store").mkdir()
    mapped = map_task(functools.partial(squares(tmp_path), offset=0), min_success_ratio=0.5)
    run = Emulator(str(tmp_path / "store")).run(mapped, {"n": [3, -2, 5], "offset": 0})
    assert run.outputs == {"square": [9, None, 25], "index": [0, None, 2]}
    assert "cannot take the square of a negative input: -2" in run.elements[1].message


def test_script_in_the_image(tmp_path, script_image):
    (tmp_path / "store").mkdir()
    mapped = map_task(squares(tmp_path), min_successes=1)
    run = Emulator(str(tmp_path / "store")).run(mapped, {"n": [-1, 4], "offset": [0, 1]}, in_container=True)
    assert run.outputs == {"square": [None, 17], "index": [None, 1]}
    assert isinstance(run.elements[0], TaskFailed) and run.elements[0].origin == "USER"


def test_script_emulated_a_partials_bound_input_reaches_every_element(tmp_path):
    (tmp_path / "store").mkdir()
    mapped = map_task(functools.partial(squares(tmp_path), offset=1))
    run = Emulator(str(tmp_path / "store")).run(mapped, {"n": [2, 3]})  # offset: bound, not given again
    assert run.outputs == {"square": [5, 10], "index": [0, 1]}


def test_sql_emulated_without_concurrency_at_most_one_element_per_cpu_runs_at_once(store, monkeypatch):
    root, db = store
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # a one-CPU machine
    run = Emulator(str(root)).run(map_task(count_rows(db)), {"table": ["people"] * 3})
    assert counts(run.outputs["results"]) == [7, 7, 7]
    assert run.peak_running == 1


def test_more_min_successes_than_elements_fails_the_node_before_any_element_runs(store):
    root, db = store
    mapped = map_task(count_rows(db), min_successes=3)
    with pytest.raises(ArrayNodeFailed, match="min_successes is 3 but the map has 2 element") as failure:
        Emulator(str(root)).run(mapped, {"table": ["people", "people"]})
    assert failure.value.elements == [None, None] and failure.value.origin == "USER"
    with pytest.raises(ValueError, match="min_successes is 3 but the map has 2 element"):
        mapped(table=["people", "people"])  # locally too
