"""The one way the script executor runs a program (the user's command, ``uv venv``, ``uv pip install``): as the
leader of its own process group, its output read line by line, under a deadline, and never outliving the executor.

Why a whole group: commands start children of their own (a shell's pipeline, uv's build backends, ``sleep 45 &``).
Signalling the leader alone would leave them running, so each program is started in a new session
(``start_new_session``, so its pid is also its group id) and every signal goes to the group (``killpg``).

Stopping a group (deadline, executor told to stop, or processes left behind by a leader that exited): SIGTERM to
the group, up to ``grace`` seconds for the group to empty, then SIGKILL. A successful run therefore leaves nothing
of its group behind either (a warning says so when there was something to stop).

The executor told to stop: Kubernetes stops a pod (deletion, a preempted node's graceful shutdown) by sending
SIGTERM to the container's PID 1 (``tini`` in our images, which forwards it to ``pyflyte-execute``), then SIGKILL
after ``terminationGracePeriodSeconds`` (30 s by default). Inside :func:`interruptible`, SIGTERM forwards the signal
to every running group at once and sets a flag; the runner waiting on a group then stops it and raises
:class:`Interrupted`, a ``TransientError``: flytekit's entrypoint (``flytekit/bin/entrypoint.py``,
``_dispatch_execute``) writes it as a USER, RECOVERABLE error document, so the task's retries apply. The exception
is raised by the code that waits, never from the signal handler itself, so no cleanup (a rename, a lock release,
an ``rmtree``) is cut in the middle. Flyte's own code for a pod lost to its node is ``Interrupted``
(flyteplugins ``pluginmachinery/flytek8s/pod_helper.go``, ``DemystifyFailure``); ours is ``USER:Interrupted``.

The executor killed (SIGKILL, the OOM killer): no handler runs. On Linux each leader is started with
``PR_SET_PDEATHSIG = SIGKILL`` (``prctl`` through ctypes), so the kernel kills the leader (``uv pip install``, the
user's command or shell) when the executor thread that started it dies. The leader's own descendants are not
covered; in the images they end with the container: ``tini`` exits with the executor, and the kernel kills every
process left in the container's PID namespace. A process that leaves the group (``setsid``, a daemon) is never
tracked; a warning says when one still holds the output pipe.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import TransientError

POLL_SECONDS = 0.1  # how often a wait looks at the interruption flag
READER_JOIN_SECONDS = 5.0  # how long to wait for the rest of the output once the group is gone


class Interrupted(TransientError):
    """The executor was told to stop (SIGTERM) while a program ran; its process group was stopped."""

    error_code = "USER:Interrupted"


@dataclass(frozen=True)
class Exit:
    """How a program ended: ``returncode`` (negative: killed by that signal), the ``output`` kept (stdout and
    stderr together; the last ``keep`` lines, all of them when ``keep`` is None), whether it ran past ``timeout``."""

    returncode: int
    output: str
    timed_out: bool


_live_groups: set[int] = set()  # the groups started here and not yet stopped: where SIGTERM is forwarded
_stop_signal: int | None = None  # set by the handler of interruptible(); the waits look at it


def run(
    argv: str | Sequence[str],
    *,
    timeout: float | None = None,
    grace: float = 10.0,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    shell: bool = False,
    on_line: Callable[[str], None] | None = None,
    keep: int | None = None,
) -> Exit:
    """Run ``argv`` as the leader of a new process group and wait for it; see the module docstring.

    ``timeout`` (seconds, None: none) and an interruption stop the whole group (SIGTERM, ``grace``, SIGKILL).
    Each output line goes to ``on_line`` as it comes. Raises ``OSError`` when the program cannot start, and
    :class:`Interrupted` (after stopping the group) when the executor is told to stop.
    """
    raise_if_interrupted()
    process = subprocess.Popen(
        argv,
        shell=shell,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
        preexec_fn=_die_with_parent(),
    )
    _live_groups.add(process.pid)
    lines: collections.deque[str] = collections.deque(maxlen=keep)
    reader = threading.Thread(
        target=_read, args=(process.stdout, lines, on_line), daemon=True, name=f"output-of-{process.pid}"
    )
    reader.start()
    try:
        outcome = _wait(process, timeout)
        if outcome == "exited":
            _stop_leftovers(process, grace)
        else:
            _stop(process, grace)
    except BaseException:  # KeyboardInterrupt, or an error in here: the group must not outlive us
        _stop(process, grace)
        raise
    finally:
        _live_groups.discard(process.pid)
    reader.join(READER_JOIN_SECONDS)
    if reader.is_alive():
        logger.warning(
            f"the output of process group {process.pid} is still open after the group was stopped: a "
            "process it started left the group (setsid or a daemon) and was not stopped"
        )
    else:
        process.stdout.close()
    output = "".join(lines)
    if outcome == "interrupted":
        raise Interrupted(
            f"{_STOPPED} {_describe(argv)} was stopped (SIGTERM to its process group, SIGKILL to what "
            f"was left after {grace:g}s), exit code {process.returncode}; last output:\n{output}"
        )
    return Exit(process.returncode, output, outcome == "timeout")


_STOPPED = "the executor was told to stop (SIGTERM: the pod is being deleted, or its node shut down or preempted):"


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if the executor was told to stop; for waits that run no program."""
    if _stop_signal is not None:
        raise Interrupted(f"{_STOPPED} {signal.Signals(_stop_signal).name} received")


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """While inside, SIGTERM stops the running groups and makes the waits raise :class:`Interrupted`.

    Signal handlers belong to the main thread: elsewhere this does nothing (the process's own SIGTERM handling,
    if any, applies). The previous handler is restored on the way out.
    """
    global _stop_signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop_signal = None
    previous = signal.signal(signal.SIGTERM, _on_stop_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        _stop_signal = None


def _on_stop_signal(signum: int, frame: object) -> None:
    # Runs in the main thread between two bytecodes: only async-safe work (no logging, no locks, no waits).
    global _stop_signal
    _stop_signal = signum
    for group in list(_live_groups):
        _signal_group(group, signum)


def _wait(process: subprocess.Popen, timeout: float | None) -> str:
    """'exited', 'timeout' or 'interrupted', looking at the interruption flag every POLL_SECONDS. A leader that
    exits once the flag is set (often of the forwarded SIGTERM itself) counts as interrupted: its work may be cut."""
    end = None if timeout is None else time.monotonic() + timeout
    with _exit_waiter(process) as wait_for_exit:
        while True:
            if _stop_signal is not None:
                logger.warning(f"{signal.Signals(_stop_signal).name} received: stopping process group {process.pid}")
                return "interrupted"
            step = POLL_SECONDS if end is None else min(POLL_SECONDS, end - time.monotonic())
            if step <= 0:
                return "timeout"
            if wait_for_exit(step):
                return "exited" if _stop_signal is None else "interrupted"


@contextlib.contextmanager
def _exit_waiter(process: subprocess.Popen) -> Iterator[Callable[[float], bool]]:
    """A function that waits up to ``seconds`` for the leader to exit and says whether it did. On Linux it sleeps on
    the leader's pidfd (one wake-up per step, or at the exit). ``Popen.wait(timeout)`` polls instead, waking up
    about 70 times a second, each time taking a core from the command it waits for (a training rank using every
    core): bench/train_task.py."""
    try:
        descriptor = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # not Linux (>= 5.3), or the leader is already gone and reaped
        descriptor = -1

    def wait_for_exit(seconds: float) -> bool:
        if descriptor >= 0:
            select.select([descriptor], [], [], seconds)
            return process.poll() is not None
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    try:
        yield wait_for_exit
    finally:
        if descriptor >= 0:
            os.close(descriptor)


def _stop(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to the group, up to ``grace`` seconds for it to empty, then SIGKILL; the leader is reaped."""
    _signal_group(process.pid, signal.SIGTERM)
    if not _wait_until_empty(process, grace):
        _signal_group(process.pid, signal.SIGKILL)  # the group still exists, so its id was not reused
        process.wait()
        _wait_until_empty(process, 1.0)


def _stop_leftovers(process: subprocess.Popen, grace: float) -> None:
    """After the leader exited: stop whatever it left running in its group (``sleep 45 &``)."""
    if _wait_until_empty(process, 0):
        return
    logger.warning(
        f"{_describe(process.args)} exited with code {process.returncode} but left processes running in "
        f"its group: stopping them (SIGTERM, SIGKILL after {grace:g}s)"
    )
    _stop(process, grace)


def _wait_until_empty(process: subprocess.Popen, seconds: float) -> bool:
    """Whether the group is gone within ``seconds``; reaps the leader, and members that became our children
    (when the executor is PID 1 without an init, or a child subreaper)."""
    end = time.monotonic() + seconds
    while True:
        if process.poll() is not None:  # reap the leader first: waitpid(-group) must not steal its status
            _reap_group(process.pid)
            if not _group_exists(process.pid):
                return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)


def _reap_group(group: int) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-group, os.WNOHANG)[0]:
            pass


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal (it changed user): it still exists
        return True
    return True


def _signal_group(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _read(stream, lines: collections.deque, on_line: Callable[[str], None] | None) -> None:
    for line in stream:
        lines.append(line)
        if on_line is not None:
            on_line(line)


def _describe(argv: str | Sequence[str]) -> str:
    return repr(argv if isinstance(argv, str) else list(argv))


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when the thread that started it dies.

    It runs in the forked child before ``exec``: it only calls ``prctl`` (looked up beforehand) and ``getppid``,
    nothing that takes a lock another thread could have held at the fork.
    """
    if _PRCTL is None:
        return None
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl: the kernel will not tell us any more
            os._exit(1)

    return set_parent_death_signal
