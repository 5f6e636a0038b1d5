"""The script task type end to end: bundles, cached environments, deadlines, secrets, failures."""

import base64
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from flytekit import Secret
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.script import ScriptConfig, ScriptPreset, ScriptTask

from tests.conftest import ROOT
from tests.integration.containers import env_cache_volume

PROJECT = ROOT / "examples" / "script_project"
PRESET = ScriptPreset.of(dependencies="requirements", deadline_seconds=300, artifacts={"model": "out/model.json"})
OUTPUTS = {"accuracy": float, "epochs_run": int, "model": FlyteFile}


@pytest.fixture
def env_cache(tmp_path, monkeypatch):
    cache = tmp_path / "env-cache"
    cache.mkdir()
    cache.chmod(0o777)
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(cache))
    return cache


def train_task(source=PROJECT, **kwargs):
    return ScriptTask(
        "train",
        source=str(source),
        command=["python", "train.py", "--epochs", "{{.inputs.epochs}}"],
        inputs={"epochs": int},
        outputs=OUTPUTS,
        preset=PRESET,
        **kwargs,
    )


def result_of(accuracy, epochs_run, model):
    return accuracy, epochs_run, json.loads(Path(model.download() if hasattr(model, "download") else model).read_text())


def test_runs_in_process_and_reuses_the_cached_environment(env_cache):
    task = train_task()
    first = result_of(*task(epochs=3))
    assert first == (0.875, 3, {"weights": [0.125] * 3, "six": "1.16.0"})
    environments = [p for p in env_cache.glob("requirements-*") if p.is_dir()]
    assert len(environments) == 1
    marker = environments[0] / ".prebuilt-complete"
    installed_at = marker.stat().st_mtime_ns
    assert result_of(*task(epochs=3)) == first
    assert marker.stat().st_mtime_ns == installed_at  # reused, not reinstalled


def test_emulated_subprocess_and_image_give_the_same_outputs(env_cache, tmp_path, script_image):
    task = train_task()
    expected = result_of(*task(epochs=2))
    (tmp_path / "store").mkdir()
    subprocess_run = Emulator(str(tmp_path / "store")).run(task, {"epochs": 2})
    assert result_of(**{k: subprocess_run.outputs[k] for k in ("accuracy", "epochs_run", "model")}) == expected
    # the image's own cache on a volume (the container runs as uid 1000), used by two runs
    volume, env, mounts = env_cache_volume(tmp_path)
    emulator = Emulator(str(tmp_path / "store"), mounts=mounts, env=env)
    first = emulator.run(task, {"epochs": 2}, in_container=True)
    assert result_of(**{k: first.outputs[k] for k in ("accuracy", "epochs_run", "model")}) == expected
    assert "epoch 2/2" in first.logs
    (marker,) = volume.glob("requirements-*/.prebuilt-complete")
    installed_at = marker.stat().st_mtime_ns
    second = emulator.run(task, {"epochs": 2}, in_container=True)
    assert result_of(**{k: second.outputs[k] for k in ("accuracy", "epochs_run", "model")}) == expected
    assert marker.stat().st_mtime_ns == installed_at  # the warm start reused the environment


