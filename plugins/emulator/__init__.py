"""The platform emulator: run a serialized task template the way a Flyte cluster runs it.

For task authors: test a template-only task exactly as flytepropeller's container plugin would run
it, in a subprocess or inside its image, without a cluster. See ``docs/emulator.md``.
"""

from flytekitplugins.prebuilt.emulator.inputs import InputError
from flytekitplugins.prebuilt.emulator.platform import EmulatedRun, Emulator, TaskFailed
from flytekitplugins.prebuilt.emulator.replicas import NodeLoss

__all__ = ["EmulatedRun", "Emulator", "InputError", "NodeLoss", "TaskFailed"]
