"""The types a script's inputs and outputs may have, checked at definition time (docs/script/running.md, "Types").

A script is a process: its inputs reach it as text (arguments, environment variables, a JSON file) or local paths,
its outputs come back from a JSON file or from paths it writes. A type that cannot travel either way is refused
here, naming the input or output and saying what to use, instead of failing at run time.
"""

from __future__ import annotations

import datetime
import typing
from typing import Any

from flytekit.core.type_engine import TypeEngine
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.kit.config import ConfigError

SCALARS = (str, int, float, bool, datetime.datetime, datetime.date, datetime.timedelta)  # as text / JSON values
JSON_TYPES = (*SCALARS, list, dict)
JSON_NAMES = "str, int, float, bool, datetime, date, timedelta, list[...] or dict of those"


def is_subclass(python_type: Any, base: type) -> bool:
    origin = typing.get_origin(python_type) or python_type
    return isinstance(origin, type) and issubclass(origin, base)


def is_file_type(python_type: Any) -> bool:
    return is_subclass(python_type, FlyteFile) or is_subclass(python_type, FlyteDirectory)


def is_dataset_type(python_type: Any) -> bool:
    """A StructuredDataset, or a frame flytekit converts into one (pandas ``DataFrame``, ``pyarrow.Table``)."""
    try:
        return TypeEngine.to_literal_type(python_type).structured_dataset_type is not None
    except Exception:  # no transformer: not a dataset (the caller names the type)
        return False


def is_json_type(python_type: Any) -> bool:
    """A value that a JSON document carries: a scalar, or a ``list``/``dict`` (bare or typed) of JSON values."""
    origin = typing.get_origin(python_type) or python_type
    if origin in SCALARS:
        return True
    if origin not in (list, dict):
        return False
    return all(is_json_type(argument) for argument in typing.get_args(python_type))


def check_input(name: str, python_type: Any) -> None:
    if is_json_type(python_type) or is_file_type(python_type) or is_dataset_type(python_type):
        return
    raise ConfigError(
        f"inputs.{name}",
        f"a {_name(python_type)} cannot reach a script; its inputs are {JSON_NAMES} (as text or JSON), FlyteFile, "
        "FlyteDirectory or a StructuredDataset (a local path): pass a dataclass as dict, files as a FlyteDirectory",
    )


def check_output(name: str, python_type: Any, is_artifact: bool) -> None:
    if is_artifact:
        if not (is_file_type(python_type) or is_dataset_type(python_type)):
            raise ConfigError(
                f"outputs.{name}", "an artifact output must be FlyteFile, FlyteDirectory or a StructuredDataset"
            )
        return
    if is_file_type(python_type) or is_dataset_type(python_type):
        raise ConfigError(
            f"outputs.{name}",
            "a FlyteFile, FlyteDirectory or StructuredDataset output needs a path in config.artifacts "
            "(a dataset's: a parquet file or folder)",
        )
    if not is_json_type(python_type):
        raise ConfigError(
            f"outputs.{name}",
            f"a {_name(python_type)} cannot come from a script; outputs read from the JSON outputs file are "
            f"{JSON_NAMES}; files, folders and datasets are artifacts",
        )


def _name(python_type: Any) -> str:
    if isinstance(python_type, type) and not typing.get_args(python_type):
        return python_type.__name__
    return str(python_type).replace("typing.", "")
