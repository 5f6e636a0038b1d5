"""The project file's JSON Schema is generated from the task types' config classes (plugins/project/schema.py): every
config field is a YAML key, a new field needs no second definition, and the published copy is what is generated."""

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from flytekitplugins.prebuilt.cli import main
from flytekitplugins.prebuilt.kit.spec import task_types
from flytekitplugins.prebuilt.project import ProjectErrors, load, project_schema
from flytekitplugins.prebuilt.project.schema import config_properties
from flytekitplugins.prebuilt.project.shorthands import SHORTHANDS
from flytekitplugins.prebuilt.project.source import read
from flytekitplugins.prebuilt.sql.config import SQLConfig

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "plugins" / "project" / "schema.json"
REGENERATE = "flyte-prebuilt project schema > plugins/project/schema.json"


def test_the_published_schema_is_the_generated_one():
    assert json.loads(PUBLISHED.read_text()) == project_schema(), f"the schema changed: run `{REGENERATE}`"


def test_the_schema_is_valid_json_schema_2020_12():
    jsonschema.Draft202012Validator.check_schema(project_schema())


def test_every_config_field_of_every_type_is_a_key_of_its_tasks():
    schema = project_schema()
    for name, spec in task_types().items():
        keys = schema["$defs"][f"{name}_task"]["properties"]
        for field in dataclasses.fields(spec.config):
            spelled = [s.key for s in SHORTHANDS if field.name == s.key]  # AME's spelling replaces ours
            assert field.name in keys or spelled, f"{name}: config field {field.name} is no YAML key"


def test_a_new_config_field_appears_with_its_type_default_and_description():
    @dataclasses.dataclass(frozen=True)
    class SQLConfigWithTimeout(SQLConfig):
        """More.

        statement_timeout  seconds before the database cancels a statement
        """

        statement_timeout: int = 30

    properties = config_properties(SQLConfigWithTimeout)
    assert properties["statement_timeout"] == {
        "type": "integer",
        "default": 30,
        "description": "seconds before the database cancels a statement",
    }
    assert properties["url"]["type"] == "string"  # the inherited ones stay


def test_editors_can_check_a_project_file_with_the_published_schema_alone():
    """What an editor does with `# yaml-language-server: $schema=...`: validate the example with the JSON file."""
    validator = jsonschema.Draft202012Validator(json.loads(PUBLISHED.read_text()))
    example = read(ROOT / "examples" / "project" / "flyte-prebuilt.yaml").data
    assert list(validator.iter_errors(example)) == []
    example["tasks"][0]["retires"] = 2
    assert [e.message for e in validator.iter_errors(example)] == [
        "Additional properties are not allowed ('retires' was unexpected)"
    ]


def test_the_cli_prints_the_schema():
    result = CliRunner().invoke(main, ["project", "schema"])
    assert result.exit_code == 0 and json.loads(result.output) == project_schema()


AME = Path(__file__).resolve().parent / "fixtures" / "ame"


@pytest.mark.parametrize("folder", ["env", "executors/custom", "executors/pip", "executors/pipenv", "executors/poetry"])
def test_editors_accept_ames_files_that_the_loader_reads(folder):
    """AME's spellings are aliases (plugins/project/ame.py): an editor given schema.json must not flag them
    (`name:`, `env:` as a list, `- ame: {key, injectAs}`, `models:`, empty `templates:`)."""
    validator = jsonschema.Draft202012Validator(json.loads(PUBLISHED.read_text()))
    data = read(AME / folder / "ame.yaml").data
    assert list(validator.iter_errors(data)) == []
    load(AME / folder)  # and the loader reads it


@pytest.mark.parametrize("folder", ["artifacts", "executors/mlflow"])
def test_editors_flag_ames_files_that_the_loader_refuses(folder):
    validator = jsonschema.Draft202012Validator(json.loads(PUBLISHED.read_text()))
    assert list(validator.iter_errors(read(AME / folder / "ame.yaml").data))
    with pytest.raises(ProjectErrors):
        load(AME / folder)


def test_editors_accept_a_vault_secret_and_refuse_both_project_spellings():
    validator = jsonschema.Draft202012Validator(json.loads(PUBLISHED.read_text()))
    task = {"name": "t", "command": "python x.py", "secrets": [{"vault": "v", "key": "a/b", "injectAs": "B"}]}
    assert list(validator.iter_errors({"name": "p", "tasks": [task]})) == []
    assert list(validator.iter_errors({"name": "p", "project": "p"}))  # one or the other, as the loader reads it
    assert list(validator.iter_errors({"tasks": [task]}))  # a project needs its name
