"""Why a training command failed, told by the rank that failed first, and whether Flyte should retry it.

When a rank raises, ``rank.py`` records the exception in the rank's ``TORCHELASTIC_ERROR_FILE`` (under torchrun's
``--log-dir``); torchrun copies the first failure it saw into its own ``TORCHELASTIC_ERROR_FILE``
(``torch/distributed/elastic/multiprocessing/errors/__init__.py``, ``record`` and ``ChildFailedError``). A
rank's own error usually makes the others fail in their next collective ("Connection closed by peer"), often
within the same second, which is all torch's timestamps tell apart; so every rank's file is read here and the
root cause is the earliest failure that is not a communication error.

| root cause | error | retried |
|---|---|---|
| a Python exception | ``USER:RankFailed``, the rank's exception and traceback | no |
| CUDA out of memory | ``USER:CudaOutOfMemory``, with what to change | no |
| a rendezvous or collective timeout, a lost peer (gloo/NCCL/c10d errors only) | ``USER:CommunicationFailed`` | yes |
| those after a rank returned without an error (it skipped collectives the others ran) | ``USER:RankEndedEarly`` | no |
| a rank killed by SIGKILL (the kernel's OOM killer, a lost process) | ``USER:Killed`` | yes |
| ``FlyteRecoverableException``, or a ``recoverable_error`` file beside its error file | ``USER:Recoverable`` | yes |
| another signal (SIGSEGV, ...) | ``USER:RankFailed`` | no |

The ``recoverable_error`` file is flytekit's own convention for its elastic PyTorch tasks
(``plugins/flytekit-kf-pytorch/flytekitplugins/kfpytorch/error_handling.py``).
"""

from __future__ import annotations

import json
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from flytekitplugins.prebuilt.executors.script import ScriptKilled as RankKilled  # the same failure: USER:Killed
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError

RECOVERABLE_MARKER = "recoverable_error"
FINISHED_FILE = "finished"  # rank.py's FINISHED_FILE
STARTED_FILE = "started"  # rank.py's STARTED_FILE
TRACEBACK_CHARS = 6000  # of a rank's traceback in the error message (its end: where it failed)
COMMUNICATION_TYPES = {
    "DistNetworkError",  # torch.distributed: the store or a peer unreachable
    "DistStoreError",  # the c10d store timed out (a rank never joined)
    "DistBackendError",  # NCCL/gloo reported a failed or aborted communicator
    "RendezvousError",
    "RendezvousTimeoutError",
    "RendezvousClosedError",
    "RendezvousConnectionError",
}
COMMUNICATION_MESSAGE = re.compile(
    "|".join(
        [
            r"connection (?:closed|reset) by peer",
            r"broken pipe",
            r"timed out waiting .*(?:recv|send|operation|clients|store)",
            r"socket timeout",
            r"collective operation timeout",
            r"watchdog caught",
            r"nccl communicator was aborted",
            r"remote process exited or there was a network error",
            r"rendezvous .*(?:timed out|closed)",
        ]
    ),
    re.IGNORECASE,
)
CUDA_OOM = re.compile(r"cuda out of memory|cuda error: out of memory", re.IGNORECASE)
CUDA_OOM_HINT = (
    "the GPU ran out of memory: lower the batch size per process, use mixed precision (torch.autocast) or "
    "activation checkpointing, or request a GPU with more memory"
)
# torchrun's summary of each failed rank (torch/distributed/elastic/multiprocessing/errors/__init__.py,
# _FAILURE_FORMAT_TEMPLATE): '  rank      : 1 (local_rank: 1)', then '  exitcode  : -9 (pid: 4242) (SIGKILL)'
SUMMARY_RANK = re.compile(r"^\s*rank\s*:\s*(\d+) \(local_rank: (\d+)\)\s*$")
SUMMARY_EXIT = re.compile(r"^\s*exitcode\s*:\s*(-?\d+)")
SUMMARY_TIME = re.compile(r"^\s*time\s*:\s*(\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d)\s*$")  # local time, whole seconds


class RankFailed(UserError):
    error_code = "USER:RankFailed"


class CudaOutOfMemory(UserError):
    error_code = "USER:CudaOutOfMemory"


class CommunicationFailed(TransientError):
    error_code = "USER:CommunicationFailed"


class RankEndedEarly(UserError):
    error_code = "USER:RankEndedEarly"


class RankFailedRecoverably(TransientError):
    error_code = "USER:Recoverable"


