"""A release end to end, against the compose file's registry: `flyte-prebuilt images release` (what `make release`
runs) pushes the sql image, records its digest in the checkout's lock file and builds the sdist and wheel that carry
it; the wheel, installed in a fresh virtual environment, serializes tasks naming the image by digest; with no local
name of the image in the registry left (its build tag stays, for the tests running beside), the emulator pulls it by
that digest and runs the task as the in-process run does.

The release runs on a copy of this checkout, so that this one's lock file stays as it is (tasks serialized by the
other tests keep naming the tag). Only the sql type is released, and its image is the one the `sql_image` fixture
built: the copy has the same sources, so the release's build step finds it up to date.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import docker
import pandas as pd
import pytest
from docker.errors import ImageNotFound
from flyteidl.admin import task_pb2
from flyteidl.core import tasks_pb2
from flytekit.models.task import TaskTemplate
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.kit import images
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

from tests.conftest import ROOT, make_people_db

pytestmark = pytest.mark.docker

QUERY = "select id, name, score from people where id < :n order by id"

SERIALIZE = textwrap.dedent(
    """
    import sys
    from collections import OrderedDict

    from flytekit.configuration import ImageConfig, SerializationSettings
    from flytekit.tools.translator import get_serializable
    from flytekitplugins.prebuilt.kit import images
    from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

    assert images.LOCK_FILE.is_relative_to(sys.prefix), images.LOCK_FILE  # the wheel's lock file, not the checkout's
    database, output = sys.argv[1:]
    task = SQLTask("people", {query!r}, SQLConfig(url=f"sqlite:///{{database}}"), inputs={{"n": int}})
    settings = SerializationSettings(project="p", domain="d", version="1", image_config=ImageConfig.auto())
    template = get_serializable(OrderedDict(), settings, task).template
    open(output, "wb").write(template.to_flyte_idl().SerializeToString())
    """
).format(query=QUERY)


def copy_of_checkout(target):
    """What a release is built from: the package's sources, its images' Dockerfiles, its packaging files."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "context")
    for folder in ("plugins", "executors", "images"):
        shutil.copytree(ROOT / folder, target / folder, ignore=skip)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, target / name)
    (target / "plugins" / "kit" / images.LOCK_FILE.name).unlink(missing_ok=True)  # the release writes it afresh
    return target


def forget_registry_names(client, image_id: str, registry: str) -> None:
    """Untag the image's names in ``registry`` (the push gave it a tag and a digest there), so that running the pinned
    name must pull it by digest; its build tag stays, for the tests that run beside this one."""
    image = client.images.get(image_id)
    for name in [*image.attrs["RepoTags"], *image.attrs["RepoDigests"]]:
        if name.startswith(f"{registry}/"):
            with contextlib.suppress(ImageNotFound):  # a digest goes with the last tag of its repository
                client.images.remove(name, noprune=True)


def packaged_images(venv: Path, uv: str, env: dict, folder: Path) -> dict[str, str]:
    """`pyflyte package` of the SQL quickstart example in the released wheel's environment: its prebuilt tasks'
    images by task name."""
    pandas = [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "pandas"]  # the example's @task
    subprocess.run(pandas, check=True, capture_output=True, env=env)
    folder.mkdir()
    for name in ("sql_quickstart.py", "shop_db.py"):
        shutil.copy(ROOT / "examples" / name, folder / name)
    out = folder / "package.tgz"
    command = [str(venv / "bin" / "pyflyte"), "--pkgs", "sql_quickstart", "package", "--image", "example/user:1"]
    done = subprocess.run([*command, "-o", str(out)], cwd=folder, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {}
    with tarfile.open(out) as archive:
        for member in (m for m in archive.getmembers() if m.name.endswith("_1.pb")):  # tasks (flytekit names)
            spec = task_pb2.TaskSpec.FromString(archive.extractfile(member).read())
            if spec.template.type.startswith("prebuilt-"):
                found[spec.template.id.name.rsplit(".", 1)[-1]] = spec.template.container.image
    return found


def test_a_released_wheel_pins_the_image_and_its_task_runs_pulled_by_digest(registry, sql_image, tmp_path):
    checkout_lock = ROOT / "plugins" / "kit" / images.LOCK_FILE.name
    lock_before = checkout_lock.read_bytes() if checkout_lock.is_file() else None
    source = copy_of_checkout(tmp_path / "checkout")
    cli = [str(ROOT / ".venv" / "bin" / "flyte-prebuilt"), "images", "release", "sql", "--registry", registry]
    released = subprocess.run([*cli, "--source", str(source)], capture_output=True, text=True)
    assert released.returncode == 0, released.stderr[-3000:]
    assert f"{sql_image} is up to date" in released.stdout  # the image that was tested, not a new build
    entry = json.loads((source / "plugins" / "kit" / images.LOCK_FILE.name).read_text())["images"]["sql"]
    pinned = f"{registry}/prebuilt-sql@{entry['digest']}"
    assert entry["package_version"] == images.package_version()
    wheel = next((source / "dist").glob("flytekitplugins_prebuilt-*.whl"))
    assert (checkout_lock.read_bytes() if checkout_lock.is_file() else None) == lock_before  # this checkout: as it was

    venv = tmp_path / "venv"
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    installed = subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(wheel)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    root = tmp_path / "store"
    root.mkdir()
    database = make_people_db(root / "people.db")
    template_file = tmp_path / "task.pb"
    serialized = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SERIALIZE, str(database), str(template_file)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert serialized.returncode == 0, serialized.stderr[-3000:]
    template = TaskTemplate.from_flyte_idl(tasks_pb2.TaskTemplate.FromString(template_file.read_bytes()))
    assert template.container.image == pinned
    assert packaged_images(venv, uv, env, tmp_path / "examples") == {"big_orders": pinned}  # pyflyte package too

    client = docker.from_env()
    image_id = client.images.get(sql_image).id
    forget_registry_names(client, image_id, registry)  # the run must pull by digest; other tests keep the image
    with pytest.raises(ImageNotFound):
        client.images.get(pinned)
    emulated = Emulator(str(root)).run(template, {"n": 4}, in_container=True, retries=0)
    assert client.images.get(pinned).id == image_id  # the very image that was tested and pushed
    in_process = SQLTask("people", QUERY, SQLConfig(url=f"sqlite:///{database}"), inputs={"n": int})(n=4)
    pd.testing.assert_frame_equal(
        emulated.outputs["results"].open(pd.DataFrame).all(), in_process.open(pd.DataFrame).all()
    )
    assert in_process.open(pd.DataFrame).all()["id"].tolist() == [0, 1, 2, 3]
