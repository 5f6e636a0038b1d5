"""AME's spellings, each written onto config fields of our task types (no second engine, no second definition).

A shorthand applies to every task type whose config has the fields it writes: ``executor`` (a tag naming the
dependency kind, and the command) writes ``dependencies`` and ``command``; ``secrets`` (``injectAs``) writes
``secret_env``; ``environment`` (``key``/``val`` pairs) writes ``env``; ``artifacts`` (``paths``,
``saveChangedFiles``) writes ``artifacts`` and ``changed_files_output`` and declares their outputs. The config's own
fields stay available under their names (``env``, ``dependencies``, ...), except ``artifacts``, whose YAML spelling
is AME's.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Callable

from flytekitplugins.prebuilt.kit.images import IMAGE_PYTHON, IMAGE_PYTHONS

# AME's executor tags -> dependency kinds of the configs with a `dependencies` field (plugins/script/config.py)
EXECUTOR_TAGS = {"!pip": "requirements", "!poetry": "poetry", "!pipenv": "pipenv", "!custom": "none"}
REFUSED_TAGS = {
    "!mlflow": (
        "MLflow projects are not supported: an MLproject's environment (conda.yaml or a Docker image) and its entry "
        "points have no dependency kind here (requirements, poetry, pipenv, none); write the "
        "environment as requirements.txt and use !pip"
    ),
    "!ame": "tags a secret of AME's store, an entry of secrets: - !ame {key: <key>, injectAs: <VARIABLE>}",
    "!vault": "tags a Vault secret, an entry of secrets: - !vault {vault: <name>, key: <path/to/key>, injectAs: ...}",
}
CHANGED_FILES = "changed_files"  # the output saveChangedFiles: true declares


class ShorthandError(ValueError):
    """A shorthand's value is wrong; ``path`` is relative to the task (``("executor", "pythonVersion")``)."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Expanded:
    """What a shorthand writes: config field values, task keywords, outputs it declares."""

    fields: dict[str, Any]
    keywords: dict[str, Any]
    outputs: dict[str, str]


@dataclass(frozen=True)
class Shorthand:
    key: str
    writes: tuple[str, ...]  # the config fields it writes: it applies to a type whose config has them all
    schema: dict
    expand: Callable[[Any, str], Expanded]  # (value, tag) -> what it writes

    def applies_to(self, config_fields) -> bool:
        return all(name in config_fields for name in self.writes)


def split_command(command: Any, shell: bool = False) -> tuple[str, ...]:
    """An argv from a list, or from one string split as a shell would (``shlex``; nothing runs a shell)."""
    if isinstance(command, str):
        return (command,) if shell else tuple(shlex.split(command))
    return tuple(str(part) for part in command)


def _executor(value: Any, tag: str) -> Expanded:
    version = value.get("pythonVersion")
    patch = re.fullmatch(r"(\d+\.\d+)\.\d+", version) if isinstance(version, str) else None
    version = patch.group(1) if patch else version  # AME's 3.10.9: the image of that minor version runs it
    if version is not None and str(version) not in IMAGE_PYTHONS:
        hint = " (write versions as strings: '3.10' is not 3.1)" if not isinstance(version, str) else ""
        raise ShorthandError(
            ("executor", "pythonVersion"),
            f"{version}: the images are built for Python {', '.join(IMAGE_PYTHONS)} (default {IMAGE_PYTHON}){hint}",
        )
    keywords = {"container_image": value["image"]} if value.get("image") else {}
    if version is not None and str(version) != IMAGE_PYTHON:  # the image of that Python (python_version=)
        keywords["python_version"] = str(version)
    return Expanded({"dependencies": EXECUTOR_TAGS[tag], "command": value["command"]}, keywords, {})


def _secrets(value: Any, tag: str) -> Expanded:
    secrets = {}
    for index, item in enumerate(value):
        name = item["injectAs"]
        if name in secrets:
            raise ShorthandError(("secrets", index, "injectAs"), f"{name!r} is injected twice")
        secrets[name] = {k: item[k] for k in ("group", "key", "group_version") if k in item}
    return Expanded({"secret_env": secrets}, {}, {})


def _environment(value: Any, tag: str) -> Expanded:
    return Expanded({"env": {item["key"]: str(item["val"]) for item in value}}, {}, {})


def _artifacts(value: Any, tag: str) -> Expanded:
    paths = value.get("paths") or {}
    if isinstance(paths, list):  # AME's list of paths: the output is named after the path's last part
        named = {}
        for index, path in enumerate(paths):
            name = re.sub(r"\W", "_", path.rstrip("/").rsplit("/", 1)[-1].split(".")[0]) or f"artifact{index}"
            if name in named:
                raise ShorthandError(("artifacts", "paths", index), f"two paths would both be output {name!r}")
            named[name] = path
        paths = named
    outputs = {name: "directory" if path.endswith("/") or "." not in path.rsplit("/", 1)[-1] else "file"
               for name, path in paths.items()}  # fmt: skip
    fields: dict[str, Any] = {"artifacts": {name: path.rstrip("/") or path for name, path in paths.items()}}
    changed = value.get("saveChangedFiles", False)
    if changed:
        name = CHANGED_FILES if changed is True else changed
        fields["changed_files_output"], outputs[name] = name, "directory"
    return Expanded(fields, {}, outputs)


_NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "x-expected": "a name made of letters, digits, _"}
_ENV_NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "x-expected": "an environment variable name"}

SHORTHANDS = (
    Shorthand(
        "executor",
        ("dependencies", "command"),
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["command"],
            "properties": {
                "pythonVersion": {
                    "type": ["string", "number"],
                    "description": f"the image's Python: {', '.join(IMAGE_PYTHONS)} (default {IMAGE_PYTHON})",
                },
                "command": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "image": {"type": "string", "description": "run in this image instead of the type's"},
            },
            "description": "AME's executor: !pip (requirements.txt), !poetry (poetry.lock), !pipenv (Pipfile.lock) "
            "or !custom (no dependencies), and the command",
        },
        _executor,
    ),
    Shorthand(
        "secrets",
        ("secret_env",),
        {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "injectAs"],
                "properties": {
                    "group": {"type": "string"},
                    "key": {"type": "string"},
                    "group_version": {"type": "string"},
                    "injectAs": {**_ENV_NAME, "description": "the environment variable that holds the secret"},
                },
            },
            "description": "Flyte secrets injected as environment variables (masked in the output)",
        },
        _secrets,
    ),
    Shorthand(
        "environment",
        ("env",),
        {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "val"],
                "properties": {"key": _ENV_NAME, "val": {"type": ["string", "number", "boolean"]}},
            },
            "description": "AME's environment variables (key/val pairs); env: is the same as a mapping",
        },
        _environment,
    ),
    Shorthand(
        "artifacts",
        ("artifacts", "changed_files_output"),
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "paths": {
                    "anyOf": [
                        {"type": "array", "items": {"type": "string"}},
                        {"type": "object", "propertyNames": _NAME, "additionalProperties": {"type": "string"}},
                    ],
                    "description": "files or folders (ending in /) saved as outputs: a list (named after their last "
                    "part) or output name -> path",
                },
                "saveChangedFiles": {
                    "anyOf": [{"type": "boolean"}, _NAME],
                    "description": f"created or changed files, as a folder output ({CHANGED_FILES!r} or this name)",
                },
            },
        },
        _artifacts,
    ),
)
