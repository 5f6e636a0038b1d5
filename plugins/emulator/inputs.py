"""A run's inputs as Flyte Admin accepts them: only inputs the task declares, each of a value its type takes.

Admin refuses such a launch before anything runs; so does the emulator, naming the input, instead of a
``KeyError`` or a type-engine traceback from deep inside the run.
"""

from __future__ import annotations

import typing
from typing import Any

from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.models import literals


class InputError(TypeError):
    """An input the task does not take, or a value its type does not accept."""


def input_literals(task_name: str, inputs: dict[str, Any], types: dict[str, Any]) -> literals.LiteralMap:
    """``inputs`` (Python values) as the LiteralMap written to ``inputs.pb``; ``InputError`` naming a bad one."""
    ctx = FlyteContextManager.current_context()
    converted = {}
    for name, value in inputs.items():
        if name not in types:
            raise InputError(f"{task_name} has no input {name!r}; its inputs are {describe(types)}")
        try:  # one at a time: flytekit 1.16's dict_to_literal_map reports a failure as its asyncio.Task's repr
            converted[name] = TypeEngine.to_literal(ctx, value, types[name], TypeEngine.to_literal_type(types[name]))
        except Exception as error:
            detail = " ".join(str(error).split())
            raise InputError(f"input {name!r}: {value!r} is not a valid {type_name(types[name])} ({detail})") from None
    return literals.LiteralMap(converted)


def describe(types: dict[str, Any]) -> str:
    """``n (int), day (date)``."""
    return ", ".join(f"{name} ({type_name(python_type)})" for name, python_type in types.items()) or "none"


def type_name(python_type: Any) -> str:
    if isinstance(python_type, type) and not typing.get_args(python_type):
        return python_type.__name__
    return str(python_type).replace("typing.", "")
