"""docs/train/ is true: every ```python block runs as a script from the repository root, and every line of every
```bash block runs there as written (the digits example in-process and through `flyte-prebuilt run`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs" / "train").glob("*.md"))
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets() -> list:
    found = []
    for page in PAGES:
        for index, match in enumerate(BLOCK.finditer(page.read_text())):
            found.append(pytest.param(match.group(1), match.group(2), id=f"{page.stem}-{index}"))
    return found


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """One environment cache for the pages (scikit-learn and tensorboard are installed once)."""
    return {**os.environ, "PREBUILT_ENV_CACHE": str(tmp_path_factory.mktemp("env-cache"))}


def test_the_pages_have_runnable_snippets():
    assert {page.name for page in PAGES} >= {"README.md", "launch.md", "checkpoints.md", "metrics.md", "failures.md"}
    runnable = {param.id.rsplit("-", 1)[0] for param in snippets()}
    assert runnable == {"README", "launch", "checkpoints", "metrics", "failures"}


@pytest.mark.parametrize("language, code", snippets())
def test_the_snippet_runs_as_written(language, code, tmp_path, env):
    if language == "python":
        script = tmp_path / "snippet.py"
        script.write_text(code)
        commands = [[sys.executable, str(script)]]
    else:
        commands = [["bash", "-c", line] for line in code.splitlines() if line.strip() and not line.startswith("#")]
    for command in commands:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        if command[0] == "bash" and "train_quickstart.py train_digits" in command[-1]:
            assert "accuracy: 0.9" in done.stdout  # the outputs flyte-prebuilt printed
