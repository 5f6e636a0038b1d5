"""Author side of a prebuilt task type: a ``PythonCustomizedContainerTask`` driven by a typed config."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import inspect
from typing import Any, ClassVar, Generic, Literal, Optional, TypeVar, Union

from flyteidl.core import tasks_pb2
from flytekit.configuration import SerializationSettings
from flytekit.core.base_task import PythonTask, Task, TaskMetadata
from flytekit.core.cache import Cache
from flytekit.core.interface import Interface
from flytekit.core.pod_template import PodTemplate
from flytekit.core.python_customized_container_task import PythonCustomizedContainerTask
from flytekit.core.resources import construct_extended_resources
from flytekit.core.utils import _get_container_definition, _serialize_pod_spec
from flytekit.extras.accelerators import BaseAccelerator
from flytekit.image_spec.image_spec import ImageSpec
from flytekit.models import task as task_models
from flytekit.models.security import Secret
from flytekitplugins.prebuilt.kit import names, quantities
from flytekitplugins.prebuilt.kit.backend_plugin import BackendPlugin
from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.contract import identity
from flytekitplugins.prebuilt.kit.images import IMAGE_PYTHON, IMAGE_PYTHONS, default_image, registered_image
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec

C = TypeVar("C", bound=PrebuiltConfig)


class PrebuiltTask(PythonCustomizedContainerTask[C], Generic[C]):
    """Base for prebuilt task types.

    A subclass sets ``SPEC`` (its task type's ``TaskTypeSpec``) and calls ``super().__init__`` with its
    config and the extras it derived (e.g. a parsed query). What this adds over flytekit's base:

    - the task registers under the name it is given, as upstream's ``SQLite3Task`` (a name Flyte cannot carry is
      refused at definition; two tasks of one registration sharing a name when serialized: ``kit.names``);
    - config and extras are validated here, at definition time, and serialized under a versioned header;
    - the executor is the spec's (templates store its dotted path);
    - the image defaults to the one built for this package version (``python_version=`` picks its Python: 3.10,
      3.11, the default, or 3.12); a registration may map it to a mirror with
      flytekit's own image configuration (``pyflyte register --image prebuilt-<type>=...``, a config file's
      ``images``); ``container_image=`` (a name or an ``ImageSpec``) overrides it per task;
    - secrets the config references are requested from Flyte (``secret_requests``) automatically;
    - ``cache=True`` without a version uses the template's content identity (its custom, the image it will
      run, resolved at serialization, its environment and extra secret requests) as ``cache_version``;
    - ``@task``'s keywords: ``retries``, ``timeout``, ``interruptible``, ``cache=Cache(...)``, ``environment``,
      ``requests``/``limits``/``resources`` (flytekit ``Resources`` or a mapping in Kubernetes units),
      ``pod_template``, ``pod_template_name``, ``accelerator``, ``shared_memory``, ``enable_deck``.
    """

    SPEC: ClassVar[TaskTypeSpec]
    WRITES_DECK: ClassVar[bool] = False  # whether this type's executor writes a Deck (then on unless enable_deck=False)
    _metadata: TaskMetadata  # flytekit's (PythonTask.__init__); replaced when the cache version follows the image

    def __init__(
        self,
        name: str,
        config: C,
        extras: Optional[PrebuiltConfig] = None,
        inputs: Optional[dict[str, type]] = None,
        outputs: Optional[dict[str, type]] = None,
        container_image: Optional[Union[str, ImageSpec]] = None,
        secret_requests: Optional[list[Secret]] = None,
        cache: bool | Cache = False,
        cache_version: str = "",
        retries: Optional[int] = None,
        timeout: Optional[datetime.timedelta | int] = None,
        interruptible: Optional[bool] = None,
        metadata: Optional[TaskMetadata] = None,
        requests: Any = None,
        limits: Any = None,
        resources: Any = None,
        environment: Optional[dict[str, str]] = None,
        pod_template: Optional[PodTemplate] = None,
        pod_template_name: Optional[str] = None,
        accelerator: Optional[BaseAccelerator] = None,
        shared_memory: Optional[Union[Literal[True], str]] = None,
        enable_deck: Optional[bool] = None,
        python_version: Optional[str] = None,
        **kwargs,
    ):
        unknown = sorted(set(kwargs) - _FLYTEKIT_KEYWORDS)
        if unknown:  # flytekit would swallow them silently (a mistyped `retries` would never retry)
            raise ConfigError(unknown[0], f"unknown keyword argument to {type(self).__name__}")
        spec = self.SPEC
        names.check_name(name)
        self._image_given = _check_image(container_image)
        self._python = _check_python(python_version, container_image)
        self._default_image = default_image(spec.name, variant=self.image_variant(), python=self._python)
        plugin = self.backend_plugin(config)
        self._custom = spec.custom(config, spec.extras() if extras is None else extras)
        if plugin is not None:
            self._custom = plugin.wrap(self._custom)
        self._config, self._extras = config, extras
        environment = _check_environment(environment)
        secret_requests = _merge_secrets(config.secrets(), secret_requests or [])
        self._secrets_beyond_custom = _requests_beyond(secret_requests, config.secrets())
        self._identity = identity(self._custom, self._image_name(None), environment, self._secrets_beyond_custom)
        requests, limits = quantities.requests_and_limits(requests, limits, resources)
        quantities.check_limits(requests, limits)
        self.pod_template = _check_type(pod_template, PodTemplate, "pod_template")
        self.accelerator = _check_type(accelerator, BaseAccelerator, "accelerator")
        self.shared_memory = _check_shared_memory(shared_memory)
        deck = self._deck(enable_deck, kwargs.pop("disable_deck", None))
        super().__init__(
            name=name,
            task_config=config,
            container_image=container_image or self._default_image,
            executor_type=spec.executor_class(),
            # prebuilt-<name> is unknown to Flyte's plugins: its container plugin runs it
            task_type=plugin.task_type if plugin else spec.flyte_task_type,
            task_type_version=plugin.version if plugin else spec.schema_version,
            interface=Interface(inputs=inputs or {}, outputs=outputs or {}),
            secret_requests=secret_requests,
            requests=quantities.resources(requests, "requests"),
            limits=quantities.resources(limits, "limits"),
            environment=environment,
            enable_deck=deck,
            metadata=self._task_metadata(
                metadata,
                cache,
                cache_version,
                retries=retries,
                timeout=timeout,
                interruptible=interruptible,
                pod_template_name=_check_type(pod_template_name, str, "pod_template_name"),
                generates_deck=deck,
            ),
            **kwargs,
        )
        _check_cache_inputs(self._metadata, inputs or {})

    def image_variant(self) -> str:
        """Which build of the type's image runs this task ('' the default; the train type's 'cuda' for GPUs).
        Called before flytekit's initialisation."""
        return ""

    def backend_plugin(self, config: C) -> Optional[BackendPlugin]:
        """The Flyte backend plugin that runs this task, if not the container plugin (e.g. a multi-node training
        task is a Kubeflow PyTorchJob). Called before flytekit's initialisation: use ``config`` only."""
        return None

    @property
    def config(self) -> C:
        return self._config

    @property
    def identity(self) -> str:
        """Content address of this task's template (custom, image, environment, secret requests; see
        ``kit.contract.identity``): of the image and environment it names until it is serialized, then of those its
        last serialization resolved (a mirror, ``pyflyte register --env``)."""
        return self._identity

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        # every serialization asks for the custom: where two tasks of one registration sharing a name are refused
        names.claim(self.name, names.defined_in(self), settings)
        return copy.deepcopy(self._custom)  # a caller's changes must not reach later serializations

    def get_image(self, settings: SerializationSettings) -> str:
        """The image this registration runs, resolved as flytekit resolves images (``ImageConfig``). Identity and
        an automatic ``cache_version`` follow it: a mirror or another image is another cache.

        flytekit's serializers ask for the container (hence the image) before they read the metadata
        (``flytekit/tools/translator.py`` ``get_serializable_task``; ``serialize_to_model`` below)."""
        image = self._image_name(settings)
        environment = {**(settings.env or {}), **(self.environment or {})}  # the container's, as _container merges
        self._identity = identity(self._custom, image, environment, self._secrets_beyond_custom)
        if self._auto_cache_version:
            self._metadata = dataclasses.replace(self._metadata, cache_version=self._identity)
        return image

    def _image_name(self, settings: Optional[SerializationSettings]) -> str:
        given = self._image_given
        if given is None and getattr(self, "_container_image", None) not in (None, self._default_image):
            given = self._container_image  # set after definition, as upstream allows (`task._container_image = ...`)
        if given is None:  # ours: a registration may map prebuilt-<type> to a mirror of it
            return registered_image(
                self.SPEC.name,
                settings.image_config if settings else None,
                variant=self.image_variant(),
                python=self._python,
            )
        if isinstance(given, str) and settings is None:
            return given
        if settings is None or settings is PythonCustomizedContainerTask.SERIALIZE_SETTINGS:
            # defining a task or running it locally builds nothing: the name the spec builds to
            return given.image_name() if isinstance(given, ImageSpec) else given
        return super().get_image(settings)  # flytekit: {{.image.x}} placeholders, ImageSpecs built or looked up

    def serialize_to_model(self, settings: SerializationSettings) -> task_models.TaskTemplate:
        self.get_image(settings)  # the base reads the metadata first
        return super().serialize_to_model(settings)

    def get_container(self, settings: SerializationSettings) -> Optional[task_models.Container]:
        """As flytekit's ``PythonAutoContainerTask``: none when a pod template carries it (``get_k8s_pod``)."""
        return None if self.pod_template is not None else self.container_definition(settings)

    def container_definition(self, settings: SerializationSettings) -> task_models.Container:
        """The task's container (image, resources, command, environment), whether the template carries it as its
        container or in its pod spec (``get_k8s_pod``); a task that wraps this one (``map_task``) builds on it.

        flytekit's base crashes on ``environment`` when the settings have no env (``{**None}``): merged here."""
        return _get_container_definition(
            image=self.get_image(settings),
            resource_spec=self.resources,
            command=[],
            args=self.get_command(settings=settings),
            data_loading_config=None,
            environment={**(settings.env or {}), **(self.environment or {})},
        )

    def get_k8s_pod(self, settings: SerializationSettings) -> Optional[task_models.K8sPod]:
        if self.pod_template is None:
            return None
        return task_models.K8sPod(
            pod_spec=_serialize_pod_spec(self.pod_template, self.container_definition(settings), settings),
            metadata=task_models.K8sObjectMetadata(
                labels=self.pod_template.labels, annotations=self.pod_template.annotations
            ),
        )

    def get_config(self, settings: SerializationSettings) -> dict[str, str]:
        if self.pod_template is None:
            return {}
        return {"primary_container_name": self.pod_template.primary_container_name}  # as PythonAutoContainerTask

    def get_extended_resources(self, settings: SerializationSettings) -> Optional[tasks_pb2.ExtendedResources]:
        return construct_extended_resources(accelerator=self.accelerator, shared_memory=self.shared_memory)

    def _deck(self, enable_deck: Optional[bool], disable_deck: Optional[bool]) -> bool:
        """Whether the template says it generates a Deck (and the executor writes it): the type's default."""
        if enable_deck is not None and disable_deck is not None:
            raise ConfigError("enable_deck", "give enable_deck or disable_deck, not both")
        deck = (not disable_deck) if disable_deck is not None else enable_deck
        if deck is None:
            return self.WRITES_DECK
        if not isinstance(deck, bool):
            raise ConfigError("enable_deck", f"expected True or False, got {deck!r}")
        if deck and not self.WRITES_DECK:
            raise ConfigError("enable_deck", f"the {self.SPEC.name} task type writes no Deck")
        return deck

    def _task_metadata(self, metadata: Optional[TaskMetadata], cache: bool | Cache, cache_version: str, **given):
        """TaskMetadata from ``metadata`` plus the @task-style keywords (retries, timeout, interruptible, cache)."""
        metadata = dataclasses.replace(metadata or TaskMetadata(), **{k: v for k, v in given.items() if v is not None})
        self._auto_cache_version, options = False, {}
        if isinstance(cache, Cache):  # one replace: TaskMetadata refuses cache_serialize before cache is on
            cache_version = cache_version or cache.version or ""
            options = {"cache_serialize": cache.serialize, "cache_ignore_input_vars": tuple(cache.get_ignored_inputs())}
            cache = True
        if cache or metadata.cache:
            self._auto_cache_version = not (cache_version or metadata.cache_version)
            version = cache_version or metadata.cache_version or self._identity
            metadata = dataclasses.replace(metadata, cache=True, cache_version=version, **options)
        return metadata


