"""``SQLTask``: a prebuilt task that runs SQL with bound parameters and streams results to parquet."""

from __future__ import annotations

import typing
from typing import Any, Optional

from flytekit.types.structured import StructuredDataset
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.task import PrebuiltTask, config_keywords
from flytekitplugins.prebuilt.sql.config import RESULTS, ROWS_AFFECTED, SQLConfig
from flytekitplugins.prebuilt.sql.query import parse_query
from flytekitplugins.prebuilt.sql.spec import SPEC


class SQLTask(PrebuiltTask[SQLConfig]):
    """Run SQL against any SQLAlchemy database from a prebuilt image.

    ``config`` is an ``SQLConfig``, or give its fields as keywords (``url=...``).
    ``query_template`` may use ``:name`` or upstream-style ``{{ .inputs.name }}`` placeholders (quoted or
    not); each becomes a bound parameter, never text. ``{{ .inputs.name | identifier }}`` puts a
    checked, quoted identifier in. Several ``;``-separated statements run in one transaction.

    With ``output_schema_type`` (default ``StructuredDataset``) the last statement's rows become the
    ``results`` output, a parquet StructuredDataset written in batches. With ``output_schema_type=None``
    the task returns ``rows_affected: int`` (DDL/DML).
    """

    SPEC = SPEC
    WRITES_DECK = True  # the result's schema, row count and first rows

    def __init__(
        self,
        name: str,
        query_template: str,
        config: Optional[SQLConfig] = None,
        inputs: Optional[dict[str, type]] = None,
        output_schema_type: Optional[type] = StructuredDataset,
        **kwargs,
    ):
        fields = config_keywords(SQLConfig, config, kwargs)
        config = config if config is not None else SQLConfig(**fields)
        inputs = dict(inputs or {})
        for input_name, python_type in inputs.items():
            if isinstance(python_type, tuple):  # kwtypes with defaults: (type, default)
                inputs[input_name] = python_type[0]
        self._query_template = query_template
        outputs = {ROWS_AFFECTED: int} if output_schema_type is None else {RESULTS: _check_output(output_schema_type)}
        query = parse_query(query_template, inputs)
        super().__init__(name=name, config=config, extras=query, inputs=inputs, outputs=outputs, **kwargs)

    @property
    def query_template(self) -> str:
        return self._query_template


def _check_output(output_type: Any) -> Any:
    from flytekit.types.schema import FlyteSchema

    base = output_type.__origin__ if typing.get_origin(output_type) is typing.Annotated else output_type
    if isinstance(base, type) and issubclass(base, (StructuredDataset, FlyteSchema)):
        return output_type
    raise ConfigError("output_schema_type", f"expected StructuredDataset (or FlyteSchema) or None, got {output_type!r}")
