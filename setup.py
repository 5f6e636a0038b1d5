"""Finds the packages of both folders, so adding a task type needs no hand-kept list.

``pyproject.toml`` maps ``plugins/`` onto ``flytekitplugins.prebuilt`` and ``executors/`` onto
``flytekitplugins.prebuilt.executors`` (``package-dir``); setuptools' own ``packages.find`` would
name what it finds there ``sql``, ``kit``, ... without that prefix, so the names are built here.
"""

from setuptools import find_packages, setup

ROOTS = {"plugins": "flytekitplugins.prebuilt", "executors": "flytekitplugins.prebuilt.executors"}

setup(
    packages=[
        f"{name}.{found}" if found else name for folder, name in ROOTS.items() for found in ["", *find_packages(folder)]
    ]
)
