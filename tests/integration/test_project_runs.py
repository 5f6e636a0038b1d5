"""The example project (examples/project) for real: `pyflyte run` executes its pipeline locally, `pyflyte package`
serializes its tasks, workflow and scheduled launch plan from the two-line module, and `flyte-prebuilt project`
validates, lists, shows and runs it through the platform emulator (a file passed between steps, a parallel group,
a template from another project)."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from click.testing import CliRunner, Result
from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
from flytekitplugins.prebuilt.cli import main
from google.protobuf.json_format import MessageToDict

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "project"
BIN = Path(sys.executable).parent


def run(*argv, cwd=ROOT, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_pyflyte_run_runs_the_pipeline_locally():
    done = run("pyflyte", "run", "examples/project/project.py", "report", "--rows", "40")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "extracted 40 orders" in done.stdout
    assert "40 orders, " in done.stdout and " EUR" in done.stdout  # EUR: the shared project's template's env


def test_pyflyte_package_serializes_tasks_the_workflow_and_the_schedule(tmp_path):
    out = tmp_path / "flyte-package.tgz"
    done = run("pyflyte", "--pkgs", "project", "package", "--image", "ghcr.io/example/user:1", "-o", str(out),
               cwd=PROJECT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with tarfile.open(out) as archive:
        archive.extractall(tmp_path / "pkg")
    files = {p.name: p.read_bytes() for p in (tmp_path / "pkg").iterdir()}
    names = sorted(name.split("_", 1)[1].rsplit("_", 1)[0] for name in files)
    tasks = ["shop.big_orders", "shop.count", "shop.extract"]
    assert names == [*tasks, "shop.report", "shop.report", "shop.report.schedule", "shop.summary", "shop.total"]
    task = task_pb2.TaskSpec.FromString(next(v for k, v in files.items() if "shop.extract" in k))
    assert task.template.type == "prebuilt-script" and MessageToDict(task.template.custom)["dependencies"] == "none"
    workflow = workflow_pb2.WorkflowSpec.FromString(next(v for k, v in files.items() if k.endswith("shop.report_2.pb")))
    assert len(workflow.template.nodes) == 4
    plan = launch_plan_pb2.LaunchPlan.FromString(next(v for k, v in files.items() if "schedule" in k))
    assert plan.id.name == "shop.report.schedule" and plan.spec.workflow_id.name == "shop.report"
    assert plan.spec.entity_metadata.schedule.cron_schedule.schedule == "0 6 * * *"


def test_project_run_through_the_emulator():
    done = run("flyte-prebuilt", "project", "run", "nightly", "-f", "examples/project", "--input", "rows=25")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("line: 25 orders, ") and done.stdout.strip().endswith("EUR")
    steps = [line for line in done.stderr.splitlines() if line.startswith("step ")]
    assert steps[0] == "step extract: done" and steps[-1] == "step summary: done"
    assert sorted(steps[1:3]) == ["step count: done", "step total: done"]
    assert "extracted 25 orders" in done.stderr  # the step's log


def test_pyflyte_run_a_sql_task_of_the_project():
    sys.path.insert(0, str(ROOT / "examples"))
    from shop_db import ensure_shop_db

    ensure_shop_db()  # the url is relative to where it runs: pyflyte run runs it here, in-process
    done = run("pyflyte", "run", "examples/project/project.py", "big_orders", "--min_amount", "195")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "StructuredDataset" in done.stdout


def cli(*argv) -> Result:
    """The same command in this process (click's runner): the checks need no process of their own."""
    return CliRunner().invoke(main, list(argv), catch_exceptions=False)


def test_validate_list_and_show(monkeypatch):
    monkeypatch.chdir(ROOT)
    done = cli("project", "validate", "-f", "examples/project")
    assert done.exit_code == 0 and done.stdout == "ok: project shop: 5 task(s), 1 pipeline(s), 1 schedule(s)\n"
    listed = cli("project", "list", "-f", "examples/project").stdout.splitlines()
    assert "report  pipeline  shop.report  (rows: int) -> (line: str)  schedule 0 6 * * *" in listed
    assert "nightly  alias of report  shop.report  (rows: int) -> (line: str)" in listed
    shown = json.loads(cli("project", "show", "big_orders", "-f", "examples/project").stdout)
    assert shown["custom"]["prebuilt"] == {"type": "sql", "version": 1.0}
    assert shown["metadata"]["discoverable"] is True and shown["id"]["name"] == "shop.big_orders"


def test_mistakes_are_exit_code_2(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad = tmp_path / "flyte-prebuilt.yaml"
    bad.write_text("project: shop\ntasks:\n  - name: a\n    retires: 2\n  - name: b\n    taskRef: c\n")
    done = cli("project", "validate", "-f", str(bad))
    assert done.exit_code == 2
    assert done.stderr.splitlines() == [
        f"error: {bad}:4:5: tasks[0].retires: unknown key 'retires' (did you mean 'retries'?); expected one of "
        + done.stderr.split("expected one of ", 1)[1].splitlines()[0],
        f"error: {bad}:6:14: tasks[1].taskRef: 'c' names no task or pipeline of this project",
        f"2 error(s) in {bad}",
    ]
    unknown = cli("project", "run", "reprot", "-f", "examples/project")
    assert unknown.exit_code == 2 and "has no task or pipeline 'reprot' (did you mean 'report'?)" in unknown.stderr
    missing = cli("project", "run", "report", "-f", "examples/project")
    assert missing.exit_code == 2 and "shop.report needs --input rows=<an integer>" in missing.stderr


AME_WITH_MODELS = """\
name: piptest
models:
tasks:
 - name: training
   executor:
     !custom
     command: python nn.py
"""
IGNORED_MODELS = "ame.yaml:2:1: models: AME's section, ignored: AME's model deployments have no Flyte task here"


def test_pyflyte_and_project_run_show_the_projects_warnings_once(tmp_path):
    """A section Flyte has no meaning for (AME's models:) is said wherever the file is read, not only by validate:
    pyflyte importing the module (a Python warning at its line), project run (a warning: line)."""
    (tmp_path / "ame.yaml").write_text(AME_WITH_MODELS)
    (tmp_path / "nn.py").write_text("print('trained')\n")
    (tmp_path / "project.py").write_text(
        "from pathlib import Path\n\nfrom flytekitplugins.prebuilt.project import load\n\n"
        "globals().update(load(Path(__file__).with_name('ame.yaml')).entities)\n"
    )
    done = run("pyflyte", "run", "project.py", "training", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained" in done.stdout
    assert (done.stdout + done.stderr).count(IGNORED_MODELS) == 1
    assert "project.py:5: ProjectWarning: " in done.stderr
    done = run("flyte-prebuilt", "project", "run", "training", "-f", ".", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count(IGNORED_MODELS) == 1 and f"warning: ./{IGNORED_MODELS}" in done.stderr
