"""Executor of the ``script`` task type: verify and unpack the bundle, build (or reuse) its environment,
run the command under a deadline, collect its outputs. Failures say which kind they are."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, TypeVar

from flytekit.core.context_manager import FlyteContextManager
from flytekit.core.type_engine import TypeEngine
from flytekit.loggers import logger
from flytekit.types.directory import FlyteDirectory
from flytekit.types.file import FlyteFile
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.executors.script import process, values
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError
from flytekitplugins.prebuilt.kit.executor import PrebuiltExecutor, Run
from flytekitplugins.prebuilt.kit.objects import fetch_object
from flytekitplugins.prebuilt.kit.placeholders import INPUT_PLACEHOLDER
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec
from flytekitplugins.prebuilt.script import bundle, value_types
from flytekitplugins.prebuilt.script.config import ScriptConfig, input_variable
from flytekitplugins.prebuilt.script.spec import SPEC, BundleRef, ScriptExtras

SC = TypeVar("SC", bound=ScriptConfig)  # the config of a task type built on this one (train: TrainConfig)
TAIL_LINES = 40
ENV_CACHE = "PREBUILT_ENV_CACHE"  # where environments are cached (a volume, or the image's cache dir)


class ScriptExited(UserError):
    error_code = "USER:ScriptExit"


class DependencyInstallFailed(UserError):
    error_code = "USER:DependencyInstall"


class ScriptTimedOut(TransientError):
    error_code = "USER:Timeout"


class ScriptKilled(TransientError):
    error_code = "USER:Killed"


class ScriptExecutor(PrebuiltExecutor[SC, ScriptExtras]):
    """Runs a script task: unpack the bundle, build (or reuse) its environment, run the command, collect outputs.

    Generic in the config ``SC`` (a ``ScriptConfig``), so that a task type built on this one keeps the script
    type's bundle, inputs, secrets, deadline and outputs and changes only what differs. Such a type (the train
    type's ``TrainExecutor``, ``executors/train``) subclasses ``ScriptExecutor[ItsConfig]``, sets ``SPEC`` and
    overrides one or both hooks:

    - ``environment(source, config)``: the virtualenv the command runs in (train: layered over the image's torch);
      ``cache_dir()`` is where environments are cached.
    - ``execute(run, argv, env, cwd)``: run the command (train: under torchrun); ``run_command`` runs a command as
      this type does (deadline, output streamed and scrubbed, failures classified), its output relayed to the log
      by ``relay`` unless given another ``on_line``.
    """

    SPEC: ClassVar[TaskTypeSpec[Any, ScriptExtras]] = SPEC  # a subclass's SPEC has its own config class

    def run(self, run: Run[SC, ScriptExtras]) -> Any:
        # inside the execution's working directory; removed here unless file outputs still need it
        # (flytekit uploads those after this returns)
        # SIGTERM (the pod stopped) stops the running process group, then raises process.Interrupted: RECOVERABLE
        state = FlyteContextManager.current_context().execution_state
        work = Path(tempfile.mkdtemp(prefix="prebuilt-script-", dir=state.working_dir if state else None))
        try:
            with process.interruptible():
                result = self._run_in(run, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if not (run.config.artifacts or run.config.changed_files_output):
            shutil.rmtree(work, ignore_errors=True)
        return result

    def _run_in(self, run: Run[SC, ScriptExtras], work: Path) -> Any:
        from flytekitplugins.prebuilt.executors.script import environments

        config = run.config
        source = work / "src"
        bundle.extract(self._bundle_data(run.extras.bundle, work), source, run.extras.bundle.sha256)
        try:
            venv = self.environment(source, config)
        except UserError as error:
            raise DependencyInstallFailed(f"installing the bundle's dependencies failed: {error}") from None
        outputs_file = work / "outputs.json"
        inputs = {name: values.local(value, work) for name, value in run.inputs.items()}
        (work / "inputs.json").write_text(json.dumps(values.jsonable(inputs)))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("_FSEC_")},  # only the secrets asked for
            **environments.environment_variables(venv),
            **config.env,
            **{name: run.secret(f"secret_env.{name}", secret) for name, secret in config.secret_env.items()},
            **{input_variable(name): _input_text(name, value) for name, value in inputs.items()},
            "PREBUILT_OUTPUTS_FILE": str(outputs_file),
            "PREBUILT_INPUTS_FILE": str(work / "inputs.json"),
            "PREBUILT_WORK_DIR": str(source),
        }
        argv = [
            INPUT_PLACEHOLDER.sub(lambda m: _input_text(m.group(1), inputs[m.group(1)]), part)
            for part in config.command
        ]
        before = _snapshot(source) if config.changed_files_output else {}
        self.execute(run, argv, env, source)
        return self._outputs(run, source, outputs_file, before)

    def environment(self, source: Path, config: SC) -> Path:
        """Hook: the virtualenv the command runs in, for the unpacked bundle at ``source`` (its dependency files
        as ``config.dependencies`` says), built or found in ``cache_dir()``. A ``UserError`` raised here is
        reported as a failed dependency install."""
        from flytekitplugins.prebuilt.executors.script import environments, locks

        return environments.ensure_environment(
            locks.detect(source, config.dependencies), self.cache_dir(), store_seconds=config.deadline_seconds or None
        )

    def execute(self, run: Run[SC, ScriptExtras], argv: list[str], env: dict[str, str], cwd: Path) -> None:
        """Hook: run the command ``argv`` (its inputs already in it) with ``env`` (the environment's, the config's,
        secrets and inputs) in ``cwd`` (the unpacked bundle); raise to fail the task. By default ``run_command``."""
        self.run_command(argv, env, cwd, run.config)

    @staticmethod
    def cache_dir() -> Path:
        """Where environments are cached: ``$PREBUILT_ENV_CACHE`` (a volume, or the image's cache folder), else
        ``~/.cache/flytekitplugins-prebuilt/envs``."""
        return Path(os.environ.get(ENV_CACHE) or Path.home() / ".cache" / "flytekitplugins-prebuilt" / "envs")

    @staticmethod
    def relay(line: str) -> None:
        """Write one line of the command's output to this process's standard output (scrubbed while the
        executor runs): what ``run_command`` does with each line unless told otherwise."""
        print(line, end="", flush=True)

    def run_command(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        config: ScriptConfig,
        on_line: Optional[Callable[[str], None]] = None,
    ) -> None:
        """Run ``argv`` (``argv[0]`` through the shell when ``config.shell``) in ``cwd`` with ``env``, under
        ``config``'s deadline and grace period, each line of its output to ``on_line`` (default ``relay``). The
        deadline, an interruption and the end of the command each stop its whole process group (``process``).
        Raises ``ScriptExited`` (non-zero exit, or it cannot start), ``ScriptTimedOut``, ``ScriptKilled``."""
        command = argv[0] if config.shell else argv
        logger.info(
            f"script: running {argv!r}" + (f" (deadline {config.deadline_seconds}s)" if config.deadline_seconds else "")
        )
        try:
            done = process.run(
                command,
                shell=config.shell,
                cwd=cwd,
                env=env,
                timeout=config.deadline_seconds or None,
                grace=config.grace_seconds,
                on_line=on_line or self.relay,
                keep=TAIL_LINES,
            )
        except OSError as error:
            raise ScriptExited(f"cannot start {argv[0]!r}: {error}") from None
        if done.timed_out:
            raise ScriptTimedOut(
                f"the command ran past its deadline of {config.deadline_seconds}s and was stopped "
                f"(exit code {done.returncode}); last output:\n{done.output}"
            )
        if done.returncode == -signal.SIGKILL:
            raise ScriptKilled(
                f"the command was killed (SIGKILL: out of memory?), exit code {done.returncode}; "
                f"last output:\n{done.output}"
            )
        if done.returncode != 0:
            raise ScriptExited(f"the command exited with code {done.returncode}; last output:\n{done.output}")

    def _bundle_data(self, ref: BundleRef, work: Path) -> bytes:
        if ref.inline:
            return ref.data
        if ref.uploaded_at_registration:  # a template made by hand from a task's custom, never serialized
            raise UserError(
                f"the template names no location for its code bundle ({ref.uri}): serialize the task for "
                "registration (pyflyte register), which uploads it"
            )
        local = work / "bundle.zip"
        fetch_object(ref.uri, str(local), "the code bundle")  # missing: USER, else RECOVERABLE (kit.objects)
        return local.read_bytes()

    def _outputs(self, run: Run[SC, ScriptExtras], source: Path, outputs_file: Path, before: dict) -> Any:
        config = run.config
        types = TypeEngine.guess_python_types(run.template.interface.outputs)
        written = None
        results: list[Any] = []
        for name, python_type in types.items():
            if name in config.artifacts:
                results.append(_artifact(source, name, config.artifacts[name], python_type))
            elif name == config.changed_files_output:
                results.append(FlyteDirectory(str(_copy_changed(source, before))))
            else:
                if written is None:
                    written = _read_outputs(outputs_file)
                if name not in written:
                    raise UserError(
                        f"output {name!r} is missing from $PREBUILT_OUTPUTS_FILE "
                        f"(it holds {sorted(written) or 'nothing'})"
                    )
                results.append(values.typed(name, written[name], python_type))
        return results[0] if len(results) == 1 else tuple(results) if results else None


def _input_text(name: str, value: Any) -> str:
    """An input as the text of an argument or environment variable, neither of which can hold a NUL byte."""
    text = values.text(value)
    if "\x00" in text:
        raise UserError(f"inputs.{name}: holds a NUL byte, which no argument or environment variable can carry")
    return text


def _artifact(source: Path, name: str, relative: str, python_type: Any) -> Any:
    """Output ``name`` from the path the command wrote (links must stay inside ``source``): a FlyteFile, a
    FlyteDirectory, or a StructuredDataset of a parquet file or folder."""
    is_dataset = value_types.is_dataset_type(python_type)
    is_dir = not is_dataset and value_types.is_subclass(python_type, FlyteDirectory)
    path = _inside(source, source / relative, f"artifact {name!r}")
    if not (path.exists() if is_dataset else path.is_dir() if is_dir else path.is_file()):
        kind = "dataset (a parquet file or folder)" if is_dataset else "directory" if is_dir else "file"
        raise UserError(f"artifact {name!r}: the command produced no {kind} at {relative}")
    if path.is_dir():
        for inner in _tree(path):
            _inside(source, inner, f"artifact {name!r}")
    if is_dataset:
        return StructuredDataset(uri=str(path), file_format="parquet")
    return FlyteDirectory(str(path)) if is_dir else FlyteFile(str(path))


def _inside(root: Path, path: Path, what: str) -> Path:
    """``path`` with its links resolved, refused unless it stays inside ``root``.

    Never read outside the work folder."""
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(root))):
        raise UserError(
            f"{what}: {path.relative_to(root)} is a link to {real}, outside the working folder; refusing it"
        )
    return real


def _tree(root: Path):
    """Every path under ``root``, links not followed."""
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            yield Path(folder) / name


def _read_outputs(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError("the command wrote no outputs file: write a JSON object to $PREBUILT_OUTPUTS_FILE")
    try:
        written = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"$PREBUILT_OUTPUTS_FILE is not valid JSON: {error}") from None
    if not isinstance(written, dict):
        raise UserError("$PREBUILT_OUTPUTS_FILE must hold a JSON object")
    return written


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``root``, by relative path (links must stay inside)."""
    files = {}
    for path in _tree(root):
        real = _inside(root, path, "changed_files_output")
        if real.is_file():
            stat = real.stat()
            files[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return files


def _copy_changed(root: Path, before: dict[str, tuple[int, int]]) -> Path:
    changed = root.parent / "changed"
    for relative, state in _snapshot(root).items():
        if before.get(relative) != state:
            target = changed / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / relative, target)
    changed.mkdir(exist_ok=True)
    return changed
