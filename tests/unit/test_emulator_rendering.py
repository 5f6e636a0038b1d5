import pytest
from flytekit.models import literals
from flytekit.models.literals import Literal, Primitive, Scalar
from flytekitplugins.prebuilt.emulator.rendering import Paths, render, uses_task_template

PATHS = Paths(
    input_path="/s/d/inputs.pb",
    input_prefix="/s/d",
    output_prefix="/s/d/0",
    raw_output_prefix="/s/raw/ab/x",
    task_template_path="/s/d/task.pb",
    per_retry_unique_key="ax",
    checkpoint_prefix="/s/raw/ab/x/_flytecheckpoints",
)
INPUTS = literals.LiteralMap({"n": Literal(scalar=Scalar(primitive=Primitive(integer=7)))})


def test_renders_like_propeller_case_insensitive_with_dot_or_dollar():
    args = [
        "--inputs",
        "{{.input}}",
        "{{ .OutputPrefix }}",
        "{{$rawOutputDataPrefix}}",
        "{{.taskTemplatePath}}",
        "pre={{.prevCheckpointPrefix}}",
        "{{.checkpointOutputPrefix}}",
        "{{.perRetryUniqueKey}}",
        "{{.inputPrefix}}",
        "n={{.Inputs.n}}",
        "{{.namespace}}",
    ]
    assert render(args, PATHS, INPUTS) == [
        "--inputs",
        "/s/d/inputs.pb",
        "/s/d/0",
        "/s/raw/ab/x",
        "/s/d/task.pb",
        'pre=""',
        "/s/raw/ab/x/_flytecheckpoints",
        "ax",
        "/s/d",
        "n=7",
        "flytesnacks-development",
    ]
    assert uses_task_template(args) and not uses_task_template(["{{.input}}"])


def test_a_missing_input_in_args_is_an_error():
    with pytest.raises(ValueError, match="no input 'm'"):
        render(["{{.Inputs.m}}"], PATHS, INPUTS)


def test_secrets_are_injected_under_the_name_flytekit_looks_up(tmp_path):
    from flytekit import Secret
    from flytekit.core.context_manager import SecretsManager
    from flytekitplugins.prebuilt.emulator import Emulator
    from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask

    versioned, plain = Secret(group="svc", key="token", group_version="v2"), Secret(group="db", key="password")
    (tmp_path / "x.py").write_text("")
    task = ScriptTask(
        "s",
        source=str(tmp_path / "x.py"),
        command=["python", "x.py"],
        config=None,
        preset=ScriptPreset.of(dependencies="none", secret_env={"A": versioned, "B": plain}),
    )
    emulator = Emulator(str(tmp_path), secrets={("svc", "token"): "t", ("db", "password"): "p", ("other", "x"): "o"})
    env = emulator.pods.backend_env(emulator.template(task), "e1", 0)
    manager = SecretsManager()
    assert {k: v for k, v in env.items() if k.startswith("_FSEC_")} == {
        manager.get_secrets_env_var("svc", "token", "v2"): "t",  # _FSEC_SVC_V2_TOKEN
        manager.get_secrets_env_var("db", "password"): "p",  # only what the template requests
    }
