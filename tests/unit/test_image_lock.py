"""The image lock file: digests are recorded in a source checkout's plugins/kit/images.lock.json and nowhere else
(never in an installed package's folder); a release refuses a checkout of another version; the images' source hash
ignores the lock file, so that recording digests does not make the released images out of date, and covers each
image's own sources only (the kit, its type, the types it builds on)."""

import json
import shutil

import pytest
from click.testing import CliRunner
from flytekitplugins.prebuilt.cli import main
from flytekitplugins.prebuilt.kit import images

from build_tools.building import Builder
from build_tools.checkout import ImageError, lock_file
from build_tools.releasing import Publisher
from build_tools.source_hash import source_hash
from tests.conftest import ROOT

DIGEST = "sha256:" + "ab" * 32


def make_checkout(path, version=None):
    """A source checkout as the image builder reads it: packaging files, the Dockerfiles, a few sources."""
    (path / "plugins" / "kit").mkdir(parents=True)
    (path / "executors").mkdir()
    (path / "plugins" / "kit" / "module.py").write_text("VALUE = 1\n")
    for task_type in ("sql", "script", "train"):
        ignored = shutil.ignore_patterns("context")
        shutil.copytree(ROOT / "images" / task_type, path / "images" / task_type, ignore=ignored)
        for side in ("plugins", "executors"):
            (path / side / task_type).mkdir()
            (path / side / task_type / "__init__.py").write_text(f"SIDE = {side!r}\n")
    (path / "plugins" / "emulator").mkdir()
    (path / "plugins" / "emulator" / "__init__.py").write_text("VALUE = 1\n")
    shutil.copy(ROOT / "images" / "base.Dockerfile", path / "images" / "base.Dockerfile")
    shutil.copy(ROOT / "setup.py", path / "setup.py")
    pyproject = (ROOT / "pyproject.toml").read_text()
    if version:
        pyproject = pyproject.replace(f'version = "{images.package_version()}"', f'version = "{version}"', 1)
    (path / "pyproject.toml").write_text(pyproject)
    return path


def installed_package(path):
    """What a wheel installs: the package's folder in site-packages, no checkout around it."""
    kit = path / "site-packages" / "flytekitplugins" / "prebuilt" / "kit"
    kit.mkdir(parents=True)
    return kit


def test_digests_are_recorded_in_a_checkouts_lock_file_and_name_the_image(tmp_path):
    checkout = make_checkout(tmp_path / "checkout")
    lock = lock_file(checkout)
    assert lock == checkout / "plugins" / "kit" / "images.lock.json"
    images.record_digest("sql", "127.0.0.1:5000/prebuilt-sql:0.1.0-py3.11", DIGEST, lock)
    entry = json.loads(lock.read_text())["images"]["sql"]
    assert entry == {
        "package_version": images.package_version(),
        "image": "127.0.0.1:5000/prebuilt-sql:0.1.0-py3.11",
        "digest": DIGEST,
    }
    assert images.default_image("sql", lock_file=lock) == f"127.0.0.1:5000/prebuilt-sql@{DIGEST}"


def test_recording_into_an_installed_package_or_another_file_is_refused(tmp_path):
    kit = installed_package(tmp_path)
    refused = "recorded in a source checkout's plugins/kit/images.lock.json only, never in an installed package"
    with pytest.raises(ValueError, match=f"{refused} .*: .*/site-packages/.*/images.lock.json is not one"):
        images.record_digest("sql", "r/prebuilt-sql:1", DIGEST, kit / "images.lock.json")
    checkout = make_checkout(tmp_path / "checkout")
    with pytest.raises(ValueError, match=f"{refused} .*: .*/plugins/kit/x.json is not one"):
        images.record_digest("sql", "r/prebuilt-sql:1", DIGEST, checkout / "plugins" / "kit" / "x.json")
    assert not list(kit.iterdir()) and not (checkout / "plugins" / "kit" / "x.json").exists()


def test_publish_and_release_refuse_an_installed_package_before_pushing_anything(tmp_path):
    installed = installed_package(tmp_path).parent.parent  # site-packages/flytekitplugins
    with pytest.raises(ImageError, match="built from a source checkout"):
        Publisher(Builder(root=installed)).publish("sql", "127.0.0.1:9")
    result = CliRunner().invoke(main, ["images", "release", "sql", "--registry", "127.0.0.1:9", "--source", installed])
    assert result.exit_code == 1 and "is not one (an installed package ships no Dockerfiles)" in result.output


def test_a_release_refuses_a_checkout_of_another_version(tmp_path):
    checkout = make_checkout(tmp_path / "checkout", version="9.9.9")
    with pytest.raises(ImageError, match=f"is version 9.9.9 but flytekitplugins-prebuilt {images.package_version()}"):
        Publisher(Builder(root=checkout)).release("127.0.0.1:9", ["sql"])
    assert not lock_file(checkout).exists()


def test_the_images_source_hash_ignores_the_lock_file_only(tmp_path):
    checkout = make_checkout(tmp_path / "checkout")
    before = source_hash("sql", root=checkout)
    images.record_digest("sql", "r/prebuilt-sql:1", DIGEST, lock_file(checkout))
    assert source_hash("sql", root=checkout) == before  # the released image stays up to date
    (checkout / "plugins" / "kit" / "module.py").write_text("VALUE = 2\n")
    assert source_hash("sql", root=checkout) != before


def hashes(checkout) -> dict[str, str]:
    return {task_type: source_hash(task_type, root=checkout) for task_type in ("sql", "script", "train")}


@pytest.mark.parametrize(
    "changed, rebuilt",
    [
        ("plugins/sql/__init__.py", {"sql"}),
        ("executors/sql/__init__.py", {"sql"}),
        ("images/sql/README.md", {"sql"}),
        ("plugins/train/__init__.py", {"train"}),
        ("images/script/Dockerfile", {"script"}),  # the train image is not built from the script Dockerfile
        ("plugins/script/__init__.py", {"script", "train"}),  # the train spec builds on the script type
        ("executors/script/__init__.py", {"script", "train"}),
        ("plugins/kit/module.py", {"sql", "script", "train"}),
        ("images/base.Dockerfile", {"sql", "script", "train"}),
        ("plugins/emulator/__init__.py", set()),  # not in any image's sources
    ],
)
def test_an_images_source_hash_covers_the_kit_its_type_and_the_types_it_builds_on(tmp_path, changed, rebuilt):
    checkout = make_checkout(tmp_path / "checkout")
    before = hashes(checkout)
    with open(checkout / changed, "a") as f:
        f.write("\n# changed\n")
    after = hashes(checkout)
    assert {task_type for task_type in before if after[task_type] != before[task_type]} == rebuilt
