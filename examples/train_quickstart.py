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

# The same training on two nodes of two processes each: on a cluster a Kubeflow PyTorchJob (a master pod and a
# worker pod, Flyte's pytorch plugin); run locally, both nodes' processes start on this machine.
train_digits_on_two_nodes = TrainTask(
    name="train_digits_on_two_nodes",
    source=str(PROJECT),
    command=["train.py", "--epochs", "{{.inputs.epochs}}"],
    nodes=2,
    processes_per_node=2,
    inputs={"epochs": int},
    outputs={"accuracy": float, "final_loss": float},
    requests={"cpu": "2", "memory": "2Gi"},  # per node: every pod gets the task's resources
    deadline_seconds=900,
    retries=2,
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
