"""The ``custom`` contract: a versioned header plus a content-addressed identity.

``custom = {"prebuilt": {"type": <task type>, "version": <schema major version>}, ...fields}``.
The identity of a template is a hash of what decides its outputs: its canonical ``custom``, its image, its
container's environment and the secrets it requests beyond those ``custom`` names. Two templates with the same
identity behave the same, so it is safe as a ``cache_version`` (a changed query, or a changed ``TZ`` or
``PGOPTIONS``, can never be served a stale cache, flyte#2899). Left out, as Flyte's own cache key leaves them out:
resources, accelerators and pod templates (where and how big the pod is, not what it computes), retries, timeouts
and other metadata. A pod template's environment or volumes are not read: when they change what runs, set
``cache_version``.

The environment and secret requests join the hashed content only when there are some, so a template without them
keeps the identity it had before they counted (``pb1``; the golden tests pin it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence

HEADER_KEY = "prebuilt"
IDENTITY_ALGORITHM = "pb1"  # bump when the canonical form below changes; golden tests pin it


def header(task_type: str, version: int) -> dict[str, Any]:
    return {HEADER_KEY: {"type": task_type, "version": version}}


def read_header(custom: dict[str, Any] | None) -> tuple[str, int]:
    """The (type, version) a template declares; ValueError when it declares none."""
    head = (custom or {}).get(HEADER_KEY)
    if not isinstance(head, dict) or "type" not in head or "version" not in head:
        raise ValueError(f"the template's custom field has no '{HEADER_KEY}' header: not a prebuilt task template")
    version = head["version"]
    # protobuf Structs carry every number as a float
    if not isinstance(version, (int, float)) or int(version) != version:
        raise ValueError(f"the template's schema version {version!r} is not an integer")
    return str(head["type"]), int(version)


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, integral floats written as ints (Struct round-trips)."""
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normalize(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    return value


def identity(
    custom: dict[str, Any],
    image: str,
    environment: Optional[dict[str, str]] = None,
    secret_requests: Sequence[dict[str, Any]] = (),
) -> str:
    """Content address of a template: everything that decides what it does (custom, image, the container's
    environment, requested secrets as their requests: group, key, version, mount; never a value)."""
    content: dict[str, Any] = {"custom": custom, "image": image}
    if environment:
        content["environment"] = dict(environment)
    if secret_requests:
        content["secret_requests"] = sorted(secret_requests, key=canonical_json)
    digest = hashlib.sha256(canonical_json(content).encode()).hexdigest()
    return f"{IDENTITY_ALGORITHM}-{digest[:32]}"
