"""What decides an image's content, hashed: a build is skipped while the hash of its sources is the one the image
carries (its ``prebuilt.source-hash`` label).

An image runs its own task type and the kit, so it is hashed from those only: a change to another type, the
emulator or the CLI does not rebuild it. Its sources are

- the kit: ``plugins/kit`` (task and executor bases, contract, config), ``plugins/map`` (the runtime of a mapped
  element, which runs in every type's image), the two packages' ``__init__.py``, ``images/base.Dockerfile`` and the
  packaging files (pyproject.toml, setup.py);
- its type's folders: ``plugins/<type>``, ``executors/<type>``, ``images/<type>``;
- the code folders (``plugins/<t>``, ``executors/<t>``) of each type it builds on, as its spec declares
  (``TaskTypeSpec.builds_on``: the train type's executor extends the script type's);
- its variant and its pinned requirements.

The image lock file is left out: a release writes it after building, and the images it names must not change with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flytekitplugins.prebuilt.kit.spec import task_types

from build_tools.checkout import ROOT, lock_file, runtime_requirements, source_tree

KIT = (
    "plugins/__init__.py",
    "plugins/kit",
    "plugins/map",
    "executors/__init__.py",
    "images/base.Dockerfile",
    "images/install.sh",
    "pyproject.toml",
    "setup.py",
)


def source_hash(task_type: str, variant: str = "", root: Path = ROOT) -> str:
    """The hash of ``task_type``'s image sources in the checkout ``root`` (16 hex digits)."""
    root = source_tree(root)
    digest = hashlib.sha256("\n".join([variant, *runtime_requirements(task_type, root)]).encode())
    for path in image_sources(task_type, root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def image_sources(task_type: str, root: Path = ROOT) -> list[Path]:
    """The files of the checkout that ``task_type``'s image is built from, sorted."""
    folders = [*KIT, f"plugins/{task_type}", f"executors/{task_type}", f"images/{task_type}"]
    for base in built_on(task_type):
        folders += [f"plugins/{base}", f"executors/{base}"]
    lock = lock_file(root)
    found = set()
    for folder in map(root.joinpath, folders):
        files = [folder] if folder.is_file() else folder.rglob("*")
        found.update(p for p in files if p.is_file() and _is_source(p.relative_to(root)) and p != lock)
    return sorted(found)


def built_on(task_type: str) -> list[str]:
    """The task types ``task_type`` builds on, directly or through another (``TaskTypeSpec.builds_on``)."""
    specs = task_types()
    found: list[str] = []
    pending = list(specs[task_type].builds_on) if task_type in specs else []
    while pending:
        name = pending.pop(0)
        if name not in found:
            found.append(name)
            pending += specs[name].builds_on
    return found


def _is_source(relative: Path) -> bool:
    """Not a build output: the image's generated ``context/``, bytecode."""
    return "context" not in relative.parts and "__pycache__" not in relative.parts and relative.suffix != ".pyc"
