import pytest
from flytekit.models import literals
from flytekit.models.literals import Literal, Primitive, Scalar
from flytekitplugins.prebuilt.emulator.rendering import Paths, render, uses_task_template

PATHS = Paths(
    input_path="/s/d/inputs.pb", input_prefix="/s/d", output_prefix="/s/d/0", raw_output_prefix="/s/raw/ab/x",
    task_template_path="/s/d/task.pb", per_retry_unique_key="ax", checkpoint_prefix="/s/raw/ab/x/_flytecheckpoints",
)
INPUTS = literals.LiteralMap({"n": Literal(scalar=Scalar(primitive=Primitive(integer=7)))})


def test_renders_like_propeller_case_insensitive_with_dot_or_dollar():
    args = ["--inputs", "{{.input}}", "{{ .OutputPrefix }}", "{{$rawOutputDataPrefix}}", "{{.taskTemplatePath}}",
            "pre={{.prevCheckpointPrefix}}", "{{.checkpointOutputPrefix}}", "{{.perRetryUniqueKey}}", "{{.inputPrefix}}",
            "n={{.Inputs.n}}", "{{.namespace}}"]
    assert render(args, PATHS, INPUTS) == [
        "--inputs", "/s/d/inputs.pb", "/s/d/0", "/s/raw/ab/x", "/s/d/task.pb", 'pre=""',
        "/s/raw/ab/x/_flytecheckpoints", "ax", "/s/d", "n=7", "flytesnacks-development",
    ]
    assert uses_task_template(args) and not uses_task_template(["{{.input}}"])


def test_a_missing_input_in_args_is_an_error():
    with pytest.raises(ValueError, match="no input 'm'"):
        render(["{{.Inputs.m}}"], PATHS, INPUTS)
