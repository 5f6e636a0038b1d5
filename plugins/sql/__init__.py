"""The ``sql`` prebuilt task type: run SQL on any SQLAlchemy database with bound parameters, results
streamed to parquet. Importing it needs flytekit only."""

from flytekitplugins.prebuilt.sql.compat import SQLAlchemyConfig, SQLAlchemyTask, SQLite3Config, SQLite3Task
from flytekitplugins.prebuilt.sql.config import SQLConfig
from flytekitplugins.prebuilt.sql.task import SQLTask

__all__ = ["SQLAlchemyConfig", "SQLAlchemyTask", "SQLConfig", "SQLTask", "SQLite3Config", "SQLite3Task"]
