"""The ``sql`` prebuilt task type: run SQL on any SQLAlchemy database with bound parameters, results
streamed to parquet. Importing it needs flytekit only; names load on first use (``kit.lazy``)."""

from flytekitplugins.prebuilt.kit.lazy import lazy_exports

# name -> the module that defines it; every lazy package has such a table (kit.lazy), hence the same shape
_WHERE = {
    "SQLAlchemyConfig": "compat",
    "SQLAlchemyTask": "compat",
    "SQLite3Config": "compat",
    "SQLite3Task": "compat",
    "SQLConfig": "config",
    "SQLTask": "task",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
