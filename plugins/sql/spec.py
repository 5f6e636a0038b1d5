"""The ``sql`` task type's contract, read by ``SQLTask`` and ``SQLExecutor`` alike."""

from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec
from flytekitplugins.prebuilt.sql.config import SQLConfig
from flytekitplugins.prebuilt.sql.query import ParsedQuery

SPEC = TaskTypeSpec(
    name="sql",
    schema_version=1,  # major version of custom; bump on an incompatible change
    config=SQLConfig,
    extras=ParsedQuery,  # the query template parsed into statements with bound parameters
    executor="flytekitplugins.prebuilt.executors.sql.SQLExecutor",
)
