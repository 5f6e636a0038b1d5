"""``ScriptTask``: run a user's code bundle in a prebuilt environment image, no image to build."""

from __future__ import annotations

import base64
import re
from typing import Any, Optional, Sequence

from flytekit.configuration import SerializationSettings
from flytekit.core.python_customized_container_task import PythonCustomizedContainerTask
from flytekit.types.directory import FlyteDirectory
from flytekitplugins.prebuilt.kit.backend_plugin import unwrap
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.placeholders import INPUT_PLACEHOLDER
from flytekitplugins.prebuilt.kit.quantities import requests_and_limits
from flytekitplugins.prebuilt.kit.task import PrebuiltTask, config_keywords
from flytekitplugins.prebuilt.script import bundle, packing, registration, value_types, versions
from flytekitplugins.prebuilt.script.config import DEPENDENCY_FILES, ScriptConfig, ScriptPreset, input_variable
from flytekitplugins.prebuilt.script.registration import INLINE_LIMIT
from flytekitplugins.prebuilt.script.spec import AT_REGISTRATION, SPEC, BundleRef, ScriptExtras


class ScriptTask(PrebuiltTask[ScriptConfig]):
    """Run ``command`` on the code in ``source`` (a folder or one script), with its dependencies.

    At definition time the source is packed into a deterministic zip (same files, same digest;
    ``.gitignore``/``.prebuiltignore`` and the usual caches excluded) whose sha256 is part of the
    task's identity. Bundles of a few KiB (``INLINE_LIMIT``) travel inside the template, which must stay small
    (a workflow's templates travel in one etcd object). A larger one is uploaded when the task is serialized:
    to ``bundle_store`` (any Flyte data-layer URI; ``$PREBUILT_BUNDLE_STORE`` when the task names none) as
    ``<store>/<task name>/<sha256>.zip``, where ``flyte-prebuilt bundle list|download|derive`` work on its
    versions; without a store, where ``pyflyte register`` uploads the project's code (``registration``).
    A local run needs no upload: its template carries the bundle.

    The configuration is ``config=ScriptConfig(...)``, or ``command`` with the other ``ScriptConfig`` fields as
    keywords (``deadline_seconds=60``), on top of an optional ``preset``.

    Outputs: FlyteFile/FlyteDirectory/StructuredDataset outputs come from ``config.artifacts`` (or
    ``changed_files_output``); every other output is read from the JSON file the command writes at
    ``$PREBUILT_OUTPUTS_FILE``. The types each side takes: ``value_types``.
    """

    SPEC = SPEC

    def __init__(
        self,
        name: str,
        source: str,
        command: Optional[Sequence[str]] = None,
        inputs: Optional[dict[str, type]] = None,
        outputs: Optional[dict[str, type]] = None,
        config: Optional[ScriptConfig] = None,
        preset: Optional[ScriptPreset] = None,
        requests: Any = None,
        limits: Any = None,
        bundle_store: str = "",
        ignore: Sequence[str] = (),
        **kwargs,
    ):
        fields = config_keywords(ScriptConfig, config, kwargs)
        if config is not None and (command is not None or preset is not None):
            raise ConfigError("config", "give either config, or command (with an optional preset)")
        if config is None:
            if command is not None:
                fields["command"] = tuple(command) if isinstance(command, (list, tuple)) else command
            config = (preset or ScriptPreset()).config(**fields)
        if not isinstance(config, ScriptConfig):
            raise ConfigError("config", f"expected a ScriptConfig, got {type(config).__name__}")
        config.check()  # types first: the checks below read the fields
        inputs, outputs = dict(inputs or {}), dict(outputs or {})
        _check_interface(config, inputs, outputs)
        # flytekit Resources or mappings in Kubernetes units, over the preset's (PrebuiltTask checks them)
        requests, limits = requests_and_limits(requests, limits, kwargs.pop("resources", None))
        requests = {**((preset.requests if preset else None) or {}), **requests}
        limits = {**((preset.limits if preset else None) or {}), **limits}
        self._bundle = packing.pack(source, extra_ignores=tuple(ignore))
        _check_bundle(config, self._bundle)
        if not isinstance(bundle_store, str):
            raise ConfigError("bundle_store", f"expected a data-layer URI, got {bundle_store!r}")
        self._bundle_store, self._task_name = bundle_store.rstrip("/"), name
        self._uploaded = False
        super().__init__(
            name=name,
            config=config,
            extras=ScriptExtras(self._bundle_ref()),
            inputs=inputs,
            outputs=outputs,
            requests=requests,
            limits=limits,
            **kwargs,
        )

    @property
    def bundle(self) -> bundle.Bundle:
        return self._bundle

    @property
    def bundle_uri(self) -> str:
        return (
            versions.version_uri(self._bundle_store, self._task_name, self._bundle.sha256) if self._bundle_store else ""
        )

    def _bundle_ref(self, inline: bool = False, uri: str = "") -> BundleRef:
        """Where the template says the bundle is: the store's URI, inline when small (or ``inline``), ``uri``, or,
        until a serialization decides it, ``AT_REGISTRATION`` and the digest (what the identity hashes)."""
        packed = self._bundle
        if uri or self._bundle_store:
            where = {"uri": uri or self.bundle_uri}
        elif inline or len(packed.data) <= INLINE_LIMIT:
            where = {"inline": base64.b64encode(packed.data).decode()}
        else:
            where = {"uri": f"{AT_REGISTRATION}{packed.sha256}"}
        return BundleRef(sha256=packed.sha256, size=len(packed.data), **where)

    def get_custom(self, settings: SerializationSettings) -> dict[str, Any]:
        custom = super().get_custom(settings)
        if self._bundle_store and settings is not PythonCustomizedContainerTask.SERIALIZE_SETTINGS:
            registration.check_reachable(self._bundle_store, "bundle_store")
        if self._bundle_store:
            if not self._uploaded:  # content-addressed: pushing twice changes nothing
                versions.push(self._bundle, self._bundle_store, self._task_name)
                self._uploaded = True
            return custom
        if not self._bundle_ref().uploaded_at_registration:
            return custom  # inline
        if settings is PythonCustomizedContainerTask.SERIALIZE_SETTINGS:
            ref = self._bundle_ref(inline=True)  # a local run: the template never leaves this process
        elif registration.default_store():
            store = registration.default_store()
            registration.check_reachable(store, f"${registration.STORE_VARIABLE}")
            ref = self._bundle_ref(uri=versions.push(self._bundle, store, self._task_name))
        elif registration.can_upload():
            ref = self._bundle_ref(uri=registration.upload(self._bundle))
        else:
            raise registration.nowhere_to_upload(self._task_name, len(self._bundle.data))
        unwrap(custom).update(ScriptExtras(ref).to_custom())
        return custom


