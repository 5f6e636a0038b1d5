"""``flyte-prebuilt run --in-container``: a local path the task reads (a SQLite file in its config, a path given as a
string input) that its container would not see is a one-line mistake naming the ``--mount`` to add, found before
Docker is reached (tests/conftest.py points DOCKER_HOST nowhere for unmarked tests)."""

import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from flytekitplugins.prebuilt.cli import main
from flytekitplugins.prebuilt.cli.host_paths import unmounted

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DATA = EXAMPLES / "data"


@pytest.fixture
def temp(tmp_path, monkeypatch):
    """tempfile's folder for this test: the storage roots the command makes land here."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def run_in_container(*extra):
    args = ["run", str(EXAMPLES / "sql_quickstart.py"), "big_orders", "--input", "min_amount=150", "--in-container"]
    return CliRunner().invoke(main, [*args, *map(str, extra)])


def test_an_unmounted_sqlite_file_names_the_mount_to_add(temp):
    result = run_in_container()
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: --in-container: the task reads {DATA / 'shop.db'} (config url), which its container cannot see; "
        f"add --mount {DATA}"
    ]
    assert not list(temp.glob("flyte-prebuilt-*"))  # nothing ran: its storage root is gone


def test_with_the_mount_the_run_goes_on_to_docker(temp):
    result = run_in_container("--mount", DATA)
    assert result.exit_code == 2 and "no Docker engine answers" in result.output, result.output


def test_paths_in_inputs_and_what_is_visible(tmp_path):
    (tmp_path / "seen").mkdir()
    (tmp_path / "unseen.txt").write_text("x")
    custom = {"url": "postgresql://reader@db/sales", "statements": ["select 1"], "args": ["/etc/hosts", "/usr"]}
    inputs = {"where": str(tmp_path / "seen"), "files": ["relative.txt", f"file://{tmp_path}/unseen.txt"]}
    assert unmounted(custom, inputs, [str(tmp_path / "seen")]) == [("input files[1]", str(tmp_path / "unseen.txt"))]
    assert unmounted({"url": "sqlite:////nonexistent/app.db"}, {}, []) == []  # a path inside the image


def test_a_refused_mount_leaves_no_storage_root(temp):
    result = run_in_container("--mount", "/")
    assert result.exit_code == 2 and "the root folder cannot be mounted" in result.output, result.output
    assert "kept" not in result.output and not list(temp.glob("flyte-prebuilt-*"))
