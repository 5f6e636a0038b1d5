"""A task type added in its own folders only (``plugins/<type>/``, ``executors/<type>/``) is a type of project files
too (issue 15): its spec's project keys are YAML keys, the keys every task has (inputs, resources, limits, retries,
description, ...) reach its task class, and a key it does not declare is refused at its line and column."""

import sys
import textwrap

import flytekitplugins.prebuilt as package
import flytekitplugins.prebuilt.executors as executors
import pytest
from flytekitplugins.prebuilt.kit.spec import task_types
from flytekitplugins.prebuilt.project import ProjectErrors, load
from flytekitplugins.prebuilt.project.checking import validator

FILES = {
    "plugins/shout/__init__.py": "",
    "plugins/shout/config.py": """
        from dataclasses import dataclass

        from flytekitplugins.prebuilt.kit.config import PrebuiltConfig


        @dataclass(frozen=True)
        class ShoutConfig(PrebuiltConfig):
            \"\"\"What to shout.

            words  the words
            \"\"\"

            words: str = "hey"
    """,
    "plugins/shout/spec.py": """
        from flytekitplugins.prebuilt.kit.project_keys import ProjectKeys, interface_schema
        from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec
        from flytekitplugins.prebuilt.shout.config import ShoutConfig

        SPEC = TaskTypeSpec(
            name="shout",
            schema_version=1,
            config=ShoutConfig,
            executor="flytekitplugins.prebuilt.executors.shout.ShoutExecutor",
            project=ProjectKeys(
                keys={"outputs": interface_schema("output name -> type")},
                keywords=lambda entry: {"outputs": entry.interface("outputs")},
            ),
        )
    """,
    "plugins/shout/task.py": """
        from flytekitplugins.prebuilt.kit.task import PrebuiltTask
        from flytekitplugins.prebuilt.shout.spec import SPEC


        class ShoutTask(PrebuiltTask):
            SPEC = SPEC
    """,
    "executors/shout/__init__.py": """
        from flytekitplugins.prebuilt.kit.executor import PrebuiltExecutor
        from flytekitplugins.prebuilt.shout.spec import SPEC


        class ShoutExecutor(PrebuiltExecutor):
            SPEC = SPEC

            def run(self, run):
                return run.config.words.upper()
    """,
}


@pytest.fixture
def shout_type(tmp_path, monkeypatch):
    """The ``shout`` type's folders in a scratch tree, joined to the package's (as if they were in this repository)."""
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path / "plugins")])
    monkeypatch.setattr(executors, "__path__", [*executors.__path__, str(tmp_path / "executors")])
    validator.cache_clear()  # the schema has a new type
    yield
    validator.cache_clear()
    for module in [
        m for m in sys.modules if m.startswith(("flytekitplugins.prebuilt.shout", f"{executors.__name__}.shout"))
    ]:
        del sys.modules[module]


def write(tmp_path, text: str):
    path = tmp_path / "project" / "flyte-prebuilt.yaml"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(text))
    (path.parent / "run.py").write_text("print('hi')\n")
    return path


def test_the_keys_every_task_has_reach_a_new_types_task(tmp_path, shout_type):
    assert "shout" in task_types()
    project = load(
        write(
            tmp_path,
            """\
            project: p
            tasks:
              - name: loud
                type: shout
                description: shouts the words
                words: hello
                inputs: { times: int }
                outputs: { said: str }
                resources: { cpu: "1", memory: 1Gi }
                limits: { memory: 2Gi }
                retries: 2
                timeout: 60
              - name: default
                command: [python, run.py]
            """,
        )
    )
    task = project.tasks["loud"]
    assert type(task).__name__ == "ShoutTask" and task.config.words == "hello"
    assert task.python_interface.inputs == {"times": int} and task.python_interface.outputs == {"said": str}
    assert (task.resources.requests.cpu, task.resources.requests.mem) == ("1", "1Gi")
    assert task.resources.limits.mem == "2Gi"
    assert task.metadata.retries == 2 and task.metadata.timeout.total_seconds() == 60
    assert task.docs.short_description == "shouts the words"
    assert type(project.tasks["default"]).__name__ == "ScriptTask"  # no type: the type that says project_default


def test_a_key_a_new_type_does_not_declare_is_refused_where_it_is(tmp_path, shout_type):
    path = write(
        tmp_path,
        """\
        project: p
        tasks:
          - name: loud
            type: shout
            query: select 1
        """,
    )
    with pytest.raises(ProjectErrors) as errors:
        load(path)
    assert f"{path}:5:5: tasks[0].query: unknown key 'query'" in str(errors.value)
