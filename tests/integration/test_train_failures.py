"""How a training run fails, through the platform emulator (pyflyte-execute in a subprocess, Flyte's error document,
retries of RECOVERABLE errors): real torchrun, real gloo, small scripts that fail on purpose."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from flyteidl.core import errors_pb2
from flytekit import Secret
from flytekit.models.core.errors import ContainerError, ErrorDocument
from flytekit.types.directory import FlyteDirectory
from flytekitplugins.prebuilt.emulator import Emulator, TaskFailed
from flytekitplugins.prebuilt.train import TrainTask

SECRET = "tr41n-s3cret-value-Zq9"


@pytest.fixture(autouse=True)
def env_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "env-cache"))


def bundle(tmp_path: Path, script: str, **files: str) -> str:
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text(textwrap.dedent(script))
    for name, text in files.items():
        (project / name).write_text(text)
    return str(project)


def fails(tmp_path: Path, script: str, retries: int = 0, **keywords) -> TaskFailed:
    task = TrainTask(
        "failing",
        source=bundle(tmp_path, script),
        command=["main.py"],
        dependencies="none",
        retries=retries,
        **{"processes_per_node": 2, **keywords},
    )
    with pytest.raises(TaskFailed) as failure:
        Emulator(str(tmp_path / "store"), secrets={("api", "token"): SECRET}).run(task, {})
    return failure.value


def test_a_ranks_python_error_is_the_tasks_error_and_not_retried(tmp_path):
    failure = fails(
        tmp_path,
        """
        import os, time
        def load_shard(rank):
            if rank == 1:
                raise ValueError(f"shard {rank} has 0 rows")
            time.sleep(5)
        load_shard(int(os.environ["RANK"]))
        """,
        retries=2,
    )
    assert (failure.origin, failure.kind, failure.code) == ("USER", "NON_RECOVERABLE", "USER:RankFailed")
    assert failure.attempts == 1
    assert "rank 1 (local rank 1) failed: ValueError: shard 1 has 0 rows" in failure.message
    assert 'File "main.py", line 5, in load_shard' in failure.message  # the rank's own traceback
    assert "ChildFailedError" not in failure.message.split("Message:")[-1]


def test_cuda_out_of_memory_is_a_user_error_with_a_hint(tmp_path):
    failure = fails(
        tmp_path,
        """
        import torch
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 15.77 GiB total)")
        """,
        retries=1,
    )
    assert (failure.kind, failure.code, failure.attempts) == ("NON_RECOVERABLE", "USER:CudaOutOfMemory", 1)
    assert "the GPU ran out of memory: lower the batch size per process" in failure.message
    assert "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB" in failure.message


def test_a_collective_timeout_is_recoverable_and_retried(tmp_path):
    failure = fails(
        tmp_path,
        """
        import datetime, os, time
        import torch, torch.distributed as dist
        dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"], timeout=datetime.timedelta(seconds=3))
        if dist.get_rank() == 1:
            time.sleep(60)  # a stuck peer
        dist.all_reduce(torch.ones(1))
        """,
        retries=1,
    )
    assert (failure.origin, failure.kind, failure.code) == ("USER", "RECOVERABLE", "USER:CommunicationFailed")
    assert failure.attempts == 2  # retried once, as the task allows
    assert "rank 0 (local rank 0) failed: " in failure.message and "Timed out" in failure.message


def test_the_deadline_is_recoverable_and_the_checkpoint_written_before_it_is_restored(tmp_path):
    script = """
    import json, os, time
    from pathlib import Path
    checkpoint = Path(os.environ["PREBUILT_CHECKPOINT_DIR"]) / "progress.json"
    rank = int(os.environ["RANK"])
    if checkpoint.exists():
        if rank == 0:
            Path(os.environ["PREBUILT_OUTPUTS_FILE"]).write_text(checkpoint.read_text())
    else:
        if rank == 0:
            checkpoint.write_text(json.dumps({"epochs_done": 3}))
        time.sleep(600)  # the first attempt runs past its deadline
    """
    task = TrainTask(
        "slow",
        source=bundle(tmp_path, script),
        command=["main.py"],
        processes_per_node=2,
        dependencies="none",
        deadline_seconds=10,
        grace_seconds=2,
        outputs={"epochs_done": int},
        retries=1,
    )
    run = Emulator(str(tmp_path / "store")).run(task, {})
    assert run.attempts == 2 and run.outputs == {"epochs_done": 3}
    first = ErrorDocument.from_flyte_idl(
        errors_pb2.ErrorDocument.FromString((Path(run.output_prefix).parent / "0" / "error.pb").read_bytes())
    ).error
    assert (first.code, first.kind) == ("USER:Timeout", ContainerError.Kind.RECOVERABLE)
    assert "ran past its deadline of 10s" in first.message


def test_secrets_are_masked_in_every_ranks_output_and_in_the_error(tmp_path):
    failure = fails(
        tmp_path,
        """
        import json, os, time
        rank, token = os.environ["RANK"], os.environ["API_TOKEN"]
        print(f"rank {rank} uses {token}", flush=True)
        if rank == "0":
            with open(os.environ["PREBUILT_METRICS_FILE"], "a") as metrics:
                metrics.write(json.dumps({"step": 1, f"loss with {token}": 0.5}) + "\\n")
        time.sleep(2)
        if rank == "1":
            raise PermissionError(f"the service refused {token}")
        time.sleep(5)
        """,
        secret_env={"API_TOKEN": Secret(group="api", key="token")},
    )
    assert SECRET not in failure.logs and SECRET not in failure.message
    assert "rank 0 uses ***" in failure.logs and "rank 1 uses ***" in failure.logs
    assert "PermissionError: the service refused ***" in failure.message
    (deck,) = (tmp_path / "store").rglob("deck.html")  # written for the failed attempt too
    assert SECRET not in deck.read_text() and "loss with ***" in deck.read_text()


def test_the_tensorboard_folder_is_a_directory_output(tmp_path):
    script = """
    import json, os
    from pathlib import Path
    logs = Path(os.environ["PREBUILT_TENSORBOARD_DIR"])
    (logs / f"events.rank{os.environ['RANK']}").write_text("scalars")
    if os.environ["RANK"] == "0":
        backend = os.environ["PREBUILT_DIST_BACKEND"]
        Path(os.environ["PREBUILT_OUTPUTS_FILE"]).write_text(json.dumps({"backend": backend}))
    """
    task = TrainTask(
        "board",
        source=bundle(tmp_path, script),
        command=["main.py"],
        processes_per_node=2,
        dependencies="none",
        tensorboard_output="tensorboard",
        outputs={"backend": str, "tensorboard": FlyteDirectory},
    )
    run = Emulator(str(tmp_path / "store")).run(task, {})
    assert run.outputs["backend"] == "gloo"
    folder = Path(run.outputs["tensorboard"].download())
    assert sorted(p.name for p in folder.iterdir()) == ["events.rank0", "events.rank1"]
    assert json.loads(json.dumps(sorted(p.read_text() for p in folder.iterdir()))) == ["scalars", "scalars"]


def test_a_rank_that_returns_while_the_others_wait_in_a_collective_is_a_user_error_not_retried(tmp_path):
    """Rank 1 skips the all_reduce rank 0 runs and returns: rank 0's communication error is its consequence, which
    a retry repeats (it was retried as USER:CommunicationFailed before)."""
    failure = fails(
        tmp_path,
        """
        import os, torch, torch.distributed as dist
        dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
        if dist.get_rank() == 0:
            dist.all_reduce(torch.ones(1))
            dist.all_reduce(torch.ones(1))
        """,
        retries=1,
        collective_timeout_seconds=60,  # bounds the test should gloo wait for the peer instead of failing at once
    )
    assert (failure.origin, failure.kind, failure.code) == ("USER", "NON_RECOVERABLE", "USER:RankEndedEarly")
    assert failure.attempts == 1
    assert "rank(s) 1 ended without an error while the other ranks still waited for them" in failure.message


def test_the_collective_timeout_is_init_process_groups_default_unless_the_script_gives_one(tmp_path):
    script = """
        import datetime, json, os, sys, torch, torch.distributed as dist
        from torch.distributed import init_process_group  # imported by name: the default still applies
        given = {"timeout": datetime.timedelta(seconds=99)} if sys.argv[1:] == ["own"] else {}
        init_process_group(os.environ["PREBUILT_DIST_BACKEND"], **given)
        backend = dist.group.WORLD._get_backend(torch.device("cpu"))
        if dist.get_rank() == 0:
            with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as out:
                json.dump({"seconds": int(backend.options._timeout.total_seconds()),
                           "variable": os.environ["PREBUILT_COLLECTIVE_TIMEOUT"]}, out)
        dist.destroy_process_group()
        """
    source = bundle(tmp_path, script)

    def timeout(*arguments, **keywords):
        task = TrainTask(
            f"timeout{len(arguments)}",
            source=source,
            command=["main.py", *arguments],
            processes_per_node=2,
            dependencies="none",
            outputs={"seconds": int, "variable": str},
            **keywords,
        )
        return tuple(task())

    assert timeout(collective_timeout_seconds=42) == (42, "42")
    assert timeout() == (1800, "1800")
    assert timeout("own", collective_timeout_seconds=42) == (99, "42")


def test_outputs_written_by_a_rank_other_than_0_are_ignored(tmp_path):
    """Rank 1 writes its outputs after rank 0 (a barrier orders them): the last writer used to win."""
    script = """
        import json, os, torch.distributed as dist
        dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
        def write():
            with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as out:
                json.dump({"rank": dist.get_rank()}, out)
        if dist.get_rank() == 0:
            write()
        dist.barrier()
        if dist.get_rank() == 1:
            write()
        dist.destroy_process_group()
        """
    task = TrainTask(
        "outputs", source=bundle(tmp_path, script), command=["main.py"], processes_per_node=2, dependencies="none",
        outputs={"rank": int},
    )  # fmt: skip
    run = Emulator(str(tmp_path / "store")).run(task, {})
    assert run.outputs == {"rank": 0}
    assert "rank 1 wrote $PREBUILT_OUTPUTS_FILE: ignored, the task's outputs are rank 0's" in run.logs


def test_a_pytorchjob_with_a_run_policy_and_roles_runs_in_the_emulator(tmp_path):
    """The emulator decodes the job as Flyte's plugin does (unknown keys ignored) and runs a master and a worker;
    the run policy and the roles' resources are the operator's and the plugin's to apply (docs/train/multi-node.md)."""
    from flytekitplugins.prebuilt.train import Role, RunPolicy

    script = """
        import json, os, torch, torch.distributed as dist
        dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
        total = torch.ones(1)
        dist.all_reduce(total)
        if dist.get_rank() == 0:
            with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as out:
                json.dump({"ranks": int(total.item())}, out)
        dist.destroy_process_group()
        """
    task = TrainTask(
        "job",
        source=bundle(tmp_path, script),
        command=["main.py"],
        nodes=2,
        dependencies="none",
        outputs={"ranks": int},
        run_policy=RunPolicy(clean_pod_policy="All", active_deadline_seconds=600, backoff_limit=1),
        master=Role(requests={"cpu": "1", "memory": "1Gi"}),
        worker=Role(limits={"memory": "2Gi"}),
    )
    run = Emulator(str(tmp_path / "store")).run(task, {})
    assert run.outputs == {"ranks": 2}


