"""Checking a loaded file against the schema (``jsonschema``) and for tags other than ours; every problem at once.

jsonschema's ``iter_errors`` yields every violation with its path in the document; each becomes a ``Problem`` at
that path's line and column, worded as what is expected (``unknown key 'retires' (did you mean 'retries'?)``).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterator

from flytekitplugins.prebuilt.project.ame import translate
from flytekitplugins.prebuilt.project.errors import Problem, ProjectErrors, did_you_mean
from flytekitplugins.prebuilt.project.schema import project_schema
from flytekitplugins.prebuilt.project.shorthands import EXECUTOR_TAGS, REFUSED_TAGS
from flytekitplugins.prebuilt.project.source import Path, Source, tags

try:
    import jsonschema
except ImportError as missing:  # the project extra
    raise ImportError(f"project files need {missing.name}: pip install 'flytekitplugins-prebuilt[project]'") from None

JSON_TYPES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
              "array": "a list", "object": "a mapping", "null": "nothing"}  # fmt: skip


@functools.lru_cache(maxsize=1)
def validator() -> jsonschema.Draft202012Validator:
    schema = project_schema(ame=False)  # check() rewrites AME's spellings onto ours first
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check(source: Source) -> list[tuple[Path, Problem]]:
    """Every schema violation and refused tag of ``source``, each with the path it is about; AME's spellings are
    first rewritten onto ours (ame.py), its dropped sections added to ``source.warnings``."""
    try:
        source.warnings.extend(translate(source))
    except ProjectErrors as old_format:  # one error: the rest of an older format's file would only repeat it
        return [((), problem) for problem in old_format.problems]
    found = [
        (path, problem) for error in validator().iter_errors(source.data) for path, problem in _explain(error, source)
    ]
    tagged = list(_tag_problems(source))  # a refused tag is the one problem of its value (not also its type)
    found = [(path, problem) for path, problem in found if path not in {p for p, _ in tagged}]
    return found + tagged + list(_cron_problems(source))


def _explain(error: jsonschema.ValidationError, source: Source) -> Iterator[tuple[Path, Problem]]:
    path, schema, value, kind = tuple(error.absolute_path), error.schema, error.instance, error.validator
    shown = _shown(value, source.quoted)
    if kind == "additionalProperties":
        known = list(schema.get("properties", {}))
        for key in value:
            if key not in known:
                message = f"unknown key {key!r}{did_you_mean(key, known)}; expected one of {', '.join(known)}"
                yield (*path, key), source.problem((*path, key), message, at_key=True)
    elif kind == "required":
        for key in schema["required"]:
            if isinstance(value, dict) and key not in value:
                yield path, source.problem(path, f"missing required key {key!r}", field=_field(path, key))
    elif kind in ("anyOf", "oneOf") and _fitting(error):  # the value's kind fits one: what is wrong in it
        for inner in _fitting(error):
            yield from _explain(inner, source)
    elif kind in ("anyOf", "oneOf"):
        expected = [s["x-expected"] for s in error.validator_value if isinstance(s, dict) and "x-expected" in s]
        typed = [s for s in error.validator_value if isinstance(s, dict) and "type" in s]
        if expected or len(typed) == len(error.validator_value):
            words = expected + [_type_words(s["type"]) for s in typed if "x-expected" not in s]
            yield path, source.problem(path, f"expected {' or '.join(dict.fromkeys(words))}, got {shown}")
        else:
            deepest = jsonschema.exceptions.best_match(error.context)
            yield from _explain(deepest, source)
    elif kind == "propertyNames":
        yield path, source.problem(path, f"key {value!r}: expected {schema.get('propertyNames', {}).get('x-expected')}")
    else:
        yield path, source.problem(path, _expected(kind, error.validator_value, schema, value, shown))


def _fitting(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The error inside the one alternative of an anyOf whose type the value has (a mapping for ``fromTemplate:
    {name: ...}``), so that the error says what is wrong in it, not that a mapping was expected."""
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER
    fits = [
        index
        for index, alternative in enumerate(error.validator_value)
        if isinstance(alternative, dict) and isinstance(alternative.get("type"), str)
        and checker.is_type(error.instance, alternative["type"])
    ]  # fmt: skip
    return [e for e in error.context if len(fits) == 1 and e.schema_path and e.schema_path[0] == fits[0]]


