"""Environments that survive pods: the same task twice, each in a fresh container of the script image with no
volume for the environment cache (a pod's empty disk). The first installs the bundle's requirements and stores
the environment in the object store (the emulator's folder); the second unpacks it and installs nothing: it runs
with the package index out of reach (uv offline, no uv cache in a fresh container). The store is where the platform
put it (``$PREBUILT_ENV_STORE``, never derived from the raw outputs), and the archive's sha256 is stored beside it.
The store's trust rules themselves run without containers: tests/integration/test_env_store_rules.py."""

from __future__ import annotations

import hashlib
import os

from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.script import ScriptTask

from tests.conftest import ROOT

PROJECT = ROOT / "examples" / "script_project"  # requirements.txt: six


def test_a_fresh_container_unpacks_the_stored_environment_and_installs_nothing(tmp_path, script_image):
    task = ScriptTask(
        "env_store",
        source=str(PROJECT),
        command=[
            "python",
            "-c",
            "import json, os, six; json.dump({'six': six.__version__}, open(os.environ['PREBUILT_OUTPUTS_FILE'], 'w'))",
        ],
        outputs={"six": str},
        dependencies="requirements",
    )
    store = tmp_path / "bucket"
    store.mkdir()
    env = {"PREBUILT_ENV_STORE": str(store / "prebuilt-envs"), "FLYTE_SDK_LOGGING_LEVEL": "20"}
    mounts = []
    if os.environ.get("PIP_CERT"):  # this machine reaches the package index through a TLS-inspecting proxy
        env["SSL_CERT_FILE"], mounts = os.environ["PIP_CERT"], [os.environ["PIP_CERT"]]
    first = Emulator(str(store), env=env, mounts=mounts).run(task, {}, in_container=True)
    assert "installing 1 requirements" in first.logs and " stored at " in first.logs
    (archive,) = (store / "prebuilt-envs").glob("*/requirements-*.tar.gz")
    stored = archive.stat().st_mtime_ns
    digest = archive.with_name(archive.name + ".sha256")  # written after the archive, checked before unpacking
    assert digest.read_text().strip() == hashlib.sha256(archive.read_bytes()).hexdigest()

    offline = {**env, "UV_OFFLINE": "1", "PIP_NO_INDEX": "1"}  # an install would fail: nothing to install from
    second = Emulator(str(store), env=offline, mounts=mounts).run(task, {}, in_container=True)
    assert second.outputs == first.outputs
    assert "fetched from the environment store (nothing installed)" in second.logs
    assert "installing" not in second.logs
    assert archive.stat().st_mtime_ns == stored  # read, not rewritten