def test_gpus_requested_on_a_machine_without_any_are_a_user_error_not_retried(tmp_path):
    """This machine has no GPU: a task asking for one fails at once, naming the request, instead of retrying a
    SYSTEM error (NCCL finding no device) on a node that will never have one."""
    failure = fails(tmp_path, "print('never runs')", retries=2, processes_per_node=0, requests={"gpu": "1"})
    assert (failure.origin, failure.kind, failure.attempts) == ("USER", "NON_RECOVERABLE", 1)
    assert "requests 1 GPU(s) but this pod sees none" in failure.message


def test_an_error_a_framework_reports_and_exits_for_is_the_headline_not_systemexit(tmp_path):
    """Hydra's ``run_and_report`` prints the traceback and calls ``sys.exit(1)`` in its ``except`` block: the task's
    error names the exception behind the exit (its context), as it would without the framework."""
    failure = fails(
        tmp_path,
        """
        import sys, traceback
        def train(lr):
            if lr <= 0:
                raise ValueError(f"lr must be positive, got {lr}")
        try:
            train(-1)
        except Exception:
            traceback.print_exc()
            sys.exit(1)
        """,
        processes_per_node=1,
    )
    assert failure.code == "USER:RankFailed"
    assert "rank 0 (local rank 0) failed: ValueError: lr must be positive, got -1" in failure.message
    assert "failed: SystemExit" not in failure.message
