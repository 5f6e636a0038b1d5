"""A run's inputs as Flyte Admin accepts them: only inputs the task declares, each of a value its type takes.

Admin refuses such a launch before anything runs; so does the emulator, naming the input, instead of a
``KeyError`` or a type-engine traceback from deep inside the run.

A local file, folder or dataframe given as an input is offloaded where the pod can read it: into the object store
(``store``), as ``pyflyte run --remote`` uploads it before the launch. Left in this machine's temporary folder, a
container (which sees the store only) would find no file at the path its inputs name.
"""

from __future__ import annotations

import os
import typing
from typing import Any, Optional

from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.data_persistence import FileAccessProvider
from flytekit.core.type_engine import TypeEngine
from flytekit.models import literals
from flytekit.utils.asyn import loop_manager


class InputError(TypeError):
    """An input the task does not take, or a value its type does not accept."""


def input_literals(
    task_name: str, inputs: dict[str, Any], types: dict[str, Any], store: Optional[str] = None
) -> literals.LiteralMap:
    """``inputs`` (Python values) as the LiteralMap written to ``inputs.pb``; ``InputError`` naming a bad one. With
    ``store``, local files, folders and dataframes are written under ``<store>/inputs``."""
    if store is not None:
        with FlyteContextManager.with_context(_offloading_to(os.path.join(store, "inputs"))):
            return input_literals(task_name, inputs, types)
    ctx = FlyteContextManager.current_context()
    converted = {}
    for name, value in inputs.items():
        if name not in types:
            raise InputError(f"{task_name} has no input {name!r}; its inputs are {describe(types)}")
        try:  # one at a time: flytekit 1.16's dict_to_literal_map reports a failure as its asyncio.Task's repr.
            # Not TypeEngine.to_literal: it caches literals by the value's content, and a frame given to an earlier
            # run would get that run's uri, in another store (one a container of this run does not see)
            expected = TypeEngine.to_literal_type(types[name])
            converted[name] = loop_manager.synced(TypeEngine.async_to_literal)(ctx, value, types[name], expected)
        except Exception as error:
            detail = " ".join(str(error).split())
            raise InputError(f"input {name!r}: {value!r} is not a valid {type_name(types[name])} ({detail})") from None
    return literals.LiteralMap(converted)


def _offloading_to(prefix: str):
    """The current context, with uploads (flytekit's ``put_raw_data``, a dataframe's encoder) going under ``prefix``."""
    ctx = FlyteContextManager.current_context()
    current = ctx.file_access
    file_access = FileAccessProvider(
        local_sandbox_dir=current.local_sandbox_dir, raw_output_prefix=prefix, data_config=current.data_config
    )
    return ctx.with_file_access(file_access)


def describe(types: dict[str, Any]) -> str:
    """``n (int), day (date)``."""
    return ", ".join(f"{name} ({type_name(python_type)})" for name, python_type in types.items()) or "none"


def type_name(python_type: Any) -> str:
    if isinstance(python_type, type) and not typing.get_args(python_type):
        return python_type.__name__
    return str(python_type).replace("typing.", "")
