"""The train executor's parts that need no torchrun: the launch command, the per-rank entry (a real Python process),
failures read from torch's error files, the metrics Deck and the framework layer's stubs."""

import json
import os
import subprocess
import sys
import time
import zipfile
from collections import OrderedDict
from importlib import metadata
from pathlib import Path

import pytest
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.executors.script.locks import DependencySpec
from flytekitplugins.prebuilt.executors.train import failures, framework, launch, metrics
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError
from flytekitplugins.prebuilt.train import TrainConfig, TrainTask

SOURCE = str(Path(__file__).parent / "golden" / "train_src")
SETTINGS = SerializationSettings(project="p", domain="d", version="v1", image_config=ImageConfig.auto_default_image())
RANK = launch.RANK_ENTRY


def template(**resources):
    task = TrainTask("t", source=SOURCE, command=["train.py"], **resources)
    return get_serializable(OrderedDict(), SETTINGS, task).template


# ------------------------------------------------------------------------------------------------ launch


def test_process_count_and_backend_follow_the_requested_gpus():
    cpu, gpu = template(requests={"cpu": "2"}), template(requests={"gpu": 2}, limits={"gpu": 4})
    assert launch.requested_gpus(cpu) == 0 and launch.requested_gpus(gpu) == 4  # the limit is what the pod gets
    auto, two = TrainConfig(command=("train.py",)), TrainConfig(command=("train.py",), processes_per_node=2)
    assert launch.topology(auto, 0).processes_per_node == "1" and launch.backend(auto, 0) == "gloo"
    assert launch.topology(auto, 4).processes_per_node == "gpu" and launch.backend(auto, 4) == "nccl"
    assert launch.topology(two, 0).processes_per_node == "2"
    assert launch.backend(TrainConfig(command=("train.py",), backend="gloo"), 4) == "gloo"


def test_the_torchrun_command_is_standalone_on_one_node(tmp_path):
    command = launch.torchrun_command(Path("/env/bin/python"), launch.Topology("2"), tmp_path, ["-m", "pkg", "--a"])
    assert command[:3] == ["/env/bin/python", "-m", "torch.distributed.run"]
    assert command[3:8] == ["--standalone", "--nnodes", "1", "--nproc-per-node", "2"]
    assert command[command.index("--max-restarts") + 1] == "0"
    assert command[command.index("--log-dir") + 1] == str(tmp_path)
    assert command[-4:] == [str(RANK), "-m", "pkg", "--a"]


def test_a_pytorchjob_replica_takes_its_node_rank_and_the_masters_address_from_the_operator():
    """The variables kubeflow/training-operator sets on every replica of a master + workers job
    (pkg/controller.v1/pytorch/envvar.go, master.go): the PET_ spellings first, as torchrun reads them."""
    two = TrainConfig(command=("train.py",), nodes=2, processes_per_node=2)
    worker = {"PET_NODE_RANK": "1", "PET_MASTER_ADDR": "job-master-0", "PET_MASTER_PORT": "23456", "PET_NNODES": "2"}
    node = launch.topology(two, 0, {**worker, "RANK": "1", "MASTER_ADDR": "job-master-0", "MASTER_PORT": "23456"})
    assert node == launch.Topology("2", nodes=2, node_rank=1, master="job-master-0:23456")
    assert not node.writes_outputs  # global rank 0 is on the master pod
    assert node.torchrun_arguments() == [
        *("--nnodes", "2", "--node-rank", "1", "--master-addr", "job-master-0", "--master-port", "23456"),
        *("--nproc-per-node", "2", "--max-restarts", "0"),  # a failed attempt is Flyte's to retry
    ]
    master = launch.topology(two, 0, {"RANK": "0", "MASTER_ADDR": "job-master-0", "MASTER_PORT": "23456"})
    assert master.node_rank == 0 and master.writes_outputs
    assert launch.topology(two, 0, {}) is None  # no operator: run locally, or refused on a cluster
    with pytest.raises(UserError, match="trains on 2 nodes but its PyTorchJob has 3 pods"):
        launch.topology(two, 0, {**worker, "PET_NNODES": "3"})


