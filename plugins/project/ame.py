"""AME's own spellings of a project file, rewritten onto ours in the loaded document (issue 16), positions kept.

AME (github.com/TeaInSpace/ame, lib/src/custom_resources/) writes ``name:`` for the project, ``env:`` as a list of
``{key, val}``, a secret of its store as ``- ame: {key, injectAs}`` (or tagged ``!ame``), ``pythonVersion: 3.10``
unquoted, and sections Flyte has no meaning for (``models:``, ``data_sets:``). Each is rewritten here into the key
this package reads, so that the schema, the errors and the compiler see one spelling; a section without a meaning
here is dropped with a warning. AME's older format (``projectname:``, ``tasks:`` as a mapping, ``runcommand:``) is
one error naming the current spelling. Nothing here names a task type.
"""

from __future__ import annotations

from typing import Any, Iterator

from flytekitplugins.prebuilt.project.errors import Problem, ProjectErrors
from flytekitplugins.prebuilt.project.source import Path, Source

try:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarfloat import ScalarFloat
    from ruamel.yaml.tag import Tag
except ImportError as missing:  # the project extra
    raise ImportError(f"project files need {missing.name}: pip install 'flytekitplugins-prebuilt[project]'") from None

EXECUTOR_ALIASES = {"!pipEnv": "!pipenv"}  # AME's spelling (its test_data/test_projects/executors/pipenv/ame.yaml)
AME_SECRET_GROUP = "ame"  # AME's secret store, as one Flyte secret group (a Kubernetes Secret named ame)
IGNORED_SECTIONS = {  # AME's top-level sections with no meaning for Flyte: dropped, with a warning
    "models": "AME's model deployments have no Flyte task here",
    "data_sets": "AME's data sets have no Flyte task here (write them as tasks)",
    "dataSets": "AME's data sets have no Flyte task here (write them as tasks)",
}
OLD_FORMAT = (
    "AME's older project format ({what}) is not read; write the current one: name: <project>, tasks: a list of "
    "{{name: <task>, executor: !pip {{command: python main.py}}}} (see docs/project/tasks.md)"
)


def translate(source: Source) -> list[Problem]:
    """Rewrite AME's spellings in ``source.data`` onto ours; the warnings about dropped sections.
    ``ProjectErrors`` (one error) for AME's older format."""
    data = source.data
    if not isinstance(data, CommentedMap):
        return []
    _refuse_old_format(source)
    warnings = []
    if "project" not in data:
        _rename(data, "name", "project")
    for key, why in IGNORED_SECTIONS.items():
        if key in data:
            warnings.append(source.problem((key,), f"AME's section, ignored: {why}", at_key=True))
            del data[key]
    for key in ("templates", "tasks"):
        if key in data and data[key] is None:  # AME's empty section
            del data[key]
    for task in _tasks(data):
        _translate_task(task)
    return warnings


def _refuse_old_format(source: Source) -> None:
    data = source.data
    found: list[tuple[Path, str]] = []
    if "projectname" in data:
        found.append((("projectname",), "projectname:"))
    if isinstance(data.get("tasks"), dict):
        found.append((("tasks",), "tasks: as a mapping"))
        found += [
            (("tasks", n, "runcommand"), "runcommand:") for n, t in data["tasks"].items() if _has(t, "runcommand")
        ]
    if found:
        what = ", ".join(dict.fromkeys(word for _, word in found))
        raise ProjectErrors([source.problem(found[0][0], OLD_FORMAT.format(what=what), at_key=True)])


def _has(node: Any, key: str) -> bool:
    return isinstance(node, dict) and key in node


def _tasks(data: CommentedMap) -> Iterator[CommentedMap]:
    """The tasks, templates and a pipeline's inline steps: where AME's task keys are written."""
    for key in ("tasks", "templates"):
        for entry in data.get(key) if isinstance(data.get(key), list) else []:
            if isinstance(entry, CommentedMap):
                yield entry
                steps = entry.get("pipeline")
                for step in steps if isinstance(steps, list) else []:
                    for inner in step if isinstance(step, list) else [step]:
                        if isinstance(inner, CommentedMap):
                            yield inner


