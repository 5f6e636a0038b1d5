"""Failures the emulator reports as Flyte does, so a task's retries are spent only where they can help: the task's
own ``timeout`` ends an attempt as a USER ``TimeoutExpired`` that is retried (flytepropeller's execution deadline);
an error's code and the first word of its message agree."""

import datetime

import pytest
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask
from flytekitplugins.prebuilt.sql import SQLTask

from tests.conftest import make_people_db

SLEEP = "import time\ntime.sleep(600)\n"


def script(tmp_path, text, **keywords):
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "main.py").write_text(text)
    return ScriptTask(
        "main", source=str(source), command=["python", "main.py"], preset=ScriptPreset.of(dependencies="none"),
        **keywords,
    )  # fmt: skip


@pytest.fixture
def emulator(tmp_path):
    (tmp_path / "store").mkdir()
    return Emulator(str(tmp_path / "store"))


def test_the_tasks_timeout_ends_each_attempt_as_a_user_timeout_that_is_retried(tmp_path, emulator):
    task = script(tmp_path, SLEEP, timeout=datetime.timedelta(seconds=2), retries=1)
    with pytest.raises(TaskFailed) as failure:
        emulator.run(task)
    assert (failure.value.origin, failure.value.kind, failure.value.code) == ("USER", "RECOVERABLE", "TimeoutExpired")
    assert failure.value.message == "task execution timeout [2s] expired"
    assert failure.value.attempts == 2  # the timed-out attempt counts against the task's retries


def test_an_errors_code_and_the_first_word_of_its_text_agree(tmp_path, emulator):
    db = make_people_db(tmp_path / "people.db", rows=1)
    task = SQLTask("reads", "select * from missing", url=f"sqlite:///{db}")
    with pytest.raises(TaskFailed) as failure:
        emulator.run(task)
    code = failure.value.code
    assert code.startswith("USER:") and code != "USER:RuntimeError"
    # the error document's traceback ends with the exception's text: its code, not flytekit's USER:RuntimeError
    assert f"UserFailure: {code}: " in failure.value.message
    assert "USER:RuntimeError" not in failure.value.message
