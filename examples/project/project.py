"""The module pyflyte reads: the project file's entities as module-level names (no generated code).

pyflyte run examples/project/project.py report --rows 50
"""

from pathlib import Path

from flytekitplugins.prebuilt.project import load

globals().update(load(Path(__file__).with_name("flyte-prebuilt.yaml")).entities)