def test_the_bundle_digest_follows_the_content(tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(PROJECT, copy)
    a, b = train_task(), train_task(source=copy)
    assert a.bundle.sha256 == b.bundle.sha256 and a.identity == b.identity
    (copy / "train.py").write_text((copy / "train.py").read_text() + "\n# changed\n")
    c = train_task(source=copy)
    assert c.bundle.sha256 != a.bundle.sha256 and c.identity != a.identity
    cached = train_task(source=copy, cache=True)
    assert cached.metadata.cache_version == cached.identity


def _emulate_with_bundle(task, tmp_path, data: bytes, sha: str):
    emulator = Emulator(str(tmp_path / "store"))
    (tmp_path / "store").mkdir(exist_ok=True)
    template = emulator.template(task)
    template.custom["bundle"] = {"sha256": sha, "size": len(data), "inline": base64.b64encode(data).decode()}
    return emulator, template


def test_a_tampered_bundle_is_refused(tmp_path, env_cache):
    task = train_task()
    data = bytearray(task.bundle.data)
    data[-30] ^= 0xFF
    emulator, template = _emulate_with_bundle(task, tmp_path, bytes(data), task.bundle.sha256)
    with pytest.raises(TaskFailed) as failure:
        emulator.run(template, {"epochs": 1})
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    assert "digest mismatch" in failure.value.message


def test_a_bundle_with_parent_paths_is_refused_and_nothing_escapes(tmp_path, env_cache):
    import hashlib

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("train.py", "print('hi')")
        z.writestr("../escaped.txt", "gotcha")
    data = buffer.getvalue()
    emulator, template = _emulate_with_bundle(train_task(), tmp_path, data, hashlib.sha256(data).hexdigest())
    with pytest.raises(TaskFailed) as failure:
        emulator.run(template, {"epochs": 1})
    assert failure.value.origin == "USER" and ".." in failure.value.message
    assert not list(Path("/tmp").glob("escaped.txt")) and not list(tmp_path.rglob("escaped.txt"))


def test_deadline_overrun_is_stopped_and_writes_no_outputs(tmp_path, env_cache):
    project = tmp_path / "slow"
    project.mkdir()
    (project / "slow.py").write_text("import time\nprint('starting', flush=True)\ntime.sleep(60)\n")
    task = ScriptTask(
        "slow",
        source=str(project),
        command=["python", "slow.py"],
        outputs={"x": int},
        config=None,
        preset=ScriptPreset.of(deadline_seconds=2, grace_seconds=1, dependencies="none"),
    )
    emulator = Emulator(str(tmp_path / "store"))
    (tmp_path / "store").mkdir()
    with pytest.raises(TaskFailed) as failure:
        emulator.run(task, {})
    assert (failure.value.origin, failure.value.kind, failure.value.code) == ("USER", "RECOVERABLE", "USER:Timeout")
    assert "deadline of 2s" in failure.value.message and "starting" in failure.value.message
    assert not list((tmp_path / "store").rglob("outputs.pb"))


def test_secret_env_is_injected_and_scrubbed_from_captured_output(tmp_path, env_cache):
    project = tmp_path / "leaky"
    project.mkdir()
    (project / "leak.py").write_text(
        "import json, os\nprint('token is', os.environ['API_TOKEN'], flush=True)\n"
        "assert os.environ['PREBUILT_INPUT_LABEL'] == 'x y'\n"
        "json.dump({'length': len(os.environ['API_TOKEN'])}, open(os.environ['PREBUILT_OUTPUTS_FILE'], 'w'))\n"
    )
    task = ScriptTask(
        "leak",
        source=str(project),
        command=["python", "leak.py"],
        inputs={"label": str},
        outputs={"length": int},
        config=None,
        preset=ScriptPreset.of(dependencies="none", secret_env={"API_TOKEN": Secret(group="svc", key="token")}),
    )
    emulator = Emulator(str(tmp_path / "store"), secrets={("svc", "token"): "tok-s3cr3t-value"})
    (tmp_path / "store").mkdir()
    run = emulator.run(task, {"label": "x y"})
    assert run.outputs["length"] == len("tok-s3cr3t-value")
    assert "token is ***" in run.logs and "tok-s3cr3t-value" not in run.logs
    assert not any(b"tok-s3cr3t-value" in p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())


@pytest.mark.parametrize("case", ["exit", "dependency"])
def test_failures_are_user_errors_with_exit_code_and_tail(tmp_path, env_cache, case):
    project = tmp_path / case
    project.mkdir()
    (project / "main.py").write_text("import sys\nprint('about to fail', flush=True)\nsys.exit(3)\n")
    if case == "dependency":
        (project / "requirements.txt").write_text("this-package-does-not-exist-prebuilt==1.0\n")
    task = ScriptTask(
        case,
        source=str(project),
        command=["python", "main.py"],
        outputs={"x": int},
        config=None,
        preset=ScriptPreset.of(dependencies="auto"),
    )
    emulator = Emulator(str(tmp_path / "store"))
    (tmp_path / "store").mkdir()
    with pytest.raises(TaskFailed) as failure:
        emulator.run(task, {})
    assert (failure.value.origin, failure.value.kind) == ("USER", "NON_RECOVERABLE")
    if case == "exit":
        assert failure.value.code == "USER:ScriptExit" and "exited with code 3" in failure.value.message
        assert "about to fail" in failure.value.message
    else:
        assert failure.value.code == "USER:DependencyInstall"
        assert "this-package-does-not-exist-prebuilt" in failure.value.message


def test_changed_files_and_directories_as_outputs(tmp_path, env_cache):
    project = tmp_path / "writer"
    project.mkdir()
    (project / "keep.txt").write_text("unchanged")
    (project / "w.py").write_text(
        "from pathlib import Path\nPath('runs').mkdir()\nPath('runs/events.log').write_text('e')\n"
        "Path('new.txt').write_text('n')\n"
    )
    task = ScriptTask(
        "writer",
        source=str(project),
        outputs={"changed": FlyteDirectory, "tensorboard": FlyteDirectory},
        config=ScriptConfig(
            command=("python", "w.py"),
            dependencies="none",
            artifacts={"tensorboard": "runs"},
            changed_files_output="changed",
        ),
    )
    changed, tensorboard = task()
    assert sorted(p.name for p in Path(changed.download()).rglob("*") if p.is_file()) == ["events.log", "new.txt"]
    assert (Path(tensorboard.download()) / "events.log").read_text() == "e"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"command": ["python", "x.py", "{{.inputs.nope}}"]}, "config.command"),
        ({"command": ["python"], "outputs": {"m": FlyteFile}}, "outputs.m"),
        ({"command": ["python"], "requests": {"memory": "2GB"}}, "requests.memory"),
        ({"command": ["python"], "requests": {"cpu": "2"}, "limits": {"cpu": "1"}}, "limits.cpu"),
        ({"config": ScriptConfig(command=("a", "b"), shell=True)}, "config.command"),
        ({"config": ScriptConfig(command=("a",), env={"PREBUILT_X": "1"})}, "config.env.PREBUILT_X"),
    ],
)
def test_bad_definitions_fail_naming_the_field(kwargs, field):
    with pytest.raises(ConfigError) as error:
        ScriptTask("bad", source=str(PROJECT), **kwargs)
    assert error.value.field == field


