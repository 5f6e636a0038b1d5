"""Quickstart: run a folder of plain Python (with its requirements.txt) as a Flyte task, no image to build.

python examples/script_quickstart.py
flyte-prebuilt run examples/script_quickstart.py train --input epochs=3 [--in-container]
"""

from pathlib import Path

from flytekit import task, workflow
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask

PROJECT = Path(__file__).resolve().parent / "script_project"

# A preset many tasks can extend: dependencies from requirements.txt, a deadline, resources.
cpu_job = ScriptPreset.of(dependencies="requirements", deadline_seconds=600, requests={"cpu": "500m", "memory": "1Gi"})

train = ScriptTask(
    name="train",
    source=str(PROJECT),
    command=["python", "train.py", "--epochs", "{{.inputs.epochs}}"],
    inputs={"epochs": int},
    outputs={"accuracy": float, "epochs_run": int, "model": FlyteFile},
    preset=cpu_job.extend(artifacts={"model": "out/model.json"}),
)


@task
def describe(accuracy: float, model: FlyteFile) -> str:
    return f"accuracy {accuracy:.3f}, model {Path(model.download()).read_text()}"


@workflow
def train_and_describe(epochs: int = 3) -> str:
    accuracy, _, model = train(epochs=epochs)
    return describe(accuracy=accuracy, model=model)


if __name__ == "__main__":
    print(train_and_describe(epochs=3))
