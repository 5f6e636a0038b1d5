"""``--input NAME=VALUE`` as a task's typed inputs (plugins/command_line.py): lists as pyflyte run reads them
(flytekit's ``JsonParamType``) or one element per repeated option; a refused value is one line naming the input."""

import dataclasses
import datetime

import pytest
from flytekit import task
from flytekitplugins.prebuilt.command_line import UserMistake, task_inputs


@dataclasses.dataclass
class Window:
    start: str
    days: int


@pytest.fixture(scope="module")
def greet():
    """A task with one input of each kind the command line parses (a dataclass too: another task type, or a user's
    own, may take one; a script task refuses it at definition), as flytekit's ``@task`` declares them."""

    @task
    def greet(
        names: list[str],
        counts: list[int],
        days: list[datetime.date],
        limits: dict[str, int],
        window: Window,
        n: int,
    ) -> str:
        return "hello"

    return greet


OTHERS = {"names": "[]", "counts": "[]", "days": "[]", "limits": "{}", "window": '{"start":"a","days":1}', "n": "1"}


def given(task, *options):
    """``task_inputs`` of ``options``, the task's other inputs given as empty lists, an empty dict, ..."""
    named = {option.split("=", 1)[0] for option in options}
    return task_inputs(task, [*options, *(f"{n}={v}" for n, v in OTHERS.items() if n not in named)])


@pytest.mark.parametrize(
    "options, names",
    [
        (['names=["ada","bob"]'], ["ada", "bob"]),  # a JSON list, as pyflyte run takes it
        (["names=ada", "names=bob"], ["ada", "bob"]),  # one element per option
        (["names=ada"], ["ada"]),
        (["names=[]"], []),
    ],
)
def test_a_list_of_strings(greet, options, names):
    assert given(greet, *options)["names"] == names


def test_repeated_elements_are_parsed_as_the_element_type(greet):
    values = given(greet, "counts=1", "counts=2", "days=2024-01-31")
    assert values["counts"] == [1, 2] and values["days"] == [datetime.date(2024, 1, 31)]


def test_dicts_and_dataclasses_as_json(greet):
    values = given(greet, "counts=[3]", 'limits={"a": 1}', 'window={"start":"x","days":2}')
    assert values["counts"] == [3] and values["limits"] == {"a": 1} and values["window"] == Window("x", 2)


@pytest.mark.parametrize(
    "options, said",
    [
        (["counts=one"], "--input counts=one: expected an integer, e.g. 3"),
        (["limits=a:1"], "--input limits=a:1: expected dict[str, int] as JSON (or a JSON/YAML file)"),
        (["n=1", "n=2"], "--input n is given 2 times; it is an integer, not a list"),
        (['counts=["x"]'], "input 'counts': ['x'] is not a valid list[int]"),
    ],
)
def test_a_refused_value_names_the_input(greet, options, said):
    with pytest.raises(Exception) as error:
        given(greet, *options)
    message = str(error.value) if not isinstance(error.value, UserMistake) else error.value.message
    assert message.startswith(said) and "\n" not in message and "Task" not in message
