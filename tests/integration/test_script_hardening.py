"""Hostile and careless uses of the script task type: each refused with a clear error naming what to fix, classified
as Flyte should retry it, with nothing read outside the working folder. Each case runs in-process and emulated."""

import os
from pathlib import Path

import pytest
from flytekit import Secret
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.script import ScriptConfig, ScriptTask
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    return folder


def both_paths(task, inputs, tmp_path):
    """The error the task ends with in-process, and the TaskFailed of the emulated run."""
    with pytest.raises(Exception) as in_process:
        task(**inputs)
    with pytest.raises(TaskFailed) as emulated:
        Emulator(str(tmp_path / "store")).run(task, inputs)
    return str(in_process.value), emulated.value


# ------------------------------------------------------------------ shell


def test_a_placeholder_in_a_shell_command_is_refused(source):
    with pytest.raises(ConfigError, match=r'input values never become shell syntax; write "\$PREBUILT_INPUT_X"'):
        ScriptTask("t", source=str(source), command=["echo {{.inputs.x}}"], shell=True, inputs={"x": str})


def test_an_input_in_a_shell_variable_stays_a_value(source, tmp_path):
    task = ScriptTask(
        "t",
        source=str(source),
        command=['echo "$PREBUILT_INPUT_X" > said.txt; cp said.txt "$OUT"'],
        shell=True,
        inputs={"x": str},
        env={"OUT": str(tmp_path / "said.txt")},
    )
    hostile = "x; touch pwned"
    task(x=hostile)
    assert (tmp_path / "said.txt").read_text() == hostile + "\n"
    Emulator(str(tmp_path / "store")).run(task, {"x": hostile})
    assert not list(tmp_path.rglob("pwned"))


# ------------------------------------------------------------------ classification


def test_a_nul_byte_in_an_input_is_a_user_error(source, tmp_path):
    task = ScriptTask("t", source=str(source), command=["python", "main.py", "{{.inputs.x}}"], inputs={"x": str})
    message, failure = both_paths(task, {"x": "a\x00b"}, tmp_path)
    assert "inputs.x: holds a NUL byte" in message and "inputs.x: holds a NUL byte" in failure.message
    assert (failure.origin, failure.kind) == ("USER", "NON_RECOVERABLE")


def test_a_template_whose_inline_bundle_is_not_base64_is_a_user_error(source, tmp_path):
    emulator = Emulator(str(tmp_path / "store"))
    template = emulator.template(ScriptTask("t", source=str(source), command=["python", "main.py"]))
    template.custom["bundle"]["inline"] = "%%% not base64 %%%"
    with pytest.raises(TaskFailed) as failure:
        emulator.run(template)
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    assert "custom.bundle.inline: is not base64" in failure.value.message


# ------------------------------------------------------------------ links out of the working folder


@pytest.fixture
def outside(tmp_path):
    secret = tmp_path / "outside.txt"
    secret.write_text("not yours")
    return secret


def link_task(source, command, outputs, **config):
    return ScriptTask("t", source=str(source), command=["python", "-c", command], outputs=outputs, **config)


def test_a_file_artifact_that_links_inside_is_uploaded(source, tmp_path):
    task = link_task(
        source,
        "import os; open('real.txt','w').write('mine'); os.symlink('real.txt', 'link.txt')",
        {"f": FlyteFile},
        artifacts={"f": "link.txt"},
    )
    assert Path(task().download()).read_text() == "mine"
    run = Emulator(str(tmp_path / "store")).run(task, {})
    assert Path(run.outputs["f"].download()).read_text() == "mine"


@pytest.mark.parametrize(
    "outputs, config, command",
    [
        ({"f": FlyteFile}, {"artifacts": {"f": "link.txt"}}, "import os; os.symlink({target!r}, 'link.txt')"),
        (
            {"d": FlyteDirectory},
            {"artifacts": {"d": "out"}},
            "import os; os.mkdir('out'); os.symlink({target!r}, 'out/link.txt')",
        ),
        ({"d": FlyteDirectory}, {"changed_files_output": "d"}, "import os; os.symlink({target!r}, 'link.txt')"),
    ],
)
def test_a_link_out_of_the_working_folder_is_refused(source, tmp_path, outside, outputs, config, command):
    task = link_task(source, command.format(target=str(outside)), outputs, **config)
    message, failure = both_paths(task, {}, tmp_path)
    assert "outside the working folder; refusing it" in message and "outside the working folder" in failure.message
    assert (failure.origin, failure.kind) == ("USER", "NON_RECOVERABLE")
    assert not [p for p in (tmp_path / "store").rglob("*") if p.is_file() and p.read_bytes() == b"not yours"]


