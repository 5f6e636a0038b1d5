"""A script's inputs as text and local paths, its outputs back as typed values (docs/script/running.md, "Types").

Inputs: a FlyteFile or FlyteDirectory is downloaded and becomes its local path; a StructuredDataset is downloaded
into a local folder of its (parquet) files and becomes that folder's path; every other value is text: a string as
is, a datetime or date in ISO 8601, a duration in seconds, anything else as JSON (in which datetimes and durations
are written the same way). Outputs read from the
outputs file are turned back into the declared type the same way (an ISO string into a datetime, seconds into a
timedelta); the kit converts them to literals by that type (``kit.executor.output_literals``).
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import typing
from pathlib import Path
from typing import Any

from flytekit.core.context_manager import FlyteContextManager
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError


def local(value: Any, work: Path) -> Any:
    """Files, directories and datasets as local paths (downloaded under ``work``); everything else as is."""
    if isinstance(value, (FlyteFile, FlyteDirectory)):
        return value.download()
    if isinstance(value, StructuredDataset):
        return download_dataset(value, work)
    return value


def download_dataset(dataset: StructuredDataset, work: Path) -> str:
    """The dataset's files in a new folder under ``work``: its uri is a folder of parquet files (what flytekit's
    encoders and the sql type write) or one file, which lands in the folder."""
    uri = dataset.uri or (dataset.literal.uri if dataset.literal else "")  # an input: its literal has it
    if not uri:
        raise UserError("a StructuredDataset input without a uri (a dataframe in memory) cannot reach a script")
    file_access = FlyteContextManager.current_context().file_access
    folder = Path(tempfile.mkdtemp(prefix="dataset-", dir=work))
    try:
        if file_access.get_filesystem_for_path(uri).isdir(uri):
            file_access.get_data(uri, str(folder), is_multipart=True)
        else:
            file_access.get_data(uri, str(folder / os.path.basename(uri.rstrip("/"))))
    except Exception as error:
        raise TransientError(f"cannot download the dataset {uri}: {error}") from None
    return str(folder)


def jsonable(value: Any) -> Any:
    """``value`` with datetimes and dates as ISO 8601 strings and durations as seconds, at any depth."""
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def text(value: Any) -> str:
    """An input as the text of an argument or environment variable: a string as is, a datetime or date in ISO 8601
    and a duration in seconds without quotes (``--since {{.inputs.when}}``), anything else as JSON."""
    if isinstance(value, (datetime.datetime, datetime.date, datetime.timedelta)):
        return str(jsonable(value))
    return value if isinstance(value, str) else json.dumps(jsonable(value))


def typed(name: str, value: Any, python_type: Any) -> Any:
    """An output from the outputs file as ``python_type``: ISO strings as datetimes, seconds as durations, an
    integer as a float, at any depth of a typed list or dict; a value of another JSON type is refused, naming the
    output."""
    base = typing.get_origin(python_type) or python_type
    try:
        if base is datetime.datetime and isinstance(value, str):
            return datetime.datetime.fromisoformat(value)
        if base is datetime.date and isinstance(value, str):
            return datetime.date.fromisoformat(value)
        if base is datetime.timedelta and _is_number(value):
            return datetime.timedelta(seconds=value)
    except ValueError as error:
        raise UserError(f"output {name!r}: {value!r} is not a valid {base.__name__} ({error})") from None
    if base is float and _is_number(value):
        return float(value)
    if base in (int, float, str, bool, list, dict) and not isinstance(value, base):
        raise UserError(f"output {name!r}: expected {base.__name__}, the outputs file has {type(value).__name__}")
    arguments = typing.get_args(python_type)
    if base is list and arguments:
        return [typed(f"{name}[{i}]", item, arguments[0]) for i, item in enumerate(value)]
    if base is dict and len(arguments) == 2:
        return {key: typed(f"{name}.{key}", item, arguments[1]) for key, item in value.items()}
    if base in (datetime.datetime, datetime.date, datetime.timedelta):
        wanted = "seconds (a number)" if base is datetime.timedelta else "an ISO 8601 string"
        raise UserError(f"output {name!r}: a {base.__name__} is written as {wanted}, the outputs file has {value!r}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
