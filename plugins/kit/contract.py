"""The ``custom`` contract: a versioned header plus a content-addressed identity.

``custom = {"prebuilt": {"type": <task type>, "version": <schema major version>}, ...fields}``.
The identity of a template is a hash of its canonical ``custom`` and its image: two templates with
the same identity behave the same, so it is safe as a ``cache_version`` (a changed query can never be
served a stale cache, flyte#2899).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

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


def identity(custom: dict[str, Any], image: str) -> str:
    """Content address of a template: everything that decides what it does (custom + image)."""
    digest = hashlib.sha256(canonical_json({"custom": custom, "image": image}).encode()).hexdigest()
    return f"{IDENTITY_ALGORITHM}-{digest[:32]}"
