"""The image's torch as the layer under a training bundle's environment: the bundle's requirements are installed on
top of it, and never replace it (no second torch, no second copy of what torch needs).

Why not simply a virtualenv with ``--system-site-packages``: uv, which installs the environments, does not count
system site packages as installed (astral-sh/uv#2101: "we won't take the system site packages into account in
subsequent commands"), so a requirement that depends on torch (``torchvision``, ``lightning``) would install a
second torch into the environment, and a requirement that conflicts with the image's torch would go unnoticed.

So the framework is presented to the installer as what it is, installed packages of known versions: for torch and
every package it needs (its ``Requires-Dist`` closure, as installed), a *stub wheel* carrying the installed
distribution's own metadata and no code; the torch stub also carries a ``.pth`` file that puts the framework's
site-packages folder on the environment's ``sys.path`` (after the environment's own packages, like system site
packages). The stubs are installed as direct references (``torch @ file:///...``) with the bundle's requirements,
in one resolution:

- a requirement that depends on torch is satisfied by the stub: nothing is downloaded, torch is imported from the
  framework's folder;
- a requirement that conflicts with the image's torch or a package it needs fails the resolution, and the error
  names both (:func:`explain`);
- ``pip list``, ``importlib.metadata.version("torch")`` and console scripts (``torchrun``) work as with a normal
  install.

Where the framework is: ``$PREBUILT_FRAMEWORK_SITE`` (the train image sets it), else the site-packages folder
torch is installed in for the executor's own interpreter (a development checkout).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from flytekitplugins.prebuilt.executors.script.locks import DependencySpec
from flytekitplugins.prebuilt.kit.errors import UserError
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

SITE_VARIABLE = "PREBUILT_FRAMEWORK_SITE"
TOPS = ("torch", "torchvision", "torchaudio")  # the framework's own distributions, those the image has
PTH_FILE = "prebuilt_framework.pth"
STUB_FORMAT = 1  # part of the layer's key: bump when stubs change
RESOLUTION_FAILED = re.compile(r"no solution found|unsatisfiable|resolutionimpossible|conflicting dependencies", re.I)


@dataclass(frozen=True)
class Framework:
    """The installed distributions the environments are built on: ``tops`` (torch, ...) and what they need."""

    site: Path
    distributions: tuple[metadata.Distribution, ...]  # tops first, then their closure
    tops: tuple[str, ...]

    @property
    def key(self) -> str:
        versions = sorted((canonicalize_name(d.metadata["Name"]), d.version) for d in self.distributions)
        payload = json.dumps([STUB_FORMAT, str(self.site), versions, list(self.tops)])
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def describe(self) -> str:
        """'torch 2.13.0+cpu (with filelock 3.20.0, ...)'."""
        names = [f"{d.metadata['Name']} {d.version}" for d in self.distributions]
        tops, rest = names[: len(self.tops)], names[len(self.tops) :]
        return ", ".join(tops) + (f" (with {', '.join(rest)})" if rest else "")

    def names(self) -> set[str]:
        return {canonicalize_name(d.metadata["Name"]) for d in self.distributions}


def find_framework() -> Framework:
    """The framework this executor's image provides; a RuntimeError (SYSTEM: the image is wrong) without torch.

    Only torch and what it requires are looked up, by name (reading every installed distribution's metadata
    would cost a large environment half a second at every start)."""
    site = os.environ.get(SITE_VARIABLE)
    path = [site] if site else sys.path
    torch = next(iter(metadata.distributions(name="torch", path=path)), None)
    if torch is None:
        where = f"${SITE_VARIABLE}={site}" if site else f"the executor's interpreter ({sys.executable})"
        raise RuntimeError(
            f"torch is not installed in {where}: the train task type runs in an image that provides it "
            "(images/train/Dockerfile); locally, install torch beside flytekitplugins-prebuilt"
        )
    root = Path(str(torch.locate_file(""))).resolve()
    # The environments see torch's folder only: what torch needs from elsewhere is installed there as usual.
    order = _closure(TOPS, lambda name: next(iter(metadata.distributions(name=name, path=[str(root)])), None))
    tops = tuple(name for name, _ in order if name in TOPS)
    return Framework(root, tuple(dist for _, dist in order), tops)


def _closure(
    tops: tuple[str, ...], find: Callable[[str], metadata.Distribution | None]
) -> list[tuple[str, metadata.Distribution]]:
    """``tops`` and every installed distribution they require (markers evaluated here, extras not followed), as
    ``find`` finds them by name; what it does not find is left out."""
    order: list[tuple[str, metadata.Distribution]] = []
    seen, pending = set(), list(tops)
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        dist = find(name)
        if dist is None:
            continue
        order.append((name, dist))
        for line in dist.requires or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(requirement.name))
    return order


def stub_requirements(framework: Framework, cache_dir: Path) -> list[str]:
    """Requirement lines installing the framework's stubs, built once per framework under ``cache_dir``."""
    folder = cache_dir / f"framework-{framework.key}"
    if not folder.is_dir():
        cache_dir.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.building-", dir=cache_dir))
        try:
            for index, dist in enumerate(framework.distributions):
                _write_stub(dist, building, pth=str(framework.site) if index == 0 else None)
            os.rename(building, folder)
        except OSError:
            if not folder.is_dir():  # another builder's rename won the race: theirs is the same
                raise
        finally:
            shutil.rmtree(building, ignore_errors=True)
    lines = []
    for dist in framework.distributions:
        wheel = folder / _wheel_name(dist)
        lines.append(f"{dist.metadata['Name']} @ file://{quote(str(wheel), safe='/+')}")
    return lines


