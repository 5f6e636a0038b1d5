"""Executor of the ``train`` task type: the ``script`` executor (bundle, environment, inputs, secrets, deadline,
outputs) with the command launched under torchrun, on an environment layered over the image's torch, with a
checkpoint folder that survives retries, a metrics Deck, and failures told by the rank that failed first.

With several nodes, every pod of the PyTorchJob runs this executor on the same template; the master pod (node 0,
holding global rank 0) writes the outputs, the Deck and the checkpoint, the others end without outputs. In an
elastic job the rendezvous gives the ranks: the pod that held global rank 0 in the last round writes them."""

from __future__ import annotations

from pathlib import Path

from flytekit.core.context_manager import FlyteContextManager
from flytekitplugins.prebuilt.executors.script import ScriptExecutor, ScriptExited
from flytekitplugins.prebuilt.executors.train import checkpoints, failures, framework, launch, metrics
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.kit.executor import NoOutputs, Run, write_deck_file
from flytekitplugins.prebuilt.script.spec import ScriptExtras
from flytekitplugins.prebuilt.train.config import (
    BACKEND_VARIABLE,
    CHECKPOINT_VARIABLE,
    COLLECTIVE_TIMEOUT_VARIABLE,
    METRICS_VARIABLE,
    TENSORBOARD_DIR,
    TENSORBOARD_VARIABLE,
    TrainConfig,
)
from flytekitplugins.prebuilt.train.spec import SPEC


class TrainExecutor(ScriptExecutor[TrainConfig]):
    """The script executor with its two hooks overridden: ``environment`` layers the bundle's dependencies over the
    image's torch, ``execute`` launches the command under torchrun (``run_command``, its output watched for the
    rank that failed first)."""

    SPEC = SPEC

    def environment(self, source: Path, config: TrainConfig) -> Path:
        from flytekitplugins.prebuilt.executors.script import environments, locks

        provided, cache = framework.find_framework(), self.cache_dir()
        spec = framework.LayeredSpec(locks.detect(source, config.dependencies), provided, cache)
        try:
            return environments.ensure_environment(spec, cache, store_seconds=config.deadline_seconds or None)
        except UserError as error:
            raise framework.explain(error, provided) from None

    def execute(self, run: Run[TrainConfig, ScriptExtras], argv: list[str], env: dict[str, str], cwd: Path) -> None:
        config, state = run.config, cwd.parent / "train"  # the working folder's sibling: not in changed files
        gpus = launch.requested_gpus(run.template)
        launch.check_gpus_visible(gpus)
        log_dir, launcher_file = state / "torchrun", state / "torchrun-error.json"
        python = Path(env["VIRTUAL_ENV"]) / "bin" / "python"
        node = launch.topology(config, gpus)
        if node is not None:
            command = launch.torchrun_command(python, node, log_dir, argv)
            holds_rank_zero = node.writes_outputs if not node.rendezvous else None
        elif FlyteContextManager.current_context().execution_state.is_local_execution():
            nodes = launch.local_nodes(config, gpus)
            node, holds_rank_zero = nodes[0], True  # this process stands for every node: it writes the outputs
            command = launch.local_nodes_command(python, nodes, log_dir, argv)
        else:
            raise UserError(launch.NO_OPERATOR.format(nodes=config.nodes))

        def writes_outputs() -> bool:  # an elastic job's pod knows once its torchrun has ended
            return failures.holds_rank_zero(log_dir) if holds_rank_zero is None else holds_rank_zero

        tensorboard = cwd / TENSORBOARD_DIR
        tensorboard.mkdir(parents=True, exist_ok=True)
        # Saved and restored together: a resumed attempt appends to the curves of the attempts before it.
        cap = config.checkpoint_max_bytes
        with checkpoints.checkpoint_folder(state / "checkpoint", save=writes_outputs, max_bytes=cap) as saved:
            folder, metrics_file = saved / "files", saved / "metrics.jsonl"
            folder.mkdir(exist_ok=True)
            env = {
                **env,
                BACKEND_VARIABLE: launch.backend(config, gpus),
                COLLECTIVE_TIMEOUT_VARIABLE: str(config.collective_timeout_seconds),
                CHECKPOINT_VARIABLE: str(folder),
                METRICS_VARIABLE: str(metrics_file),
                TENSORBOARD_VARIABLE: str(tensorboard),
                "TORCHELASTIC_ERROR_FILE": str(launcher_file),  # where torchrun copies the first failure
                "PYTHONUNBUFFERED": "1",  # the ranks' output reaches the log as it is written
                **launch.elastic_env(config),
            }
            watcher = failures.SummaryWatcher(relay=self.relay)
            try:
                self.run_command(command, env, cwd, config, on_line=watcher)
            except ScriptExited as exited:
                # elastic: the last round's failures; the rounds before it were restarted
                where = (failures.latest_attempt(log_dir) if config.elastic is not None else None) or log_dir
                ranks, launcher = failures.read_failures(where), failures.launcher_error(launcher_file)
                finished = failures.read_finished(where)
                raise failures.explain(
                    ranks, launcher, watcher.signalled, str(exited), watcher.signal_times, finished
                ) from None
            finally:
                if writes_outputs():
                    records, skipped = metrics.read_metrics(metrics_file)
                    write_deck_file(run.scrubber.scrub(metrics.deck_html(records, skipped)))
        if node.rendezvous and not writes_outputs():
            raise NoOutputs("this pod's node is done: global rank 0 ran on another pod, which writes the outputs")
        if not writes_outputs():
            raise NoOutputs(f"node {node.node_rank} of {config.nodes} done: the master pod writes the outputs")
