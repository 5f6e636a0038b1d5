"""The project file's JSON Schema, generated from the task types' config classes (one source of truth).

Each task type (``kit.spec.task_types()``) contributes its config's fields under their own names, typed from the
dataclass's hints and described from its docstring, so a new config field is a new YAML key with no second
definition. Around them sit the keys every task has (``name``, ``inputs``, ``retries``, ``resources``, ...), the
keys its spec declares for its task class (``TaskTypeSpec.project``, ``kit.project_keys``) and AME's shorthands
(``shorthands.py``). No task type is named here: a new type's keys come with its spec. ``flyte-prebuilt project
schema`` prints it; ``schema.json`` beside this module is the copy editors point at (a test keeps it equal to what
this module generates).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any

from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.config import PrebuiltConfig
from flytekitplugins.prebuilt.kit.project_keys import INTERFACE_TYPE_REF, NAME, interface_types
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec, project_default_type, task_types

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://flytekitplugins-prebuilt/flyte-prebuilt.schema.json"
FILE_NAME = "flyte-prebuilt.yaml"
QUANTITY = {
    "type": ["string", "number"],
    "pattern": r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$",
    "x-expected": "a Kubernetes quantity (e.g. 500m, 2, 1.5Gi, 10G)",
}
INTERFACE_TYPE = INTERFACE_TYPE_REF.rpartition("/")[2]  # the $defs entry that types' interface keys refer to
# Kubernetes resource names (AME's) -> the keywords of ScriptTask's requests/limits and kit.quantities
RESOURCE_NAMES = {"cpu": "cpu", "memory": "memory", "storage": "ephemeral_storage", "nvidia.com/gpu": "gpu"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def hint_schema(hint: Any) -> dict:
    """The JSON Schema of a config field's type (the types ``kit.config`` supports)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return {}
    if origin in (typing.Union, types.UnionType):
        options = [hint_schema(a) for a in args if a is not type(None)]
        if type(None) in args:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is tuple:
        items = hint_schema(args[0])
        if args[0] is str:  # an argv may be written as one string, split as a shell would (shlex), never run by one
            return {"anyOf": [{"type": "array", "items": items}, {"type": "string"}]}
        return {"type": "array", "items": items}
    if origin is dict:
        return {"type": "object", "additionalProperties": hint_schema(args[1])}
    if isinstance(hint, type) and issubclass(hint, PrebuiltConfig):
        return config_schema(hint)
    simple = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}
    if hint in simple:
        return {"type": simple[hint]}
    if hint is Secret:
        return _ref("secret")
    raise TypeError(f"no JSON Schema for config type {hint!r}")  # a new kind of field: teach this function


def config_properties(config: type[PrebuiltConfig]) -> dict[str, dict]:
    """Each field of ``config``: its schema, its default and its line of the class docstring."""
    hints = typing.get_type_hints(config)
    described = field_descriptions(config)
    properties = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        schema = dict(hint_schema(hints[f.name]))
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default is not dataclasses.MISSING and not isinstance(default, Secret):
            schema["default"] = list(default) if isinstance(default, tuple) else default
        if described.get(f.name):
            schema["description"] = described[f.name]
        properties[f.name] = schema
    return properties


def config_schema(config: type[PrebuiltConfig]) -> dict:
    return {"type": "object", "additionalProperties": False, "properties": config_properties(config)}


def field_descriptions(config: type) -> dict[str, str]:
    """``name  text`` lines of the docstrings of ``config`` and its bases (continuation lines joined)."""
    found: dict[str, str] = {}
    for cls in reversed(config.__mro__):
        lines = (cls.__dict__.get("__doc__") or "").splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"^(\s*)([a-z_]+)\s{2,}(\S.*)$", line)
            if not match:
                continue
            indent, text = len(match.group(1)), [match.group(3)]
            for follow in lines[index + 1 :]:
                if (
                    not follow.strip()
                    or re.match(r"^\s*[a-z_]+\s{2,}\S", follow)
                    or len(follow) - len(follow.lstrip()) <= indent
                ):
                    break
                text.append(follow.strip())
            found[match.group(2)] = " ".join(text)
    return found


def _interface(values: dict) -> dict:
    return {"type": "object", "propertyNames": NAME, "additionalProperties": values}


def common_keys() -> dict[str, dict]:
    """Keys every task has: its name and type, the @task keywords, resources and triggers."""
    return {
        "name": {**NAME, "description": "the task's name in this project (Flyte's name: <project>.<name>)"},
        "type": {"enum": sorted(task_types()), "default": project_default_type().name, "description": "the task type"},
        "description": {"type": "string"},
        "fromTemplate": _ref("from_template"),
        "inputs": {**_interface(_ref(INTERFACE_TYPE)), "description": "input name -> type"},
        "retries": {"type": "integer", "minimum": 0, "description": "retries of a recoverable failure"},
        "timeout": {"type": "integer", "minimum": 0, "description": "Flyte's timeout of one attempt, in seconds"},
        "interruptible": {"type": "boolean"},
        "cache": {"type": "boolean", "description": "cache outputs by inputs (version: cache_version, else identity)"},
        "cache_version": {"type": "string"},
        "container_image": {"type": "string", "description": "run in this image instead of the type's"},
        "resources": {**_ref("resources"), "description": "requests, in Kubernetes units"},
        "limits": {**_ref("resources"), "description": "limits, in Kubernetes units"},
        "triggers": _ref("triggers"),
    }


