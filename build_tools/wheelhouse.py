"""A wheelhouse: every wheel the images install, downloaded once, so that images build without a package index
(``make images-offline``, ``flyte-prebuilt images build --wheelhouse DIR --fill-wheelhouse``)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Callable

from flytekitplugins.prebuilt.kit import images

from build_tools.checkout import ROOT, ImageError, extra_wheel_requirements, runtime_requirements


def fill_wheelhouse(
    task_types_: list[str], directory: str, say: Callable[[str], None] = print, root: Path = ROOT
) -> None:
    """Download the wheels of every image's requirements (plus uv, and its extra wheels) into ``directory``, for
    offline builds."""
    wanted = {r for t in task_types_ for r in [*runtime_requirements(t, root), *extra_wheel_requirements(t, root=root)]}
    requirements = sorted(wanted | {f"uv=={version('uv')}"})
    stamp = Path(directory) / "requirements.txt"
    if stamp.is_file() and stamp.read_text().split() == requirements:
        say(f"wheelhouse {directory} is up to date")
        return
    say(f"downloading {len(requirements)} requirements and their dependencies into {directory}")
    platforms = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64"]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", images.IMAGE_PYTHON]
        + [*platforms, "-d", directory, *requirements],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ImageError(f"filling the wheelhouse failed:\n{done.stderr[-2000:]}")
    stamp.write_text("\n".join(requirements) + "\n")
