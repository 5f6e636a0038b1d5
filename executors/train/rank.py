"""One rank of a training command: torchrun starts ``python rank.py <command>`` once per process.

It runs the user's script (or ``-m module``) as ``__main__``, exactly as ``python train.py`` would, and when the
script fails it records the exception where torchrun looks for it: ``$TORCHELASTIC_ERROR_FILE``, in the format of
torch's own ``@record`` (``torch/distributed/elastic/multiprocessing/errors/error_handler.py``,
``record_exception``), so a plain script needs no decorator for its traceback to reach the task's error. Beside
torch's fields, a ``prebuilt`` record says which rank failed, when (in nanoseconds: torch keeps whole seconds,
too coarse to tell the first failure from the collective errors it causes in other ranks) and what the
exception's classes are, for the executor to classify it.

torchrun starts each rank in a session of its own (``subprocess_handler.py``, ``start_new_session``), out of reach
of the signals the executor sends to torchrun's process group. A rank therefore asks the kernel to SIGKILL it when
torchrun dies (Linux's parent death signal), so no rank outlives a torchrun stopped by the deadline or SIGTERM.

This file runs in the user's environment, which does not have this package: it imports the standard library only.
"""

import ctypes
import datetime
import functools
import importlib.abc
import importlib.machinery
import json
import os
import runpy
import signal
import sys
import time
import traceback

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
COLLECTIVE_TIMEOUT_VARIABLE = "PREBUILT_COLLECTIVE_TIMEOUT"  # TrainConfig.collective_timeout_seconds
OUTPUTS_VARIABLE = "PREBUILT_OUTPUTS_FILE"
FINISHED_FILE = "finished"  # beside the rank's error file: it ended without an error, and when
STARTED_FILE = "started"  # beside the rank's error file: which global rank it is (elastic: given by the rendezvous)