def test_bundle_versions_push_list_download_and_derive(tmp_path):
    from flytekitplugins.prebuilt.script import packing, versions

    store = str(tmp_path / "store")
    first = packing.pack(PROJECT)
    assert versions.push(first, store, "train") == versions.push(first, store, "train")  # content-addressed
    derived = versions.derive(
        store, "train", first.sha256, added={"config.py": b"x = 1\n"}, removed=["requirements.txt"]
    )
    assert sorted(derived.files) == ["config.py", "train.py"]
    assert {v.sha256 for v in versions.list_versions(store, "train")} == {first.sha256, derived.sha256}
    assert versions.download(store, "train", first.sha256) == first.data
    (tmp_path / "store" / "train" / f"{first.sha256}.zip").write_bytes(b"tampered")
    with pytest.raises(Exception, match="digest mismatch"):
        versions.download(store, "train", first.sha256)


def test_large_bundles_travel_through_the_store(tmp_path, env_cache):
    from flytekitplugins.prebuilt.script import packing

    project = tmp_path / "big"
    shutil.copytree(PROJECT, project)
    (project / "weights.bin").write_bytes(bytes(range(256)) * 2048 + os.urandom(300_000))
    # without a store: uploaded where registration puts the project's code (the emulated data proxy, in its root)
    (tmp_path / "registered").mkdir()
    run = Emulator(str(tmp_path / "registered")).run(train_task(source=project), {"epochs": 1})
    assert run.outputs["epochs_run"] == 1
    (uploaded,) = (tmp_path / "registered" / "flytesnacks" / "development").glob("*/*.zip")
    assert packing.pack(project).data == uploaded.read_bytes()
    store = tmp_path / "bundles"
    task = train_task(source=project, bundle_store=str(store))
    (tmp_path / "run").mkdir()
    run = Emulator(str(tmp_path / "run")).run(task, {"epochs": 1})
    assert run.outputs["epochs_run"] == 1
    assert (store / "train" / f"{task.bundle.sha256}.zip").read_bytes() == task.bundle.data
