"""Echo every input back as the output of the same name: JSON values through $PREBUILT_OUTPUTS_FILE, a file, a
folder and datasets (local parquet folders) copied to the artifact paths; what the command line and the
environment carried, as text."""

import json
import os
import shutil
import sys

inputs = json.load(open(os.environ["PREBUILT_INPUTS_FILE"]))
paths = {"file", "folder", "dataset", "frame", "table"} & set(inputs)
outputs = {name: value for name, value in inputs.items() if name not in paths}
os.makedirs("out", exist_ok=True)
shutil.copyfile(inputs["file"], "out/file")
shutil.copytree(inputs["folder"], "out/folder")
for name in {"dataset", "frame", "table"} & paths:
    assert os.path.isdir(inputs[name]), f"{name}: {inputs[name]} is not a folder"
    shutil.copytree(inputs[name], f"out/{name}")
outputs["argv"] = sys.argv[1:]
names = [name for name in ("s", "when", "day", "wait", "words", "d") if name in inputs]
outputs["env"] = [os.environ[f"PREBUILT_INPUT_{name.upper()}"] for name in names]
json.dump(outputs, open(os.environ["PREBUILT_OUTPUTS_FILE"], "w"))