def test_an_elastic_pod_takes_its_rendezvous_from_the_operator_and_learns_its_rank_from_torchrun(tmp_path):
    """An elastic job's pods get the c10d endpoint and MIN:MAX (training-operator pkg/controller.v1/pytorch/
    elastic.go), no node rank: torchrun's elastic agent with the task's restarts; the pod that held global rank 0
    in the last round (torchrun's latest attempt_<n> folder) writes the outputs."""
    from flytekitplugins.prebuilt.train import Elastic

    config = TrainConfig(
        command=("train.py",), processes_per_node=2, elastic=Elastic(nnodes="1:3", max_restarts=2, rdzv_configs={})
    )
    assert config.nodes == 3 and config.min_nodes == 1
    env = {"PET_RDZV_ENDPOINT": "job-worker-0:23456", "PET_NNODES": "1:3", "PET_RDZV_BACKEND": "c10d"}
    node = launch.topology(config, 0, env)
    assert node.torchrun_arguments() == [
        *("--nnodes", "1:3", "--rdzv-backend", "c10d", "--rdzv-endpoint", "job-worker-0:23456"),
        *("--nproc-per-node", "2", "--max-restarts", "2"),
    ]
    assert not node.writes_outputs and launch.elastic_env(config) == {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    assert launch.topology(config, 0, {}) is None  # no operator: run locally, or refused on a cluster
    with pytest.raises(UserError, match="trains on 1:3 nodes but its PyTorchJob has 2:3"):
        launch.topology(config, 0, {**env, "PET_NNODES": "2:3"})
    for attempt, rank in ((0, 0), (1, 2)):  # rank 0 here in the first round, rank 2 in the second
        (tmp_path / "run_x" / f"attempt_{attempt}" / "0").mkdir(parents=True)
        (tmp_path / "run_x" / f"attempt_{attempt}" / "0" / "started").write_text(json.dumps({"rank": rank}))
        assert failures.holds_rank_zero(tmp_path) == (rank == 0)
    assert failures.latest_attempt(tmp_path) == tmp_path / "run_x" / "attempt_1"  # its errors are the task's
    single = TrainConfig(command=("train.py",), elastic=Elastic(nnodes=1, max_restarts=3))
    assert launch.topology(single, 0, {}).torchrun_arguments()[:7] == [
        *("--standalone", "--nnodes", "1", "--nproc-per-node", "1", "--max-restarts", "3"),
    ]


def test_locally_every_node_meets_at_one_free_port_of_this_machine(tmp_path):
    nodes = launch.local_nodes(TrainConfig(command=("train.py",), nodes=3), gpus=0)
    assert [n.node_rank for n in nodes] == [0, 1, 2] and len({n.master for n in nodes}) == 1
    assert nodes[0].master.startswith("127.0.0.1:") and nodes[0].processes_per_node == "1"
    command = launch.local_nodes_command(Path("/env/bin/python"), nodes, tmp_path, ["train.py"])
    assert command[:2] == ["/env/bin/python", str(launch.LOCAL_NODES_ENTRY)]
    per_node = json.loads(command[2])
    assert [c[c.index("--node-rank") + 1] for c in per_node] == ["0", "1", "2"]
    assert [c[c.index("--log-dir") + 1] for c in per_node] == [str(tmp_path / f"node-{i}") for i in range(3)]


# ------------------------------------------------------------------------------------ the rank entry point


def run_rank(tmp_path: Path, argv: list[str], rank: int = 1) -> tuple[subprocess.CompletedProcess, dict | None]:
    error_file = tmp_path / "attempt_0" / str(rank) / "error.json"
    error_file.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TORCHELASTIC_ERROR_FILE": str(error_file), "RANK": str(rank), "LOCAL_RANK": str(rank)}
    done = subprocess.run([sys.executable, str(RANK), *argv], cwd=tmp_path, env=env, capture_output=True, text=True)
    return done, json.loads(error_file.read_text()) if error_file.exists() else None


def test_the_rank_entry_runs_the_script_as_python_would(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    (tmp_path / "main.py").write_text(
        "import sys, helper\nprint(__name__, sys.argv, helper.VALUE, sys.path[0] == __import__('os').getcwd())\n"
    )
    done, error = run_rank(tmp_path, ["main.py", "--x", "1"])
    assert done.returncode == 0 and error is None, done.stderr
    assert done.stdout.strip() == "__main__ ['main.py', '--x', '1'] 42 True"  # its folder first on sys.path
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "train.py").write_text("import sys\nprint(__name__, sys.argv[1:])\n")
    done, error = run_rank(tmp_path, ["-m", "pkg.train", "--y"])
    assert done.returncode == 0 and done.stdout.strip() == "__main__ ['--y']", done.stderr


def test_a_failing_rank_records_its_exception_in_torchs_format(tmp_path):
    (tmp_path / "main.py").write_text("def load():\n    raise KeyError('shard 7')\n\nload()\n")
    done, error = run_rank(tmp_path, ["main.py"], rank=3)
    assert done.returncode == 1 and "KeyError: 'shard 7'" in done.stderr  # the traceback still reaches the log
    assert error["message"]["message"] == "KeyError: 'shard 7'"
    callstack = error["message"]["extraInfo"]["py_callstack"]
    assert 'File "main.py", line 2, in load' in callstack and "rank.py" not in callstack and "runpy" not in callstack
    assert int(error["message"]["extraInfo"]["timestamp"]) > 0  # torch reads it with int()
    ours = error["prebuilt"]
    assert ours["rank"] == 3 and ours["local_rank"] == 3 and ours["types"][:2] == ["KeyError", "LookupError"]
    failure = failures.read_failures(tmp_path)[0]
    assert failure.who == "rank 3 (local rank 3)" and not failure.is_communication


def test_sys_exit_zero_is_success_and_nonzero_a_failure(tmp_path):
    (tmp_path / "ok.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "bad.py").write_text("import sys\nsys.exit(3)\n")
    done, error = run_rank(tmp_path, ["ok.py"])
    assert done.returncode == 0 and error is None
    done, error = run_rank(tmp_path, ["bad.py"])
    assert done.returncode == 3 and error["message"]["message"] == "SystemExit: 3"


# ---------------------------------------------------------------------------------------------- failures


def write_failure(root: Path, local_rank: int, message: str, types: list[str], time_ns: int, ours: bool = True):
    path = root / "run_x" / "attempt_0" / str(local_rank) / "error.json"
    path.parent.mkdir(parents=True)
    data = {"message": {"message": message, "extraInfo": {"py_callstack": f"Traceback\n{message}", "timestamp": "5"}}}
    if ours:
        data["prebuilt"] = {"rank": local_rank, "local_rank": local_rank, "time_ns": time_ns, "types": types}
    path.write_text(json.dumps(data))
    return path


def test_the_root_cause_is_the_first_failure_that_is_not_a_communication_error(tmp_path):
    gloo = "RuntimeError: [pair.cc:537] Read error [127.0.0.1]:5: Connection reset by peer"
    write_failure(tmp_path, 0, gloo, ["RuntimeError"], time_ns=100)  # first, but caused by rank 1
    write_failure(tmp_path, 1, "ValueError: bad batch", ["ValueError"], time_ns=200)
    found = failures.read_failures(tmp_path)
    assert failures.root_cause(found).rank == 1
    error = failures.explain(found, "", [], "fallback")
    assert isinstance(error, failures.RankFailed) and isinstance(error, UserError)
    assert str(error).startswith("rank 1 (local rank 1) failed: ValueError: bad batch")
    assert "1 other rank(s) failed after it" in str(error)


@pytest.mark.parametrize(
    "message, types, expected, retried",
    [
        (
            "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
            ["OutOfMemoryError"],
            "CudaOutOfMemory",
            0,
        ),
        ("RuntimeError: CUDA error: out of memory", ["RuntimeError"], "CudaOutOfMemory", 0),
        (
            "DistStoreError: Timed out after 901 seconds waiting for clients",
            ["DistStoreError"],
            "CommunicationFailed",
            1,
        ),
        ("RuntimeError: Timed out waiting 3000ms for recv operation to complete", ["RuntimeError"], "Communication", 1),
        ("DistBackendError: NCCL communicator was aborted on rank 0", ["DistBackendError"], "CommunicationFailed", 1),
        ("MyRetry: the feature store blinked", ["MyRetry", "FlyteRecoverableException"], "RankFailedRecoverably", 1),
        ("TypeError: unsupported operand", ["TypeError"], "RankFailed", 0),
    ],
)
def test_failures_are_classified_by_their_exception(tmp_path, message, types, expected, retried):
    write_failure(tmp_path, 0, message, types, time_ns=1)
    error = failures.explain(failures.read_failures(tmp_path), "", [], "fallback")
    assert type(error).__name__.startswith(expected) and isinstance(error, TransientError) == bool(retried)
    assert message in str(error)
    if expected == "CudaOutOfMemory":
        assert str(error).startswith("the GPU ran out of memory: lower the batch size per process")


def test_upstreams_recoverable_error_file_and_torchs_own_error_files(tmp_path):
    path = write_failure(tmp_path, 2, "RuntimeError: flaky", ["RuntimeError"], time_ns=1, ours=False)
    (path.parent / "recoverable_error").write_text("")
    (failure,) = failures.read_failures(tmp_path)
    assert failure.local_rank == 2 and failure.time_ns == 5 * 10**9  # from torch's own fields and the path
    assert isinstance(failures.explain([failure], "", [], ""), failures.RankFailedRecoverably)


TORCHRUN_SUMMARY = """
Failures:
[1]:
  time      : 2026-01-01_00:00:00
  host      : node
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 4241) (SIGTERM)
  error_file: /logs/0/error.json
  traceback : Traceback (most recent call last):
    RuntimeError: Connection closed by peer
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-01-01_00:00:00
  host      : node
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 4242) (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242
"""


def watch(output: str) -> tuple[list, list[str]]:
    relayed: list[str] = []
    watcher = failures.SummaryWatcher(relay=relayed.append)
    for line in output.splitlines(keepends=True):
        watcher(line)
    return watcher.signalled, relayed


def test_ranks_killed_by_a_signal_are_read_from_torchruns_summary_as_it_streams(tmp_path):
    signalled, relayed = watch(TORCHRUN_SUMMARY)
    assert signalled == [(0, 0, 15), (1, 1, 9)] and "".join(relayed) == TORCHRUN_SUMMARY  # every line is relayed
    killed = failures.explain([], "", signalled, "fallback")  # rank 0's SIGTERM came from torchrun stopping it
    assert isinstance(killed, failures.RankKilled)
    assert str(killed).startswith("rank 1 (local rank 1) was killed (SIGKILL")
    crashed = failures.explain([], "", watch(TORCHRUN_SUMMARY.replace("-9", "-11"))[0], "fallback")
    assert isinstance(crashed, failures.RankFailed) and "died of SIGSEGV" in str(crashed)
    gloo = write_failure(tmp_path, 0, "RuntimeError: Connection closed by peer", ["RuntimeError"], 1)
    both = failures.explain(failures.read_failures(gloo.parents[2]), "", signalled, "")
    assert isinstance(both, failures.RankKilled) and "the other ranks then failed: rank 0" in str(both)


def test_the_error_says_when_the_nodes_trouble_began_for_flyte_to_pick_the_earliest_pod(tmp_path):
    """Of several pods' error documents, Flyte reports the one with the earliest timestamp: a node's error carries
    its root cause's time, or the time torchrun's summary gives a killed rank (whole seconds, never later)."""
    watcher = failures.SummaryWatcher(relay=lambda line: None)
    for line in TORCHRUN_SUMMARY.splitlines(keepends=True):
        watcher(line)
    kill_time = time.mktime(time.strptime("2026-01-01_00:00:00", "%Y-%m-%d_%H:%M:%S"))
    assert watcher.signal_times == {0: kill_time, 1: kill_time}
    gloo = write_failure(tmp_path, 0, "RuntimeError: Connection closed by peer", ["RuntimeError"], 1)
    ranks = failures.read_failures(gloo.parents[2])
    killed = failures.explain(ranks, "", watcher.signalled, "", watcher.signal_times)
    assert killed.failed_at == min(kill_time, ranks[0].time_ns / 1e9)
    own = write_failure(tmp_path / "own", 1, "ValueError: bad", ["ValueError"], 1)
    raised = failures.explain(failures.read_failures(own.parents[2]), "", [], "")
    assert raised.failed_at == failures.read_failures(own.parents[2])[0].time_ns / 1e9
    assert not hasattr(failures.explain([], "", [], "fallback"), "failed_at")  # nothing to tell: Flyte's own time


def test_torchruns_own_failure_and_the_fallback(tmp_path):
    (tmp_path / "launcher.json").write_text(json.dumps({"message": {"message": "RendezvousTimeoutError: timed out"}}))
    launcher = failures.launcher_error(tmp_path / "launcher.json")
    assert isinstance(failures.explain([], launcher, [], ""), failures.CommunicationFailed)
    other = failures.explain([], "ValueError: Cuda is not available.", [], "")
    assert type(other) is RuntimeError and "torchrun failed: ValueError" in str(other)  # SYSTEM: the image, not you
    assert failures.launcher_error(tmp_path / "missing.json") == ""
    assert str(failures.explain([], "", [], "the command exited with code 1")).endswith("code 1")


# ----------------------------------------------------------------------------------------------- metrics


def test_metrics_lines_become_curves_and_a_deck(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [
        {"epoch": 0, "loss": 2.0, "accuracy": 0.5, "rank": 0},
        "not json",
        [1, 2],
        {"epoch": 1, "loss": 1.0, "accuracy": 0.8, "note": "text is not a curve"},
        {"epoch": 2, "loss": 0.5, "<script>": 1},
        {"epoch": 1, "loss": 0.9},  # a resumed attempt wrote epoch 1 again: the last value wins
    ]
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + '\n{"epoch": 3,')
    records, skipped = metrics.read_metrics(path)
    assert len(records) == 4 and skipped == 3  # a list, a non-JSON line and the half-written last line
    x_name, found = metrics.curves(records)
    assert x_name == "epoch" and set(found) == {"loss", "accuracy", "<script>"}
    assert found["loss"] == [(0, 2.0), (1, 0.9), (2, 0.5)]
    page = metrics.deck_html(records, skipped)
    assert page.count("<svg") == 3 and page.count("<polyline") == 3 and "&lt;script&gt;" in page
    assert "<script>" not in page and "3 line(s) that were not JSON objects skipped" in page
    assert 'points="64.0,' in page  # the first point sits on the left edge of the plot


def test_a_constant_curve_and_no_metrics(tmp_path):
    svg = metrics.svg_chart("lr", "step", [(1, 0.1), (2, 0.1)])
    assert svg.startswith("<svg") and "lr (last: 0.1)" in svg
    assert "wrote no metrics" in metrics.deck_html(*metrics.read_metrics(tmp_path / "missing.jsonl"))
    assert metrics.curves([{"loss": 1.0}, {"loss": 0.5}]) == ("line", {"loss": [(1, 1.0), (2, 0.5)]})


# ------------------------------------------------------------------------------------- framework layer


def test_the_framework_is_torch_and_what_it_needs_from_its_own_folder():
    found = framework.find_framework()
    torch = metadata.distribution("torch")
    assert found.tops == ("torch",) and found.distributions[0].version == torch.version
    assert found.site == Path(torch.locate_file("")).resolve()
    names = found.names()
    assert {"torch", "sympy", "networkx", "filelock"} <= names and "flytekit" not in names
    assert found.describe().startswith(f"torch {torch.version} (with ")


def test_a_framework_site_without_torch_is_a_system_error(tmp_path, monkeypatch):
    monkeypatch.setenv(framework.SITE_VARIABLE, str(tmp_path))
    with pytest.raises(RuntimeError, match=f"torch is not installed in \\${framework.SITE_VARIABLE}="):
        framework.find_framework()


def test_stubs_carry_the_installed_metadata_and_the_torch_stub_the_site(tmp_path):
    found = framework.find_framework()
    lines = framework.stub_requirements(found, tmp_path)
    assert lines == framework.stub_requirements(found, tmp_path)  # built once, then reused
    assert lines[0].startswith("torch @ file://") and len(lines) == len(found.distributions)
    (folder,) = tmp_path.glob("framework-*")
    torch_wheel = zipfile.ZipFile(next(folder.glob("torch-*.whl")))
    info = f"torch-{found.distributions[0].version}.dist-info"
    assert torch_wheel.read(f"{info}/METADATA").decode() == metadata.distribution("torch").read_text("METADATA")
    assert torch_wheel.read(framework.PTH_FILE).decode() == f"{found.site}\n"
    assert not [n for n in torch_wheel.namelist() if n.endswith(".py") or n.endswith(".so")]  # no code
    sympy = zipfile.ZipFile(next(folder.glob("sympy-*.whl")))
    assert framework.PTH_FILE not in sympy.namelist()


def test_the_layered_spec_adds_the_stubs_to_the_bundles_requirements_and_keys_both(tmp_path):
    found = framework.find_framework()
    base = DependencySpec("requirements", ["six==1.16.0"], "k" * 24)
    layered = framework.LayeredSpec(base, found, tmp_path / "cache")
    assert layered.key != base.key and layered.name == f"requirements-{layered.key}"
    assert not (tmp_path / "cache").exists()  # nothing is written before the environment is built
    assert layered.requirements == ("six==1.16.0", *framework.stub_requirements(found, tmp_path / "cache"))
    other = framework.LayeredSpec(DependencySpec("requirements", ["six==1.17.0"], "j" * 24), found, tmp_path)
    assert other.key != layered.key and layered.kind == "requirements"


def test_a_resolution_conflict_with_the_framework_names_both():
    found = framework.find_framework()
    uv_says = (
        "installing dependencies failed with exit code 1: uv pip install ...\n--- last 40 lines of output ---\n"
        "Using Python 3.11.7 environment at: /cache/x\n"
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because only torch>=2 is available and old-vision==0.1 depends on torch<2, we can conclude that your "
        "requirements are unsatisfiable."
    )
    error = framework.explain(UserError(uv_says), found)
    assert str(error).startswith("the bundle's requirements conflict with the framework this image provides")
    assert f"torch {found.distributions[0].version}" in str(error)
    assert "old-vision==0.1 depends on torch<2" in str(error)
    unrelated = UserError("installing dependencies failed: No solution found: you require nonexistent-pkg==9")
    assert framework.explain(unrelated, found) is unrelated


def test_the_executor_loads_no_task_class_and_never_imports_torch_itself():
    code = (
        "import sys\n"
        "import flytekitplugins.prebuilt.executors.train\n"
        "print(sorted(m for m in sys.modules if m.startswith('flytekitplugins.prebuilt') or m == 'torch'))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for absent in ("prebuilt.train.task", "prebuilt.script.task", "prebuilt.kit.task", "prebuilt.emulator", "'torch'"):
        assert absent not in loaded


def test_gpus_are_visible_through_nvidia_device_nodes_unless_cuda_hides_them(tmp_path):
    launch.check_gpus_visible(0, {}, str(tmp_path))  # no GPU asked: nothing to check
    with pytest.raises(UserError, match="requests 2 GPU"):
        launch.check_gpus_visible(2, {}, str(tmp_path))
    (tmp_path / "nvidiactl").touch()  # the control node alone is no GPU
    with pytest.raises(UserError):
        launch.check_gpus_visible(1, {}, str(tmp_path))
    (tmp_path / "nvidia0").touch()
    launch.check_gpus_visible(1, {}, str(tmp_path))
    with pytest.raises(UserError, match="CUDA_VISIBLE_DEVICES=''"):
        launch.check_gpus_visible(1, {"CUDA_VISIBLE_DEVICES": ""}, str(tmp_path))