def _escaped(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name)


def _wheel_name(dist: metadata.Distribution) -> str:
    return f"{_escaped(dist.metadata['Name'])}-{dist.version}-py3-none-any.whl"


def _write_stub(dist: metadata.Distribution, folder: Path, pth: str | None) -> None:
    """A wheel with ``dist``'s own metadata (requirements and entry points included) and no code."""
    info = f"{_escaped(dist.metadata['Name'])}-{dist.version}.dist-info"
    files = {
        f"{info}/METADATA": (dist.read_text("METADATA") or "").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: flytekitplugins-prebuilt\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    if pth:
        files[PTH_FILE] = (pth + "\n").encode()
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in files.items())
    with zipfile.ZipFile(folder / _wheel_name(dist), "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


class LayeredSpec(DependencySpec):
    """A bundle's dependency spec on top of the framework: its requirement lines, then the framework's stubs (built
    under ``cache_dir``). Both are made only when the environment is built, so a warm start reads no lock file and
    writes nothing (a read-only cache works). Its key covers both."""

    __slots__ = ("base", "framework", "cache_dir")
    base: DependencySpec
    framework: Framework
    cache_dir: Path

    def __init__(self, base: DependencySpec, framework: Framework, cache_dir: Path):
        key = hashlib.sha256(f"{base.key}/{framework.key}".encode()).hexdigest()[:24]
        super().__init__(base.kind, (), key, base.python_version, project_dir=base.project_dir)
        for name, value in (("base", base), ("framework", framework), ("cache_dir", Path(cache_dir))):
            object.__setattr__(self, name, value)

    @property
    def requirements(self) -> tuple[str, ...]:
        return (*self.base.requirements, *stub_requirements(self.framework, self.cache_dir))


def explain(error: UserError, framework: Framework) -> UserError:
    """A failed install that could not be resolved, said as a conflict with the framework when it involves it."""
    text = str(error)
    mentioned = {canonicalize_name(n) for n in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)}
    failed = RESOLUTION_FAILED.search(text)
    if not failed or not (mentioned & framework.names()):
        return error
    start = failed.start()
    reason = " ".join(text[text.rfind("\n", 0, start) + 1 :].split())  # the resolver wraps lines at its width
    return UserError(
        f"the bundle's requirements conflict with the framework this image provides, which they are installed on "
        f"top of and may not replace: {framework.describe()}.\n{reason}"
    )
