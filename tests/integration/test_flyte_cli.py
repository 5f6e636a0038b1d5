"""The examples through flytekit's own CLI (`pyflyte run` locally, `pyflyte package` for a cluster), and ours:
`flyte-prebuilt` answers a user's mistake with one line saying what to fix and exit code 2."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from flyteidl.admin import task_pb2
from flytekitplugins.prebuilt.kit.images import default_image
from google.protobuf.json_format import MessageToDict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PYFLYTE = str(Path(sys.executable).parent / "pyflyte")


def test_pyflyte_run_the_quickstart():
    done = subprocess.run(
        [PYFLYTE, "run", "sql_quickstart.py", "top_customers", "--min_amount", "195"],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "customer   big orders" in done.stdout and "orders" in done.stdout


def test_pyflyte_run_refuses_a_missing_input_naming_it():
    done = subprocess.run(
        [PYFLYTE, "run", "sql_quickstart.py", "big_orders"], cwd=EXAMPLES, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert "input 'min_amount' was not given a value" in " ".join((done.stdout + done.stderr).split())


def test_pyflyte_package_names_our_image_and_schema_version(tmp_path):
    out = tmp_path / "flyte-package.tgz"
    done = subprocess.run(
        [PYFLYTE, "--pkgs", "sql_quickstart", "package", "--image", "ghcr.io/example/user:1", "-o", str(out)],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with tarfile.open(out) as archive:
        archive.extractall(tmp_path / "pkg")
    spec = task_pb2.TaskSpec()
    spec.ParseFromString((tmp_path / "pkg" / "0_big_orders_1.pb").read_bytes())
    template = spec.template
    assert MessageToDict(template.custom)["prebuilt"] == {"type": "sql", "version": 1.0}
    assert template.type == "prebuilt-sql" and template.task_type_version == 1
    assert template.container.image == default_image("sql")  # the image `make images` builds, not the user's
    report = task_pb2.TaskSpec()
    report.ParseFromString((tmp_path / "pkg" / "1_sql_quickstart.report_1.pb").read_bytes())
    assert report.template.container.image == "ghcr.io/example/user:1"


# ------------------------------------------------------------------ flyte-prebuilt: user mistakes are one line, exit 2

FLYTE_PREBUILT = str(Path(sys.executable).parent / "flyte-prebuilt")
TASKS_MODULE = """\
import datetime
from flytekit import task, workflow
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask

count = ScriptTask("count", source={source!r}, command=["python", "count.py"],
                   inputs={{"n": int, "day": datetime.date}}, outputs={{"doubled": int}},
                   preset=ScriptPreset.of(dependencies="none"))


@task
def plain(x: int) -> int:
    return x


@workflow
def flow(x: int) -> int:
    return plain(x=x)
"""
COUNT_SCRIPT = """\
import json, os, sys
n = int(os.environ["PREBUILT_INPUT_N"])
print(f"hello from the script, n={n} day={os.environ['PREBUILT_INPUT_DAY']}", flush=True)
if n < 0:
    sys.exit(4)
