"""Types through every path (issue 16): each type the docs list, as an input and as an output, gives the same values
in-process, emulated in a subprocess and emulated in the image; a type a task cannot take is refused at definition,
naming the input. One task per task type takes every type and echoes it back, so the matrix is a few runs a path."""

import datetime
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from flytekit import workflow
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.script import ScriptTask
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

from tests.conftest import make_people_db

HERE = Path(__file__).parent / "type_matrix"
UTC = datetime.timezone.utc
FRAME = pd.DataFrame({"n": [1, 2, 3], "name": ["a", "b", "c"]})
JSON_VALUES = {
    "s": "héllo 'world' $HOME",
    "i": 42,
    "x": 2.5,
    "flag": True,
    "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    "day": datetime.date(2024, 2, 29),
    "wait": datetime.timedelta(minutes=90),
    "words": ["a", "b c"],
    "counts": [1, 2],
    "ratios": [0.5, 1.0],
    "d": {"k": [1, "v"], "n": {"m": 2}},
}
TYPES = {
    "s": str,
    "i": int,
    "x": float,
    "flag": bool,
    "when": datetime.datetime,
    "day": datetime.date,
    "wait": datetime.timedelta,
    "words": list[str],
    "counts": list[int],
    "ratios": list[float],
    "d": dict,
    "file": FlyteFile,
    "folder": FlyteDirectory,
    "dataset": StructuredDataset,
    "frame": pd.DataFrame,
    "table": pa.Table,
}
PATHS = ("file", "folder", "dataset", "frame", "table")
ARGV = ["{{.inputs.s}}", "{{.inputs.i}}", "{{.inputs.when}}", "{{.inputs.day}}", "{{.inputs.wait}}", "{{.inputs.d}}"]
# what the command line and $PREBUILT_INPUT_<NAME> carry: a string as is, datetimes in ISO 8601, durations in
# seconds, the rest as JSON
ARGV_TEXT = [
    "héllo 'world' $HOME",
    "42",
    "2024-01-02T03:04:05+00:00",
    "2024-02-29T00:00:00+00:00",
    "5400.0",
    '{"k": [1, "v"], "n": {"m": 2}}',
]
ENV_TEXT = [ARGV_TEXT[0], ARGV_TEXT[2], ARGV_TEXT[3], "5400.0", '["a", "b c"]', ARGV_TEXT[5]]


def echo_task(name="echo", cls=ScriptTask, command=("python", "echo.py"), **kwargs):
    return cls(
        name,
        source=str(HERE / "echo.py"),
        command=[*command, *ARGV],
        inputs=TYPES,
        outputs={**TYPES, "argv": list[str], "env": list[str]},
        artifacts={name: f"out/{name}" for name in PATHS},
        **kwargs,
    )


@pytest.fixture
def values(tmp_path):
    (tmp_path / "folder" / "inner").mkdir(parents=True)
    (tmp_path / "folder" / "a.txt").write_text("A")
    (tmp_path / "folder" / "inner" / "b.txt").write_text("B")
    (tmp_path / "file.txt").write_text("the file")
    return {
        **JSON_VALUES,
        "file": FlyteFile(str(tmp_path / "file.txt")),
        "folder": FlyteDirectory(str(tmp_path / "folder")),
        "dataset": StructuredDataset(dataframe=FRAME),
        "frame": FRAME,
        "table": pa.Table.from_pandas(FRAME),
    }


def plain(name, value):
    """An output as comparable data: a file's text, a folder's files, a dataset's rows."""
    if isinstance(value, FlyteFile):
        return Path(value.download()).read_text()
    if isinstance(value, FlyteDirectory):
        root = Path(value.download())
        return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
    if isinstance(value, StructuredDataset):
        value = value.open(pd.DataFrame).all()
    if isinstance(value, pa.Table):
        value = value.to_pandas()
    if isinstance(value, pd.DataFrame):
        return value.reset_index(drop=True).to_dict("list")
    return value


EXPECTED = {
    **JSON_VALUES,
    "file": "the file",
    "folder": {"a.txt": "A", "inner/b.txt": "B"},
    **{name: FRAME.to_dict("list") for name in ("dataset", "frame", "table")},
    "argv": ARGV_TEXT,
    "env": ENV_TEXT,
}


def as_dict(task, result):
    return dict(zip(task.python_interface.outputs, result))


