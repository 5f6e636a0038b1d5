"""Projects in YAML (``flyte-prebuilt.yaml``): prebuilt tasks, templates, pipelines and schedules, compiled to the
entities the Python API makes (docs/project/). ``load(path).entities`` are what a module hands pyflyte."""

from flytekitplugins.prebuilt.kit.lazy import lazy_exports

_WHERE = {
    "load": "loading",
    "Project": "entities",
    "ProjectErrors": "errors",
    "ProjectWarning": "errors",
    "project_schema": "schema",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
