"""Which files a folder bundle holds: .gitignore at any depth, .flyteignore, .dockerignore, .prebuiltignore,
``ignore=``, the defaults; in a git repository or not, whatever the user's git configuration, with or without
git installed. git itself is the reference the selection is compared with."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from flytekitplugins.prebuilt.kit.config import ConfigError
from flytekitplugins.prebuilt.kit.errors import UserError
from flytekitplugins.prebuilt.script import ScriptTask
from flytekitplugins.prebuilt.script.ignores import DEFAULT_IGNORES, gitignore_patterns
from flytekitplugins.prebuilt.script.packing import pack

from tests.unit.test_script_bundle import project, write


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd, check=True)


def git_lists(root: Path, patterns: list[str]) -> tuple[str, ...]:
    """The files git itself leaves in: ``git ls-files --others`` in a throwaway empty repository whose work tree
    is ``root``, with every .gitignore, then ``patterns`` as ``--exclude`` (how ignores.py chose before pathspec)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["git", "init", "-q", "--bare", "--template=", scratch], check=True, env=env)
        listing = subprocess.run(
            ["git", "-c", "core.ignoreCase=false", f"--git-dir={scratch}", f"--work-tree={root}", "ls-files", "-z",
             "--others", "--exclude-per-directory=.gitignore", *(f"--exclude={pattern}" for pattern in patterns)],
            cwd=root, env=env, capture_output=True, check=True,
        ).stdout  # fmt: skip
    return tuple(sorted(os.fsdecode(name) for name in listing.split(b"\0") if name))


def test_the_selection_is_the_one_git_lists_for_every_kind_of_pattern(tmp_path):
    root = write(
        tmp_path / "p",
        {
            ".gitignore": "*.log\n!keep.log\ndata/\n!data/keep.csv\nlogs/**\n!logs/keep.txt\n/anchored.txt\na/**/\n"
            "\\#hash\n lead.txt\ntail\\ \ntab\t\nx\\/y\n\\/z\nodd\\\n!\nq[ab\n[]w]\n*.[!t]mp\n**/deep/**\nm/**/n\n",
            "sub/.gitignore": "!app.log\n/only.txt\n*.csv\n", "sub/deeper/.gitignore": "!*.csv\n",
            "data/.gitignore": "!*\n",  # inside an ignored folder: never read
        },
    )  # fmt: skip
    names = [
        "main.py", "app.log", "keep.log", "sub/app.log", "sub/keep.log", "data/a.csv", "data/keep.csv",
        "other/data/b.csv", "x/data", "logs/a.txt", "logs/keep.txt", "logs/deep/b.txt", "anchored.txt",
        "sub/anchored.txt", "a/top.txt", "a/b/c.txt", "#hash", " lead.txt", "lead.txt", "tail ", "tail", "tab\t",
        "x/y", "z", "odd", "q[ab", "qa", "]", "b.amp", "b.tmp", "one/deep/two", "m/n", "m/k/l/n", "sub/only.txt",
        "sub/deeper/only.txt", "sub/x.csv", "sub/deeper/y.csv", "env", "bin/build", "build/out.py", "pkg/.env",
    ]  # fmt: skip
    write(root, dict.fromkeys(names, "x"))
    (root / "link.py").symlink_to("main.py")
    (root / "venv").symlink_to("a")  # a symlink is a file for git: `venv` matches it, `env/` would not
    extra = ["!/app.log", "sub/deeper/only.txt"]
    kept = pack(root, extra_ignores=extra).files
    assert kept == git_lists(root, [*DEFAULT_IGNORES, *extra])
    # what that means, for a few of them
    left_out = {"data/keep.csv", "logs/a.txt", "a/b/c.txt", "sub/only.txt", "sub/x.csv", " lead.txt", "tab\t", "x/y"}
    assert left_out.isdisjoint(kept)
    assert {"logs/keep.txt", "a/top.txt", "sub/app.log", "sub/deeper/y.csv", "app.log", "lead.txt", "z"} <= {*kept}


POOL = [
    "a", "/a", "a/", "!a/", "!a", "*.log", "!*.log", "a/**", "!b/**", "**/b", "a/**/b", "**", "*", "**/", "a/**/",
    "[ab]", "[!a]", "?.log", "c*", "a/*/c.log", "!/a", "b", "!b", "b/", "!b/", "/*", "!/*/", "*/", "**/a/**", "a/b",
    "!a/b", "a/b/", "*.lo[g]", "!**/c.log", "x", "!*", "\\!x", "!\\!x", "x\\ ", " x", "x\t", "\\#x", "[]x]", "a\\/b",
    "\\/a", "a\\", "!", "x[ab", "**b", "a**", "a//b", "./a",
]  # fmt: skip
NAMES = ["a", "b", "c.log", "x", "x ", " x", "!x", "#x", "x\t", "]", "ab", "xb"]


def random_tree(root: Path, rnd: random.Random, depth: int = 0) -> None:
    root.mkdir()
    for name in rnd.sample(NAMES, rnd.randint(1, 5)):
        if depth < 3 and name in ("a", "b") and rnd.random() < 0.7:
            random_tree(root / name, rnd, depth + 1)
        else:
            (root / name).write_text("x")
    if rnd.random() < 0.6:
        (root / ".gitignore").write_text("".join(rnd.choice(POOL) + "\n" for _ in range(rnd.randint(1, 4))))


