"""Drop-in replacements for upstream's ``SQLite3Task`` and ``SQLAlchemyTask`` (same constructors).

Switch by changing one import: ``from flytekitplugins.prebuilt.sql import SQLite3Task, SQLite3Config``.
What changes is the semantics, all for the safer: inputs are bound parameters (never text), results
stream to parquet instead of one in-memory DataFrame, secrets are requested automatically and never
logged, and a task without ``output_schema_type`` returns ``rows_affected`` instead of nothing.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Type

from flytekit.models.security import Secret
from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.sql.config import RESULTS, SQLConfig
from flytekitplugins.prebuilt.sql.task import SQLTask


@dataclass
class SQLite3Config:
    """Upstream's ``flytekit.extras.sqlite3.task.SQLite3Config``: a database file by URI or path."""

    uri: str
    compressed: bool = False


class UpstreamOutputColumns:
    """Upstream's ``output_columns``: the column names the ``results`` type declares, or None."""

    @property
    def output_columns(self) -> Optional[List[str]]:
        results = self.python_interface.outputs.get(RESULTS)
        if results is None:  # output_schema_type=None (upstream raises KeyError here)
            return None
        if typing.get_origin(results) is typing.Annotated:  # Annotated[StructuredDataset, kwtypes(...)]
            declared = next((list(m) for m in results.__metadata__ if isinstance(m, dict)), [])
            return declared or None
        return list(results.column_names()) or None


class SQLite3Task(UpstreamOutputColumns, SQLTask):
    """Upstream's ``SQLite3Task`` signature; results always come back (``StructuredDataset`` by default)."""

    def __init__(
        self,
        name: str,
        query_template: str,
        inputs: Optional[Dict[str, Type]] = None,
        task_config: Optional[SQLite3Config] = None,
        output_schema_type: Optional[Type] = None,
        container_image: Optional[str] = None,
        **kwargs: Any,
    ):
        if task_config is None or not task_config.uri:
            raise ConfigError("task_config.uri", "a SQLite database file URI or path is required")
        super().__init__(
            name=name,
            query_template=query_template,
            config=SQLConfig(sqlite_file=task_config.uri, compressed=task_config.compressed),
            inputs=inputs,
            output_schema_type=output_schema_type or StructuredDataset,
            container_image=container_image,
            **kwargs,
        )


@dataclass
class SQLAlchemyConfig:
    """Upstream's ``flytekitplugins.sqlalchemy.SQLAlchemyConfig``.

    ``uri`` must not hold a password: put it in ``secret_connect_args={"password": Secret(...)}``.
    """

    uri: str
    connect_args: Optional[Dict[str, Any]] = None
    secret_connect_args: Optional[Dict[str, Secret]] = None


class SQLAlchemyTask(UpstreamOutputColumns, SQLTask):
    """Upstream's ``SQLAlchemyTask`` signature (``output_schema_type=None``: returns ``rows_affected``)."""

    def __init__(
        self,
        name: str,
        query_template: str,
        task_config: SQLAlchemyConfig,
        inputs: Optional[Dict[str, Type]] = None,
        output_schema_type: Optional[Type] = StructuredDataset,
        container_image: Optional[str] = None,
        **kwargs: Any,
    ):
        if not isinstance(task_config, SQLAlchemyConfig):
            raise ConfigError("task_config", f"expected SQLAlchemyConfig, got {type(task_config).__name__}")
        config = SQLConfig(
            url=task_config.uri,
            connect_args=dict(task_config.connect_args or {}),
            secret_connect_args=dict(task_config.secret_connect_args or {}),
        )
        super().__init__(
            name=name,
            query_template=query_template,
            config=config,
            inputs=inputs,
            output_schema_type=output_schema_type,
            container_image=container_image,
            **kwargs,
        )