def _check_interface(config: ScriptConfig, inputs: dict[str, type], outputs: dict[str, type]) -> None:
    """The command's placeholders name inputs, each input has an environment variable of its own and a type that
    can reach a process, and every output is one the executor can produce (a file the command writes, or a value of
    the JSON outputs file)."""
    _check_placeholders(config, inputs)
    variables: dict[str, str] = {}
    for name in inputs:
        other = variables.setdefault(input_variable(name), name)
        if other != name:
            raise ConfigError(f"inputs.{name}", f"and inputs.{other} are both passed as ${input_variable(name)}")
    for name, python_type in inputs.items():
        value_types.check_input(name, python_type)
    _check_outputs(config, outputs)


def _check_placeholders(config: ScriptConfig, inputs: dict[str, type]) -> None:
    """Each ``{{.inputs.x}}`` of the command names an input, has no filter, and is not pasted into a shell string."""
    for element in config.command:
        for match in INPUT_PLACEHOLDER.finditer(element):
            name = match.group(1)
            if match.group(2):
                raise ConfigError("config.command", f"{match.group(0)}: filters apply to sql queries only")
            if config.shell:  # a value pasted into a shell string would be shell syntax: `x; rm -rf ~`
                raise ConfigError(
                    "config.command",
                    f"{match.group(0)} in a shell command: input values never become shell syntax; write "
                    f'"${input_variable(name)}" (double-quoted) instead',
                )
            if name not in inputs:
                raise ConfigError(
                    "config.command", f"{{{{.inputs.{name}}}}} names no input; inputs are {sorted(inputs) or 'none'}"
                )


def _check_outputs(config: ScriptConfig, outputs: dict[str, type]) -> None:
    """Artifacts name outputs of file, folder or dataset types; the other outputs are read from JSON."""
    files = {*config.artifacts, *([config.changed_files_output] if config.changed_files_output else [])}
    for name in files:
        if name not in outputs:
            raise ConfigError(f"config.artifacts.{name}", f"names no output; outputs are {sorted(outputs) or 'none'}")
    changed = config.changed_files_output
    if changed and not value_types.is_subclass(outputs[changed], FlyteDirectory):
        raise ConfigError("config.changed_files_output", "must name a FlyteDirectory output")
    for name, python_type in outputs.items():
        value_types.check_output(name, python_type, is_artifact=name in files)


INTERPRETERS = re.compile(r"^(python(\d(\.\d+)?)?|bash|sh)$")


def _check_bundle(config: ScriptConfig, packed: bundle.Bundle) -> None:
    """The files the configuration names are in the bundle: the entry point, and the lock file of an explicit kind."""
    if config.dependencies in DEPENDENCY_FILES and not packed.has_file(DEPENDENCY_FILES[config.dependencies]):
        raise ConfigError(
            "config.dependencies",
            f"{config.dependencies!r} needs {DEPENDENCY_FILES[config.dependencies]} in the source",
        )
    if config.shell:
        return
    argv = config.command
    script = argv[1] if INTERPRETERS.match(argv[0]) and len(argv) > 1 and not argv[1].startswith("-") else argv[0]
    is_path = script is not argv[0] or script.startswith("./") or "/" in script and not script.startswith("/")
    if is_path and not INPUT_PLACEHOLDER.search(script) and not packed.has_file(script.removeprefix("./")):
        raise ConfigError("config.command", f"{script!r} is not in the bundle (files: {', '.join(packed.files[:10])})")
