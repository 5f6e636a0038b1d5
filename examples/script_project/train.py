"""A user's script: reads its inputs, 'trains', writes typed outputs and an artifact (no Flyte code)."""

import argparse
import json
import os
from pathlib import Path

import six  # a dependency from requirements.txt, installed by the prebuilt image

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
args = parser.parse_args()

loss = 1.0
for epoch in range(args.epochs):
    loss *= 0.5
    print(f"epoch {epoch + 1}/{args.epochs}: loss {loss:.4f}", flush=True)

Path("out").mkdir(exist_ok=True)
Path("out/model.json").write_text(json.dumps({"weights": [loss] * 3, "six": six.__version__}))
with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as f:
    json.dump({"accuracy": round(1 - loss, 6), "epochs_run": args.epochs}, f)
