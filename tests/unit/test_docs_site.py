"""`make docs` (mkdocs.yml, strict) builds the site with the README as its home page, and fails on a broken link,
a broken anchor or a page left out of the nav: checked on a copy of the docs, as `make docs` runs mkdocs."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = str(Path(sys.executable).parent / "mkdocs")


@pytest.fixture
def copy(tmp_path):
    for name in ("mkdocs.yml", "README.md", "scripts/mkdocs_hooks.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("data"))
    return tmp_path


def build(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MKDOCS, "build", "--strict", "-d", str(root / "site")], cwd=root, capture_output=True, text=True, timeout=120
    )


def test_the_site_builds_with_the_readme_as_home_and_every_page(copy):
    done = build(copy)
    assert done.returncode == 0, done.stderr
    home = (copy / "site" / "index.html").read_text()
    assert "Prebuilt (template-only) task types" in home and 'href="sql/"' in home  # README's docs/sql.md link
    pages = {p.relative_to(copy / "docs").with_suffix("") for p in (copy / "docs").rglob("*.md")}
    built = {p.relative_to(copy / "site").parent for p in (copy / "site").rglob("index.html")}
    assert {Path(str(p).removesuffix("/README").removesuffix("README")) for p in pages} <= built
    train = (copy / "site" / "train" / "index.html").read_text()  # a link out of docs/ points at the repository
    assert "flytekitplugins-prebuilt/flytekitplugins-prebuilt/blob/main/examples/train_digits/train.py" in train


@pytest.mark.parametrize(
    "page, text, complaint",
    [
        ("docs/emulator.md", "\nSee [the guide](nowhere.md).\n", "'nowhere.md', but the target is not found"),
        ("docs/emulator.md", "\nSee [SQL](sql.md#no-such-section).\n", "does not contain an anchor"),
        ("docs/emulator.md", "\nSee [code](../examples/missing.py).\n", "'../examples/missing.py'"),
        ("README.md", "\n- [docs/gone.md](docs/gone.md)\n", "'gone.md', but the target is not found"),
        ("docs/orphan.md", "# Not in the nav\n", 'not included in the "nav"'),
    ],
    ids=["broken-link", "broken-anchor", "link-out-of-docs", "readme-link", "page-not-in-nav"],
)
def test_strict_build_fails_on(copy, page, text, complaint):
    with open(copy / page, "a") as f:
        f.write(text)
    done = build(copy)
    assert done.returncode != 0 and complaint in done.stderr, done.stderr
