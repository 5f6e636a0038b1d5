"""The steps of the example pipeline: plain Python, no Flyte code (inputs as arguments, outputs as JSON)."""

import csv
import json
import os
import random
import sys
from pathlib import Path


def outputs(**values):
    with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as f:
        json.dump(values, f)


def amounts(path):
    with open(path) as f:
        return [float(row["amount"]) for row in csv.DictReader(f)]


step = sys.argv[1]
if step == "extract":
    rows = int(sys.argv[sys.argv.index("--rows") + 1])
    rng = random.Random(7)
    Path("out").mkdir(exist_ok=True)
    with open("out/orders.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "amount"])
        writer.writerows((i, round(rng.uniform(1, 200), 2)) for i in range(rows))
    print(f"extracted {rows} orders")
elif step == "count":
    outputs(count=len(amounts(sys.argv[2])))
elif step == "total":
    outputs(total=round(sum(amounts(sys.argv[2])), 2))
elif step == "summary":
    outputs(line=f"{sys.argv[2]} orders, {float(sys.argv[3]):.2f} {os.environ['REPORT_CURRENCY']}")
