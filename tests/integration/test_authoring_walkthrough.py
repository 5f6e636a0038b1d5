"""docs/authoring.md is a true walk-through: its code blocks, written to the files they name, make a task type that
runs in-process and through the emulator (a pyflyte-execute subprocess, as a cluster would run it)."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n# (?P<path>\S+)\n(?P<code>.*?)```", re.DOTALL)


def write_blocks(target: Path) -> dict[str, Path]:
    written = {}
    for match in BLOCK.finditer((ROOT / "docs" / "authoring.md").read_text()):
        path = target / match.group("path")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(match.group("code"))
        written[match.group("path")] = path
    return written


def test_the_echo_walkthrough_runs_in_process_and_emulated(tmp_path):
    written = write_blocks(tmp_path)
    assert {"plugins/echo/spec.py", "plugins/echo/task.py", "executors/echo/__init__.py", "use_echo.py"} <= set(written)
    assert "use_echo_in_a_project.py" in written
    # The scratch folders join the installed package's (as if the files were in this repository), in this process
    # and in every process it starts (the emulator's pyflyte-execute), through a sitecustomize on PYTHONPATH.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        textwrap.dedent(f"""
        import flytekitplugins.prebuilt, flytekitplugins.prebuilt.executors
        flytekitplugins.prebuilt.__path__.append({str(tmp_path / "plugins")!r})
        flytekitplugins.prebuilt.executors.__path__.append({str(tmp_path / "executors")!r})
    """)
    )
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(f"""
        import runpy
        runpy.run_path({str(written["use_echo.py"])!r})  # in-process: the page's own assertion
        runpy.run_path({str(written["use_echo_in_a_project.py"])!r})  # a type of project files too
        from flytekitplugins.prebuilt.echo import EchoConfig, EchoTask
        from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
        from flytekitplugins.prebuilt.kit.spec import task_types

        assert "echo" in task_types()
        greet = EchoTask(name="greet", config=EchoConfig(greeting="hi", times=2))
        emulated = Emulator({str(tmp_path / "store")!r}).run(greet, {{"who": "flyte"}})
        print("EMULATED", emulated.outputs)
        try:
            Emulator({str(tmp_path / "store")!r}).run(greet, {{"who": ""}})
        except TaskFailed as failure:
            print("FAILED", failure.origin, failure.kind, failure.message)
    """)
    )
    done = subprocess.run(
        [sys.executable, str(driver)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "EMULATED {'o0': 'hi flyte hi flyte'}" in done.stdout
    assert "FAILED USER NON_RECOVERABLE" in done.stdout and "who: must not be empty" in done.stdout
