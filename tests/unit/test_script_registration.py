"""Templates small enough for a real cluster: only bundles of a few KiB travel inline; a larger one is uploaded at
registration through Flyte Admin's data proxy (emulated in a folder: plugins/emulator/data_proxy.py, the same
flytekit FlyteFS that `pyflyte register` writes through), to a store when one is named, and nowhere when nothing
can take it (`pyflyte package`: an error naming the ways out). Local runs carry the bundle inline."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import pytest
from flytekit import workflow
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.models.task import TaskTemplate
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.emulator.data_proxy import registration_context
from flytekitplugins.prebuilt.kit import ConfigError
from flytekitplugins.prebuilt.script import ScriptTask, registration
from flytekitplugins.prebuilt.script.registration import INLINE_LIMIT, LocalBundleStoreWarning
from google.protobuf.json_format import MessageToJson

ETCD_LIMIT = 1_500_000  # etcd's default request limit, which a FlyteWorkflow resource must fit (flyte#4349)
MAIN = "import json, os\njson.dump({'n': 1}, open(os.environ['PREBUILT_OUTPUTS_FILE'], 'w'))\n"


def source(folder: Path, payload: int, seed: int = 0) -> Path:
    """A script with ``payload`` bytes of incompressible data beside it (a model, a lookup table)."""
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(MAIN)
    if payload:
        (folder / "table.bin").write_bytes(random.Random(seed).randbytes(payload))
    return folder


def script(name: str, folder: Path, **kwargs) -> ScriptTask:
    return ScriptTask(name, source=str(folder), command=["python", "main.py"], outputs={"n": int}, **kwargs)


def settings() -> SerializationSettings:
    return SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())


def serialize(entity) -> OrderedDict:
    entities: OrderedDict = OrderedDict()
    get_serializable(entities, settings(), entity)
    return entities


def resource_size(entities: OrderedDict) -> int:
    """The bytes a FlyteWorkflow resource carries for these entities: its workflow and every task template, as JSON
    (flytepropeller stores the compiled closure with the task templates in the resource)."""
    return sum(len(MessageToJson(model.to_flyte_idl())) for model in entities.values())


def test_a_workflow_of_several_large_script_tasks_stays_far_below_etcds_limit(tmp_path):
    payload = 250 * 1024  # each bundle ~250 KiB: inline, the eight would be ~2.7 MB of base64
    tasks = [script(f"step{i}", source(tmp_path / f"s{i}", payload, seed=i)) for i in range(8)]

    @workflow
    def pipeline() -> int:
        total = tasks[0]()
        for task in tasks[1:]:
            total = task()
        return total

    store = tmp_path / "bucket"
    with registration_context(str(store), "p", "d"):  # what `pyflyte register` serializes in
        entities = serialize(pipeline)
    templates = [e.template for e in entities.values() if isinstance(getattr(e, "template", None), TaskTemplate)]
    assert len(templates) == 8
    assert resource_size(entities) < 40_000 < ETCD_LIMIT  # 8 tasks and the workflow: ~3 KiB a task
    assert sum(len(task.bundle.data) * 4 // 3 for task in tasks) > ETCD_LIMIT  # what inline bundles would have been
    for task, template in zip(tasks, templates):
        ref = template.custom["bundle"]
        assert "inline" not in ref and ref["sha256"] == task.bundle.sha256
        uploaded = Path(ref["uri"])  # Admin's layout: <bucket>/<project>/<domain>/<md5 of the content>/<file>
        assert uploaded.relative_to(store).parts[:2] == ("p", "d") and uploaded.name == f"{task.bundle.sha256}.zip"
        assert hashlib.sha256(uploaded.read_bytes()).hexdigest() == task.bundle.sha256


def test_small_bundles_travel_inline_and_the_limit_is_a_few_kib(tmp_path):
    assert INLINE_LIMIT <= 8 * 1024
    small = script("small", source(tmp_path / "small", 0))
    assert len(small.bundle.data) <= INLINE_LIMIT
    (entity,) = serialize(small).values()  # no Flyte connection needed: nothing to upload
    assert set(entity.template.custom["bundle"]) == {"sha256", "size", "inline"}
    assert len(MessageToJson(entity.template.to_flyte_idl())) < 8 * 1024


def test_the_same_bundle_lands_on_the_same_object_and_the_identity_ignores_where(tmp_path):
    task = script("big", source(tmp_path / "big", 20_000), cache=True)
    before = task.identity
    uris = []
    for bucket in ("one", "one", "two"):
        with registration_context(str(tmp_path / bucket), "p", "d"):
            (entity,) = serialize(task).values()
        uris.append(entity.template.custom["bundle"]["uri"])
        assert entity.template.metadata.discovery_version == task.identity == before
    assert uris[0] == uris[1] != uris[2]
    assert [p.name for p in (tmp_path / "one").rglob("*.zip")] == [f"{task.bundle.sha256}.zip"]  # one object


def test_without_a_flyte_connection_a_large_bundle_is_refused_naming_the_fixes(tmp_path, monkeypatch):
    monkeypatch.delenv(registration.STORE_VARIABLE, raising=False)
    task = script("big", source(tmp_path / "big", 20_000))  # defining it is fine: a local run needs no upload
    with pytest.raises(ConfigError) as error:
        serialize(task)  # as `pyflyte package` does
    message = " ".join(str(error.value).split())
    assert error.value.field == "source"
    for fix in ("pyflyte register", "bundle_store=", "$PREBUILT_BUNDLE_STORE", "ignore files", "'big'"):
        assert fix in message


def test_a_default_store_from_the_environment_takes_large_bundles(tmp_path, monkeypatch):
    store = tmp_path / "bundles"
    monkeypatch.setenv(registration.STORE_VARIABLE, f"{store}/")
    task = script("big", source(tmp_path / "big", 20_000))
    # a local store: the emulator's pods read it (its registration context), a cluster's could not
    with registration_context(str(tmp_path / "bucket"), "p", "d"), pytest.warns(LocalBundleStoreWarning):
        (entity,) = serialize(task).values()
    assert entity.template.custom["bundle"]["uri"] == f"{store}/big/{task.bundle.sha256}.zip"
    assert (store / "big" / f"{task.bundle.sha256}.zip").read_bytes() == task.bundle.data


def test_a_local_run_carries_the_bundle_inline_and_uploads_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(registration.STORE_VARIABLE, raising=False)
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "envs"))
    task = script("big", source(tmp_path / "big", 20_000), dependencies="none")
    assert task.task_template.custom["bundle"]["inline"]  # the template a local call runs
    assert task() == 1
    assert not list(tmp_path.rglob("*.zip"))
    assert os.environ.get(registration.STORE_VARIABLE) is None


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_local_bundle_store_is_refused_where_only_a_cluster_reads_the_template(tmp_path, monkeypatch, scheme):
    monkeypatch.delenv(registration.STORE_VARIABLE, raising=False)
    store = f"{scheme}{tmp_path / 'store'}"
    with pytest.raises(ConfigError) as error:
        serialize(script("small", source(tmp_path / "small", 0), bundle_store=store))  # as `pyflyte package` does
    assert error.value.field == "bundle_store" and "no pod of a Flyte cluster can read" in str(error.value)
    monkeypatch.setenv(registration.STORE_VARIABLE, store)
    with pytest.raises(ConfigError) as error:
        serialize(script("big", source(tmp_path / "big", 20_000)))
    assert error.value.field == "$PREBUILT_BUNDLE_STORE" and "s3://" in str(error.value)
    assert not (tmp_path / "store").exists()  # nothing pushed where no pod would look


def test_a_local_bundle_store_is_a_warning_for_the_emulator_and_nothing_for_a_local_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "envs"))
    task = script("small", source(tmp_path / "small", 0), bundle_store=str(tmp_path / "store"), dependencies="none")
    with registration_context(str(tmp_path / "bucket"), "p", "d"), pytest.warns(LocalBundleStoreWarning) as seen:
        (entity,) = serialize(task).values()
    assert "bundle_store: " in str(seen[0].message)
    assert entity.template.custom["bundle"]["uri"] == task.bundle_uri
    assert task() == 1  # a local run: the template never leaves this process
    assert not registration.is_local("s3://bucket/bundles") and not registration.is_local("gs://b/x")


def test_pyflyte_package_refuses_a_local_store_naming_the_variable(tmp_path):
    (tmp_path / "jobs.py").write_text(
        textwrap.dedent(f"""\
            from flytekitplugins.prebuilt.script import ScriptTask

            big = ScriptTask("big", source={str(source(tmp_path / "big", 20_000))!r}, command=["python", "main.py"])
        """)
    )
    env = {**os.environ, registration.STORE_VARIABLE: str(tmp_path / "store")}
    pyflyte = str(Path(sys.executable).parent / "pyflyte")
    done = subprocess.run(
        [pyflyte, "--pkgs", "jobs", "package", "--image", "ghcr.io/my-org/my-tasks:1", "-o", str(tmp_path / "p.tgz")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and not (tmp_path / "p.tgz").exists()
    assert "$PREBUILT_BUNDLE_STORE" in done.stdout + done.stderr
