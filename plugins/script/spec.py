"""The ``script`` task type's contract, read by ``ScriptTask`` and ``ScriptExecutor`` alike, and its keys in a project
file (a task entry without ``type:`` is a script task)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from flytekitplugins.prebuilt.kit.config import OMIT_EMPTY, ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.project_keys import ProjectEntry, ProjectKeys, interface_schema
from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec
from flytekitplugins.prebuilt.script.config import ScriptConfig

SHA256 = re.compile(r"^[0-9a-f]{64}$")
# The location of a bundle that is uploaded when the task is serialized for registration (script/registration.py):
# what the task's identity hashes until then (the digest, not where a registration puts it). Never in a template.
AT_REGISTRATION = "prebuilt-at-registration:"


@dataclass(frozen=True)
class BundleRef(PrebuiltConfig):
    """Where the code bundle is: inline (base64 zip) or at a data-layer URI, and its digest."""

    FIELD_PREFIX = "custom.bundle"

    sha256: str = ""
    size: int = 0
    inline: str = field(default="", metadata=OMIT_EMPTY)
    uri: str = field(default="", metadata=OMIT_EMPTY)

    def validate(self) -> None:
        if not isinstance(self.sha256, str) or not SHA256.match(self.sha256):
            raise ConfigError(self.field_name("sha256"), f"expected a sha256 hex digest, got {self.sha256!r}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise ConfigError(self.field_name("size"), f"expected an integer >= 0, got {self.size!r}")
        if bool(self.inline) == bool(self.uri):
            raise ConfigError(self.field_name("inline"), "give exactly one of inline or uri")
        if self.inline:
            try:
                base64.b64decode(self.inline, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigError(self.field_name("inline"), "is not base64") from None

    @property
    def uploaded_at_registration(self) -> bool:
        """Whether the bundle's location is decided when the task is serialized (see ``AT_REGISTRATION``)."""
        return self.uri.startswith(AT_REGISTRATION)

    @property
    def data(self) -> bytes:
        """The inline bundle's bytes."""
        return base64.b64decode(self.inline)


@dataclass(frozen=True)
class ScriptExtras(PrebuiltConfig):
    """What the task derives at definition time: the packed code bundle."""

    FIELD_PREFIX = "custom"

    bundle: BundleRef = field(default_factory=BundleRef)


def _task_keywords(entry: ProjectEntry) -> dict[str, Any]:
    """``ScriptTask``'s code folder (relative to the file that names it), outputs (the declared ones after those
    AME's shorthands declare), bundle options."""
    options = {key: entry.values[key] for key in ("ignore", "bundle_store") if key in entry.values}
    return {"source": entry.path("source"), "outputs": entry.interface("outputs", entry.shorthand_outputs), **options}


PROJECT_KEYS = ProjectKeys(
    keys={
        "source": {"type": "string", "default": ".", "description": "the code folder, relative to this file"},
        "outputs": interface_schema("output name -> type"),
        "ignore": {"type": "array", "items": {"type": "string"}, "description": "more .gitignore patterns"},
        "bundle_store": {"type": "string", "description": "where large bundles are uploaded (a data-layer URI)"},
    },
    keywords=_task_keywords,
)

SPEC = TaskTypeSpec(
    name="script",
    schema_version=1,  # major version of custom; bump on an incompatible change
    config=ScriptConfig,
    extras=ScriptExtras,
    executor="flytekitplugins.prebuilt.executors.script.ScriptExecutor",
    project=PROJECT_KEYS,
    project_default=True,  # a project file's task entry without type: runs a script
)
