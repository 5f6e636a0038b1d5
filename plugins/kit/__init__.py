"""The authoring kit: what every prebuilt task type is built from.

A task type declares a ``TaskTypeSpec`` (its name, schema version, config and extras classes, executor, keys in a
project file),
an author-side task (``PrebuiltTask``) that serializes config and extras into the TaskTemplate ``custom``
field under a versioned header, and a runtime-side executor (``PrebuiltExecutor``) that reads them back,
re-validates them and runs. Importing this package needs flytekit only; names load on first use.
"""

from flytekitplugins.prebuilt.kit.lazy import lazy_exports

# name -> the module that defines it; every lazy package has such a table (kit.lazy), hence the same shape
_WHERE = {
    "ConfigError": "config",
    "PrebuiltConfig": "config",
    "PrebuiltExecutor": "executor",
    "PrebuiltTask": "task",
    "ProjectEntry": "project_keys",
    "ProjectKeys": "project_keys",
    "TaskTypeSpec": "spec",
    "TransientError": "errors",
    "UserError": "errors",
    "default_image": "images",
    "identity": "contract",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
