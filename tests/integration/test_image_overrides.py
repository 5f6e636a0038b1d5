"""A platform team's mirror of our images, set the Flyte way at registration (flytekit's image configuration:
`pyflyte package/register --image prebuilt-<type>=...`, or a config file's `images`), with no task code touched:
the template names the mirror, and its identity and automatic cache_version are those of the mirror's image."""

import subprocess
import sys
import tarfile
from collections import OrderedDict
from pathlib import Path

from flyteidl.admin import task_pb2
from flytekit.configuration import ImageConfig, SerializationSettings
from flytekit.tools.translator import get_serializable
from flytekitplugins.prebuilt.kit.contract import identity
from flytekitplugins.prebuilt.kit.images import default_image
from google.protobuf.json_format import MessageToDict

PYFLYTE = str(Path(sys.executable).parent / "pyflyte")
SCRIPT_SOURCE = Path(__file__).resolve().parents[1] / "unit" / "golden" / "script_src"
MODULE = f"""\
from flytekitplugins.prebuilt.script import ScriptPreset, ScriptTask
from flytekitplugins.prebuilt.sql import SQLTask

orders = SQLTask("orders", "select 1 as n", url="sqlite:///shop.db", cache=True)
job = ScriptTask("job", source={str(SCRIPT_SOURCE)!r}, command=["python", "main.py"], cache=True,
                 preset=ScriptPreset.of(dependencies="none"))
"""
SQL_MIRROR = "mirror.example/prebuilt-sql:0.1.0-py3.11"


def package(tmp_path: Path, *images: str) -> dict[str, task_pb2.TaskSpec]:
    """`pyflyte package` of MODULE with these --image options: the task specs by task name."""
    (tmp_path / "mirrored.py").write_text(MODULE)
    out = tmp_path / f"package-{len(list(tmp_path.glob('package-*')))}.tgz"
    options = [value for image in images for value in ("--image", image)]
    done = subprocess.run(
        [PYFLYTE, "--pkgs", "mirrored", "package", *options, "-o", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    specs = {}
    with tarfile.open(out) as archive:
        for member in archive.getmembers():
            if member.name.endswith(".pb"):
                spec = task_pb2.TaskSpec()
                spec.ParseFromString(archive.extractfile(member).read())
                specs[spec.template.id.name] = spec
    return specs


def test_pyflyte_package_image_option_mirrors_our_image_and_changes_the_cache_version(tmp_path):
    ours = package(tmp_path, "ghcr.io/example/user:1")
    mirrored = package(tmp_path, "ghcr.io/example/user:1", f"prebuilt-sql={SQL_MIRROR}")
    before, after = ours["orders"].template, mirrored["orders"].template
    assert before.container.image == default_image("sql") and after.container.image == SQL_MIRROR
    custom = MessageToDict(after.custom)
    assert after.metadata.discovery_version == identity(custom, SQL_MIRROR)
    assert before.metadata.discovery_version == identity(custom, default_image("sql"))
    assert after.metadata.discovery_version != before.metadata.discovery_version
    # only the named type moves: the script task still runs in our script image, with its cache version
    assert mirrored["job"].template.container.image == default_image("script")
    assert mirrored["job"].template.metadata.discovery_version == ours["job"].template.metadata.discovery_version


def test_the_config_files_images_section_mirrors_it_too(tmp_path):
    """What `pyflyte register` / `pyflyte run --remote` read from the config file (flytekit ImageConfig.auto)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"images:\n  prebuilt-sql: {SQL_MIRROR}\n")
    (tmp_path / "mirrored.py").write_text(MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import mirrored
    finally:
        sys.path.remove(str(tmp_path))
    settings = SerializationSettings(
        project="p", domain="d", version="v1", image_config=ImageConfig.auto(str(config), "ghcr.io/example/user:1")
    )
    template = get_serializable(OrderedDict(), settings, mirrored.orders).template
    assert template.container.image == SQL_MIRROR
    assert template.metadata.discovery_version == identity(template.custom, SQL_MIRROR)