_FLYTEKIT_KEYWORDS = {
    name
    for cls in (PythonCustomizedContainerTask, PythonTask, Task)
    for name, p in inspect.signature(cls.__init__).parameters.items()
    if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD
} - {"self", "tt", "executor_type", "task_type", "interface", "task_config", "name", "container_image"}


def _check_image(image: Any) -> Optional[Union[str, ImageSpec]]:
    if image is None or isinstance(image, ImageSpec) or (isinstance(image, str) and image.strip()):
        return image
    raise ConfigError("container_image", f"expected an image name or a flytekit ImageSpec, got {image!r}")


def _check_type(value: Any, expected: type, field: str) -> Any:
    if value is not None and not isinstance(value, expected):
        raise ConfigError(field, f"expected {expected.__name__}, got {type(value).__name__}")
    return value


def _check_environment(environment: Any) -> dict[str, str]:
    if environment is None:
        return {}
    if not isinstance(environment, dict):
        raise ConfigError("environment", f"expected a mapping of names to strings, got {type(environment).__name__}")
    for name, value in environment.items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise ConfigError(f"environment.{name}", f"names and values are strings, got {value!r}")
    return dict(environment)


def _check_shared_memory(shared_memory: Any) -> Optional[Union[Literal[True], str]]:
    """``True`` (as much as the memory) or a size, checked now rather than when the pod is created."""
    if shared_memory is None or shared_memory is True:
        return shared_memory
    if not isinstance(shared_memory, str) or quantities.parse_quantity(shared_memory, "shared_memory") <= 0:
        raise ConfigError("shared_memory", f"expected True or a size such as '2Gi', got {shared_memory!r}")
    return shared_memory