def _translate_task(task: CommentedMap) -> None:
    env = task.get("env")
    if isinstance(env, list) and _tag(env) is None and all(isinstance(item, dict) for item in env):
        _rename(task, "env", "environment")  # AME's env: a list of {key, val}
    secrets = task.get("secrets")
    for index, item in enumerate(secrets if isinstance(secrets, list) else []):
        if isinstance(item, CommentedMap) and list(item) == ["ame"] and isinstance(item["ame"], CommentedMap):
            secrets[index] = item = item["ame"]
        elif isinstance(item, CommentedMap) and _tag(item) == "!vault":
            _vault_secret(item)
            continue
        elif not (isinstance(item, CommentedMap) and _tag(item) == "!ame"):
            continue
        _untag(item)  # `- !ame {key, injectAs}`: the same secret
        if "group" not in item:  # AME's store: the secret group AME_SECRET_GROUP of the cluster's secret manager
            item.insert(0, "group", AME_SECRET_GROUP)
    executor = task.get("executor")
    if isinstance(executor, CommentedMap) and _tag(executor) in EXECUTOR_ALIASES:
        executor.yaml_set_ctag(Tag(suffix=EXECUTOR_ALIASES[_tag(executor)]))
    if isinstance(executor, CommentedMap) and isinstance(executor.get("pythonVersion"), ScalarFloat):
        executor["pythonVersion"] = float_text(executor["pythonVersion"])


def _tag(node: Any) -> Any:
    return getattr(getattr(node, "tag", None), "value", None)


def _untag(node: CommentedMap) -> None:
    node.yaml_set_ctag(Tag())  # no tag: a plain mapping


def _vault_secret(item: CommentedMap) -> None:
    """``!vault {vault: company_vault, key: path/to/secret}``: the Flyte secret ``company_vault/path/to``, key
    ``secret`` (a Vault secret manager reads a group as the secret's path)."""
    if not isinstance(item.get("vault"), str) or not isinstance(item.get("key"), str) or "group" in item:
        return  # left tagged: refused as written (checking.py)
    _untag(item)
    folder, _, key = item["key"].rpartition("/")
    item["key"] = key
    _rename(item, "vault", "group")
    item["group"] = "/".join(part for part in (item["group"], folder) if part)


def float_text(value: ScalarFloat) -> str:
    """The float as the file wrote it (``3.10``, not ``3.1``): ruamel keeps its width and the dot's place."""
    width, dot = getattr(value, "_width", None), getattr(value, "_prec", None)
    if width is None or dot is None or getattr(value, "_exp", None):
        return str(value)
    return f"{float(value):.{max(width - dot - 1, 0)}f}"


def _rename(node: CommentedMap, old: str, new: str) -> None:
    """``old`` renamed ``new`` in place, at the same place and line and column."""
    if old not in node or new in node:
        return
    index, position = list(node).index(old), node.lc.data.get(old)
    value = node.pop(old)
    node.insert(index, new, value)
    if position is not None:
        node.lc.data[new] = position


def with_ame_spellings(schema: dict) -> dict:
    """``schema`` (ours, ``schema.project_schema``) accepting AME's spellings as well, as an editor sees them before
    ``translate``: ``name:`` for ``project:``, the ignored sections, empty sections, ``env:`` as a list of
    ``{key, val}`` and ``- ame: {key, injectAs}`` or ``- !vault {vault, key, injectAs}`` secrets (a schema sees no
    tags: ``!pipEnv`` and ``!ame`` are mappings like any other)."""
    top = schema["properties"]
    top["name"] = {**top["project"], "description": "AME's spelling of project:"}
    for key, why in IGNORED_SECTIONS.items():
        top[key] = {"description": f"AME's section, ignored with a warning: {why}"}
    for key in ("tasks", "templates"):
        top[key] = {**top[key], "type": [top[key]["type"], "null"]}  # AME's empty section
    schema.pop("required")
    schema["oneOf"] = [{"required": ["project"]}, {"required": ["name"]}]
    for entry in schema["$defs"].values():
        properties = entry.get("properties", {})
        if "env" in properties and "environment" in properties:  # a config with env: AME's env is a list
            properties["env"] = {"anyOf": [properties["env"], properties["environment"]]}
        if isinstance(properties.get("secrets"), dict) and "items" in properties["secrets"]:
            properties["secrets"] = {
                **properties["secrets"],
                "items": _secret_spellings(properties["secrets"]["items"]),
            }
    return schema


def _secret_spellings(item: dict) -> dict:
    """A secret entry as ours, as ``{ame: <entry>}`` and as a Vault secret ``{vault, key, injectAs}``."""
    vault = {
        **item,
        "required": ["vault", *item["required"]],
        "properties": {
            "vault": {"type": "string", "description": "a Vault secret (!vault): the Vault; key: the path to the key"},
            **{k: v for k, v in item["properties"].items() if k != "group"},
        },
    }
    stored = {**item, "description": "a secret of AME's store (Flyte group ame)"}
    ame = {"type": "object", "additionalProperties": False, "required": [AME_SECRET_GROUP],
           "properties": {AME_SECRET_GROUP: stored}}  # fmt: skip
    return {"anyOf": [item, ame, vault]}
