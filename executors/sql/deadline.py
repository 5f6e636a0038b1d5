"""The task's ``timeout``, enforced on the database: at the deadline the running statement is cancelled.

Flyte stops a pod that outlives its task's timeout, but the database keeps running the query it was sent (a
PostgreSQL backend works on for a client that is gone), and the emulator and ``pyflyte-execute`` stop nothing. So
the executor reads the timeout from the template (``TaskTemplate.metadata.timeout``) and, when it passes, cancels
the statement through the driver, from a timer thread: ``sqlite3.Connection.interrupt()``, psycopg2's
``connection.cancel()``, ADBC's ``AdbcConnection.cancel()``. The failure it causes is reported as
``USER:Timeout``, not as the driver's error.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
import time
from typing import Callable, Iterator, Optional

from flytekit.loggers import logger
from flytekitplugins.prebuilt.kit.errors import UserError


class QueryTimedOut(UserError):
    """The task's timeout passed while its SQL ran: a slower query than the timeout allows is the task's to fix."""

    error_code = "USER:Timeout"


class Deadline:
    def __init__(self, timeout: Optional[datetime.timedelta]):
        self.timeout = timeout if timeout and timeout.total_seconds() > 0 else None
        self.at = time.monotonic() + self.timeout.total_seconds() if self.timeout else None
        self.passed = False

    @contextlib.contextmanager
    def cancelling(self, cancel: Optional[Callable[[], None]]) -> Iterator[None]:
        """While the block runs, call ``cancel`` at the deadline (``None``: the driver cannot cancel)."""
        if self.at is None or cancel is None:
            yield
            return
        timer = threading.Timer(max(self.at - time.monotonic(), 0.0), self._cancel, (cancel,))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def check(self) -> None:
        """Raise ``QueryTimedOut`` if the deadline passed (between batches, where no statement runs)."""
        if self.passed or (self.at is not None and time.monotonic() >= self.at):
            self.passed = True
            raise self.error()

    def error(self) -> QueryTimedOut:
        return QueryTimedOut(f"the query ran longer than the task's timeout ({self.timeout}) and was cancelled")

    def _cancel(self, cancel: Callable[[], None]) -> None:
        self.passed = True
        logger.info(f"sql: the task's timeout ({self.timeout}) passed: cancelling the statement")
        try:
            cancel()
        except Exception as error:  # the statement may have just ended
            logger.warning(f"sql: cancelling the statement failed: {type(error).__name__}: {error}")


def canceller(connection) -> Optional[Callable[[], None]]:
    """How to cancel what ``connection`` (an ADBC connection or a SQLAlchemy one) runs, from another thread."""
    cancel = getattr(connection, "cancel", None)  # adbc_driver_manager.AdbcConnection
    if cancel is not None and not hasattr(connection, "dialect"):
        return cancel
    driver = connection.connection.driver_connection
    for name in ("interrupt", "cancel"):  # sqlite3, psycopg2
        if callable(getattr(driver, name, None)):
            return getattr(driver, name)
    return None
