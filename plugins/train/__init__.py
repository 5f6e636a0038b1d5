"""The ``train`` prebuilt task type: distributed PyTorch training of a user's code folder, launched by torchrun in a
prebuilt image that provides torch. Importing it needs flytekit only; names load on first use (``kit.lazy``)."""

from flytekitplugins.prebuilt.kit.lazy import lazy_exports

_WHERE = {
    "Elastic": "job",
    "Role": "job",
    "RunPolicy": "job",
    "TrainConfig": "config",
    "TrainPreset": "config",
    "TrainTask": "task",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
