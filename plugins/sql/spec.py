"""The ``sql`` task type's contract, read by ``SQLTask`` and ``SQLExecutor`` alike, and its keys in a project file."""

from typing import Any

from flytekitplugins.prebuilt.kit.project_keys import ProjectEntry, ProjectKeys
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec
from flytekitplugins.prebuilt.sql.config import SQLConfig
from flytekitplugins.prebuilt.sql.query import ParsedQuery


def _task_keywords(entry: ProjectEntry) -> dict[str, Any]:
    """``SQLTask``'s query and output: a parquet dataset of the rows, unless ``outputs`` says rows_affected."""
    from flytekit.types.structured import StructuredDataset

    returns_rows = "rows_affected" not in (entry.values.get("outputs") or {})
    return {"query_template": entry.values["query"], "output_schema_type": StructuredDataset if returns_rows else None}


PROJECT_KEYS = ProjectKeys(
    keys={
        "query": {"type": "string", "description": "the query template (:name or {{ .inputs.name }} parameters)"},
        "outputs": {
            "description": "results (a parquet dataset, the default) or rows_affected (DDL/DML)",
            "anyOf": [
                {"type": "object", "properties": {"results": {"const": "dataset"}}, "additionalProperties": False},
                {"type": "object", "properties": {"rows_affected": {"const": "int"}}, "additionalProperties": False},
            ],
        },
    },
    keywords=_task_keywords,
    required=("query",),
    error_keys={"query_template": "query", "output_schema_type": "outputs"},
)

SPEC = TaskTypeSpec(
    name="sql",
    schema_version=1,  # major version of custom; bump on an incompatible change
    config=SQLConfig,
    extras=ParsedQuery,  # the query template parsed into statements with bound parameters
    executor="flytekitplugins.prebuilt.executors.sql.SQLExecutor",
    project=PROJECT_KEYS,
)