def assert_echoed(outputs):
    got = {name: plain(name, value) for name, value in outputs.items()}
    assert got == EXPECTED
    assert {name: type(got[name]) for name in JSON_VALUES} == {name: type(v) for name, v in JSON_VALUES.items()}


def test_script_echoes_every_type_in_process(values):
    task = echo_task()
    assert_echoed(as_dict(task, task(**values)))


def test_script_echoes_every_type_emulated(values, tmp_path):
    (tmp_path / "store").mkdir()
    assert_echoed(Emulator(str(tmp_path / "store")).run(echo_task(), values).outputs)


@pytest.mark.docker
def test_script_echoes_every_type_in_the_image(values, tmp_path, script_image):
    """Not run by the helper that wrote it (no image builds there): run with `-m docker`."""
    (tmp_path / "store").mkdir()
    assert_echoed(Emulator(str(tmp_path / "store")).run(echo_task(), values, in_container=True).outputs)


PROJECT = """
project: matrix
tasks:
  - name: echo
    source: echo.py
    command: [python, echo.py, "{{.inputs.s}}", "{{.inputs.i}}", "{{.inputs.when}}", "{{.inputs.day}}"]
    inputs:
      {s: str, i: int, x: float, flag: bool, when: datetime, day: date, words: "list[str]", counts: "list[int]",
       ratios: "list[float]", d: dict, file: file, folder: directory, dataset: dataset}
    outputs:
      {s: str, i: int, x: float, flag: bool, when: datetime, day: date, words: "list[str]", counts: "list[int]",
       ratios: "list[float]", d: dict, file: file, folder: directory, dataset: dataset, argv: "list[str]",
       env: "list[str]"}
    artifacts: {paths: {file: out/file, folder: out/folder, dataset: out/dataset}}
"""


def test_a_project_files_task_echoes_its_types_in_process_and_emulated(values, tmp_path):
    """A project file names the types it takes (docs/project/tasks.md): the same values through its task."""
    from flytekitplugins.prebuilt.project import load

    (tmp_path / "project").mkdir()
    shutil.copy(HERE / "echo.py", tmp_path / "project")
    (tmp_path / "project" / "flyte-prebuilt.yaml").write_text(PROJECT)
    task = load(str(tmp_path / "project")).tasks["echo"]
    given = {name: values[name] for name in task.python_interface.inputs}
    expected = {name: EXPECTED[name] for name in task.python_interface.outputs} | {
        "argv": ARGV_TEXT[:4],
        "env": [ENV_TEXT[0], ENV_TEXT[1], ENV_TEXT[2], ENV_TEXT[4], ENV_TEXT[5]],
    }
    in_process = as_dict(task, task(**given))
    (tmp_path / "store").mkdir()
    emulated = Emulator(str(tmp_path / "store")).run(task, given).outputs
    for outputs in (in_process, emulated):
        assert {name: plain(name, value) for name, value in outputs.items()} == expected


def train_echo():
    """The train type shares the script type's inputs and outputs: one process under torchrun echoes them."""
    from flytekitplugins.prebuilt.train import TrainTask

    return echo_task("train_echo", TrainTask, command=("echo.py",), dependencies="none", processes_per_node=1)


def test_train_echoes_every_type_in_process_and_emulated(values, tmp_path):
    task = train_echo()
    assert_echoed(as_dict(task, task(**values)))
    (tmp_path / "store").mkdir()
    assert_echoed(Emulator(str(tmp_path / "store")).run(task, values).outputs)


@pytest.mark.docker
def test_train_echoes_every_type_in_the_image(values, tmp_path, train_image):
    """Not run by the helper that wrote it (no image builds there): run with `-m docker`."""
    (tmp_path / "store").mkdir()
    assert_echoed(Emulator(str(tmp_path / "store")).run(train_echo(), values, in_container=True).outputs)


@pytest.mark.parametrize(
    "python_type, what",
    [(datetime.timedelta, "inputs.t"), (dict, "inputs.t"), (FlyteFile, "inputs.t"), (StructuredDataset, "inputs.t")],
)
def test_sql_refuses_an_input_it_cannot_bind(tmp_path, python_type, what):
    with pytest.raises(ConfigError) as refused:
        SQLTask("q", "select * from people where x = :t", SQLConfig(url="sqlite://"), inputs={"t": python_type})
    assert what in str(refused.value)