def _expected(kind: str, wanted: Any, schema: dict, value: Any, shown: str) -> str:
    if kind == "type":
        return f"expected {_type_words(wanted)}, got {shown}"
    if kind == "enum":
        close = did_you_mean(str(value), map(str, wanted))
        return f"expected one of {', '.join(map(str, wanted))}, got {shown}{close}"
    if kind == "const":
        return f"expected {wanted!r}, got {shown}"
    if kind == "pattern":
        quoted = shown[:1] in ("'", '"')  # a file whose values may be quoted: the character may be named too
        return f"expected {schema.get('x-expected', 'a value matching ' + wanted)}, got {shown}" + (
            _offending(value) if quoted else ""
        )
    if kind in ("minimum", "minItems"):
        return f"expected at least {wanted}{' item' if kind == 'minItems' else ''}, got {shown}"
    if kind == "false":
        return "not allowed here"
    return f"{kind} {wanted!r} not met by {shown}"


def _offending(value: Any) -> str:
    """`` ('-' is not a letter, digit or _)`` for a name's first character that a name may not hold."""
    bad = re.search(r"[^A-Za-z0-9_.]", value) if isinstance(value, str) else None
    return f" ({bad.group()!r} at character {bad.start() + 1} is not a letter, digit or _)" if bad else ""


def _type_words(types: Any) -> str:
    return " or ".join(JSON_TYPES.get(t, t) for t in ([types] if isinstance(types, str) else types))


def _shown(value: Any, quoted: bool = True) -> str:
    """``value`` as an error shows it: its kind, and for a scalar of a file that may be quoted, the value."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if not quoted:  # a file named in projects: any file of the folder (issue 17), its values may be secrets
        kinds = {bool: "boolean", str: "string", int: "integer", float: "number"}
        return next((f"a {word}" for kind, word in kinds.items() if isinstance(value, kind)), "a value")
    text = repr(value if not isinstance(value, str) else str(value))
    return text if len(text) <= 50 else text[:47] + "..."


def _cron_problems(source: Source) -> Iterator[tuple[Path, Problem]]:
    """A schedule's cron has 5 fields (minute to weekday, as Flyte's scheduler reads it) or is an @-alias: croniter
    also takes a 6th field, seconds, which would run a launch plan every second."""
    tasks = source.data.get("tasks") if isinstance(source.data, dict) else None
    for index, entry in enumerate(tasks if isinstance(tasks, list) else []):
        triggers = entry.get("triggers") if isinstance(entry, dict) else None
        cron = triggers.get("schedule") if isinstance(triggers, dict) else None
        if isinstance(cron, str) and not cron.strip().startswith("@") and len(cron.split()) != 5:
            path = ("tasks", index, "triggers", "schedule")
            message = (
                f"{cron!r} is not a cron expression: {len(cron.split())} fields, where a cron has 5 (minute hour day "
                "month weekday; Flyte schedules no seconds), or @daily, @hourly, ..."
            )
            yield path, source.problem(path, message)


def _field(path: Path, key: str) -> str:
    from flytekitplugins.prebuilt.project.errors import field_path

    return field_path((*path, key))


def _tag_problems(source: Source) -> Iterator[tuple[Path, Problem]]:
    """Tags are AME's executors, under ``executor`` only; an executor says its kind with one."""
    tagged = set()
    for path, tag in tags(source.data):
        tagged.add(path)
        at_executor = bool(path) and path[-1] == "executor"
        if at_executor and tag in EXECUTOR_TAGS:
            continue
        if tag in REFUSED_TAGS:
            message = f"{tag}: {REFUSED_TAGS[tag]}"
        elif at_executor:
            message = f"unknown executor {tag}{did_you_mean(tag, EXECUTOR_TAGS)}; expected {', '.join(EXECUTOR_TAGS)}"
        else:
            message = f"tag {tag} is not allowed here: tags name an executor ({', '.join(EXECUTOR_TAGS)})"
        yield path, source.problem(path, message)
    for path in _executor_paths(source.data):
        if path not in tagged:
            yield path, source.problem(path, f"an executor starts with its kind: {', '.join(EXECUTOR_TAGS)}")


def _executor_paths(node: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "executor" and isinstance(value, dict):
                yield (*path, key)
            else:
                yield from _executor_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _executor_paths(value, (*path, index))
