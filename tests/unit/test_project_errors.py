"""A project file's mistakes are all reported at once, each at its file:line:column with the field and what is
expected (plugins/project/checking.py, tasks.py, pipelines.py, schedules.py, templates.py)."""

import re
import textwrap

import pytest
from flytekitplugins.prebuilt.project import ProjectErrors, load

TEN_MISTAKES = """\
project: shop
tasks:
  - name: orders
    type: sql
    query: select 1
    url: sqlite:///shop.db
    retires: 2  # MISTAKE unknown key 'retires' (did you mean 'retries'?)
  - name: daily
    type: sql
    query: select 2
    url: sqlite:///shop.db
    reader: fast  # MISTAKE 'fast' is not one of auto, adbc, sqlalchemy
  - name: extract
    executor: !poetri  # MISTAKE unknown executor !poetri (did you mean '!poetry'?)
      command: python x.py
  - name: slow
    executor: !custom
      command: python x.py
    deadline_seconds: soon  # MISTAKE expected an integer, got 'soon'
  - name: hungry
    executor: !custom
      command: python x.py
    resources: { cpu: lots }  # MISTAKE expected a Kubernetes quantity
  - name: templated
    fromTemplate: nosuch  # MISTAKE no template 'nosuch'
  - name: looping
    fromTemplate: first
  - name: again
    taskRef: extrct  # MISTAKE 'extrct' names no task or pipeline of this project (did you mean 'extract'?)
  - name: secret_url
    type: sql
    query: select 3
    url: postgresql://reader:hunter2@db/sales  # MISTAKE holds a password
  - name: nightly
    pipeline:
      - taskRef: orders2
    triggers: { schedule: every day }  # MISTAKE 'every day' is not a cron expression
  - name: orders2
    type: sql
    query: select 4
    url: sqlite:///shop.db
templates:
  - name: first
    fromTemplate: second
  - name: second
    fromTemplate: first  # MISTAKE template cycle: first -> second -> first
"""


def write(tmp_path, text: str, name: str = "flyte-prebuilt.yaml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    (tmp_path / "x.py").write_text("print('x')\n")
    return path


def problems(path) -> list:
    with pytest.raises(ProjectErrors) as raised:
        load(path)
    return raised.value.problems


def test_ten_mistakes_ten_errors_each_at_its_line(tmp_path):
    path = write(tmp_path, TEN_MISTAKES)
    expected = [
        (number, line.split("# MISTAKE ")[1])
        for number, line in enumerate(TEN_MISTAKES.splitlines(), 1)
        if "# MISTAKE" in line
    ]
    found = problems(path)
    assert len(expected) == 10
    assert len(found) == 10
    for problem, (line, words) in zip(found, expected):
        assert problem.position.line == line, str(problem)
        assert problem.position.file == str(path) and problem.position.column > 0
        assert words in problem.message, str(problem)
    text = str(ProjectErrors(found))
    assert text.startswith("10 errors:") and f"{path}:7:5: tasks[0].retires: unknown key 'retires'" in text


def test_a_secret_in_a_url_is_not_repeated_in_the_error(tmp_path):
    found = problems(write(tmp_path, TEN_MISTAKES))
    assert not any("hunter2" in str(p) for p in found)


def test_yaml_syntax_error_points_at_it(tmp_path):
    path = write(tmp_path, "project: shop\ntasks:\n  - name: a\n    inputs: {x: int\n")
    (problem,) = problems(path)
    assert problem.position.line == 5 and "YAML syntax" in problem.message


def test_duplicate_key_is_refused_at_the_second(tmp_path):
    path = write(tmp_path, "project: shop\ntasks:\n  - name: a\n    name: b\n")
    (problem,) = problems(path)
    assert problem.position.line == 4 and 'duplicate key "name"' in problem.message


def test_only_our_tags_are_accepted_and_none_is_executed(tmp_path):
    marker = tmp_path / "ran"
    path = write(
        tmp_path,
        f"""\
        project: shop
        tasks:
          - name: a
            executor: !custom
              command: python x.py
            env: !!python/object/apply:os.system ["touch {marker}"]
          - name: b
            executor: !mlflow
              command: python x.py
          - name: c
            executor:
              command: python x.py
        """,
    )
    found = problems(path)
    assert not marker.exists()
    messages = {p.position.line: p.message for p in found}
    assert "tag !!python/object/apply:os.system is not allowed here" in messages[6]
    assert "MLflow projects are not supported" in messages[8] and "use !pip" in messages[8]
    assert "an executor starts with its kind: !pip, !poetry, !pipenv, !custom" in messages[11]


def test_missing_key_wrong_type_and_unknown_type(tmp_path):
    path = write(
        tmp_path,
        """\
        project: shop
        tasks:
          - type: sql
            query: select 1
          - name: b
            type: sqll
          - name: c
            retries: many
        """,
    )
    found = {p.position.line: str(p) for p in problems(path)}
    assert "tasks[0].name: missing required key 'name'" in found[3]
    assert "expected one of script, sql, train, got 'sqll' (did you mean 'sql'?)" in found[6]
    assert "tasks[2].retries: expected an integer, got 'many'" in found[8]


def test_errors_in_another_projects_template_point_into_its_file(tmp_path):
    write(
        tmp_path,
        """\
        project: shared
        templates:
          - name: small
            resources: { memory: 2GB }
            deadline_seconds: -1
        """,
        name="shared/flyte-prebuilt.yaml",
    )
    path = write(
        tmp_path,
        """\
        project: main
        projects: { shared: shared }
        tasks:
          - name: a
            fromTemplate: shared.small
            executor: !custom
              command: python x.py
          - name: b
            fromTemplate: { name: smal, project: shared }
          - name: c
            fromTemplate: elsewhere.small
        """,
    )
    found = [str(p) for p in problems(path)]
    other = tmp_path / "shared" / "flyte-prebuilt.yaml"
    assert any(
        re.match(rf"{re.escape(str(other))}:4:\d+: templates\[0\]\.resources\.memory: .*got a string$", p)
        for p in found  # another file's values are never quoted (issue 17): test_project_hostile.py
    )
    assert any(f"{path}:9:" in p and "no template 'smal' of project 'shared'" in p and "did you mean 'small'" in p
               for p in found)  # fmt: skip
    assert any(f"{path}:11:" in p and "project 'elsewhere' is not in projects" in p for p in found)


def test_pipeline_wiring_mistakes(tmp_path):
    path = write(
        tmp_path,
        """\
        project: shop
        tasks:
          - name: make
            executor: !custom
              command: python x.py
            outputs: { n: int }
          - name: use
            executor: !custom
              command: python x.py {{.inputs.m}}
            inputs: { m: int }
          - name: flow
            pipeline:
              - taskRef: make
              - taskRef: use
                inputs: { m: make.count, extra: inputs.x }
            outputs: { result: use.nothing }
        """,
    )
    found = [(p.position.line, p.message) for p in problems(path)]
    assert any(line == 15 and "step 'make' has no output 'count' (did you mean" not in m and "no output 'count'" in m
               for line, m in found), found  # fmt: skip
    assert any(line == 15 and "use has no input 'extra'" in m for line, m in found), found
