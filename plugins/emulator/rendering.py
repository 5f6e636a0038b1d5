"""Render a container's command and args like flytepropeller's ``template.Render``.

flyteplugins ``pluginmachinery/core/template/template.go``: case-insensitive placeholders with
optional whitespace and a ``.`` or ``$`` prefix; ``{{.Inputs.x}}`` takes the primitive value of an
input; an empty previous-checkpoint prefix renders as ``""``; ``{{.namespace}}`` is replaced last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flytekit.models import literals


def _placeholder(name: str) -> re.Pattern:
    return re.compile(r"(?i)\{\{\s*[\.$]" + name + r"\s*\}\}")


@dataclass(frozen=True)
class Paths:
    input_path: str  # <dataDir>/inputs.pb
    input_prefix: str  # <dataDir>
    output_prefix: str  # <dataDir>/<attempt>
    raw_output_prefix: str
    task_template_path: str
    per_retry_unique_key: str
    checkpoint_prefix: str
    previous_checkpoint_prefix: str = ""
    namespace: str = "flytesnacks-development"


INPUT_VALUE = re.compile(r"(?i)\{\{\s*[\.$]Inputs\.(\w+)\s*\}\}")


def render(args: list[str], paths: Paths, inputs: literals.LiteralMap) -> list[str]:
    replacements = [
        ("Input", paths.input_path),
        ("InputPrefix", paths.input_prefix),
        ("OutputPrefix", paths.output_prefix),
        ("RawOutputDataPrefix", paths.raw_output_prefix),
        ("PrevCheckpointPrefix", paths.previous_checkpoint_prefix or '""'),
        ("CheckpointOutputPrefix", paths.checkpoint_prefix),
        ("PerRetryUniqueKey", paths.per_retry_unique_key),
        ("TaskTemplatePath", paths.task_template_path),
    ]
    rendered = []
    for arg in args:
        for name, value in replacements:
            arg = _placeholder(name).sub(lambda _: value, arg)
        arg = INPUT_VALUE.sub(lambda m: _input_value(inputs, m.group(1)), arg)
        arg = _placeholder("Namespace").sub(lambda _: paths.namespace, arg)
        rendered.append(arg)
    return rendered


def uses_task_template(args: list[str]) -> bool:
    return any(_placeholder("TaskTemplatePath").search(a) for a in args)


def _input_value(inputs: literals.LiteralMap, name: str) -> str:
    literal = inputs.literals.get(name)
    if literal is None:
        raise ValueError(f"{{{{.Inputs.{name}}}}} is used in the container args, but the task has no input {name!r}")
    if literal.scalar and literal.scalar.primitive:
        value = literal.scalar.primitive.value
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    if literal.scalar and literal.scalar.blob:
        return literal.scalar.blob.uri
    if literal.scalar and literal.scalar.structured_dataset:
        return literal.scalar.structured_dataset.uri
    if literal.collection:
        return (
            "[" + ",".join(_input_value(literals.LiteralMap({"x": v}), "x") for v in literal.collection.literals) + "]"
        )
    raise ValueError(f"{{{{.Inputs.{name}}}}}: input of this type cannot be rendered into an argument")