@dataclass(frozen=True)
class RankFailure:
    """One rank's recorded exception."""

    rank: int | None
    local_rank: int | None
    message: str  # 'ValueError: bad input'
    traceback: str
    types: tuple[str, ...]  # the exception's classes, most derived first
    time_ns: int
    recoverable_marker: bool = False

    @property
    def who(self) -> str:
        rank = "?" if self.rank is None else self.rank
        return f"rank {rank}" + (f" (local rank {self.local_rank})" if self.local_rank is not None else "")

    @property
    def is_communication(self) -> bool:
        return bool(COMMUNICATION_TYPES & set(self.types)) or bool(COMMUNICATION_MESSAGE.search(self.message))

    @property
    def is_cuda_oom(self) -> bool:
        return "OutOfMemoryError" in self.types or bool(CUDA_OOM.search(self.message))

    @property
    def is_recoverable(self) -> bool:
        return self.recoverable_marker or "FlyteRecoverableException" in self.types

    def describe(self) -> str:
        text = self.traceback.strip() or self.message
        if len(text) > TRACEBACK_CHARS:
            text = "..." + text[-TRACEBACK_CHARS:]
        return f"{self.who} failed: {self.message}\n{text}"


def read_failures(log_dir: Path) -> list[RankFailure]:
    """Every rank's error file under torchrun's ``--log-dir`` (unreadable ones are skipped)."""
    failures = []
    for path in sorted(log_dir.rglob("error.json")) if log_dir.is_dir() else []:
        failure = _read(path)
        if failure is not None:
            failures.append(failure)
    return failures


def read_finished(log_dir: Path) -> dict[int, int]:
    """Rank -> when it ended without an error (``rank.py``'s ``finished`` file beside its error file)."""
    finished = {}
    for path in sorted(log_dir.rglob(FINISHED_FILE)) if log_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            finished[int(data["rank"])] = int(data["time_ns"])
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return finished


def latest_attempt(log_dir: Path) -> Path | None:
    """torchrun's folder of this node's last round (``<log_dir>/<run>/attempt_<n>``; n counts the agent's restarts),
    or None: an elastic job's earlier rounds failed and were restarted, their errors are not the task's."""
    attempts = [path for path in log_dir.glob("*/attempt_*") if path.name[8:].isdigit()] if log_dir.is_dir() else []
    return max(attempts, key=lambda path: int(path.name[8:])) if attempts else None


def holds_rank_zero(log_dir: Path) -> bool:
    """Whether global rank 0 ran on this node in its last round (torchrun's latest ``attempt_<n>`` folder under
    ``--log-dir``): in an elastic job the rendezvous gives the ranks anew in every round."""
    latest = latest_attempt(log_dir)
    if latest is None:
        return False
    for path in latest.glob(f"*/{STARTED_FILE}"):
        try:
            if json.loads(path.read_text()).get("rank") == 0:
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