def main() -> None:
    _die_with_launcher()
    args = sys.argv[1:]
    if args[0] == "-m":
        module = args[1]
        sys.argv = [module, *args[2:]]  # run_module puts the module's path in argv[0], as `python -m`
        sys.path[0] = os.getcwd()

        def target():
            return runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        script = args[0]
        sys.argv = list(args)
        sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python script.py`, not this file's folder

        def target():
            return runpy.run_path(script, run_name="__main__")

    _default_collective_timeout()
    _record_started()
    ignored_outputs = _outputs_of_rank_0_only()
    try:
        target()
    except SystemExit as stop:
        if stop.code not in (None, 0):
            record(_cause_of_exit(stop), exit_code=stop.code)
        else:
            record_finished()
        raise
    except BaseException as error:
        record(error)
        raise
    finally:
        _warn_of_ignored_outputs(ignored_outputs)
    record_finished()


def _outputs_of_rank_0_only() -> str:
    """Rank 0 writes the task's outputs. Another rank writing ``$PREBUILT_OUTPUTS_FILE`` would race it (the last
    writer would win), so every other rank gets a file of its own, which is ignored. Returns that file, or ''."""
    path, rank = os.environ.get(OUTPUTS_VARIABLE), os.environ.get("RANK", "0")
    if not path or rank == "0":
        return ""
    own = f"{path}.ignored-rank-{rank}"
    os.environ[OUTPUTS_VARIABLE] = own
    return own


def _warn_of_ignored_outputs(path: str) -> None:
    if path and os.path.exists(path):
        print(
            f"warning: rank {os.environ.get('RANK')} wrote ${OUTPUTS_VARIABLE}: ignored, the task's outputs are rank "
            f"0's (write them from rank 0 only)",
            file=sys.stderr,
        )


def _default_collective_timeout() -> None:
    """Make ``$PREBUILT_COLLECTIVE_TIMEOUT`` the default ``timeout`` of ``torch.distributed.init_process_group``.

    torch reads no environment variable for it: its default comes from ``torch.distributed.constants``, bound into
    ``distributed_c10d`` at import. So the public function is wrapped as its module is imported (torch is not
    imported here: a script that never uses it does not pay for it), before ``torch.distributed`` and the user's
    code take it. A ``timeout`` the script passes is kept."""
    seconds = os.environ.get(COLLECTIVE_TIMEOUT_VARIABLE, "")
    if seconds.isdigit():
        sys.meta_path.insert(0, _WrapOnImport(C10D_MODULE, functools.partial(_wrap_init, int(seconds))))


C10D_MODULE = "torch.distributed.distributed_c10d"


class _WrapOnImport(importlib.abc.MetaPathFinder):
    """Runs ``wrap(module)`` right after the module ``name`` is executed, the first time it is imported."""

    def __init__(self, name, wrap):
        self.name, self.wrap = name, wrap

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute, wrap = spec.loader.exec_module, self.wrap

        def exec_module(module):
            execute(module)
            wrap(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's own loader instance
        return spec


def _wrap_init(seconds, c10d) -> None:
    original = c10d.init_process_group

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        if len(args) < 3 and kwargs.get("timeout") is None:  # (backend, init_method, timeout, ...)
            kwargs["timeout"] = datetime.timedelta(seconds=seconds)
        return original(*args, **kwargs)

    c10d.init_process_group = init_process_group


def _record_started() -> None:
    """Note which global rank runs here: in an elastic job the rendezvous gives the ranks, and the node that held
    rank 0 in the last round writes the task's outputs and checkpoint (``failures.holds_rank_zero``)."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        try:
            with open(os.path.join(os.path.dirname(path), STARTED_FILE), "w") as file:
                json.dump({"rank": _integer(os.environ.get("RANK"))}, file)
        except OSError:
            return


def record_finished() -> None:
    """Note that this rank ended without an error: a rank that ends while the others still wait for it in a
    collective is the cause of their communication errors (``failures.py``)."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    data = {"rank": _integer(os.environ.get("RANK")), "time_ns": time.time_ns()}
    try:
        with open(os.path.join(os.path.dirname(path), FINISHED_FILE), "w") as file:
            json.dump(data, file)
    except OSError:
        return


def _die_with_launcher() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # torchrun died before prctl (this process was handed to init): the kernel will not tell
        os._exit(1)


def _cause_of_exit(stop: SystemExit) -> BaseException:
    """The error behind a failing exit: a framework that reports an exception and exits (Hydra's ``run_and_report``
    prints the traceback, then ``sys.exit(1)`` in its ``except`` block) leaves it as the exit's context, and the
    task's error should name it, not ``SystemExit: 1``."""
    cause = stop.__cause__ or stop.__context__
    return cause if isinstance(cause, Exception) else stop


def record(error: BaseException, exit_code: object = None) -> None:
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    message = f"{type(error).__name__}: {error}"
    data = {
        "message": {
            "message": message,
            "extraInfo": {"py_callstack": _user_traceback(error), "timestamp": str(int(time.time()))},
        },
        "prebuilt": {
            "rank": _integer(os.environ.get("RANK")),
            "local_rank": _integer(os.environ.get("LOCAL_RANK")),
            "time_ns": time.time_ns(),
            "types": [cls.__name__ for cls in type(error).__mro__],
            "exit_code": exit_code if exit_code is not None else error.code if isinstance(error, SystemExit) else None,
        },
    }
    try:
        with open(path, "w") as file:
            json.dump(data, file, default=str)
    except OSError as problem:  # the failure itself still reaches torchrun (exit code) and the log
        print(f"could not record the failure in {path}: {problem}", file=sys.stderr)


def _user_traceback(error: BaseException) -> str:
    """The traceback from the user's code on: this file's and runpy's frames are noise."""
    tb = error.__traceback__
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def _is_ours(filename: str) -> bool:
    return filename in (__file__, runpy.__file__) or filename.startswith("<frozen runpy")


def _integer(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


if __name__ == "__main__":
    main()