json.dump({"doubled": 2 * n}, open(os.environ["PREBUILT_OUTPUTS_FILE"], "w"))
"""


@pytest.fixture
def tasks_file(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "count.py").write_text(COUNT_SCRIPT)
    module = tmp_path / "my_tasks.py"
    module.write_text(TASKS_MODULE.format(source=str(project / "count.py")))
    return module


def prebuilt(*args, cwd, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [FLYTE_PREBUILT, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, "PREBUILT_ENV_CACHE": str(Path(cwd) / "env-cache"), **env},
    )


def one_line_mistake(done) -> str:
    """The run ended with exit code 2 and one line on stderr, no traceback; returns that line."""
    assert done.returncode == 2, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr[-3000:]
    return lines[0]


def test_version(tmp_path):
    from flytekitplugins.prebuilt.kit.images import package_version

    done = prebuilt("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout == f"flyte-prebuilt {package_version()}\n"


def test_a_bad_input_value(tasks_file):
    line = one_line_mistake(
        prebuilt("run", tasks_file, "count", "--input", "n=three", "--input", "day=2024-01-31", cwd=tasks_file.parent)
    )
    assert "--input n=three: expected an integer" in line
    line = one_line_mistake(
        prebuilt("run", tasks_file, "count", "--input", "n=3", "--input", "day=31/01/2024", cwd=tasks_file.parent)
    )
    assert "--input day=31/01/2024: expected an ISO date, e.g. 2024-01-31" in line


def test_an_unknown_input_name(tasks_file):
    line = one_line_mistake(prebuilt("run", tasks_file, "count", "--input", "m=3", cwd=tasks_file.parent))
    assert "count has no input 'm'; its inputs are n (int), day (date)" in line


def test_a_missing_input(tasks_file):
    line = one_line_mistake(prebuilt("run", tasks_file, "count", "--input", "n=3", cwd=tasks_file.parent))
    assert "count needs --input day=<an ISO date>" in line


@pytest.mark.parametrize(
    "name, said",
    [
        ("flow", "'flow' is a workflow"),
        ("plain", "'plain' is a @task function"),
        ("datetime", "'datetime' is a module object"),
        ("nothing", "has no 'nothing'; its prebuilt tasks are: count"),
    ],
)
def test_something_else_where_a_prebuilt_task_is_expected(tasks_file, name, said):
    for command in (["run"], ["identity"]):
        line = one_line_mistake(prebuilt(*command, tasks_file, name, cwd=tasks_file.parent))
        assert said in line


def test_a_missing_module(tmp_path):
    assert "nope.py: no such file" in one_line_mistake(prebuilt("run", "nope.py", "t", cwd=tmp_path))
    assert "no module named 'nope_module'" in one_line_mistake(prebuilt("run", "nope_module", "t", cwd=tmp_path))
    (tmp_path / "needs.py").write_text("import a_package_that_is_not_installed\n")
    line = one_line_mistake(prebuilt("run", "needs.py", "t", cwd=tmp_path))
    assert (
        "cannot load needs.py: ModuleNotFoundError: No module named 'a_package_that_is_not_installed' (needs.py:1)"
        in line
    )


def test_a_task_definition_error_names_the_field_and_the_line(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from flytekitplugins.prebuilt.script import ScriptTask\n\n"
        "t = ScriptTask('t', source=__file__, command=['python'], requests={'memory': '2GB'})\n"
    )
    line = one_line_mistake(prebuilt("run", "bad.py", "t", cwd=tmp_path))
    assert (
        line.startswith("Error: cannot load bad.py: requests.memory:")
        and "'2GB'" in line
        and line.endswith("(bad.py:3)")
    )
    done = prebuilt("run", "bad.py", "t", cwd=tmp_path, FLYTE_PREBUILT_TRACEBACK="1")
    assert done.returncode == 1 and "Traceback" in done.stderr  # the traceback, when asked for


@pytest.mark.parametrize(
    "secret, said",
    [
        ("hunter2", "--secret: expected GROUP.KEY=VALUE"),
        ("password=hunter2", "--secret password=...: expected GROUP.KEY=VALUE"),
        (".password=hunter2", "--secret .password=...: expected GROUP.KEY=VALUE"),
        ("db.=hunter2", "--secret db.=...: expected GROUP.KEY=VALUE"),
    ],
)
def test_a_malformed_secret_is_refused_without_showing_it(tasks_file, secret, said):
    done = prebuilt(
        "run",
        tasks_file,
        "count",
        "--input",
        "n=1",
        "--input",
        "day=2024-01-31",
        "--secret",
        secret,
        cwd=tasks_file.parent,
    )
    assert said in one_line_mistake(done) and "hunter2" not in done.stderr + done.stdout


def test_image_name_of_an_unknown_task_type(tmp_path):
    line = one_line_mistake(prebuilt("image-name", "nosuchtype", cwd=tmp_path))
    from flytekitplugins.prebuilt.kit.spec import task_types

    assert line == f"Error: unknown task type 'nosuchtype'; the task types are: {', '.join(task_types())}"
    assert {"script", "sql"} <= set(task_types())
    assert prebuilt("image-name", "script", cwd=tmp_path).stdout.startswith(
        "ghcr.io/flytekitplugins-prebuilt/prebuilt-script:"
    )


def test_missing_cloud_credentials(tmp_path):
    (tmp_path / "home").mkdir()
    done = prebuilt(
        "bundle",
        "list",
        "s3://prebuilt-no-such-bucket/bundles",
        "train",
        cwd=tmp_path,
        HOME=str(tmp_path / "home"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    assert one_line_mistake(done) == (
        "Error: no cloud credentials (Unable to locate credentials); set AWS credentials "
        "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
    )


def test_no_docker_engine(tasks_file):
    done = prebuilt(
        "run",
        tasks_file,
        "count",
        "--input",
        "n=1",
        "--input",
        "day=2024-01-31",
        "--in-container",
        cwd=tasks_file.parent,
        DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("Error: no Docker engine answers")


def test_the_commands_output_is_shown_on_success_as_on_failure(tasks_file):
    ok = prebuilt("run", tasks_file, "count", "--input", "n=21", "--input", "day=2024-01-31", cwd=tasks_file.parent)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert ok.stdout == "doubled: 42\n" and "hello from the script, n=21 day=" in ok.stderr
    failed = prebuilt("run", tasks_file, "count", "--input", "n=-1", "--input", "day=2024-01-31", cwd=tasks_file.parent)
    assert failed.returncode == 1 and failed.stdout == ""
    assert "hello from the script, n=-1" in failed.stderr
    assert "FAILED [USER/NON_RECOVERABLE] USER:ScriptExit after 1 attempt(s)" in failed.stderr


# ------------------------------------------------------------------ flyte-prebuilt run: outputs and its storage root


def temp_dir(tmp_path) -> Path:
    """The TMPDIR of a command: where its temporary storage root is made."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    return folder


