"""Contract guarantees on the execution paths: templates serialized by release 0.1.0 still run, and a declared input
that was not given fails before anything runs, naming it (upstream raises too; it used to bind NULL silently)."""

from pathlib import Path

import pandas as pd
import pytest
from flyteidl.core import tasks_pb2
from flytekit.models.task import TaskTemplate
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

TEMPLATES = Path(__file__).parent / "templates"


def template_of_0_1_0(task_type: str) -> TaskTemplate:
    """Written by release 0.1.0's Emulator.template(...) (see git history) and never regenerated."""
    proto = tasks_pb2.TaskTemplate()
    proto.ParseFromString((TEMPLATES / f"{task_type}_template_0.1.0.pb").read_bytes())
    return TaskTemplate.from_flyte_idl(proto)


def test_a_0_1_0_sql_template_runs(tmp_path):
    run = Emulator(str(tmp_path)).run(
        template_of_0_1_0("sql"), {"n": 21, "name": "ada"}, python_types={"results": pd.DataFrame}
    )
    assert run.outputs["results"].to_dict("records") == [{"doubled": 42, "name": "ada"}]


def test_a_0_1_0_sql_template_runs_in_the_image(tmp_path, sql_image):
    run = Emulator(str(tmp_path)).run(
        template_of_0_1_0("sql"),
        {"n": 21, "name": "ada"},
        image=sql_image,
        in_container=True,
        python_types={"results": pd.DataFrame},
    )
    assert run.outputs["results"].to_dict("records") == [{"doubled": 42, "name": "ada"}]


def test_a_0_1_0_script_template_runs(tmp_path):
    run = Emulator(str(tmp_path)).run(template_of_0_1_0("script"), {"n": 5, "name": "ada"})
    assert run.outputs == {"tripled": 15, "greeting": "hello ada"}


def missing_input_task():
    return SQLTask(
        "big_orders",
        "select :min_amount as m where :min_amount is not null",
        SQLConfig(url="sqlite://"),
        inputs={"min_amount": float},
        output_schema_type=None,
    )


def test_a_missing_input_fails_in_process_naming_it():
    with pytest.raises(Exception, match="input 'min_amount' was not given a value"):
        missing_input_task()()


def test_a_missing_input_fails_emulated_as_a_user_error(tmp_path):
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(tmp_path)).run(missing_input_task(), {})
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    assert "input 'min_amount' was not given a value" in failure.value.message