class Opaque:
    pass


def test_script_refuses_what_cannot_travel():
    with pytest.raises(ConfigError, match=r"inputs\.o: .*pass a dataclass as dict"):
        ScriptTask("s", source=str(HERE / "echo.py"), command=["python", "echo.py"], inputs={"o": Opaque})
    with pytest.raises(ConfigError, match=r"outputs\.o: a .*cannot come from a script"):
        ScriptTask("s", source=str(HERE / "echo.py"), command=["python", "echo.py"], outputs={"o": Opaque})
    with pytest.raises(ConfigError, match=r"outputs\.t: .*needs a path in config\.artifacts"):
        ScriptTask("s", source=str(HERE / "echo.py"), command=["python", "echo.py"], outputs={"t": pd.DataFrame})


SQL_TYPES = {
    "i": int,
    "x": float,
    "s": str,
    "flag": bool,
    "when": datetime.datetime,
    "day": datetime.date,
    "ids": list[int],
}
SQL_VALUES = {k: JSON_VALUES[k] for k in ("i", "x", "s", "flag", "when", "day")} | {"ids": [1, 2, 3]}


def sql_echo(db):
    return SQLTask(
        "sql_echo",
        "select :i as i, :x as x, :s as s, :flag as flag, :when as w, :day as day,"
        " (select count(*) from people where id in :ids) as n",
        SQLConfig(url=f"sqlite:///{db}"),
        inputs=SQL_TYPES,
    )


def count_task():
    return ScriptTask(
        "count",
        source=str(HERE / "count"),
        command=["python", "count.py", "{{.inputs.rows}}"],
        inputs={"rows": StructuredDataset},
        outputs={"rows": int},
    )


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    make_people_db(root / "people.db")
    return root


def test_sql_binds_its_input_types_the_same_on_every_path(store):
    task = sql_echo(store / "people.db")
    in_process = plain("results", task(**SQL_VALUES))
    emulated = plain("results", Emulator(str(store)).run(task, SQL_VALUES).outputs["results"])
    assert in_process == emulated
    assert in_process["n"] == [3] and in_process["i"] == [42] and in_process["s"] == [JSON_VALUES["s"]]


@pytest.mark.docker
def test_sql_binds_its_input_types_in_the_image(store, sql_image):
    """Not run by the helper that wrote it (no image builds there): run with `-m docker`."""
    task = sql_echo(store / "people.db")
    (store / "people.db").chmod(0o666)
    emulated = Emulator(str(store)).run(task, SQL_VALUES, in_container=True).outputs["results"]
    assert plain("results", emulated) == plain("results", task(**SQL_VALUES))


def test_sql_results_feed_a_script_in_a_workflow(store, tmp_path, monkeypatch):
    """The obvious pipeline: a query, then a script that reads its results (a local parquet folder) with pyarrow."""
    cache = tmp_path / "env-cache"
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(cache))
    query = SQLTask(
        "adults",
        "select id, name from people where id >= :min_id",
        SQLConfig(url=f"sqlite:///{store / 'people.db'}", rows_per_file=5),  # several parquet files
        inputs={"min_id": int},
    )
    count = count_task()  # its environment (pyarrow) built once, in $PREBUILT_ENV_CACHE

    @workflow
    def pipeline(min_id: int) -> int:
        return count(rows=query(min_id=min_id))

    assert pipeline(min_id=12) == 38
    emulator = Emulator(str(store))
    results = emulator.run(query, {"min_id": 12}).outputs["results"]
    assert emulator.run(count, {"rows": results}).outputs["rows"] == 38


def test_emulated_local_inputs_land_in_the_store(values, tmp_path):
    """A container sees the emulator's store only: a local file, folder or frame given as an input is uploaded there
    (as `pyflyte run --remote` uploads it), not left in this machine's temporary folder."""
    from flytekitplugins.prebuilt.emulator.inputs import input_literals

    store = tmp_path / "store"
    store.mkdir()
    literals = input_literals("echo", {k: values[k] for k in PATHS}, {k: TYPES[k] for k in PATHS}, store=str(store))
    for name, literal in literals.literals.items():
        uri = literal.scalar.blob.uri if literal.scalar.blob else literal.scalar.structured_dataset.uri
        assert Path(uri).is_relative_to(store / "inputs"), name
