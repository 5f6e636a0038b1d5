"""Finds the packages of both folders, so adding a task type needs no hand-kept list.

``pyproject.toml`` maps ``plugins/`` onto ``flytekitplugins.prebuilt`` and ``executors/`` onto
``flytekitplugins.prebuilt.executors`` (``package-dir``); setuptools' own ``packages.find`` would
name what it finds there ``sql``, ``kit``, ... without that prefix, so the names are built here.
Nothing else ships: ``build_tools/`` (building and releasing the images) works on a source checkout only.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOTS = {"plugins": "flytekitplugins.prebuilt", "executors": "flytekitplugins.prebuilt.executors"}
HERE = Path(__file__).resolve().parent


def packages(root: Path = HERE) -> list[str]:
    """The import names of every package the wheel ships."""
    return [
        f"{name}.{found}" if found else name
        for folder, name in ROOTS.items()
        for found in ["", *find_packages(str(root / folder))]
    ]


if __name__ == "__main__":  # as setuptools runs it (build_meta's run_setup); a test imports it to read packages()
    setup(packages=packages())