def test_random_trees_and_ignore_files_give_what_git_lists(tmp_path):
    rnd = random.Random(2024)
    for case in range(40):
        root = tmp_path / str(case)
        random_tree(root, rnd)
        (root / "keep.py").write_text("")  # never an empty bundle
        extra = gitignore_patterns("\n".join(rnd.choice(POOL) for _ in range(rnd.randint(0, 3))) + "\n!keep.py")
        assert pack(root, extra_ignores=extra).files == git_lists(root, [*DEFAULT_IGNORES, *extra]), (case, extra)


def test_an_ignored_folder_is_not_entered_so_nothing_inside_comes_back(tmp_path):
    root = write(
        tmp_path / "p",
        {
            ".gitignore": "data/\n!data/keep.csv\nlogs/**\n!logs/keep.txt\nvendor/\ncache/**/\n",
            "main.py": "", "data/keep.csv": "", "logs/a.txt": "", "logs/keep.txt": "", "cache/top.txt": "",
            "cache/deep/x": "", "vendor/x.py": "", "vendor/.gitignore": "[[:alpha:]]\n!*\n",  # never read
        },
    )  # fmt: skip
    # as in git: `data/` hides the folder from `!data/keep.csv`; `logs/**` leaves out what is inside logs/, not
    # logs/ itself; `cache/**/` leaves out the folders below cache/
    assert pack(root).files == (".gitignore", "cache/top.txt", "logs/keep.txt", "main.py")
    assert "data/keep.csv" in pack(root, extra_ignores=["!data/"]).files  # ignore= has the last word
    write(root, {".gitignore": "data/*\n!data/keep.csv\nvendor/\n", "data/other.csv": ""})  # docs/script/bundles.md
    assert pack(root).files == (
        ".gitignore", "cache/deep/x", "cache/top.txt", "data/keep.csv", "logs/a.txt", "logs/keep.txt", "main.py",
    )  # fmt: skip


def test_packing_and_defining_a_task_need_no_git(tmp_path):
    root = project(tmp_path / "p")
    write(root, {".gitignore": "*.log\n", "debug.log": "x", "sub/.gitignore": "!keep.log\n", "sub/keep.log": "x"})
    no_git = tmp_path / "bin"
    no_git.mkdir()
    assert shutil.which("git", path=str(no_git)) is None
    module = "from flytekitplugins.prebuilt.script import ScriptTask\n"
    module += f"task = ScriptTask('job', source={str(root)!r}, command=['python', 'main.py'])\n"
    module += "print(task.bundle.sha256, *task.bundle.files)\n"
    (tmp_path / "workflow.py").write_text(module)
    done = subprocess.run(
        [sys.executable, "workflow.py"], cwd=tmp_path, env={**os.environ, "PATH": str(no_git)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = pack(root)  # here, with git on PATH: the same bytes
    assert done.stdout.split() == [expected.sha256, *expected.files]
    assert "sub/keep.log" in expected.files and "debug.log" not in expected.files


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
            "main.py": "", ".dockerignore": "data\n!data/keep.csv\n**/*.tmp\n*.md\n",
            ".flyteignore": "# notes\nnotes/\n",
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
    write(root, {"vendor/sub/.git": "gitdir: ../../.git/modules/sub\n", "vendor/sub/x.py": ""})  # a submodule
    with pytest.raises(UserError, match="'vendor/sub/' is a git repository inside the bundle source"):
        pack(root, extra_ignores=["vendor/lib/"])


def test_packing_a_folder_refuses_rather_than_skip_rules_it_cannot_apply(tmp_path):
    root = project(tmp_path / "p")
    write(root, {"shared-ignore": "*.log\n", "debug.log": "secret"})
    (root / ".gitignore").symlink_to("shared-ignore")  # git does not follow a symlinked .gitignore
    with pytest.raises(UserError, match="cannot apply the ignore rules .*'.gitignore' is a symlink"):
        pack(root)
    (root / ".gitignore").unlink()
    os.mkfifo(root / "pkg/.gitignore")
    with pytest.raises(UserError, match="'pkg/.gitignore' is not a regular file"):
        pack(root)
    (root / "pkg/.gitignore").unlink()
    # patterns pathspec would read differently from git are refused by name
    for pattern in ("[[:alpha:]].log", "[\\]].log", "[a\\-z]", "a[/]b"):
        write(root, {"pkg/.gitignore": pattern + "\n"})
        with pytest.raises(UserError, match=re.escape(f"gitignore pattern {pattern!r} in pkg/.gitignore cannot be")):
            pack(root)
    (root / "pkg/.gitignore").unlink()
    with pytest.raises(UserError, match=r"'\[z-a\]' in the ignore patterns .*bad character range z-a"):
        pack(root, extra_ignores=["[z-a]"])
    with pytest.raises(UserError, match="ignore pattern 'a\\\\n!b' spans lines"):
        pack(root, extra_ignores=["a\n!b"])
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
