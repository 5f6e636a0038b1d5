"""The author side needs flytekit only: in a fresh virtual environment holding flytekit and this package (no
SQLAlchemy, pyarrow or pandas), SQL tasks define and serialize. A real venv, installed with uv from its cache."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

AUTHOR_SCRIPT = """
from collections import OrderedDict
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.sql import SQLTask, SQLConfig, SQLite3Task, SQLite3Config
t = SQLTask("t", "select * from x where a = :a", SQLConfig(url="postgresql://u@h/d"), inputs={"a": int})
s = SQLite3Task("s", "select 1", task_config=SQLite3Config(uri="s3://b/x.db"))
settings = SerializationSettings(project="p", domain="d", version="v", image_config=ImageConfig.auto_default_image())
print(get_serializable(OrderedDict(), settings, t).template.custom["prebuilt"])
"""


def test_author_side_needs_flytekit_only(tmp_path):
    """In a venv holding flytekit and this package only (no sqlalchemy, pyarrow, pandas), tasks define and serialize."""
    venv, python = tmp_path / "venv", str(tmp_path / "venv" / "bin" / "python")
    root = str(Path(__file__).resolve().parents[2])
    flytekit = f"flytekit=={metadata.version('flytekit')}"
    uv = str(Path(sys.executable).parent / "uv")  # a dev dependency
    for command in (
        [uv, "venv", "-q", "--python", sys.executable, str(venv)],
        [uv, "pip", "install", "-q", "--python", python, flytekit],
        [uv, "pip", "install", "-q", "--python", python, "--no-deps", "-e", root],
    ):
        subprocess.run(command, check=True, capture_output=True)
    missing = subprocess.run([python, "-c", "import sqlalchemy"], capture_output=True)
    assert missing.returncode != 0, "the author-side venv must not have sqlalchemy"
    done = subprocess.run([python, "-c", AUTHOR_SCRIPT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "'type': 'sql'" in done.stdout
