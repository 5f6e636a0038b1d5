"""Templates run by one of Flyte's backend plugins (e.g. Kubeflow's PyTorchJob, task type ``pytorch``) instead of
the container plugin.

Such a plugin decodes the template's whole ``custom`` into its own protobuf message and ignores keys it does not
know (flyteplugins ``go/tasks/pluginmachinery/utils/marshal_utils.go``: jsonpb with ``AllowUnknownFields``). So
the plugin's fields stay at the top level and our contract travels beside them under ``NAMESPACE_KEY``, a key no
protobuf field can ever take (field names, and their JSON names, cannot contain ``-``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NAMESPACE_KEY = "flytekitplugins-prebuilt"


@dataclass(frozen=True)
class BackendPlugin:
    """Which Flyte plugin runs a template, and what it reads.

    task_type  the plugin's task type (e.g. ``pytorch``)
    version    the plugin's ``task_type_version``: the plugin refuses versions it does not know, so it is never
               our schema version (which stays in our header)
    custom     the plugin's own ``custom`` fields (e.g. ``workerReplicas``)
    """

    task_type: str
    version: int
    custom: dict[str, Any] = field(default_factory=dict)

    def wrap(self, ours: dict[str, Any]) -> dict[str, Any]:
        if NAMESPACE_KEY in self.custom:
            raise ValueError(f"the plugin's custom fields already hold {NAMESPACE_KEY!r}")
        return {**self.custom, NAMESPACE_KEY: ours}


def unwrap(custom: dict[str, Any] | None) -> dict[str, Any]:
    """Our part of a template's ``custom``: under ``NAMESPACE_KEY`` when a backend plugin runs it, else all of it."""
    custom = custom or {}
    inner = custom.get(NAMESPACE_KEY)
    return inner if isinstance(inner, dict) else custom
