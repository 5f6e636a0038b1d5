"""Which files of a source folder go into its bundle: the ignore files Flyte users already keep.

Two kinds of rules, and a file is left out when either leaves it out:

- ``.flyteignore`` and ``.dockerignore`` at the root of the source, through flytekit's own ``FlyteIgnore``
  and ``DockerIgnore`` (flytekit/tools/ignore.py, what fast registration applies): docker's pattern rules,
  anchored at the root (``**/x`` for any depth), ``!`` re-includes, even inside an excluded folder.
- gitignore rules, evaluated by git itself (``git ls-files --others``, no matcher of ours): every
  ``.gitignore`` inside the source, at any depth, then ``DEFAULT_IGNORES``, ``.prebuiltignore`` and the
  task's ``ignore=`` patterns, which have the last word (within them, the last matching pattern wins).

Why not flytekit's ``GitIgnore``: it asks the enclosing repository (``git ls-files -io --exclude-standard``),
so outside a repository it applies nothing, inside one the answer depends on what is tracked and on the
user's global git configuration, and it parses quoted output, so an ignored name git quotes (``café.log``)
is not ignored. Here git runs against a throwaway empty repository whose work tree is the source folder:
what is packed depends only on the folder's files, in or out of a repository, on any machine. Git must be
on PATH; without it (or when git cannot read a folder or an ignore file) packing is refused rather than
shipping files the user asked to leave out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from flytekit.tools.ignore import DockerIgnore, FlyteIgnore, Ignore, IgnoreGroup
from flytekitplugins.prebuilt.kit.errors import UserError

# Names without a trailing slash also match a symlink of that name (git: a symlink is not a directory).
DEFAULT_IGNORES: tuple[str, ...] = (
    ".git/", ".hg", ".svn", ".env", ".env.*", "__pycache__", "*.pyc", ".venv", "venv", "env/",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", "node_modules", ".DS_Store",
    "*.egg-info/", "dist/", "build/",
)  # fmt: skip
IGNORE_FILE = ".prebuiltignore"

# Machine-independent matching: case-sensitive, names as stored on disk (macOS), any owner of the folder,
# no file-system monitor hook (git older than 2.32 still reads ~/.gitconfig).
_GIT_CONFIG = (
    "-c", "core.ignoreCase=false", "-c", "core.precomposeUnicode=false", "-c", "safe.directory=*",
    "-c", "core.fsmonitor=false",
)  # fmt: skip


def gitignore_patterns(text: str) -> list[str]:
    """A gitignore file's patterns as git reads one (dir.c, ``add_patterns_from_buffer``): blank lines and
    ``#`` comments dropped, a trailing CR and unescaped trailing spaces trimmed."""
    patterns = []
    for line in text.removeprefix("\ufeff").split("\n"):
        line = line.removesuffix("\r")
        stripped = line.rstrip(" ")
        if len(stripped) < len(line) and (len(stripped) - len(stripped.rstrip("\\"))) % 2:
            stripped += " "  # `foo\ ` keeps its escaped space
        if stripped and not stripped.startswith("#"):
            patterns.append(stripped)
    return patterns


class GitRules(Ignore):
    """gitignore rules (nested ``.gitignore`` files, then ``patterns`` with the last word), applied by git.

    ``kept`` holds every file (and symlink) git keeps, as posix paths relative to the root; anything else,
    including ``.git`` folders, which git never lists, is ignored.
    """

    def __init__(self, root: str, patterns: Sequence[str]):
        super().__init__(root)
        self.kept = _kept_by_git(root, patterns)

    def _is_ignored(self, path: str) -> bool:
        return Path(path).as_posix() not in self.kept


class SourceIgnore(IgnoreGroup):
    """flytekit's ``IgnoreGroup`` of ``FlyteIgnore`` and ``DockerIgnore``, plus :class:`GitRules` fed with
    ``DEFAULT_IGNORES``, the root ``.prebuiltignore`` and ``extra_ignores``."""

    def __init__(self, root: str, extra_ignores: Sequence[str] = ()):
        for pattern in extra_ignores:
            if "\n" in pattern or "\r" in pattern:
                raise UserError(f"ignore pattern {pattern!r} spans lines; give one pattern per entry")
        own = Path(root, IGNORE_FILE)
        own_patterns = gitignore_patterns(os.fsdecode(own.read_bytes())) if own.is_file() else []
        self.git = GitRules(root, [*DEFAULT_IGNORES, *own_patterns, *gitignore_patterns("\n".join(extra_ignores))])
        super().__init__(root, [FlyteIgnore, DockerIgnore])
        self.ignores.append(self.git)

    def kept_files(self) -> list[str]:
        """The files that go into the bundle: sorted posix paths relative to the root."""
        return sorted(path for path in self.git.kept if not self.is_ignored(path))


def _kept_by_git(root: str, patterns: Sequence[str]) -> frozenset[str]:
    git = shutil.which("git")
    if git is None:
        raise UserError(
            "packing a folder needs git on PATH: git applies the folder's .gitignore files and the bundle's "
            "ignore patterns (install git, or pack a single file)"
        )
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)  # no user or system configuration
    with tempfile.TemporaryDirectory(prefix="prebuilt-ignore-") as scratch:
        _git([git, "init", "--quiet", "--bare", "--template=", scratch], root, env)
        listing = _git(
            [git, *_GIT_CONFIG, f"--git-dir={scratch}", f"--work-tree={root}", "ls-files", "-z", "--others",
             "--exclude-per-directory=.gitignore", *(f"--exclude={pattern}" for pattern in patterns)],
            root, env,
        )  # fmt: skip
    names = [os.fsdecode(name) for name in listing.split(b"\0") if name]
    nested = sorted(name for name in names if name.endswith("/"))
    if nested:
        raise UserError(
            f"{nested[0]!r} is a git repository inside the bundle source; git applies no ignore rules inside "
            f"another repository, so its files cannot be selected safely: ignore it (ignore=[{nested[0]!r}]), "
            "remove its .git, or bundle it as a source of its own"
        )
    return frozenset(names)


def _git(argv: list[str], cwd: str, env: dict[str, str]) -> bytes:
    """Run git; a failure, or any warning (a folder or ignore file it could not read), refuses the bundle."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    problem = os.fsdecode(done.stderr).strip()
    if done.returncode != 0 or problem:
        raise UserError(f"git could not apply the ignore rules of {cwd}: {problem or f'exit code {done.returncode}'}")
    return done.stdout
