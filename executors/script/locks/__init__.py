"""Lock files of a user's code bundle: the key of the environment they decide, and the lines that install it.

A bundle declares its dependencies the way Python projects do: ``requirements.txt``, ``poetry.lock`` with its
``pyproject.toml``, or ``Pipfile.lock``. Two steps, so that a warm start runs no tool:

- :func:`detect` (every run) reads bytes only. The environment's ``key`` hashes the files the format's tool reads,
  the content of the local packages they name, the Python ``X.Y`` and the machine. No subprocess, no heavy import.
- :func:`requirements_for_install` (only when an environment is built) lets each format's own tool derive the
  pins: ``poetry export`` (poetry-plugin-export) for ``poetry.lock``, ``pipenv requirements`` for
  ``Pipfile.lock``; a requirements file is its own list of pins, its lines checked with ``packaging``.

Our rules, the same for every format, are applied to what the tools give: a local package (a path, a ``file:``
URL) must lie inside the bundle and is installed as a regular copy, since a cached environment outlives the bundle
it was built from; its content is in the key, its location is not (a bundle unpacks into a new temporary directory
every run). ``-e`` lines written by the user are refused; a package a lock marks editable (Poetry's ``develop =
true``, Pipfile's ``editable``) is installed as a copy. Which tool reads which format: docs/script/dependencies.md.

One module per job: ``spec`` (``DependencySpec``, what to install), ``detection`` (kind and key), ``export`` (the
tools that derive the pins), ``requirements_file`` (pip's format and our rules), ``files`` (bytes and digests).
This package is their public face: import from it.
"""

from flytekitplugins.prebuilt.executors.script.locks.detection import detect
from flytekitplugins.prebuilt.executors.script.locks.export import EXPORT_TIMEOUT_SECONDS, OUTPUT_TAIL_LINES
from flytekitplugins.prebuilt.executors.script.locks.spec import (
    FILES,
    KINDS,
    MARKER,
    REQUIREMENTS_COPY,
    DependencySpec,
    current_python,
    requirements_for_install,
)

__all__ = [
    "EXPORT_TIMEOUT_SECONDS",
    "FILES",
    "KINDS",
    "MARKER",
    "OUTPUT_TAIL_LINES",
    "REQUIREMENTS_COPY",
    "DependencySpec",
    "current_python",
    "detect",
    "requirements_for_install",
]
