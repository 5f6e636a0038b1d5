"""A multi-line secret (a PEM key) printed by a script task is masked line by line in every channel:
the streamed log, the error document, the emulator's captured logs, every file the run writes."""

import pytest
from flytekit import Secret
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask

from tests.unit.test_secret_masking import fake_pem, secret_lines
from tests.unit.test_secret_spellings import NASTY, leaked_spellings

PEM = fake_pem(50)  # more lines than the executor keeps as the error's output tail (40)
LEAKY_SCRIPT = """\
import json, os, sys
key = os.environ["PRIVATE_KEY"]
print("key follows", flush=True)
print(key, flush=True)
for char in key:  # one character per write
    sys.stdout.write(char)
    sys.stdout.flush()
print(flush=True)
print(json.dumps({"key": key}), repr(key), flush=True)
sys.stderr.write(key + "\\n")  # the key's last 40 lines end the output: the error's tail starts inside it
sys.stderr.flush()
if os.environ["PREBUILT_INPUT_FAIL"] == "true":
    sys.exit(3)
json.dump({"lines": len(key.splitlines())}, open(os.environ["PREBUILT_OUTPUTS_FILE"], "w"))
"""


@pytest.fixture
def leaky_task(tmp_path, monkeypatch):
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "env-cache"))
    project = tmp_path / "leaky"
    project.mkdir()
    (project / "leak.py").write_text(LEAKY_SCRIPT)
    preset = ScriptPreset.of(dependencies="none", secret_env={"PRIVATE_KEY": Secret(group="svc", key="pem")})
    return ScriptTask(
        "leak_pem",
        source=str(project),
        command=["python", "leak.py"],
        inputs={"fail": bool},
        outputs={"lines": int},
        config=None,
        preset=preset,
    )


def leaked(text: str) -> list[str]:
    return [line for line in secret_lines(PEM) if line in text]


def test_in_process_the_streamed_log_and_the_error_mask_every_line(leaky_task, monkeypatch, capfd):
    monkeypatch.setenv("_FSEC_SVC_PEM", PEM)
    assert leaky_task(fail=False) == len(PEM.splitlines())  # the script saw the real value
    out, err = capfd.readouterr()
    assert "key follows" in out and out.count("***") >= 3 * len(secret_lines(PEM))  # stderr is relayed to stdout
    assert leaked(out + err) == []
    with pytest.raises(Exception) as failure:
        leaky_task(fail=True)
    out, err = capfd.readouterr()
    chain, error = [], failure.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert "exited with code 3" in chain[0] and "***" in chain[0]
    assert leaked("\n".join(chain) + out + err) == []


def test_through_the_emulator_logs_error_document_and_files_mask_every_line(leaky_task, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    emulator = Emulator(str(store), secrets={("svc", "pem"): PEM})
    run = emulator.run(leaky_task, {"fail": False})
    assert run.outputs["lines"] == len(PEM.splitlines())
    assert "key follows" in run.logs and leaked(run.logs) == []
    with pytest.raises(TaskFailed) as failure:
        emulator.run(leaky_task, {"fail": True})
    message = failure.value.message  # from error.pb
    assert failure.value.code == "USER:ScriptExit" and "last output" in message
    assert message.count("***") >= 40 and leaked(message) == [] and leaked(failure.value.logs) == []
    written = [p for p in store.rglob("*") if p.is_file()]
    assert any(p.name.startswith("error") for p in written)
    assert not any(line.encode() in p.read_bytes() for p in written for line in secret_lines(PEM))


SPELLING_SCRIPT = """\
import json, os, sys, urllib.parse
password = os.environ["DB_PASSWORD"]
print("spellings follow", flush=True)
print(password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password).lower(), flush=True)
print(urllib.parse.quote_plus(password), password.replace("@", "%40"), json.dumps(password), repr(password))
print(json.dumps({"dsn": f"password='{password.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"}))
sys.exit(3)
"""


@pytest.mark.parametrize("path", ["in-process", "emulated"])
def test_a_script_secret_is_masked_in_every_spelling_the_script_prints(tmp_path, monkeypatch, capfd, path):
    """The script type's secrets go through the same scrubber: percent-encoded (either case, in part), form-encoded,
    JSON, repr and libpq conninfo spellings of the value are masked in the log and the error (issue 17)."""
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "env-cache"))
    project = tmp_path / "spell"
    project.mkdir()
    (project / "spell.py").write_text(SPELLING_SCRIPT)
    preset = ScriptPreset.of(dependencies="none", secret_env={"DB_PASSWORD": Secret(group="svc", key="db")})
    task = ScriptTask("spell", source=str(project), command=["python", "spell.py"], config=None, preset=preset)
    if path == "in-process":
        monkeypatch.setenv("_FSEC_SVC_DB", NASTY)
        with pytest.raises(Exception) as failure:
            task()
        message, seen = str(failure.value), "".join(capfd.readouterr())
    else:
        store = tmp_path / "store"
        store.mkdir()
        with pytest.raises(TaskFailed) as failure:
            Emulator(str(store), secrets={("svc", "db"): NASTY}).run(task)
        message, seen = failure.value.message, failure.value.logs
        seen += b"".join(p.read_bytes() for p in store.rglob("*") if p.is_file()).decode("utf-8", "replace")
    assert "spellings follow" in seen and seen.count("***") >= 8
    assert leaked_spellings(NASTY, message) == [] and leaked_spellings(NASTY, seen) == []
