"""The train task type end to end, with real torch (CPU, gloo), real torchrun and scikit-learn installed from the
package index: the digits example in-process and through the platform emulator (pyflyte-execute in a subprocess,
retried as Flyte retries), resuming from its checkpoint after a lost process or a SIGTERM with the same final
metrics as an uninterrupted run."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from flyteidl.core import errors_pb2
from flytekit.models.core.errors import ContainerError, ErrorDocument
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.train import TrainTask

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

import train_quickstart  # noqa: E402  (the example, as a user runs it)

DIGITS = str(ROOT / "examples" / "train_digits")
OUTPUTS = {"accuracy": float, "final_loss": float}


@pytest.fixture(scope="module", autouse=True)
def env_cache(train_env_cache):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREBUILT_ENV_CACHE", str(train_env_cache))
        yield


@pytest.fixture(scope="module")
def uninterrupted() -> dict:
    """The quickstart's task in-process: DDP with two gloo processes, 8 epochs, seed 0."""
    started = time.monotonic()
    accuracy, final_loss, model = train_quickstart.train_digits(epochs=8)
    print(f"in-process digits run: {time.monotonic() - started:.1f}s, accuracy {accuracy:.4f}")
    return {"accuracy": accuracy, "final_loss": final_loss, "model": model}


def test_the_digits_example_trains_with_ddp_in_process(uninterrupted):
    assert uninterrupted["accuracy"] >= 0.95
    assert isinstance(uninterrupted["model"], FlyteFile) and Path(uninterrupted["model"].path).stat().st_size > 1000


def test_the_digits_example_in_the_train_image(tmp_path, uninterrupted, train_image):
    """The CPU image: torch from /opt/framework, scikit-learn installed on top by uid 1000, two gloo ranks."""
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o777)
    env, mounts = {"PREBUILT_ENV_CACHE": str(volume)}, [str(volume)]
    if os.environ.get("PIP_CERT"):  # this machine reaches the package index through a TLS-inspecting proxy
        env["SSL_CERT_FILE"], mounts = os.environ["PIP_CERT"], [*mounts, os.environ["PIP_CERT"]]
    (tmp_path / "store").mkdir()
    started = time.monotonic()
    run = Emulator(str(tmp_path / "store"), mounts=mounts, env=env).run(
        train_quickstart.train_digits, {"epochs": 8}, image=train_image, in_container=True
    )
    print(f"digits run in the train image: {time.monotonic() - started:.1f}s")
    assert {k: run.outputs[k] for k in OUTPUTS} == {k: uninterrupted[k] for k in OUTPUTS}  # the same numbers
    (environment,) = volume.glob("requirements-*/lib/python3.11/site-packages")
    assert (environment / "sklearn").is_dir() and not (environment / "torch").exists()  # torch: the image's
    assert (environment / "prebuilt_framework.pth").read_text() == "/opt/framework\n"


def first_attempt_error(run) -> tuple[str, int, str]:
    """The error document the first attempt wrote: (code, kind, message)."""
    path = Path(run.output_prefix).parent / "0" / "error.pb"
    error = ErrorDocument.from_flyte_idl(errors_pb2.ErrorDocument.FromString(path.read_bytes())).error
    return error.code, error.kind, error.message


# ------------------------------------------------------------------------------------------------- SIGTERM

STOPPABLE = """
import json, os, time
from pathlib import Path
import torch.distributed as dist

dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
rank = dist.get_rank()
state = Path(os.environ["PREBUILT_CHECKPOINT_DIR"]) / "state.json"
step = json.loads(state.read_text())["step"] if state.exists() else 0
print(f"rank {rank}: starting at step {step}", flush=True)
dist.barrier()  # every rank has read the state before rank 0 replaces it
for step in range(step, 6):
    if rank == 0:
        state.with_suffix(".partial").write_text(json.dumps({"step": step}))
        state.with_suffix(".partial").replace(state)
    dist.barrier()
    if step == 3 and os.environ["FLYTE_ATTEMPT_NUMBER"] == "0":
        (Path(os.environ["SHARED"]) / "at-step-3").write_text("")
        time.sleep(600)  # stopped here by the test's SIGTERM
if rank == 0:
    Path(os.environ["PREBUILT_OUTPUTS_FILE"]).write_text(json.dumps({"last_step": step}))
dist.destroy_process_group()
"""


def executor_processes(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    mark.encode() in (entry / "environ").read_bytes()
                    and b"pyflyte-execute" in (entry / "cmdline").read_bytes()
                ):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_sigterm_saves_the_checkpoint_and_the_retry_resumes(tmp_path):
    project, shared = tmp_path / "stoppable", tmp_path / "shared"
    project.mkdir()
    shared.mkdir()
    (project / "train.py").write_text(STOPPABLE)
    mark = f"mark-{uuid.uuid4().hex}"
    task = TrainTask(
        "stoppable",
        source=str(project),
        command=["train.py"],
        processes_per_node=2,
        dependencies="none",
        grace_seconds=3,
        env={"SHARED": str(shared)},
        outputs={"last_step": int},
        retries=1,
    )
    result: dict = {}
    emulator = Emulator(str(tmp_path / "store"), env={"TEST_MARK": mark})  # marks the executor's process
    thread = threading.Thread(target=lambda: result.update(run=emulator.run(task, {})))
    thread.start()
    end = time.monotonic() + 120
    while not (shared / "at-step-3").exists():
        assert time.monotonic() < end and thread.is_alive(), "the first attempt never reached step 3"
        time.sleep(0.2)
    (executor,) = executor_processes(mark)
    os.kill(executor, signal.SIGTERM)  # as the kubelet stops a pod
    thread.join(180)
    run = result["run"]
    assert run.attempts == 2 and run.outputs == {"last_step": 5}
    assert re.search(r"rank [01]: starting at step 3", run.logs)  # the checkpoint written before SIGTERM was saved
    assert first_attempt_error(run)[:2] == ("USER:Interrupted", ContainerError.Kind.RECOVERABLE)
