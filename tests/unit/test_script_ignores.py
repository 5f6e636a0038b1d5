"""Which files a folder bundle holds: .gitignore at any depth, .flyteignore, .dockerignore, .prebuiltignore,
``ignore=``, the defaults; in a git repository or not, whatever the user's git configuration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.script import ScriptTask
from flytekitplugins.prebuilt.script.bundle import pack
from flytekitplugins.prebuilt.script.ignores import gitignore_patterns

from tests.unit.test_script_bundle import project, write


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True)


def test_a_nested_gitignore_applies_below_its_folder_and_ignore_has_the_last_word(tmp_path):
    root = write(
        tmp_path / "p",
        {
            "main.py": "", "top.csv": "", "other/a.csv": "", "sub/only_here.txt": "",
            "sub/.gitignore": "*.csv\n/only_here.txt\n", "sub/a.csv": "", "sub/deeper/b.csv": "",
            "sub/deeper/.gitignore": "!keep.csv\n", "sub/deeper/keep.csv": "", "sub/deeper/only_here.txt": "",
        },
    )  # fmt: skip
    # `*.csv` applies under sub/ only; `/only_here.txt` is anchored at sub/
    expected = (
        "main.py", "other/a.csv", "sub/.gitignore", "sub/deeper/.gitignore", "sub/deeper/keep.csv",
        "sub/deeper/only_here.txt", "top.csv",
    )  # fmt: skip
    assert pack(root).files == expected
    assert pack(root, extra_ignores=["!sub/a.csv", "top.csv"]).files == tuple(
        sorted({*expected, "sub/a.csv"} - {"top.csv"})
    )


def test_flyteignore_and_dockerignore_follow_dockers_rules(tmp_path):
    root = write(
        tmp_path / "p",
        {
            "main.py": "", ".dockerignore": "data\n!data/keep.csv\n**/*.tmp\n*.md\n", ".flyteignore": "# notes\nnotes/\n",
            "data/a.csv": "", "data/keep.csv": "", "x.tmp": "", "deep/y.tmp": "", "README.md": "", "docs/guide.md": "",
            "notes/n.txt": "",
        },
    )  # fmt: skip
    # docker: anchored at the root (`*.md` spares docs/), `!` re-includes inside an excluded folder
    assert pack(root).files == (".dockerignore", ".flyteignore", "data/keep.csv", "docs/guide.md", "main.py")
    write(root, {".gitignore": "keep.csv\n"})  # a file either kind of rule leaves out stays out
    assert "data/keep.csv" not in pack(root).files


def test_a_git_repository_gives_the_bundle_of_a_plain_copy_whatever_the_users_git_config(tmp_path, monkeypatch):
    repo = project(tmp_path / "repo")
    write(repo, {".gitignore": "*.log\n", "run.log": "x", "sub/.gitignore": "*.csv\n", "sub/a.csv": "x"})
    write(repo, {"forced.log": "tracked anyway", "sub/b.log": "x", "sub/job.py": ""})
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "add", "-f", "forced.log")
    git(repo, "commit", "-qm", "files")
    (repo / ".git/info/exclude").write_text("main.py\n")
    home = write(tmp_path / "home", {"excludes": "pkg/\n"})
    (home / ".gitconfig").write_text(f"[core]\n\texcludesFile = {home / 'excludes'}\n\tignoreCase = true\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))  # a stray variable in the user's shell
    write(repo, {"MAIN.PY": "", "café.log": "x", "naïve.py": ""})  # no case folding; names git would quote
    in_repo = pack(repo)
    # tracked or not, `*.log` leaves forced.log out; .git/ never goes in
    assert in_repo.files == (
        ".gitignore", "MAIN.PY", "main.py", "naïve.py", "pkg/__init__.py", "pkg/util.py", "run.sh",
        "sub/.gitignore", "sub/job.py",
    )  # fmt: skip
    plain = shutil.copytree(repo, tmp_path / "plain", ignore=shutil.ignore_patterns(".git"))
    assert pack(plain) == in_repo
    # a .gitignore above the source is not read: a bundle depends only on the folder's own files
    assert pack(repo / "sub").files == (".gitignore", "b.log", "job.py")


def test_a_git_repository_inside_the_source_is_refused_unless_ignored(tmp_path):
    root = project(tmp_path / "p")
    write(root, {"vendor/lib/code.py": "", "vendor/lib/.env": "TOKEN=secret"})
    git(root / "vendor/lib", "init", "-q")
    with pytest.raises(UserError, match="'vendor/lib/' is a git repository inside the bundle source"):
        pack(root)
    assert not any(name.startswith("vendor/") for name in pack(root, extra_ignores=["vendor/lib/"]).files)


def test_packing_a_folder_refuses_rather_than_skip_rules_it_cannot_apply(tmp_path, monkeypatch):
    root = project(tmp_path / "p")
    write(root, {"shared-ignore": "*.log\n", "debug.log": "secret"})
    (root / ".gitignore").symlink_to("shared-ignore")  # git does not follow a symlinked .gitignore
    with pytest.raises(UserError, match="git could not apply the ignore rules .*unable to access '.gitignore'"):
        pack(root)
    (root / ".gitignore").unlink()
    with pytest.raises(UserError, match="ignore pattern 'a\\\\n!b' spans lines"):
        pack(root, extra_ignores=["a\n!b"])
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    with pytest.raises(UserError, match="packing a folder needs git on PATH"):
        pack(root)
    assert pack(root / "main.py").files == ("main.py",)  # a single file needs no rules


def test_prebuiltignore_is_read_as_git_reads_an_ignore_file(tmp_path):
    assert gitignore_patterns("\ufeff# c\r\n*.log  \r\n\n   \nfoo\\ \n\\#hash\n!keep\nbar\\\\  \nx") == [
        "*.log", "foo\\ ", "\\#hash", "!keep", "bar\\\\", "x",
    ]  # fmt: skip
    root = write(tmp_path / "p", {"main.py": "", "a.log": "", "foo ": "", "#hash": "", "keep": "", "x": ""})
    write(root, {".prebuiltignore": "# comment\r\n*.log   \r\nfoo\\ \n\\#hash\n"})
    assert pack(root).files == (".prebuiltignore", "keep", "main.py", "x")


def test_a_missing_source_fails_the_task_definition_naming_source(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as error:
        ScriptTask("job", source=str(tmp_path / "missing"), command=["python", "main.py"])
    assert error.value.field == "source"
