"""``load(path)``: a project file, checked as a whole, then compiled; every problem of it in one ``ProjectErrors``."""

from __future__ import annotations

import os
import warnings

from flytekitplugins.prebuilt.project.checking import check
from flytekitplugins.prebuilt.project.compiling import Compiler
from flytekitplugins.prebuilt.project.entities import Project
from flytekitplugins.prebuilt.project.errors import ProjectErrors, ProjectWarning
from flytekitplugins.prebuilt.project.files import ALSO_READ, in_folder
from flytekitplugins.prebuilt.project.schema import FILE_NAME
from flytekitplugins.prebuilt.project.source import read
from flytekitplugins.prebuilt.project.templates import Templates


def load(path: str | os.PathLike = FILE_NAME) -> Project:
    """The project in ``path`` (a file, or a folder holding ``flyte-prebuilt.yaml``, else AME's ``ame.yaml`` or
    ``ame.yml``), its tasks, pipelines and launch plans built; ``ProjectErrors`` listing every problem
    (``file:line:column: field: expected ...``). What was ignored (AME's sections, ame.py) is in
    ``Project.warnings`` and is warned (``ProjectWarning``, shown at the caller's line: a module pyflyte reads)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = in_folder(path, (FILE_NAME, *ALSO_READ))
    source = read(path)
    found = check(source)  # AME's spellings rewritten onto ours first (ame.py)
    problems = [problem for _, problem in found]
    if not isinstance(source.data, dict) or "project" not in source.data or not isinstance(source.data["project"], str):
        raise ProjectErrors(problems)
    templates = Templates(source, check)
    compiler = Compiler(source, templates, {p for p, _ in found})
    project = compiler.compile()
    problems += templates.problems + compiler.problems
    if problems:
        raise ProjectErrors(problems)
    project.warnings = list(source.warnings)
    for warning in project.warnings:
        warnings.warn(ProjectWarning(str(warning)), stacklevel=2)
    return project
