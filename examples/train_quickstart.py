"""Quickstart: distributed PyTorch training of a folder of plain code (DDP on scikit-learn's digits), as a Flyte
task, no image to build.

python examples/train_quickstart.py
flyte-prebuilt run examples/train_quickstart.py train_digits --input epochs=8 [--in-container]
"""

from pathlib import Path

from flytekit import task, workflow
from flytekit.types.file import FlyteFile
from flytekitplugins.prebuilt.train import TrainTask

PROJECT = Path(__file__).resolve().parent / "train_digits"

train_digits = TrainTask(
    name="train_digits",
    source=str(PROJECT),  # train.py and its requirements.txt (scikit-learn); torch comes with the image
    command=["train.py", "--epochs", "{{.inputs.epochs}}"],
    processes_per_node=2,  # two gloo ranks on CPUs; with requests={"gpu": N}, leave it out: one rank per GPU
    inputs={"epochs": int},
    outputs={"accuracy": float, "final_loss": float, "model": FlyteFile},
    artifacts={"model": "model.pt"},
    requests={"cpu": "2", "memory": "2Gi"},
    deadline_seconds=900,
    retries=2,  # a lost process or a collective timeout is retried, resuming from the last checkpoint
)


@task
def report(accuracy: float, final_loss: float) -> str:
    return f"test accuracy {accuracy:.3f}, final training loss {final_loss:.4f}"


@workflow
def digits(epochs: int = 8) -> str:
    accuracy, final_loss, _ = train_digits(epochs=epochs)
    return report(accuracy=accuracy, final_loss=final_loss)


if __name__ == "__main__":
    print(digits(epochs=8))
