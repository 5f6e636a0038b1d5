"""Which files of a source folder go into its bundle: the ignore files Flyte users already keep.

Two kinds of rules, and a file is left out when either leaves it out:

- ``.flyteignore`` and ``.dockerignore`` at the root of the source, through flytekit's own ``FlyteIgnore``
  and ``DockerIgnore`` (flytekit/tools/ignore.py, what fast registration applies): docker's pattern rules,
  anchored at the root (``**/x`` for any depth), ``!`` re-includes, even inside an excluded folder.
- gitignore rules: every ``.gitignore`` inside the source, at any depth, each relative to its own folder,
  then ``DEFAULT_IGNORES``, ``.prebuiltignore`` and the task's ``ignore=`` patterns, which have the last
  word. Patterns are translated by pathspec (``GitWildMatchPattern``, git's wildmatch) in pure Python, so
  packing needs no git executable.

The folder is walked the way git walks a work tree (git's dir.c, ``last_matching_pattern`` and
``treat_directory``): the last matching pattern decides, a deeper ``.gitignore`` comes later than the ones
above it, and the ignore patterns come last of all; an ignored folder is not entered, so nothing inside it
can be re-included and its ``.gitignore`` is not read; a symlink is a file (never followed); entries named
``.git`` are never packed. pathspec's ``GitIgnoreSpec`` decides on whole paths instead, so it cannot know
that an ignored folder hides its files (``data/`` then ``!data/keep.csv`` keeps the file for it, not for
git), so the walk matches each path as it reaches it, with pathspec's regular expressions cut to the path
itself (``_OR_BELOW``). What pathspec reads differently from git is rewritten first (``_for_pathspec``), or
refused by name: a backslash, a ``[:class:]`` or a ``/`` inside ``[...]``.

Why not flytekit's ``GitIgnore``: it runs git in the enclosing repository (``git ls-files -io
--exclude-standard``), so without git or outside a repository it applies nothing, and inside one the answer
depends on what is tracked and on the user's git configuration. Here the selection depends only on the
folder's own files: the same in or out of a repository, with or without git, on any machine. Packing is
refused, rather than shipping files the user asked to leave out, when a folder or a ``.gitignore`` cannot
be read (a symlinked ``.gitignore``, which git does not follow either) and for a git repository inside the
source (a separate project whose own ignore rules partly live in its ``.git`` folder).
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
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
GITIGNORE = ".gitignore"

# pathspec's regex endings that also match everything below the named path (`foo`, `foo/`): the walk matches
# each path itself, so they become the end of the path, and `foo/` matches folders only.
_OR_BELOW = "(?:(?P<ps_d>/).*)?$"
_FOLDER_OR_BELOW = "(?P<ps_d>/).*$"
_ANY_FOLDERS_BELOW = "(?:/.+)?$"  # an inner `**`: zero or more folders


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


def _for_pathspec(pattern: str) -> str | None:
    """The pattern as pathspec must read it to mean what it means to git; None where git never matches it.

    pathspec strips whitespace at both ends and splits at every ``/``, escaped or not; git does neither, so
    whitespace goes in brackets (``foo\\ `` and `` lead`` keep their spaces) and ``a\\/b`` becomes ``a/b``.
    pathspec reads ``[...]`` without escapes or classes, so a backslash, ``[:alpha:]`` or ``/`` inside one is
    refused rather than matched differently.
    """
    out, i, n = [], 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 == n:
                return None  # a trailing backslash: git's wildmatch never matches
            escaped = pattern[i + 1]
            if escaped == "/" and i == int(pattern.startswith("!")):
                return None  # `\/a`: not an anchor for git, and no relative path starts with a slash
            if escaped == "/" and i + 2 < n:
                out.append("/")  # `a\/b` is `a/b`; a final `\/` is left to pathspec, which never matches it
            elif escaped.isspace():
                out.append(f"[{escaped}]")
            else:
                out.append(char + escaped)
            i += 2
        elif char == "[":
            end = _bracket_end(pattern, i)
            if end is None:
                return None  # an unterminated `[`: git's wildmatch never matches
            bracket = pattern[i : end + 1]
            if "\\" in bracket or "[:" in bracket[1:] or "/" in bracket:
                raise _UnsupportedPattern(f"{bracket!r} (a backslash, a [:class:] or a '/' inside [...])")
            out.append(bracket)
            i = end + 1
        else:
            out.append(f"[{char}]" if char.isspace() else char)
            i += 1
    return "".join(out)


def _bracket_end(pattern: str, start: int) -> int | None:
    """Index of the ``]`` closing the bracket expression at ``start`` (a ``]`` right after ``[`` or ``[!`` is
    a member), as git's wildmatch and pathspec both find it."""
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    end = pattern.find("]", i)
    return None if end < 0 else end


class _UnsupportedPattern(ValueError):
    """A gitignore pattern that pathspec would match differently from git."""


@dataclass(frozen=True)
class _Pattern:
    """One gitignore pattern, matched against paths relative to ``base`` (its file's folder, ``""`` or
    ``"sub/"``); ``ignores`` is False for a ``!`` pattern."""

    base: str
    regex: re.Pattern[str]
    ignores: bool
    folders_only: bool

    @classmethod
    def parse(cls, pattern: str, base: str) -> _Pattern | None:
        # Imported here: pathspec is an author-side dependency. The images install flytekit and the type's extra,
        # then this package with --no-deps (build_tools/building.py), and their executor imports this module
        # through bundle, to extract.
        from pathspec.patterns.gitwildmatch import GitWildMatchPattern, GitWildMatchPatternError

        translated = _for_pathspec(pattern)
        if translated is None:
            return None
        try:
            regex, ignores = GitWildMatchPattern.pattern_to_regex(translated)
        except GitWildMatchPatternError:
            return None  # a lone `!`: git's wildmatch never matches it either
        if regex is None:
            return None
        folders_only = regex.endswith(_FOLDER_OR_BELOW)
        for below in (_OR_BELOW, _FOLDER_OR_BELOW):
            if regex.endswith(below):
                regex = regex[: -len(below)] + "$"
        if folders_only and regex.endswith(_ANY_FOLDERS_BELOW):  # `a/**/`: folders below a, not a itself
            regex = regex[: -len(_ANY_FOLDERS_BELOW)] + "/.+$"
        if "ps_d" in regex:  # a pathspec outside the pinned range translated differently: fail loudly
            raise RuntimeError(f"unexpected pathspec translation of gitignore pattern {pattern!r}: {regex}")
        try:
            with warnings.catch_warnings():  # `[[]`, `[a&&b]`: literal, as in git; re warns they may change
                warnings.simplefilter("ignore", FutureWarning)
                return cls(base, re.compile(regex), ignores, folders_only)
        except re.error as exc:
            raise _UnsupportedPattern(f"{exc} (a range such as [z-a])") from exc

    def matches(self, path: str, is_folder: bool) -> bool:
        if self.folders_only and not is_folder:
            return False
        return path.startswith(self.base) and self.regex.match(path[len(self.base) :]) is not None


def _parse_all(patterns: Sequence[str], base: str, source: str) -> list[_Pattern]:
    parsed = []
    for pattern in patterns:
        try:
            one = _Pattern.parse(pattern, base)
        except _UnsupportedPattern as exc:
            raise UserError(
                f"gitignore pattern {pattern!r} in {source} cannot be applied as git applies it: {exc}; "
                "write the characters out ([a-zA-Z] for [[:alpha:]], [-a] for [\\-a])"
            ) from exc
        if one is not None:
            parsed.append(one)
    return parsed


def _ignored(path: str, is_folder: bool, patterns: Sequence[_Pattern]) -> bool:
    """The last matching pattern decides (git's ``last_matching_pattern``)."""
    for pattern in reversed(patterns):
        if pattern.matches(path, is_folder):
            return pattern.ignores
    return False


class GitignoreRules(Ignore):
    """gitignore rules (nested ``.gitignore`` files, then ``patterns`` with the last word), applied in a walk.

    ``kept`` holds every file (and symlink) the rules keep, as posix paths relative to the root; anything else,
    including ``.git`` entries, is ignored.
    """

    def __init__(self, root: str, patterns: Sequence[str]):
        super().__init__(root)
        self.kept = _kept(root, _parse_all(patterns, "", "the ignore patterns (defaults, .prebuiltignore, ignore=)"))

    def _is_ignored(self, path: str) -> bool:
        return Path(path).as_posix() not in self.kept


class SourceIgnore(IgnoreGroup):
    """flytekit's ``IgnoreGroup`` of ``FlyteIgnore`` and ``DockerIgnore``, plus :class:`GitignoreRules` fed with
    ``DEFAULT_IGNORES``, the root ``.prebuiltignore`` and ``extra_ignores``."""

    def __init__(self, root: str, extra_ignores: Sequence[str] = ()):
        for pattern in extra_ignores:
            if "\n" in pattern or "\r" in pattern:
                raise UserError(f"ignore pattern {pattern!r} spans lines; give one pattern per entry")
        own = Path(root, IGNORE_FILE)
        own_patterns = gitignore_patterns(os.fsdecode(own.read_bytes())) if own.is_file() else []
        self.git = GitignoreRules(
            root, [*DEFAULT_IGNORES, *own_patterns, *gitignore_patterns("\n".join(extra_ignores))]
        )
        super().__init__(root, [FlyteIgnore, DockerIgnore])
        self.ignores.append(self.git)

    def kept_files(self) -> list[str]:
        """The files that go into the bundle: sorted posix paths relative to the root."""
        return sorted(path for path in self.git.kept if not self.is_ignored(path))


def _kept(root: str, last_word: list[_Pattern]) -> frozenset[str]:
    """Walk ``root`` as git walks a work tree; ``last_word`` comes after every ``.gitignore``."""
    kept: list[str] = []
    nested: list[str] = []
    folders: list[tuple[str, list[_Pattern]]] = [("", [])]  # (posix path with a trailing slash, inherited)
    while folders:
        folder, inherited = folders.pop()
        in_effect = [*inherited, *_parse_all(_read_gitignore(root, folder), folder, folder + GITIGNORE)]
        patterns = [*in_effect, *last_word]
        for entry in _entries(root, folder):
            path = folder + entry.name
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False) or entry.is_symlink()
            except OSError as exc:
                raise UserError(f"cannot apply the ignore rules of {root}: cannot read {path!r}: {exc}") from exc
            if entry.name == ".git" or not (is_folder or is_file) or _ignored(path, is_folder, patterns):
                continue  # git lists no .git entry, socket, pipe or device
            if not is_folder:
                kept.append(path)
            elif os.path.lexists(os.path.join(entry.path, ".git")):
                nested.append(path + "/")
            else:
                folders.append((path + "/", in_effect))
    if nested:
        first = min(nested)
        raise UserError(
            f"{first!r} is a git repository inside the bundle source; it is a separate project (a submodule or "
            "a clone) whose ignore rules partly live in its .git folder, so its files cannot be selected "
            f"safely: ignore it (ignore=[{first!r}]), remove its .git, or bundle it as a source of its own"
        )
    return frozenset(kept)


def _entries(root: str, folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(os.path.join(root, folder)) as listing:
            return sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        where = repr(folder) if folder else "the folder itself"
        raise UserError(f"cannot apply the ignore rules of {root}: cannot read {where}: {exc.strerror}") from exc


def _read_gitignore(root: str, folder: str) -> list[str]:
    """A folder's ``.gitignore`` patterns; one that cannot be read refuses the bundle rather than apply less."""
    path = os.path.join(root, folder, GITIGNORE)
    name = folder + GITIGNORE
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            raise UserError(
                f"cannot apply the ignore rules of {root}: {name!r} is a symlink, which git does not follow; "
                "make it a regular file"
            )
        if not stat.S_ISREG(mode):
            raise UserError(f"cannot apply the ignore rules of {root}: {name!r} is not a regular file")
        with open(path, "rb") as file:
            return gitignore_patterns(os.fsdecode(file.read()))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(f"cannot apply the ignore rules of {root}: cannot read {name!r}: {exc.strerror}") from exc
