"""Executor of the ``train`` task type: the ``script`` executor (bundle, environment, inputs, secrets, deadline,
outputs) with the command launched under torchrun, on an environment layered over the image's torch, with a
checkpoint folder that survives retries, a metrics Deck, and failures told by the rank that failed first."""

from __future__ import annotations

from pathlib import Path

from flytekitplugins.prebuilt.executors.script import ScriptExecutor, ScriptExited, _cache_dir, _relay, _run
from flytekitplugins.prebuilt.executors.train import checkpoints, failures, framework, launch, metrics
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.kit.executor import Run, write_deck_file
from flytekitplugins.prebuilt.script.spec import ScriptExtras
from flytekitplugins.prebuilt.train.config import (
    BACKEND_VARIABLE,
    CHECKPOINT_VARIABLE,
    METRICS_VARIABLE,
    TENSORBOARD_DIR,
    TENSORBOARD_VARIABLE,
    TrainConfig,
)
from flytekitplugins.prebuilt.train.spec import SPEC


class TrainExecutor(ScriptExecutor):
    SPEC = SPEC

    def _environment(self, source: Path, config: TrainConfig) -> Path:
        from flytekitplugins.prebuilt.executors.script import environments, locks

        provided, cache = framework.find_framework(), _cache_dir()
        spec = framework.LayeredSpec(locks.detect(source, config.dependencies), provided, cache)
        try:
            return environments.ensure_environment(spec, cache)
        except UserError as error:
            raise framework.explain(error, provided) from None

    def _execute(self, run: Run[TrainConfig, ScriptExtras], argv: list[str], env: dict[str, str], cwd: Path) -> None:
        config, state = run.config, cwd.parent / "train"  # the working folder's sibling: not in changed files
        gpus = launch.requested_gpus(run.template)
        log_dir, launcher_file = state / "torchrun", state / "torchrun-error.json"
        tensorboard = cwd / TENSORBOARD_DIR
        tensorboard.mkdir(parents=True, exist_ok=True)
        # Saved and restored together: a resumed attempt appends to the curves of the attempts before it.
        with checkpoints.checkpoint_folder(state / "checkpoint") as saved:
            folder, metrics_file = saved / "files", saved / "metrics.jsonl"
            folder.mkdir(exist_ok=True)
            env = {
                **env,
                BACKEND_VARIABLE: launch.backend(config, gpus),
                CHECKPOINT_VARIABLE: str(folder),
                METRICS_VARIABLE: str(metrics_file),
                TENSORBOARD_VARIABLE: str(tensorboard),
                "TORCHELASTIC_ERROR_FILE": str(launcher_file),  # where torchrun copies the first failure
                "PYTHONUNBUFFERED": "1",  # the ranks' output reaches the log as it is written
            }
            python = Path(env["VIRTUAL_ENV"]) / "bin" / "python"
            command = launch.torchrun_command(python, launch.topology(config, gpus), log_dir, argv)
            watcher = failures.SummaryWatcher(relay=_relay)
            try:
                _run(command, env, cwd, config, on_line=watcher)
            except ScriptExited as exited:
                ranks, launcher = failures.read_failures(log_dir), failures.launcher_error(launcher_file)
                raise failures.explain(ranks, launcher, watcher.signalled, str(exited)) from None
            finally:
                records, skipped = metrics.read_metrics(metrics_file)
                write_deck_file(run.scrubber.scrub(metrics.deck_html(records, skipped)))
