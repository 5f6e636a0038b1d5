"""A hostile project file is refused quickly, in bounded memory, at its file:line:column, with exit code 2 and no
traceback; files named in ``projects`` stay inside the project's folder and their values are never quoted (issue 17;
plugins/project/files.py, bounded_yaml.py, source.py). The command-line checks run ``flyte-prebuilt`` in a process
of its own under a memory limit, so that a regression fails instead of eating the machine's memory, or hanging."""

import os
import resource
import subprocess
import sys
import textwrap

import pytest
from flytekitplugins.prebuilt.project import ProjectErrors, load

CLI = os.path.join(os.path.dirname(sys.executable), "flyte-prebuilt")
MEMORY_LIMIT = 1 << 30  # flyte-prebuilt with flytekit imported maps about 400 MiB
TOKEN = "ghp_TOKENVALUE123"

ALIAS_BOMB = """\
project: shop
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
tasks: *i
"""  # 10^9 strings once expanded

SQL_TASK = """\
project: shop
tasks:
  - name: orders
    type: sql
    query: select 1
    url: sqlite:///shop.db
"""


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def validate(path) -> subprocess.CompletedProcess:
    """``flyte-prebuilt project validate -f path`` in its own process, memory-limited; a hang fails the test."""
    return subprocess.run(
        [CLI, "project", "validate", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited,
        check=False,
    )


def refused(done: subprocess.CompletedProcess, *expected: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for text in expected:
        assert text in done.stderr, done.stderr


def write(tmp_path, content, name: str = "flyte-prebuilt.yaml"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(textwrap.dedent(content))
    return path


def problems(path) -> list[str]:
    with pytest.raises(ProjectErrors) as raised:
        load(path)
    return [str(problem) for problem in raised.value.problems]


def test_an_alias_bomb_is_refused_at_the_alias_that_expands_too_much(tmp_path):
    path = write(tmp_path, ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 600
    refused(validate(path), f"{path}:6:8: aliases expand to more than 10000 nodes")


def test_an_alias_inside_the_node_it_names_is_refused(tmp_path):
    path = write(tmp_path, "project: shop\ntasks: &loop [*loop]\n")
    assert problems(path) == [f"{path}:2:15: an alias inside the node it names (a cycle)"]


@pytest.mark.parametrize(
    "content, expected",
    [
        ("project: shop\ntasks: " + "[" * 300 + "]" * 300 + "\n", ":2:71: nested deeper than 64 levels"),
        (b"project: shop\ntasks:\n  - name: a\x01\n", ":3:12: YAML syntax: control character 0x01"),
        (b"project: shop\ntasks:\n  - name: caf\xe9\n", ":3:14: not UTF-8 text"),
        (SQL_TASK + '    resources: { cpu: "1e99999999" }\n', ":7:23: tasks[0].resources.cpu: '1e99999999' is too"),
    ],
    ids=["300 levels", "control character", "not UTF-8", "quantity overflow"],
)
def test_a_hostile_value_is_refused_at_its_position_without_a_traceback(tmp_path, content, expected):
    path = write(tmp_path, content)
    refused(validate(path), f"{path}{expected}")


def test_more_nodes_than_a_project_has_are_refused_before_all_are_read(tmp_path):
    path = write(tmp_path, "project: shop\nnotes:\n" + "  - a\n" * 20_001)
    assert problems(path) == [f"{path}:19998:5: more than 20000 values and keys in one file"]


def test_a_cron_with_a_seconds_field_is_refused(tmp_path):
    path = write(tmp_path, SQL_TASK + '    triggers: { schedule: "* * * * * *" }\n')
    (problem,) = problems(path)
    where = f"{path}:7:27: tasks[0].triggers.schedule"
    assert problem.startswith(f"{where}: '* * * * * *' is not a cron expression: 6 fields")


def test_the_project_file_itself_is_a_regular_file_of_bounded_size(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    refused(validate(fifo), f"{fifo}: the project file is not read: not a regular file")
    refused(validate("/dev/zero"), "/dev/zero: the project file is not read: not a regular file")
    big = write(tmp_path, SQL_TASK + "# " + "x" * 600_000 + "\n", name="big.yaml")
    (problem,) = problems(big)
    assert problem == f"{big}: the project file is not read: larger than 512 KiB, the most a project file may be"


def test_projects_are_files_inside_the_projects_folder(tmp_path):
    root = tmp_path / "repo" / "main"
    write(root, "project: shared\ntemplates:\n  - name: t\n    retries: 1\n", name="shared/flyte-prebuilt.yaml")
    write(tmp_path, f"project: outside\nsecret: {TOKEN}\n", name="repo/flyte-prebuilt.yaml")
    os.symlink("/dev/zero", root / "zero")
    os.mkfifo(root / "fifo")
    os.symlink(tmp_path / "repo" / "flyte-prebuilt.yaml", root / "link")
    names = {"up": "..", "abs": "/etc/passwd", "zero": "zero", "fifo": "fifo", "link": "link", "shared": "shared"}
    entries = "".join(f"  {name}: {relative}\n" for name, relative in names.items())
    task = "  - {{ name: {0}, fromTemplate: {0}.t, type: sql, query: s, url: 'sqlite:///a.db' }}\n"
    tasks = "".join(task.format(name) for name in names)
    path = write(root, f"project: shop\nprojects:\n{entries}tasks:\n{tasks}")
    done = validate(path)
    refused(
        done,
        f"{path}:3:7: projects.up: not read: leaves the project's folder",
        f"{path}:4:8: projects.abs: not read: an absolute path",
        f"{path}:5:9: projects.zero: not read: leaves the project's folder",
        f"{path}:6:9: projects.fifo: not read: not a regular file",
        f"{path}:7:9: projects.link: not read: leaves the project's folder",
        "5 error(s)",
    )
    assert TOKEN not in done.stderr and "root:" not in done.stderr


def test_errors_about_another_projects_file_never_quote_its_values(tmp_path):
    write(tmp_path, f"{TOKEN}\n", name="token.txt")  # a .env, a credentials file: any file of the folder
    write(tmp_path, f"project: listed\ntasks: {TOKEN}\n", name="listed/flyte-prebuilt.yaml")
    write(
        tmp_path,
        f"project: shared\nname: {TOKEN}x\nname: {TOKEN}\ntemplates:\n  - name: t\n    resources: {{ cpu: {TOKEN} }}\n",
        name="dup/flyte-prebuilt.yaml",
    )
    write(tmp_path, f"project: shared\ntemplates:\n  - name: t\n    resources: {{ cpu: {TOKEN} }}\n", name="s.yaml")
    path = write(
        tmp_path,
        """\
        project: shop
        projects: { token: token.txt, listed: listed, dup: dup, shared: s.yaml }
        tasks:
          - { name: a, fromTemplate: token.t }
          - { name: b, fromTemplate: listed.t }
          - { name: c, fromTemplate: dup.t }
          - { name: d, fromTemplate: shared.t, type: sql, query: s, url: 'sqlite:///a.db' }
        """,
    )
    found = problems(path)
    assert f"{tmp_path / 'token.txt'}:1:1: expected a mapping, got a string" in found
    assert f"{tmp_path / 'listed' / 'flyte-prebuilt.yaml'}:2:8: tasks: expected a list, got a string" in found
    assert any(f"{tmp_path / 'dup' / 'flyte-prebuilt.yaml'}:3:1: YAML syntax" in p and '"name"' in p for p in found)
    assert any(f"{tmp_path / 's.yaml'}:4:" in p and "resources.cpu" in p for p in found)
    assert not [p for p in found if TOKEN in p]


def test_mounting_the_root_folder_is_a_one_line_mistake(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "sql_quickstart.py")
    done = subprocess.run(
        [CLI, "run", example, "big_orders", "--input", "min_amount=150", "--in-container", "--mount", "/"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    refused(done, "mounts: /: the root folder cannot be mounted")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
