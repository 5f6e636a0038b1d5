"""Print the pinned runtime requirements of a task type's image: flytekit and the package's extra for
the type (its executor's dependencies, from pyproject), each at the version installed in this
environment, so the image runs exactly what the test suite ran."""

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

task_type = sys.argv[1]
project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
for requirement in ["flytekit", *project["optional-dependencies"][task_type]]:
    name = re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0)
    try:
        print(f"{name}=={version(name)}")
    except PackageNotFoundError:
        print(requirement)
