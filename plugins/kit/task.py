"""Author side of a prebuilt task type: a ``PythonCustomizedContainerTask`` driven by a typed config."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
from typing import Any, ClassVar, Generic, Optional, Type, TypeVar

from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask, Task, TaskMetadata
from flytekit.core.cache import Cache
from flytekit.core.interface import Interface
from flytekit.core.python_customized_container_task import PythonCustomizedContainerTask
from flytekit.core.shim_task import ShimTaskExecutor
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.contract import header, identity
from flytekitplugins.prebuilt.kit.images import default_image

C = TypeVar("C", bound=PrebuiltConfig)


class PrebuiltTask(PythonCustomizedContainerTask[C], Generic[C]):
    """Base for prebuilt task types.

    A subclass sets ``TASK_TYPE`` and ``SCHEMA_VERSION`` and calls ``super().__init__`` with a validated
    config; ``custom_fields`` (a hook) adds what the config alone does not hold (e.g. a parsed query).
    What this adds over flytekit's base:

    - the config is validated here, at definition time, and serialized under a versioned header;
    - the image defaults to the one built for this package version (``container_image=`` overrides);
    - secrets the config references are requested from Flyte (``secret_requests``) automatically;
    - ``cache=True`` without a version uses the template's content identity as ``cache_version``;
    - ``retries``, ``timeout``, ``interruptible`` are taken as keywords, as ``@task`` takes them.
    """

    TASK_TYPE: ClassVar[str]  # short name: the custom header's type, the image name (prebuilt-<type>)
    SCHEMA_VERSION: ClassVar[int]

    def __init__(
        self,
        name: str,
        config: C,
        executor_type: Type[ShimTaskExecutor],
        inputs: Optional[dict[str, type]] = None,
        outputs: Optional[dict[str, type]] = None,
        container_image: Optional[str] = None,
        secret_requests: Optional[list[Secret]] = None,
        cache: bool | Cache = False,
        cache_version: str = "",
        retries: Optional[int] = None,
        timeout: Optional[datetime.timedelta | int] = None,
        interruptible: Optional[bool] = None,
        metadata: Optional[TaskMetadata] = None,
        **kwargs,
    ):
        unknown = sorted(set(kwargs) - _FLYTEKIT_KEYWORDS)
        if unknown:  # flytekit would swallow them silently (a mistyped `retries` would never retry)
            raise ConfigError(unknown[0], f"unknown keyword argument to {type(self).__name__}")
        if not isinstance(config, PrebuiltConfig):
            raise ConfigError("config", f"expected a {PrebuiltConfig.__name__}, got {type(config).__name__}")
        config.validate()
        image = container_image or default_image(self.TASK_TYPE)
        if not isinstance(image, str) or not image.strip():
            raise ConfigError("container_image", "expected an image name")
        self._config = config
        self._custom = {**header(self.TASK_TYPE, self.SCHEMA_VERSION), **config.to_custom(), **self.custom_fields()}
        self._identity = identity(self._custom, image)
        super().__init__(
            name=name,
            task_config=config,
            container_image=image,
            executor_type=executor_type,
            task_type=f"prebuilt-{self.TASK_TYPE}",  # Flyte's task type; falls back to the container plugin
            task_type_version=self.SCHEMA_VERSION,
            interface=Interface(inputs=inputs or {}, outputs=outputs or {}),
            secret_requests=_merge_secrets(config.secrets(), secret_requests or []),
            metadata=self._metadata(metadata, cache, cache_version, retries=retries, timeout=timeout, interruptible=interruptible),
            **kwargs,
        )

    def custom_fields(self) -> dict[str, Any]:
        """Extra ``custom`` entries derived at definition time (override in a task type)."""
        return {}

    @property
    def config(self) -> C:
        return self._config

    @property
    def identity(self) -> str:
        """Content address of this task's template (custom + image); see ``kit.contract.identity``."""
        return self._identity

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        return self._custom

    def _metadata(self, metadata: Optional[TaskMetadata], cache: bool | Cache, cache_version: str, **given):
        """TaskMetadata from ``metadata`` plus the @task-style keywords (retries, timeout, interruptible, cache)."""
        metadata = dataclasses.replace(metadata or TaskMetadata(), **{k: v for k, v in given.items() if v is not None})
        if isinstance(cache, Cache):
            cache_version = cache_version or cache.version or ""
            metadata = dataclasses.replace(
                metadata, cache_serialize=cache.serialize, cache_ignore_input_vars=tuple(cache.get_ignored_inputs())
            )
            cache = True
        if cache or metadata.cache:
            version = cache_version or metadata.cache_version or self._identity
            metadata = dataclasses.replace(metadata, cache=True, cache_version=version)
        return metadata


_FLYTEKIT_KEYWORDS = {
    name
    for cls in (PythonCustomizedContainerTask, PythonTask, Task)
    for name, p in inspect.signature(cls.__init__).parameters.items()
    if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
} - {"self", "tt", "executor_type", "task_type", "interface", "task_config", "name", "container_image"}


def _merge_secrets(*groups: list[Secret]) -> list[Secret]:
    merged: dict[tuple, Secret] = {}
    for secret in (s for group in groups for s in group):
        if not isinstance(secret, Secret):
            raise ConfigError("secret_requests", f"expected flytekit.Secret, got {type(secret).__name__}")
        merged.setdefault((secret.group, secret.key, secret.group_version), secret)
    return list(merged.values())
