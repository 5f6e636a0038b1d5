"""The ``script`` prebuilt task type: run a user's code bundle, with its dependencies, in a prebuilt
environment image. Importing it needs flytekit only; names load on first use (``kit.lazy``)."""

from flytekitplugins.prebuilt.kit.lazy import lazy_exports

# name -> the module that defines it; every lazy package has such a table (kit.lazy), hence the same shape
_WHERE = {"ScriptConfig": "config", "ScriptPreset": "config", "ScriptTask": "task"}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
