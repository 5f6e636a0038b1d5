"""Author side of a prebuilt task type: a ``PythonCustomizedContainerTask`` driven by a typed config."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import inspect
from typing import Any, ClassVar, Generic, Optional, TypeVar

from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask, Task, TaskMetadata
from flytekit.core.cache import Cache
from flytekit.core.interface import Interface
from flytekit.core.python_customized_container_task import PythonCustomizedContainerTask
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit.backend_plugin import BackendPlugin
from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.contract import identity
from flytekitplugins.prebuilt.kit.images import default_image
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec

C = TypeVar("C", bound=PrebuiltConfig)


class PrebuiltTask(PythonCustomizedContainerTask[C], Generic[C]):
    """Base for prebuilt task types.

    A subclass sets ``SPEC`` (its task type's ``TaskTypeSpec``) and calls ``super().__init__`` with its
    config and the extras it derived (e.g. a parsed query). What this adds over flytekit's base:

    - config and extras are validated here, at definition time, and serialized under a versioned header;
    - the executor is the spec's (templates store its dotted path);
    - the image defaults to the one built for this package version (``container_image=`` overrides);
    - secrets the config references are requested from Flyte (``secret_requests``) automatically;
    - ``cache=True`` without a version uses the template's content identity as ``cache_version``;
    - ``retries``, ``timeout``, ``interruptible`` are taken as keywords, as ``@task`` takes them.
    """

    SPEC: ClassVar[TaskTypeSpec]

    def __init__(
        self,
        name: str,
        config: C,
        extras: Optional[PrebuiltConfig] = None,
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
        spec = self.SPEC
        image = container_image or default_image(spec.name)
        if not isinstance(image, str) or not image.strip():
            raise ConfigError("container_image", "expected an image name")
        plugin = self.backend_plugin(config)
        self._custom = spec.custom(config, spec.extras() if extras is None else extras)
        if plugin is not None:
            self._custom = plugin.wrap(self._custom)
        self._config, self._extras = config, extras
        self._identity = identity(self._custom, image)
        super().__init__(
            name=name,
            task_config=config,
            container_image=image,
            executor_type=spec.executor_class(),
            # prebuilt-<name> is unknown to Flyte's plugins: its container plugin runs it
            task_type=plugin.task_type if plugin else spec.flyte_task_type,
            task_type_version=plugin.version if plugin else spec.schema_version,
            interface=Interface(inputs=inputs or {}, outputs=outputs or {}),
            secret_requests=_merge_secrets(config.secrets(), secret_requests or []),
            metadata=self._metadata(
                metadata, cache, cache_version, retries=retries, timeout=timeout, interruptible=interruptible
            ),
            **kwargs,
        )

    def backend_plugin(self, config: C) -> Optional[BackendPlugin]:
        """The Flyte backend plugin that runs this task, if not the container plugin (e.g. a multi-node training
        task is a Kubeflow PyTorchJob). Called before flytekit's initialisation: use ``config`` only."""
        return None

    @property
    def config(self) -> C:
        return self._config

    @property
    def identity(self) -> str:
        """Content address of this task's template (custom + image); see ``kit.contract.identity``."""
        return self._identity

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        return copy.deepcopy(self._custom)  # a caller's changes must not reach later serializations

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


def config_keywords(config_class: type[PrebuiltConfig], config: Optional[PrebuiltConfig], kwargs: dict) -> dict:
    """Pop from ``kwargs`` the keywords naming fields of ``config_class``: a task takes ``config=`` or the config's
    fields as keywords (``SQLTask(..., url=...)``, ``ScriptTask(..., deadline_seconds=3)``), not both."""
    names = {f.name for f in dataclasses.fields(config_class)}
    fields = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
    if config is not None and fields:
        raise ConfigError("config", f"give config= or its fields as keywords ({', '.join(fields)}), not both")
    if config is not None and not isinstance(config, config_class):
        raise ConfigError("config", f"expected a {config_class.__name__}, got {type(config).__name__}")
    return fields


def _merge_secrets(*groups: list[Secret]) -> list[Secret]:
    merged: dict[tuple, Secret] = {}
    for secret in (s for group in groups for s in group):
        if not isinstance(secret, Secret):
            raise ConfigError("secret_requests", f"expected flytekit.Secret, got {type(secret).__name__}")
        merged.setdefault((secret.group, secret.key, secret.group_version), secret)
    return list(merged.values())
