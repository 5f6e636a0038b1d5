"""A task entry as the task the Python API builds: its type's task class, called as a user would.

The keys every task has are the same keyword arguments for every type (``inputs``, ``resources`` as ``requests``,
``limits``, ``retries``, ``timeout``, ``cache``, ..., ``description`` as flytekit's ``docs``); the config's fields
(and AME's shorthands, which write them) make its config; what else the class takes comes from the keys its spec
declares (``TaskTypeSpec.project``, ``kit.project_keys``). No task type is named here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.project_keys import ProjectEntry, interface_types
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec, project_default_type, task_types
from flytekitplugins.prebuilt.kit.task import PrebuiltTask
from flytekitplugins.prebuilt.project.schema import RESOURCE_NAMES
from flytekitplugins.prebuilt.project.shorthands import SHORTHANDS, Shorthand, ShorthandError, split_command
from flytekitplugins.prebuilt.project.source import Path, plain
from flytekitplugins.prebuilt.project.templates import Merged

TASK_KEYWORDS = ("retries", "timeout", "interruptible", "cache", "cache_version", "container_image")
RESOURCE_KEYWORDS = {"resources": "requests", "limits": "limits"}  # key -> the task classes' keyword


class TaskProblem(Exception):
    """A task entry is wrong; ``path`` is relative to the task."""

    def __init__(self, path: Path, message: str, at_key: bool = False):
        super().__init__(message)
        self.path, self.message, self.at_key = path, message, at_key


def task_type(fields: dict) -> TaskTypeSpec:
    """The spec of an entry's ``type:`` (the schema allows only known ones), or the default type's."""
    return task_types()[fields["type"]] if "type" in fields else project_default_type()


def build_task(project: str, name: str, merged: Merged) -> PrebuiltTask:
    """The task ``<project>.<name>`` of an entry (its templates merged); ``TaskProblem`` for a wrong one."""
    fields = plain(merged.values)
    spec = task_type(fields)
    config, keywords, outputs = config_values(spec, fields, merged)
    missing = [key for key in spec.project.required if key not in fields]
    if missing:
        described = spec.project.keys[missing[0]].get("description", missing[0])
        raise TaskProblem((), f"missing required key {missing[0]!r} of a {spec.name} task: {described}")
    keywords.update(common_keywords(fields))
    entry = ProjectEntry(fields, outputs, lambda key: _folder(merged, key))
    task_class = spec.task_class()
    try:
        config_object = spec.config.from_custom(config)
        keywords.update(spec.project.keywords(entry))
        return task_class(name=f"{project}.{name}", config=config_object, **keywords)
    except ConfigError as error:
        raise TaskProblem(_yaml_path(error.field, fields, spec), str(error)[len(error.field) + 2 :]) from None
    except TypeError as error:  # a key the class does not take that way (e.g. inputs of a class that fixes them)
        raise TaskProblem((), f"{task_class.__name__}: {error}") from None


def common_keywords(fields: dict) -> dict[str, Any]:
    """The task class's keyword arguments from the keys every task has (those given only)."""
    keywords = {key: fields[key] for key in TASK_KEYWORDS if key in fields}
    if "description" in fields:
        from flytekit.models.documentation import Documentation

        keywords["docs"] = Documentation(short_description=fields["description"])
    if "inputs" in fields:
        types = interface_types()
        keywords["inputs"] = {n: types[t] for n, t in (fields["inputs"] or {}).items()}
    for key, keyword in RESOURCE_KEYWORDS.items():
        if fields.get(key):
            keywords[keyword] = {RESOURCE_NAMES[k]: v for k, v in fields[key].items()}
    return keywords


def config_values(spec: TaskTypeSpec, fields: dict, merged: Merged) -> tuple[dict, dict, dict]:
    """The config's fields (the shorthands' first, the entry's own over them), the task keywords and the outputs
    the shorthands give."""
    config_names = [f.name for f in dataclasses.fields(spec.config) if f.init]
    config, keywords, outputs = {}, {}, {}
    for shorthand in SHORTHANDS:
        if shorthand.key in fields and shorthand.applies_to(config_names):
            expanded = _expand(shorthand, fields, merged)
            for key, value in expanded.fields.items():
                config[key] = {**value, **config.get(key, {})} if isinstance(value, dict) else value
            keywords.update(expanded.keywords)
            outputs.update(expanded.outputs)
    for key in config_names:
        if key in fields and not (key == "artifacts" and "artifacts" in config):
            value = fields[key]
            config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    if "command" in config:
        config["command"] = split_command(config["command"], bool(config.get("shell")))
    return config, keywords, outputs


def _expand(shorthand: Shorthand, fields: dict, merged: Merged):
    clash = [f for f in shorthand.writes if f in fields and f != shorthand.key and shorthand.key != "environment"]
    if clash:
        raise TaskProblem((clash[0],), f"give {shorthand.key} or {clash[0]}, not both", at_key=True)
    tag = getattr(getattr(merged.values[shorthand.key], "tag", None), "value", None)
    try:
        return shorthand.expand(fields[shorthand.key], tag)
    except ShorthandError as error:
        raise TaskProblem(error.path, str(error)) from None


def _folder(merged: Merged, key: str) -> str:
    """The folder of the file that gave ``key`` (a template's path is relative to the template's file)."""
    origin = merged.origins.get((key,))
    return (origin[0] if origin else merged.home).folder


def _yaml_path(field_name: str, fields: dict, spec: TaskTypeSpec) -> Path:
    """The YAML keys a ``ConfigError`` field (``config.secret_env.TOKEN``, ``requests.cpu``) is about."""
    parts = field_name.split(".")
    if parts[0] in ("config", "custom"):
        parts = parts[1:]
    if not parts:
        return ()
    head = {"requests": "resources", **spec.project.error_keys}.get(parts[0], parts[0])
    if head not in fields:
        for shorthand in SHORTHANDS:
            if head in shorthand.writes and shorthand.key in fields:
                return (shorthand.key,)
        return ()
    return (head, *parts[1:])