def _check_cache_inputs(metadata: TaskMetadata, inputs: dict[str, Any]) -> None:
    unknown = sorted(set(metadata.cache_ignore_input_vars) - set(inputs))
    if unknown:
        names = sorted(inputs) or "none"
        raise ConfigError("cache.ignored_inputs", f"{unknown[0]!r} names no input; inputs are {names}")


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


def _requests_beyond(requests: list[Secret], named_by_custom: list[Secret]) -> list[dict[str, Any]]:
    """The secret requests the custom does not already name, as plain data for the identity (requests, no values):
    another secret, or the same one mounted elsewhere, is another input to what runs."""
    named = {(s.group, s.key, s.group_version) for s in named_by_custom}
    return [
        {
            "group": s.group,
            "key": s.key,
            "group_version": s.group_version,
            "mount_requirement": s.mount_requirement.name,
            "env_var": s.env_var,
        }
        for s in requests
        if (s.group, s.key, s.group_version) not in named
    ]


def _check_python(version: Optional[str], container_image: Any) -> str:
    """The Python of our image to run in (AME's ``pythonVersion``): one the images are built for."""
    if version is None:
        return IMAGE_PYTHON
    if version not in IMAGE_PYTHONS:
        hint = " (write it as a string: 3.10 is the number 3.1)" if not isinstance(version, str) else ""
        raise ConfigError(
            "python_version", f"{version!r}: the images are built for Python {', '.join(IMAGE_PYTHONS)}{hint}"
        )
    if container_image is not None:
        raise ConfigError(
            "python_version", "picks one of our images; with container_image= the image's Python is its own"
        )
    return version
