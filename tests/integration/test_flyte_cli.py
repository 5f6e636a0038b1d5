"""The example through flytekit's own CLI: `pyflyte run` locally and `pyflyte package` for a cluster."""

import subprocess
import sys
import tarfile
from pathlib import Path

from flyteidl.admin import task_pb2
from flytekitplugins.prebuilt.kit.images import default_image
from google.protobuf.json_format import MessageToDict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PYFLYTE = str(Path(sys.executable).parent / "pyflyte")


def test_pyflyte_run_the_quickstart():
    done = subprocess.run([PYFLYTE, "run", "sql_quickstart.py", "top_customers", "--min_amount", "195"],
                          cwd=EXAMPLES, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "customer   big orders" in done.stdout and "orders" in done.stdout


def test_pyflyte_package_names_our_image_and_schema_version(tmp_path):
    out = tmp_path / "flyte-package.tgz"
    done = subprocess.run([PYFLYTE, "--pkgs", "sql_quickstart", "package", "--image", "ghcr.io/example/user:1", "-o", str(out)],
                          cwd=EXAMPLES, capture_output=True, text=True, timeout=300)
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


