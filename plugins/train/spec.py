"""The ``train`` task type's contract, read by ``TrainTask`` and ``TrainExecutor`` alike.

Its extras and its keys in a project file are the ``script`` type's (the code bundle's reference; the code folder,
outputs, ...): a training task is a script task whose command torchrun launches, so both sides extend the script
type's pieces instead of restating them.
"""

from flytekitplugins.prebuilt.kit.spec import TaskTypeSpec
from flytekitplugins.prebuilt.script.spec import PROJECT_KEYS, ScriptExtras
from flytekitplugins.prebuilt.train.config import TrainConfig

SPEC = TaskTypeSpec(
    name="train",
    schema_version=1,  # major version of custom; bump on an incompatible change
    config=TrainConfig,
    extras=ScriptExtras,
    executor="flytekitplugins.prebuilt.executors.train.TrainExecutor",
    project=PROJECT_KEYS,
    builds_on=("script",),  # TrainExecutor is a ScriptExecutor, TrainTask a ScriptTask: the train image carries both
)
