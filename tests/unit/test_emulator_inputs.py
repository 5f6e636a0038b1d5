"""The emulator refuses inputs as Flyte Admin does, naming the input, before anything runs."""

import pytest
from flytekitplugins.prebuilt.emulator import InputError
from flytekitplugins.prebuilt.emulator.inputs import input_literals


def test_values_of_the_declared_types_become_literals():
    literals = input_literals("t", {"n": 3, "xs": [1, 2]}, {"n": int, "xs": list[int]}).literals
    assert literals["n"].scalar.primitive.integer == 3
    assert [x.scalar.primitive.integer for x in literals["xs"].collection.literals] == [1, 2]


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"m": 1}, "t has no input 'm'; its inputs are n (int), xs (list[int])"),
        ({"n": "three"}, "input 'n': 'three' is not a valid int"),
        ({"xs": "1,2"}, "input 'xs': '1,2' is not a valid list[int]"),
    ],
)
def test_an_unknown_input_or_a_wrong_value_is_an_input_error(inputs, message):
    with pytest.raises(InputError) as error:
        input_literals("t", inputs, {"n": int, "xs": list[int]})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_refused_value_says_why_not_an_asyncio_repr():
    """flytekit 1.16's ``TypeEngine.dict_to_literal_map`` reports a failed input as ``Received: <class
    '_asyncio.Task'>``; the error names the value and the type engine's reason instead."""
    with pytest.raises(InputError) as error:
        input_literals("t", {"names": "ada"}, {"names": list[str]})
    said = str(error.value)
    assert said.startswith("input 'names': 'ada' is not a valid list[str]")
    assert "Task" not in said and "coro" not in said and "not of container type" in said