# ------------------------------------------------------------------ definition time


@pytest.mark.parametrize(
    "keywords, field, message",
    [
        ({"command": "python main.py"}, "config.command", "expected a list of str, got str 'python main.py'"),
        ({"command": ["python", "main.py"], "env": {"N": 3}}, "config.env.N", "expected str, got int 3"),
        ({"command": ["python", "main.py"], "shell": "yes"}, "config.shell", "expected bool, got str"),
        ({"command": ["python", "main.py"], "artifacts": {"m": 1}}, "config.artifacts.m", "expected str, got int"),
        (
            {"command": ["python", "main.py"], "changed_files_output": ["d"]},
            "config.changed_files_output",
            "expected str",
        ),
        (
            {"command": ["python", "main.py"], "requests": {"memory": "1 Gi"}},
            "requests.memory",
            "not a Kubernetes quantity",
        ),
        ({"command": ["python", "train.py"]}, "config.command", "'train.py' is not in the bundle"),
        ({"command": ["./run.sh"]}, "config.command", "'./run.sh' is not in the bundle"),
        (
            {"command": ["python", "main.py"], "dependencies": "requirements"},
            "config.dependencies",
            "needs requirements.txt in the source",
        ),
        ({"command": ["python", "main.py"], "env": {"PATH": "/tmp"}}, "config.env.PATH", "is set by the executor"),
        (
            {"command": ["python", "main.py"], "env": {"FLYTE_INTERNAL_X": "1"}},
            "config.env.FLYTE_INTERNAL_X",
            "is set by the executor",
        ),
        (
            {"command": ["python", "main.py"], "inputs": {"a": int, "A": int}},
            "inputs.A",
            "are both passed as $PREBUILT_INPUT_A",
        ),
        ({"command": ["python", "main.py"], "source": "/no/such/folder"}, "source", "does not exist"),
    ],
)
def test_config_mistakes_are_refused_at_definition(source, keywords, field, message):
    keywords = {"source": str(source), **keywords}
    with pytest.raises(ConfigError) as error:
        ScriptTask("t", **keywords)
    assert error.value.field == field
    assert message in str(error.value)


def test_config_fields_are_keywords_of_every_task_type(source):
    script = ScriptTask(
        "t",
        source=str(source),
        command=["python", "main.py"],
        deadline_seconds=3,
        secret_env={"TOKEN": Secret(group="g", key="k")},
    )
    assert script.config.deadline_seconds == 3 and script.security_context.secrets[0].key == "k"
    sql = SQLTask("q", "select 1 as one", url="sqlite://", max_rows=5)
    assert sql.config == SQLConfig(url="sqlite://", max_rows=5)
    with pytest.raises(ConfigError, match=r"give config= or its fields as keywords \(max_rows\), not both"):
        SQLTask("q", "select 1", SQLConfig(url="sqlite://"), max_rows=5)
    with pytest.raises(ConfigError, match=r"give config= or its fields as keywords \(deadline_seconds\), not both"):
        ScriptTask("t", source=str(source), config=ScriptConfig(command=("python", "main.py")), deadline_seconds=3)
    with pytest.raises(ConfigError, match="unknown keyword argument") as error:
        ScriptTask("t", source=str(source), command=["python", "main.py"], deadline=3)
    assert error.value.field == "deadline"
    assert os.path.isdir(source)


# ------------------------------------------------------------------ error documents


def test_a_huge_output_before_a_failure_gives_a_capped_error_document(source, tmp_path):
    task = ScriptTask(
        "t",
        source=str(source),
        command=["python", "-c", "import sys; print('x' * 3_000_000); print('the real reason'); sys.exit(3)"],
    )
    message, failure = both_paths(task, {}, tmp_path)
    assert len(failure.message.encode()) <= 70_000  # the error document
    for text in (message, failure.message):
        assert "bytes of this message were cut" in text and "the real reason" in text
    assert "the command exited with code 3" in failure.message
    assert (failure.origin, failure.kind) == ("USER", "NON_RECOVERABLE")
