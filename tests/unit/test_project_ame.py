"""AME's own current-format projects load as they are (issue 16): tests/unit/fixtures/ame/ holds verbatim copies of
github.com/TeaInSpace/ame's test_data/test_projects (MIT, tests/unit/fixtures/ame/LICENSE); AME's spellings are
aliases of ours (plugins/project/ame.py), its sections with no meaning for Flyte are warnings, its older format and
!mlflow are one error each."""

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from flytekitplugins.prebuilt.project import ProjectErrors, ProjectWarning, load
from flytekitplugins.prebuilt.project.commands import project as project_command

AME = Path(__file__).resolve().parent / "fixtures" / "ame"
CURRENT = ["env", "executors/custom", "executors/pip", "executors/pipenv", "executors/poetry"]


def image_python(task) -> str:
    return task.container_image.rsplit("-py", 1)[-1]


@pytest.mark.parametrize("folder", CURRENT)
def test_ames_project_validates_as_is(folder):
    result = CliRunner().invoke(project_command, ["validate", "-f", str(AME / folder)])
    assert result.exit_code == 0, result.output
    assert "ok: project" in result.output


def test_what_ames_projects_compile_to():
    env = load(AME / "env")  # ame.yaml found in the folder
    testenv, testsecret = env.tasks["testenv"], env.tasks["testsecret"]
    assert env.name == "env" and testenv.name == "env.testenv"
    assert testenv.config.dependencies == "pipenv" and testenv.config.command == ("python", "env.py")  # !pipEnv
    assert testenv.config.env == {"VAR1": "VAL1", "VAR2": "VAL2"}  # env: [{key, val}]
    assert (testenv.resources.requests.cpu, testenv.resources.requests.mem) == ("2", "4Gi")
    (secret,) = testsecret.config.secret_env.values()  # - ame: {injectAs, key}
    assert list(testsecret.config.secret_env) == ["VAR1"] and (secret.group, secret.key) == ("ame", "mysecret")
    custom = load(AME / "executors/custom").tasks["training"]
    assert custom.config.dependencies == "none" and image_python(custom) == "3.10"  # pythonVersion: 3.10, not 3.1
    pip = load(AME / "executors/pip").tasks["training"]
    assert pip.config.dependencies == "requirements" and image_python(pip) == "3.10"
    assert load(AME / "executors/pipenv").tasks["training"].config.dependencies == "pipenv"
    poetry = load(AME / "executors/poetry")
    assert {t.config.dependencies for t in poetry.tasks.values()} == {"poetry"}
    assert image_python(poetry.tasks["training"]) == "3.10"  # 3.10.9: the 3.10 image
    assert poetry.launch_plans["crontraining"].schedule.cron_schedule.schedule == "* * * * *"


def test_ame_only_sections_are_warnings_with_their_position():
    result = CliRunner().invoke(project_command, ["validate", "-f", str(AME / "executors/pip")])
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {AME / 'executors/pip/ame.yaml'}:4:1: models: AME's section, ignored: AME's model deployments "
        "have no Flyte task here",
        f"warning: {AME / 'executors/pip/ame.yaml'}:5:1: data_sets: AME's section, ignored: AME's data sets have no "
        "Flyte task here (write them as tasks)",
    ]
    assert [str(w.position) for w in load(AME / "executors/pip").warnings] == [
        f"{AME / 'executors/pip/ame.yaml'}:4:1",
        f"{AME / 'executors/pip/ame.yaml'}:5:1",
    ]


def test_ames_older_format_is_one_error_naming_the_current_spelling():
    with pytest.raises(ProjectErrors) as raised:
        load(AME / "artifacts")
    (problem,) = raised.value.problems
    assert (problem.position.line, problem.position.column) == (3, 1)
    assert "AME's older project format (projectname:, tasks: as a mapping, runcommand:)" in problem.message
    assert "name: <project>, tasks: a list of" in problem.message


def test_mlflow_is_refused_and_template_names_say_the_character():
    with pytest.raises(ProjectErrors) as raised:
        load(AME / "executors/mlflow")
    messages = {(p.field, p.message.split(" (")[0] if p.message.startswith("!mlflow") else p.message)
                for p in raised.value.problems}  # fmt: skip
    assert ("tasks[0].executor", "!mlflow: MLflow projects are not supported: an MLproject's environment") in messages
    assert (
        "tasks[2].fromTemplate.name",
        "expected a name made of letters, digits, _, got 'mlflow-template' ('-' at character 7 is not a letter, digit "
        "or _)",
    ) in messages
    assert not any("got a mapping" in p.message or "TaggedScalar" in p.message for p in raised.value.problems)


def test_ame_yml_tagged_secrets_and_ours_side_by_side(tmp_path):
    shutil.copy(AME / "executors/pip/nn.py", tmp_path)
    shutil.copy(AME / "executors/pip/requirements.txt", tmp_path)
    (tmp_path / "ame.yml").write_text(
        "name: tagged\n"
        "tasks:\n"
        "  - name: train\n"
        "    executor: !pip\n"
        "      command: python nn.py\n"
        "      pythonVersion: 3.10\n"
        "    secrets:\n"
        "      - !ame {key: blob_storage_key, injectAs: BLOB}\n"
        "      - !vault {vault: company_vault, key: path/to/secret, injectAs: COMPANY}\n"
        "      - {group: ours, key: token, injectAs: OURS}\n"
    )
    task = load(tmp_path).tasks["train"]
    assert {n: (s.group, s.key) for n, s in task.config.secret_env.items()} == {
        "BLOB": ("ame", "blob_storage_key"),
        "COMPANY": ("company_vault/path/to", "secret"),
        "OURS": ("ours", "token"),
    }
    (tmp_path / "flyte-prebuilt.yaml").write_text("project: ours\n")  # ours is looked for first
    assert load(tmp_path).name == "ours"


def test_a_python_version_written_as_a_float_keeps_its_text(tmp_path):
    shutil.copy(AME / "executors/custom/nn.py", tmp_path)
    (tmp_path / "ame.yaml").write_text(
        "name: p\ntasks:\n  - name: t\n    executor: !custom\n      command: python nn.py\n      pythonVersion: 3.1\n"
    )
    with pytest.raises(ProjectErrors) as raised:
        load(tmp_path)
    (problem,) = raised.value.problems
    assert problem.field == "tasks[0].executor.pythonVersion" and problem.message.startswith("3.1: the images are")


WARNED = [
    "models: AME's section, ignored: AME's model deployments have no Flyte task here",
    "data_sets: AME's section, ignored: AME's data sets have no Flyte task here (write them as tasks)",
]


def test_load_warns_each_ignored_section_once():
    """What pyflyte shows when it imports a project's module: Python warnings from load(), at the caller's line."""
    with pytest.warns(ProjectWarning) as caught:
        load(AME / "executors/pip")
    assert [str(w.message).split(": ", 1)[1] for w in caught] == WARNED
    assert {w.filename for w in caught} == {__file__}


@pytest.mark.parametrize("command", [["validate"], ["list"], ["show", "training"]])
def test_every_command_shows_the_warnings_once(command, recwarn):
    result = CliRunner().invoke(project_command, [*command, "-f", str(AME / "executors/pip")])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if "warning" in line.lower()]
    assert [line.split(": ", 2)[2] for line in warned] == WARNED
    assert all(line.startswith("warning: ") for line in warned)
    assert not [w for w in recwarn if issubclass(w.category, ProjectWarning)]  # not also as Python warnings