def task_schema(spec: TaskTypeSpec, partial: bool = False) -> dict:
    """A task of type ``spec``: common keys, those its spec declares, its config's fields and the shorthands it
    allows."""
    from flytekitplugins.prebuilt.project.shorthands import SHORTHANDS

    config = config_properties(spec.config)
    shorthands = {s.key: s.schema for s in SHORTHANDS if s.applies_to(config)}
    properties = {**{k: v for k, v in config.items() if k not in shorthands}, **shorthands}
    properties = {**common_keys(), **spec.project.keys, **properties}
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    return schema if partial else {**schema, "required": ["name"]}


def project_schema(ame: bool = True) -> dict:
    """The whole file's schema (JSON Schema 2020-12). ``ame``: also AME's spellings (``ame.py``), which an editor
    sees as written; the loader rewrites them onto ours first, then checks the file without them."""
    specs = task_types()
    task_defs = {f"{name}_task": task_schema(spec) for name, spec in specs.items()}
    template_keys: dict[str, dict] = {}
    for spec in specs.values():
        template_keys.update(task_schema(spec, partial=True)["properties"])
    template_keys.pop("type")  # a task's type is its own: templates fit tasks of any type
    dispatch = [
        {"if": {"required": ["type"], "properties": {"type": {"const": name}}}, "then": _ref(f"{name}_task")}
        for name in specs
    ]
    schema = {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": f"flytekitplugins-prebuilt project file ({FILE_NAME})",
        "type": "object",
        "additionalProperties": False,
        "required": ["project"],
        "properties": {
            "project": {**NAME, "description": "the project's name; Flyte entities are named <project>.<name>"},
            "projects": {
                "type": "object",
                "propertyNames": NAME,
                "additionalProperties": {"type": "string"},
                "description": "other projects whose templates this one uses: name -> their file (or its folder)",
            },
            "tasks": {"type": "array", "items": _ref("entry")},
            "templates": {"type": "array", "items": _ref("template")},
        },
        "$defs": {
            "entry": {
                "if": {"type": "object", "required": ["taskRef"]},
                "then": _ref("alias"),
                "else": {
                    "if": {"type": "object", "required": ["pipeline"]},
                    "then": _ref("pipeline"),
                    "else": _ref("task"),
                },
            },
            "task": {
                "type": "object",
                "properties": {"type": common_keys()["type"]},
                "allOf": [
                    *dispatch,
                    {"if": {"not": {"required": ["type"]}}, "then": _ref(f"{project_default_type().name}_task")},
                ],
            },
            **task_defs,
            "template": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": template_keys,
            },
            "alias": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "taskRef"],
                "properties": {"name": NAME, "taskRef": {**NAME, "description": "the task or pipeline it names"}},
            },
            "pipeline": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "pipeline"],
                "properties": {
                    "name": NAME,
                    "description": {"type": "string"},
                    "inputs": {**_interface(_ref(INTERFACE_TYPE)), "description": "more inputs than steps need"},
                    "outputs": {
                        **_interface({"type": "string", "pattern": r"^\w+\.\w+$", "x-expected": "<step>.<output>"}),
                        "description": "output name -> <step>.<output> (default: the last step's outputs)",
                    },
                    "pipeline": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"anyOf": [_ref("step"), {"type": "array", "minItems": 1, "items": _ref("step")}]},
                        "description": "steps in order; a list of steps is a parallel group",
                    },
                    "triggers": _ref("triggers"),
                },
            },
            "step": {
                "if": {"type": "object", "required": ["taskRef"]},
                "then": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "taskRef": NAME,
                        "name": {**NAME, "description": "the step's name (default: taskRef)"},
                        "inputs": _ref("bindings"),
                    },
                },
                "else": _ref("task"),  # an inline task (its inputs are bound by name)
            },
            "bindings": {
                "type": "object",
                "propertyNames": NAME,
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string", "pattern": r"^\w+\.\w+$", "x-expected": "<step>.<output> or inputs.<name>"},
                        {
                            "type": "object",
                            "required": ["value"],
                            "additionalProperties": False,
                            "properties": {"value": True},
                        },
                    ]
                },
                "description": "step input -> <step>.<output>, inputs.<pipeline input> or {value: constant}",
            },
            INTERFACE_TYPE: {"enum": list(interface_types())},
            "secret": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key"],
                "properties": {
                    "group": {"type": "string"},
                    "key": {"type": "string"},
                    "group_version": {"type": "string"},
                },
            },
            "resources": {
                "type": "object",
                "additionalProperties": False,
                "properties": {name: QUANTITY for name in RESOURCE_NAMES},
            },
            "from_template": {
                "anyOf": [
                    {"type": "string", "pattern": r"^(\w+\.)?\w+$", "x-expected": "<template> or <project>.<template>"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name"],
                        "properties": {"name": NAME, "project": NAME},
                    },
                ],
                "description": "a template of this file, or of a project named in projects",
            },
            "triggers": {
                "type": "object",
                "additionalProperties": False,
                "required": ["schedule"],
                "properties": {
                    "schedule": {
                        "type": "string",
                        "description": "a cron expression (5 fields) or @daily, @hourly, ...",
                    },
                    "inputs": {"type": "object", "description": "the inputs of each scheduled run"},
                },
                "description": "a launch plan with this schedule (<project>.<name>.schedule)",
            },
        },
    }
    if ame:
        from flytekitplugins.prebuilt.project.ame import with_ame_spellings

        return with_ame_spellings(schema)
    return schema
