"""The ``script`` prebuilt task type: run a user's code bundle, with its dependencies, in a prebuilt
environment image. Importing it needs flytekit only."""

from flytekitplugins.prebuilt.script.config import ScriptConfig, ScriptPreset
from flytekitplugins.prebuilt.script.task import ScriptTask

__all__ = ["ScriptConfig", "ScriptPreset", "ScriptTask"]
