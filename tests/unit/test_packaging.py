"""What the wheel ships: every package of plugins/ and executors/ (setup.py's discovery), and not the tools that
build and release the images from a source checkout (build_tools/). Run from an installed package, the
`flyte-prebuilt images` commands say that they need a checkout."""

import importlib.util
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def shipped_packages() -> dict[str, object]:
    """setup.py's packages, each with its folder in the checkout (pyproject.toml's package-dir)."""
    spec = importlib.util.spec_from_file_location("setup_for_test", ROOT / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)  # not as __main__: it builds nothing
    folders = {name: ROOT / folder for folder, name in setup.ROOTS.items()}
    found = {}
    for package in setup.packages(ROOT):
        root = max((n for n in folders if package == n or package.startswith(n + ".")), key=len)
        found[package] = folders[root].joinpath(*package[len(root) :].split(".")[1:])
    return found


def test_the_wheel_ships_every_package_folder_and_no_image_tools():
    packages = shipped_packages()
    folders = {p.parent for side in ("plugins", "executors") for p in (ROOT / side).rglob("__init__.py")}
    assert set(packages.values()) == folders
    assert not any("build_tools" in name for name in packages)
    # nothing shipped builds or pushes an image (Docker's build and push API): that needs a checkout
    sources = {path: path.read_text() for folder in folders for path in folder.glob("*.py")}
    assert [
        str(p.relative_to(ROOT)) for p, text in sources.items() if "api.build(" in text or "api.push(" in text
    ] == []
    assert "api.build(" in (ROOT / "build_tools" / "building.py").read_text()


def test_the_images_commands_of_an_installed_package_say_they_need_a_checkout(tmp_path):
    site = tmp_path / "site-packages"
    for package, folder in shipped_packages().items():  # what installing the wheel puts there
        target = site.joinpath(*package.split("."))
        target.mkdir(parents=True)
        for path in folder.iterdir():
            if path.suffix in (".py", ".json"):
                shutil.copy(path, target / path.name)
    done = subprocess.run(
        [sys.executable, "-c", "from flytekitplugins.prebuilt.cli import main; main()", "images", "build", "sql"],
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "from a source checkout of flytekitplugins-prebuilt, and this one runs from an installed package" in (
        " ".join(done.stderr.split())
    )
