"""A training bundle's requirements go on top of the image's torch: real uv installs of real wheels (built here, in
the bundle), a real torchrun. A requirement on torch is satisfied by the image's; one that conflicts with it is
refused, naming both."""

from __future__ import annotations

import base64
import hashlib
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.train import TrainTask

TORCH = metadata.distribution("torch")
FRAMEWORK_SITE = Path(TORCH.locate_file("")).resolve()

USES_TORCH = """
import importlib.metadata, json, os, sys
import torch, torch.distributed as dist
import vision_helper
dist.init_process_group(os.environ["PREBUILT_DIST_BACKEND"])
if dist.get_rank() == 0:
    with open(os.environ["PREBUILT_OUTPUTS_FILE"], "w") as out:
        json.dump({"torch_file": torch.__file__, "torch_version": importlib.metadata.version("torch"),
                   "environment": sys.prefix, "helper": vision_helper.NAME}, out)
dist.destroy_process_group()
"""


@pytest.fixture(autouse=True)
def env_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PREBUILT_ENV_CACHE", str(tmp_path / "env-cache"))


def write_wheel(folder: Path, name: str, requires: str) -> str:
    """A pure-Python wheel whose module ``name`` has ``NAME = name``, requiring ``requires``."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": f"NAME = {name!r}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nRequires-Dist: {requires}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    digest = {p: base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b"=").decode() for p, d in files.items()}
    record = "".join(f"{p},sha256={digest[p]},{len(d)}\n" for p, d in files.items()) + f"{info}/RECORD,,\n"
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", record)
    return f"./wheels/{wheel.name}"


def project(tmp_path: Path, requires: str) -> str:
    folder = tmp_path / "project"
    line = write_wheel(folder / "wheels", "vision_helper", requires)
    (folder / "requirements.txt").write_text(f"{line}\n")
    (folder / "main.py").write_text(textwrap.dedent(USES_TORCH))
    return str(folder)


def test_a_requirement_on_torch_is_satisfied_by_the_images_torch(tmp_path):
    task = TrainTask(
        "uses_torch",
        source=project(tmp_path, "torch>=2.0"),
        command=["main.py"],
        processes_per_node=2,
        outputs={"torch_file": str, "torch_version": str, "environment": str, "helper": str},
    )
    torch_file, version, environment, helper = task()
    assert helper == "vision_helper" and version == TORCH.version
    assert Path(torch_file).resolve().is_relative_to(FRAMEWORK_SITE)  # imported from the framework's folder
    site = Path(environment) / "lib" / "python3.11" / "site-packages"
    assert (site / "vision_helper").is_dir() and not (site / "torch").exists()  # no second torch
    assert (site / f"torch-{TORCH.version}.dist-info").is_dir()  # what the installer sees: the image's version


def test_a_requirement_conflicting_with_the_images_torch_is_refused_naming_both(tmp_path):
    task = TrainTask("old_torch", source=project(tmp_path, "torch<2"), command=["main.py"], processes_per_node=2)
    with pytest.raises(Exception) as failure:
        task()
    message = str(failure.value)
    assert "installing the bundle's dependencies failed: the bundle's requirements conflict with the framework" in (
        message
    )
    assert f"torch {TORCH.version} (with " in message  # the image's side
    assert "vision-helper==1.0 depends on torch<2" in message  # the bundle's side, as the resolver explains it
    assert getattr(failure.value, "value", failure.value).error_code == "USER:DependencyInstall"
