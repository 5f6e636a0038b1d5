"""Failure classes an executor raises, so Flyte retries the right things.

Upstream's shim reports every executor exception as SYSTEM/RECOVERABLE (flytekit `bin/entrypoint.py`): a typo in
a query is retried as if the cluster had failed. ``PrebuiltExecutor`` reports these instead:

- ``UserError``: the task's configuration or inputs are wrong -> USER, NON_RECOVERABLE.
- ``TransientError``: something outside the task failed and may work next time (a database that
  refuses connections) -> USER, RECOVERABLE, so the task's ``retries`` apply.
- anything else: a bug in the executor -> SYSTEM, RECOVERABLE (flytekit's default).
"""

from flytekit.exceptions.user import FlyteRecoverableException


class UserError(Exception):
    """The task's configuration, inputs or user code are wrong; retrying will not help."""

    error_code = "USER:PrebuiltUserError"


class TransientError(FlyteRecoverableException):
    """A dependency outside the task failed; a retry may succeed."""

    error_code = "USER:Recoverable"

    def __str__(self) -> str:
        # FlyteException's str() is 'USER:Recoverable: error=<message>'; Flyte's error already carries the code
        return ",".join(map(str, self.args))