def test_a_dataset_output_shows_its_first_rows_and_the_temporary_root_is_removed(tmp_path):
    tmp = temp_dir(tmp_path)
    args = ("run", EXAMPLES / "sql_quickstart.py", "big_orders", "--input", "min_amount=150", "--input", "unused=1")
    assert "has no input 'unused'" in one_line_mistake(prebuilt(*args, cwd=tmp_path, TMPDIR=str(tmp)))
    done = prebuilt(*args[:-2], cwd=tmp_path, TMPDIR=str(tmp))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "results: (removed with the temporary storage root; --keep keeps it)"
    rows = int(lines[1].split()[0])
    assert lines[1] == f"  {rows} row(s), 3 column(s)" and 0 < rows <= 10  # all of them: no "the first 10"
    assert lines[2].split() == ["customer", "orders", "total"] and len(lines) == 3 + rows
    assert "deck: (removed with the temporary storage root; --keep keeps it)" in done.stderr
    assert not list(tmp.glob("flyte-prebuilt-*"))  # neither after a mistake nor after a run


def test_keep_keeps_the_storage_root_with_the_dataset_and_the_pods_temporary_files(tmp_path):
    tmp = temp_dir(tmp_path)
    done = prebuilt(
        "run", EXAMPLES / "sql_quickstart.py", "big_orders", "--input", "min_amount=150", "--keep", cwd=tmp_path,
        TMPDIR=str(tmp),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [root] = tmp.glob("flyte-prebuilt-*")
    assert done.stderr.strip().splitlines()[-1] == f"kept {root}"
    uri = done.stdout.splitlines()[0].removeprefix("results: ")
    assert uri.startswith(str(root)) and list(Path(uri).glob("*.parquet"))
    assert list((root / "tmp").glob("flyte*"))  # flytekit's sandbox of the pod: under the root, not in TMPDIR


def test_a_failed_run_keeps_its_storage_root_and_says_where(tasks_file, tmp_path):
    tmp = temp_dir(tmp_path)
    failed = prebuilt(
        "run", tasks_file, "count", "--input", "n=-1", "--input", "day=2024-01-31", cwd=tasks_file.parent,
        TMPDIR=str(tmp),
    )  # fmt: skip
    assert failed.returncode == 1
    [root] = tmp.glob("flyte-prebuilt-*")
    assert failed.stderr.strip().splitlines()[-1] == (
        f"kept {root} (the failed run's storage root: inputs, error document, outputs)"
    )
    assert list(root.glob("metadata/propeller/*/n0/data/0/error*.pb"))


def test_in_the_image_with_the_mount_it_names_the_rows_are_shown_and_the_root_removed(tmp_path, sql_image):
    """What the mount hint leads to (tests/unit/test_cli_mounts.py): the run in the image, then its storage root,
    with what the container's user wrote in it, removed."""
    tmp = temp_dir(tmp_path)
    args = ("run", EXAMPLES / "sql_quickstart.py", "big_orders", "--input", "min_amount=150", "--in-container")
    hint = one_line_mistake(prebuilt(*args, "--image", sql_image, cwd=tmp_path, TMPDIR=str(tmp)))
    mount = hint.rsplit("add --mount ", 1)[1]
    done = prebuilt(*args, "--image", sql_image, "--mount", mount, cwd=tmp_path, TMPDIR=str(tmp))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[2].split() == ["customer", "orders", "total"]
    assert "could not remove" not in done.stderr and not list(tmp.glob("flyte-prebuilt-*"))


MAP_MODULE = """\
import functools
from pathlib import Path
from flytekitplugins.prebuilt.map import map_task
from flytekitplugins.prebuilt.script import ScriptTask

square = ScriptTask(
    "square",
    source=str(Path(__file__).parent / "step"),
    command=["python", "-c", "import json, os, sys; n, k = map(int, sys.argv[1:]); "
             "json.dump({'square': n * n + k}, open(os.environ['PREBUILT_OUTPUTS_FILE'], 'w'))",
             "{{.inputs.n}}", "{{.inputs.offset}}"],
    inputs={"n": int, "offset": int},
    outputs={"square": int},
    dependencies="none",
)
squares = map_task(functools.partial(square, offset=1))
"""


def test_run_of_a_map_task_runs_every_element_with_its_bound_input(tmp_path):
    (tmp_path / "step").mkdir()
    (tmp_path / "step" / "README").write_text("the step's code is its command\n")
    (tmp_path / "mapped.py").write_text(MAP_MODULE)
    done = prebuilt("run", "mapped.py", "squares", "--input", "n=[1,2,3]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "square: [2, 5, 10]" in done.stdout
