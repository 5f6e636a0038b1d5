"""Kubernetes resource quantities ("500m", "2Gi", "1.5", "1e3"), validated at definition time.

Flyte passes requests/limits to Kubernetes as quantity strings; a typo ("2GB", "1,5") would only fail
when the pod is created. Here it fails when the task is defined, naming the field.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from decimal import Decimal, DecimalException
from typing import Any

from flytekit import Resources
from flytekitplugins.prebuilt.kit.config import ConfigError

SUFFIXES: dict[str, int | Decimal] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
MAX_QUANTITY = 2**63 - 1  # Kubernetes keeps a quantity in an int64 (apimachinery resource.Quantity)
QUANTITY = re.compile(r"^(?P<number>[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)(?P<suffix>[a-zA-Z]{0,2})$")
RESOURCE_NAMES = {"cpu": "cpu", "memory": "mem", "gpu": "gpu", "ephemeral_storage": "ephemeral_storage"}
KUBERNETES_NAMES = {flytekit: ours for ours, flytekit in RESOURCE_NAMES.items()}  # flytekit's Resources.mem: memory


def parse_quantity(value: str | int | float, field: str) -> Decimal:
    """The quantity's value in base units (cores, bytes, devices); ConfigError naming ``field`` if malformed."""
    text = str(value).strip()
    match = QUANTITY.match(text)
    suffix = match.group("suffix") if match else None
    if not match or suffix not in SUFFIXES or ("e" in match.group("number").lower() and suffix):
        raise ConfigError(field, f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1.5Gi, 512Mi)")
    try:
        amount = Decimal(match.group("number")) * SUFFIXES[suffix]
    except DecimalException:  # 1e99999999 overflows the decimal context
        amount = None
    if amount is None or amount > MAX_QUANTITY:
        raise ConfigError(field, f"{value!r} is too large for a Kubernetes quantity (at most {MAX_QUANTITY})") from None
    return amount


def resources(spec: dict[str, str | int | float] | None, field: str) -> Resources | None:
    """flytekit Resources from {"cpu": "500m", "memory": "2Gi", "gpu": 1, "ephemeral_storage": "10Gi"}."""
    if not spec:
        return None
    values = {}
    for name, value in spec.items():
        if name not in RESOURCE_NAMES:
            raise ConfigError(f"{field}.{name}", f"unknown resource; use {', '.join(RESOURCE_NAMES)}")
        amount = parse_quantity(value, f"{field}.{name}")
        if amount <= 0:
            raise ConfigError(f"{field}.{name}", "must be positive")
        if name == "gpu" and amount != int(amount):
            raise ConfigError(f"{field}.{name}", "GPUs are whole devices")
        values[RESOURCE_NAMES[name]] = str(value)
    return Resources(**values)


def check_limits(requests: dict | None, limits: dict | None, field: str = "limits") -> None:
    """A limit below its request is refused by Kubernetes; say so now."""
    requests = requests or {}
    for name, limit in (limits or {}).items():
        if name in requests and parse_quantity(limit, f"{field}.{name}") < parse_quantity(
            requests[name], f"requests.{name}"
        ):
            raise ConfigError(f"{field}.{name}", f"{limit} is below the request {requests[name]}")


def requests_and_limits(requests: Any = None, limits: Any = None, resources: Any = None) -> tuple[dict, dict]:
    """``requests``/``limits`` as mappings in Kubernetes units ({"cpu": "500m", "memory": "2Gi"}), whichever way a
    task was given them, so that every task type takes what ``@task`` takes: flytekit ``Resources`` or a mapping,
    or ``resources=`` alone, where a ``(request, limit)`` pair sets both and a single value the request only
    (flytekit ``ResourceSpec.from_multiple_resource``)."""
    if resources is None:
        return _mapping(requests, "requests"), _mapping(limits, "limits")
    if requests is not None or limits is not None:
        raise ConfigError("resources", "give resources= or requests=/limits=, not both")
    requests, limits = {}, {}
    for name, value in _mapping(resources, "resources", pairs=True).items():
        if isinstance(value, (list, tuple)):
            if len(value) != 2:
                raise ConfigError(f"resources.{name}", f"expected a value or a (request, limit) pair, got {value!r}")
            requests[name], limits[name] = value
        else:
            requests[name] = value
    return requests, limits


def _mapping(given: Any, field: str, pairs: bool = False) -> dict:
    if given is None:
        return {}
    if isinstance(given, Resources):
        given = {KUBERNETES_NAMES[f.name]: getattr(given, f.name) for f in dataclasses.fields(given)}
        given = {name: value for name, value in given.items() if value is not None}
    elif not isinstance(given, Mapping):
        raise ConfigError(
            field, f"expected flytekit Resources or a mapping such as {{'cpu': '1', 'memory': '2Gi'}}, got {given!r}"
        )
    for name, value in given.items():
        if isinstance(value, (list, tuple)) and not pairs:
            raise ConfigError(f"{field}.{name}", "a (request, limit) pair belongs in resources=")
    return dict(given)
