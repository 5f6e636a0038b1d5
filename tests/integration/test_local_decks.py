"""A local run (`pyflyte run`, an in-process call) writes the same Deck as a cluster's pod (here the emulator's
`pyflyte-execute`), where flytekit writes a local `@task`'s Deck; `enable_deck=False` writes none anywhere."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from flytekit.loggers import logger
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.sql import SQLTask

from tests.conftest import make_people_db

PYFLYTE = str(Path(sys.executable).parent / "pyflyte")
QUERY = "select id, name from people where id < :n order by id"
DECK_LOG = re.compile(r"(\w+) task creates flyte deck html to file://(\S+deck\.html)")


def module(db: Path) -> str:
    return (
        "from flytekitplugins.prebuilt.sql import SQLTask\n"
        f"people = SQLTask('people', {QUERY!r}, url='sqlite:///{db}', inputs={{'n': int}})\n"
    )


def emulated_deck(tmp_path: Path, task: SQLTask) -> str | None:
    result = Emulator(str(tmp_path / "store")).run(task, {"n": 3})
    return Path(result.deck_path).read_text() if result.deck_path else None


class DeckLog(logging.Handler):
    """The deck lines flytekit's logger emits (it does not propagate to pytest's capture)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.paths: list[str] = []

    def emit(self, record):
        match = DECK_LOG.search(record.getMessage())
        if match:
            self.paths.append(match.group(2))


def in_process_deck_paths(task: SQLTask) -> list[str]:
    handler, level = DeckLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        task(n=3)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return handler.paths


def test_pyflyte_run_and_an_in_process_call_write_the_clusters_deck(tmp_path):
    db = make_people_db(tmp_path / "people.db")
    (tmp_path / "decked.py").write_text(module(db))
    done = subprocess.run(
        [PYFLYTE, "run", "decked.py", "people", "--n", "3"],
        cwd=tmp_path,
        env={**os.environ, "FLYTE_SDK_LOGGING_LEVEL": "20", "FLYTE_SDK_RICH_TRACEBACKS": "0"},  # one line a record
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = DECK_LOG.findall(done.stdout + done.stderr)
    assert found and found[0][0] == "people", (done.stdout + done.stderr)[-2000:]
    local = Path(found[0][1]).read_text()
    task = SQLTask("people", QUERY, url=f"sqlite:///{db}", inputs={"n": int})
    assert local == emulated_deck(tmp_path, task)  # the very page a cluster's console shows
    assert "3 rows" in local and "name2" in local
    (path,) = in_process_deck_paths(task)
    assert Path(path).read_text() == local


def test_enable_deck_false_writes_no_deck_locally_or_in_the_pod(tmp_path):
    db = make_people_db(tmp_path / "people.db")
    quiet = SQLTask("people", QUERY, url=f"sqlite:///{db}", inputs={"n": int}, enable_deck=False)
    assert in_process_deck_paths(quiet) == []
    assert emulated_deck(tmp_path, quiet) is None