def _read(path: Path) -> RankFailure | None:
    try:
        data = json.loads(path.read_text(errors="replace"))
        message = data["message"]
        if isinstance(message, str):  # torch's other format: {"message": str, "timestamp": int}
            message = {"message": message, "extraInfo": {"timestamp": data.get("timestamp", 0)}}
        extra = message.get("extraInfo", {})
        ours = data.get("prebuilt") or {}
        local_rank = ours.get("local_rank")
        if local_rank is None and path.parent.name.isdigit():  # <log_dir>/<run>/attempt_N/<local rank>/error.json
            local_rank = int(path.parent.name)
        return RankFailure(
            rank=ours.get("rank"),
            local_rank=local_rank,
            message=str(message.get("message", "")),
            traceback=str(extra.get("py_callstack", "")),
            types=tuple(ours.get("types") or ()),
            time_ns=int(ours.get("time_ns") or int(extra.get("timestamp", 0)) * 10**9),
            recoverable_marker=(path.parent / RECOVERABLE_MARKER).exists(),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def root_cause(failures: list[RankFailure]) -> RankFailure:
    """The earliest failure that is not a communication error (those follow another rank's failure), else the
    earliest."""
    own = [f for f in failures if not f.is_communication]
    return min(own or failures, key=lambda f: f.time_ns)


class SummaryWatcher:
    """An output line handler that hands every line on and remembers the ranks torchrun's summary says a signal
    killed: they leave no error file, and the summary may be longer than the output tail a failure keeps."""

    def __init__(self, relay):
        self._relay, self._rank, self._time = relay, None, None
        self.signalled: list[tuple[int, int, int]] = []  # (rank, local rank, signal number)
        self.signal_times: dict[int, float] = {}  # rank -> when torchrun saw it end (whole seconds)

    def __call__(self, line: str) -> None:
        self._relay(line)
        rank, exit_code, when = SUMMARY_RANK.match(line), SUMMARY_EXIT.match(line), SUMMARY_TIME.match(line)
        if when:
            self._time = time.mktime(time.strptime(when.group(1), "%Y-%m-%d_%H:%M:%S"))
        elif rank:
            self._rank = (int(rank.group(1)), int(rank.group(2)))
        elif exit_code and self._rank is not None:
            if int(exit_code.group(1)) < 0:
                self.signalled.append((*self._rank, -int(exit_code.group(1))))
                if self._time is not None:
                    self.signal_times[self._rank[0]] = self._time
            self._rank = None


def explain(
    failures: list[RankFailure],
    launcher_error: str,
    signalled: list[tuple[int, int, int]],
    fallback: str,
    signal_times: dict[int, float] | None = None,
    finished: dict[int, int] | None = None,
) -> Exception:
    """The error the task fails with: from the ranks' failures, else from what torchrun reported (the ranks a signal
    killed, its own error file ``launcher_error``), else ``fallback``.

    It says when this node's trouble began (``failed_at``: the root cause's failure, or the kill torchrun saw,
    ``signal_times``, to the second, which is never after the failures it causes): of several pods' errors,
    Flyte reports the earliest (docs/train/multi-node.md). ``finished``: the ranks that ended without an error, and
    when (``read_finished``)."""
    error = _ended_early(failures, finished or {}) or _explain(failures, launcher_error, signalled, fallback)
    killed = _first_signal(signalled)
    times = [root_cause(failures).time_ns / 1e9] if failures else []
    signal_times = signal_times or {}
    if killed and killed[0] in signal_times:
        times.append(signal_times[killed[0]])
    if times:
        error.failed_at = min(times)  # type: ignore[attr-defined]
    return error


def _explain(
    failures: list[RankFailure], launcher_error: str, signalled: list[tuple[int, int, int]], fallback: str
) -> Exception:
    killed = _first_signal(signalled)
    if failures:
        cause = root_cause(failures)
        others = len(failures) - 1
        more = f"\n({others} other rank(s) failed after it; see the task log)" if others else ""
        if cause.is_recoverable:
            return RankFailedRecoverably(cause.describe() + more)
        if cause.is_cuda_oom:
            return CudaOutOfMemory(f"{CUDA_OOM_HINT}.\n{cause.describe()}{more}")
        if cause.is_communication:
            if killed:
                return _killed(killed, f"\nthe other ranks then failed: {cause.describe()}")
            return CommunicationFailed(
                f"a rendezvous or collective operation failed (a lost or stuck peer); retrying may succeed.\n"
                f"{cause.describe()}{more}"
            )
        return RankFailed(cause.describe() + more)
    if killed:
        return _killed(killed, "")
    if launcher_error:
        if COMMUNICATION_MESSAGE.search(launcher_error) or any(t in launcher_error for t in COMMUNICATION_TYPES):
            return CommunicationFailed(f"torchrun failed to start or keep the ranks together: {launcher_error}")
        return RuntimeError(f"torchrun failed: {launcher_error}")  # not the user's code: a SYSTEM error
    return RankFailed(fallback)


def _ended_early(failures: list[RankFailure], finished: dict[int, int]) -> Exception | None:
    """A rank that returned (exit 0) before the others' first failure, when all of those are communication errors:
    it skipped collectives the others ran, which then waited for it in vain. The same code fails the same way
    again, so it is not retried."""
    if not failures or not finished or not all(f.is_communication for f in failures):
        return None
    first = root_cause(failures)
    early = sorted(rank for rank, when in finished.items() if when < first.time_ns)
    if not early:
        return None
    ranks = ", ".join(map(str, early))
    return RankEndedEarly(
        f"rank(s) {ranks} ended without an error while the other ranks still waited for them in a collective "
        f"operation: every rank must run the same collectives (all_reduce, barrier, ...) the same number of times, "
        f"e.g. the same number of batches per epoch (DistributedSampler(drop_last=True)); the others then failed:\n"
        f"{first.describe()}"
    )


def launcher_error(path: Path) -> str:
    """The exception torchrun recorded about itself (its ``@record`` main), or ''."""
    try:
        data = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return ""
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, dict):
        return str(message.get("message", ""))
    return str(message or "")


def _first_signal(signalled: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """The signal that explains the failure: SIGTERM is torchrun stopping the other ranks once one failed (or the
    executor's own stop), never a cause; a crash (SIGSEGV, SIGABRT, ...) explains more than a SIGKILL."""
    causes = [s for s in signalled if s[2] != signal.SIGTERM]
    crashes = [s for s in causes if s[2] != signal.SIGKILL]
    return next(iter(crashes or causes), None)


def _killed(killed: tuple[int, int, int], rest: str) -> Exception:
    rank, local_rank, number = killed
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    who = f"rank {rank} (local rank {local_rank})"
    if number == signal.SIGKILL:
        return RankKilled(
            f"{who} was killed ({name}: out of memory, or the process was lost); a retry may succeed{rest}"
        )
    return RankFailed(f"{who} died of {name}{rest}")
