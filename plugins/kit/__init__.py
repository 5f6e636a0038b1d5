"""The authoring kit: what every prebuilt task type is built from.

A task type is a config dataclass (``PrebuiltConfig``), an author-side task (``PrebuiltTask``) that
serializes it into the TaskTemplate ``custom`` field under a versioned header, and a runtime-side
executor (``PrebuiltExecutor``) that reads it back, re-validates it and runs it. Importing this package
needs flytekit only.
"""

from flytekitplugins.prebuilt.kit.config import ConfigError, PrebuiltConfig
from flytekitplugins.prebuilt.kit.contract import identity
from flytekitplugins.prebuilt.kit.errors import TransientError, UserError
from flytekitplugins.prebuilt.kit.executor import PrebuiltExecutor
from flytekitplugins.prebuilt.kit.images import default_image
from flytekitplugins.prebuilt.kit.task import PrebuiltTask

__all__ = [
    "ConfigError",
    "PrebuiltConfig",
    "PrebuiltExecutor",
    "PrebuiltTask",
    "TransientError",
    "UserError",
    "default_image",
    "identity",
]
