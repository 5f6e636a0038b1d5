"""An unknown name given to ``flyte-prebuilt`` is a one-line mistake (exit code 2) that lists the names there are,
as ``run`` does for a module's tasks: a project's tasks and pipelines, a bundle store's tasks."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from flytekitplugins.prebuilt.cli import main

PROJECT = Path(__file__).resolve().parents[2] / "examples" / "project"


def mistake(*args) -> str:
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("command", ["run", "show"])
def test_an_unknown_project_entity_lists_those_there_are(command):
    said = mistake("project", command, "big_order", "-f", PROJECT)
    assert said.startswith("Error: project 'shop' has no task or pipeline 'big_order' (did you mean 'big_orders'?)")
    assert said.endswith("; its tasks and pipelines are: big_orders, extract, count, total, summary, report, nightly")


@pytest.fixture
def store(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "main.py").write_text("print('hi')\n")
    pushed = CliRunner().invoke(main, ["bundle", "push", str(source), str(tmp_path / "store"), "count"])
    assert pushed.exit_code == 0, pushed.output
    return tmp_path / "store"


def test_bundle_list_of_a_task_with_versions(store):
    listed = CliRunner().invoke(main, ["bundle", "list", str(store), "count"])
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == 1


def test_bundle_list_of_an_unknown_task_lists_the_stores_tasks(store, tmp_path):
    assert (
        mistake("bundle", "list", store, "cuont") == f"Error: {store} has no bundles of 'cuont'; its tasks are: count"
    )
    empty = tmp_path / "empty"
    assert mistake("bundle", "list", empty, "count") == f"Error: {empty} has no bundles of 'count'; its tasks are: none"


def test_a_task_is_found_by_its_variable_or_by_its_name(tmp_path, monkeypatch):
    """Upstream's examples name a task by its ``name=`` (``sqlite3.sample``); ``pyflyte run`` by its variable."""
    (tmp_path / "snacks.py").write_text(
        "from flytekit import kwtypes\n"
        "from flytekitplugins.prebuilt.sql import SQLite3Config, SQLite3Task\n\n"
        "sql_task = SQLite3Task(\n"
        "    name='sqlite3.sample', query_template='select 1 as one limit {{.inputs.limit}}',\n"
        "    inputs=kwtypes(limit=int), task_config=SQLite3Config(uri='/data/chinook.db'),\n"
        ")\n"
    )
    monkeypatch.chdir(tmp_path)
    by_variable = CliRunner().invoke(main, ["identity", "snacks.py", "sql_task"])
    by_name = CliRunner().invoke(main, ["identity", "snacks.py", "sqlite3.sample"])
    assert by_variable.exit_code == 0 and by_name.output == by_variable.output, by_name.output
    said = mistake("identity", "snacks.py", "sqlite3.other")
    assert said.endswith("has no 'sqlite3.other'; its prebuilt tasks are: sql_task (name 'sqlite3.sample')")
