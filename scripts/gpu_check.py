"""The CUDA image's GPU check (``make gpu-check``): a training task requesting one GPU, run by the platform
emulator in the train image's CUDA variant (``make images-gpu``), with the GPU given to the container as Kubernetes'
device plugin gives it to a pod. Needs an NVIDIA GPU, Docker and the NVIDIA container toolkit; not part of
``make test`` (CI has no GPU). Prints the results and exits non-zero when a check fails."""

import json
import sys
import tempfile
from pathlib import Path

from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.train import TrainTask

gpu_check = TrainTask(
    name="gpu_check",
    source=str(Path(__file__).with_name("gpu_check")),
    command=["train.py"],
    dependencies="none",  # torch is the image's
    requests={"gpu": 1},  # so: the CUDA image, nccl, one process per GPU
    outputs={"device": str, "all_reduce": float, "loss_drop": float},
    deadline_seconds=600,
)

if __name__ == "__main__":
    assert gpu_check.container_image.endswith("-cuda"), gpu_check.container_image
    run = Emulator(tempfile.mkdtemp(prefix="gpu-check-")).run(gpu_check, {}, in_container=True)
    print(json.dumps(run.outputs))
    sys.exit(0 if run.outputs["loss_drop"] > 0 else 1)  # the all-reduce sum is checked in the task
