"""Check a built image against the size budget its README states: ``Size budget: N MB`` (the default variant) or
``Size budget (<variant>): N MB``. Usage: ``check_image_size.py TASK_TYPE [VARIANT]``."""

import re
import sys
from pathlib import Path

import docker
from flytekitplugins.prebuilt.kit.images import image_tag

task_type, variant = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "")
readme = (Path(__file__).resolve().parents[1] / "images" / task_type / "README.md").read_text()
label = f" ({variant})" if variant else ""
budget = re.search(rf"^Size budget{re.escape(label)}: (\d+) MB$", readme, re.MULTILINE)
if not budget:
    sys.exit(f"images/{task_type}/README.md states no 'Size budget{label}: N MB' line")
image = image_tag(task_type, variant=variant)
size_mb = docker.from_env().images.get(image).attrs["Size"] / 1e6
print(f"{image}: {size_mb:.0f} MB, budget {budget.group(1)} MB")
sys.exit(0 if size_mb <= int(budget.group(1)) else f"{image} is over its size budget")
