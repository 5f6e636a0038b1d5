"""Docs are tested: every ```python, ```bash, ```sh and ```console block of README.md and docs/**/*.md runs here
as written, one test per block (id `page:line`, the line of its opening fence), so that a new user who copies a
block gets what the page says.

The rules a page can rely on:

- Each page gets a fresh working copy of the repository: the files `git ls-files` lists (tracked, or untracked and
  not ignored: what a clone holds, no `examples/data`), and the repository's `.venv`, linked. Its blocks run in
  document order, from the copy's root; the test of a block first runs the page's earlier blocks, so a block may
  use what an earlier one made (`make demo`'s database) or defined. A block whose earlier block failed fails too.
- ```python blocks of one page share one interpreter (the venv's python): each runs in turn in one `__main__`, as
  if the page's blocks were pasted one after another into a script saved at the copy's root (`__name__ ==
  "__main__"`, that root first on `sys.path`), so names defined by one block are there for the next.
- A ```python block whose first line is a comment naming a file (`# plugins/echo/config.py`) is that file of a
  walk-through: the page's file blocks are all written to their paths in the copy before its first block runs.
  In its turn, a file under `plugins/` or `executors/` is imported as the module it is in the package (those
  folders of the copy join the installed package's, in every process of the page), any other is run as a script.
- ```bash and ```sh blocks run with `bash -euo pipefail` at the copy's root; ```console blocks the same with their
  `$ ` lines (the others are output). `PATH` starts with the venv's `bin`, as in an activated environment, and
  `TMPDIR` is the page's own temporary folder.
- A block that runs a task in its image (`--in-container`, `in_container=True`) gets the images the suite builds
  (the `sql_image` and `script_image` fixtures of tests/conftest.py).
- A block not meant to run as is says so on the line right before its fence, `<!-- not-run: REASON -->`, REASON
  one of ALLOWED_REASONS. It never runs; its test checks what can be checked without running it: `make -n TARGET`
  succeeds for each `make` command, and `flyte-prebuilt ... --help` lists every option a `flyte-prebuilt` command
  uses. A runnable block may not call the long make targets (LONG_TARGETS): they would run the suite from inside it.
"""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from tests.conftest import NO_DOCKER_HOST

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv"
LANGUAGES = {"python": "python", "bash": "bash", "sh": "bash", "console": "console"}
ALLOWED_REASONS = (
    "runs the whole suite",
    "builds the images",
    "pushes to a registry",
    "runs the benchmarks",
    "needs a Flyte cluster",
    "needs cloud credentials",
    "output shown, not a command",
)
LONG_TARGETS = {"test", "bench", "images", "images-gpu", "gpu-check", "images-offline", "publish", "release"}
IN_CONTAINER = re.compile(r"--in-container|in_container\s*=\s*True")
IMAGE_FIXTURES = ("sql_image", "script_image")
BLOCK_TIMEOUT = 300  # seconds for one block
TEST_ONLY_ENV = {"FLYTE_EXIT_ON_USER_EXCEPTION"}  # set by tests/conftest.py; a user's shell has none of these

FENCE = re.compile(r"^(?P<indent> {0,3})```(?P<info>[^`]*)$")
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")
FILE_LINE = re.compile(r"^# (?P<path>[\w.-]+(?:/[\w.-]+)*\.py)\s*$")
PACKAGES = {"plugins": "flytekitplugins.prebuilt", "executors": "flytekitplugins.prebuilt.executors"}


@dataclass(frozen=True)
class Block:
    page: str  # relative to ROOT, posix
    line: int  # of the opening fence, 1-based
    language: str  # python, bash or console
    code: str
    not_run: Optional[str]  # the reason, when marked

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def file(self) -> Optional[str]:
        """The path this block is the content of, for a walk-through's file block."""
        match = self.language == "python" and FILE_LINE.match(self.code.partition("\n")[0])
        return match.group("path") if match else None

    @property
    def needs_images(self) -> bool:
        return bool(IN_CONTAINER.search(self.code))


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks_of(page: Path) -> list[Block]:
    """The page's fenced blocks in a language this test runs, with their not-run marker if any."""
    lines, found, index = page.read_text().splitlines(), [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, words = opening.group("indent"), opening.group("info").split()
        end = next((j for j in range(index + 1, len(lines)) if lines[j].strip() == "```"), len(lines))
        language = LANGUAGES.get(words[0] if words else "")
        if language:
            marker = NOT_RUN.match(lines[index - 1]) if index else None
            code = "\n".join(line.removeprefix(indent) for line in lines[index + 1 : end])
            found.append(
                Block(
                    page=page.relative_to(ROOT).as_posix(),
                    line=index + 1,
                    language=language,
                    code=code + "\n",
                    not_run=marker.group("reason") if marker else None,
                )
            )
        index = end + 1
    return found


BLOCKS = [block for page in doc_pages() for block in blocks_of(page)]


def shell_script(block: Block) -> str:
    """What bash runs for the block: a console block's `$ ` lines (and their continuation lines), unprompted."""
    if block.language != "console":
        return block.code
    kept, continued = [], False
    for line in block.code.splitlines():
        if line.startswith("$ ") or continued:
            kept.append(line[2:] if line.startswith("$ ") and not continued else line)
            continued = line.endswith("\\")
    return "\n".join(kept) + "\n"


def commands(block: Block) -> list[list[str]]:
    """The block's shell commands as words (continuation lines joined, comments dropped), for the checks."""
    joined = re.sub(r"\\\n", " ", shell_script(block))
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def make_targets(words: list[str]) -> list[str]:
    return [w for w in words[1:] if not w.startswith("-") and "=" not in w] if words[:1] == ["make"] else []


# ------------------------------------------------------------------ running a page

DRIVER = '''
"""Runs a page's python blocks one after another in one __main__ (tests/integration/test_docs_snippets.py)."""
import importlib, os, runpy, sys, traceback, types

control = os.fdopen(int(sys.argv[1]), "w")
main = types.ModuleType("__main__")
main.__dict__["__builtins__"] = __builtins__
sys.modules["__main__"] = main
sys.path[0] = os.getcwd()
for request in sys.stdin:
    how, _, what = request.rstrip("\\n").partition(" ")
    ok = True
    try:
        if how == "exec":
            main.__file__ = what
            with open(what) as f:
                exec(compile(f.read(), what, "exec", dont_inherit=True), main.__dict__)
        elif how == "import":
            importlib.import_module(what)
        else:
            runpy.run_path(what, run_name="__main__")
    except SystemExit as stop:
        ok = stop.code in (None, 0)
    except BaseException:
        traceback.print_exc()
        ok = False
    sys.stdout.flush()
    sys.stderr.flush()
    control.write("ok\\n" if ok else "failed\\n")
    control.flush()
'''

SITECUSTOMIZE = """
# The working copy's plugins/ and executors/ join the installed package (tests/integration/test_docs_snippets.py).
import flytekitplugins.prebuilt, flytekitplugins.prebuilt.executors
flytekitplugins.prebuilt.__path__.append({plugins!r})
flytekitplugins.prebuilt.executors.__path__.append({executors!r})
"""


@dataclass
class Outcome:
    ok: bool
    output: str


def working_copy(target: Path) -> Path:
    """What a clone holds (tracked files, untracked ones not ignored), with the repository's .venv linked."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() or source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name, follow_symlinks=False)  # times kept: make sees what is up to date
    (target / ".venv").symlink_to(VENV)
    # The Makefile reinstalls the venv when pyproject.toml is newer than its stamp; from the copy that would point
    # the shared venv's editable install at a temporary folder. The copy's pyproject.toml is dated no later.
    stamp = VENV / ".installed"
    if not stamp.exists():
        pytest.fail("the venv has no .installed stamp: run `make .venv/.installed` in the repository first")
    if (target / "pyproject.toml").stat().st_mtime > stamp.stat().st_mtime:
        os.utime(target / "pyproject.toml", (stamp.stat().st_atime, stamp.stat().st_mtime))
    return target


def guard(name: str, value: str) -> bool:
    """The address tests/conftest.py gives Docker in a test without the docker mark: a page's processes outlive the
    test that started them, and a later block of the page may need Docker (that block's test is marked)."""
    return name == "DOCKER_HOST" and value == NO_DOCKER_HOST


class PageRun:
    """One page's working copy, its python interpreter and what each of its blocks did."""

    def __init__(self, page: str, folder: Path):
        self.blocks = [block for block in BLOCKS if block.page == page]
        self.folder = folder
        self.copy = working_copy(folder / "copy")
        (folder / "tmp").mkdir()
        (folder / "site").mkdir()
        (folder / "site" / "sitecustomize.py").write_text(
            SITECUSTOMIZE.format(plugins=str(self.copy / "plugins"), executors=str(self.copy / "executors"))
        )
        for block in self.blocks:
            if block.file and not block.not_run:
                path = self.copy / block.file
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.code)
        # make in the copy must never reinstall the shared venv (its editable install would then point at this
        # temporary copy): a `make` first on PATH treats the venv's stamp as up to date, whatever the dates say
        wrappers = folder / "bin"
        wrappers.mkdir(exist_ok=True)
        (wrappers / "make").write_text(f'#!/bin/sh\nexec {shutil.which("make")} -o .venv/.installed "$@"\n')
        (wrappers / "make").chmod(0o755)
        self.env = {
            **{
                name: value
                for name, value in os.environ.items()
                if name not in TEST_ONLY_ENV and not guard(name, value)
            },
            "PATH": f"{wrappers}{os.pathsep}{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(VENV),
            "TMPDIR": str(folder / "tmp"),
            "PYTHONPATH": str(folder / "site"),
            "PYTHONUNBUFFERED": "1",
        }
        self.outcomes: dict[int, Outcome] = {}
        self.driver: Optional[subprocess.Popen] = None
        self._control = -1  # the driver's answers

    def run_through(self, target: Block) -> Outcome:
        """Run the page's blocks up to ``target`` (those not yet run, not marked) and return ``target``'s outcome."""
        for block in self.blocks:
            if block.not_run:
                continue
            if block.line not in self.outcomes:
                self.outcomes[block.line] = self._run(block)
            if block == target:
                return self.outcomes[block.line]
            if not self.outcomes[block.line].ok:
                return Outcome(False, f"an earlier block of the page failed: {block.id}")
        raise AssertionError(f"{target.id} is not a runnable block of its page")

    def _run(self, block: Block) -> Outcome:
        for words in commands(block) if block.language != "python" else []:
            if LONG_TARGETS.intersection(make_targets(words)):
                return Outcome(False, f"{block.id}: `{shlex.join(words)}` must not run from here: mark it not-run")
        script = self.folder / f"{block.page.replace('/', '_')}-line{block.line}"  # + .py or .sh
        if block.language == "python":
            if block.file:
                top, _, rest = block.file.partition("/")
                if top in PACKAGES and rest:
                    module = ".".join([PACKAGES[top], *Path(rest).with_suffix("").parts])
                    return self._python(f"import {module.removesuffix('.__init__')}")
                return self._python(f"script {self.copy / block.file}")
            script = script.with_name(script.name + ".py")
            script.write_text(block.code)
            return self._python(f"exec {script}")
        script = script.with_name(script.name + ".sh")
        script.write_text(shell_script(block))
        return run_process(["bash", "-euo", "pipefail", str(script)], cwd=self.copy, env=self.env)

    def _python(self, request: str) -> Outcome:
        log = self.folder / "python.log"
        if self.driver is None:
            (self.folder / "driver.py").write_text(DRIVER)
            self._control, child_end = os.pipe()
            with open(log, "ab") as output:
                self.driver = subprocess.Popen(
                    [str(VENV / "bin" / "python"), str(self.folder / "driver.py"), str(child_end)],
                    stdin=subprocess.PIPE,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    pass_fds=(child_end,),
                    cwd=self.copy,
                    env=self.env,
                    text=True,
                    start_new_session=True,
                )
            os.close(child_end)
        start = log.stat().st_size
        self.driver.stdin.write(request + "\n")
        self.driver.stdin.flush()
        ready, _, _ = select.select([self._control], [], [], BLOCK_TIMEOUT)
        answer = os.read(self._control, 64).decode() if ready else "timed out"
        with open(log, "rb") as f:
            f.seek(start)
            output = f.read().decode(errors="replace")
        if answer.strip() != "ok":
            self.close()
            return Outcome(False, f"{answer.strip() or 'the interpreter exited'}\n{output}")
        return Outcome(True, output)

    def close(self) -> None:
        if self.driver is not None:
            stop_group(self.driver)
            self.driver.stdin.close()
            os.close(self._control)
            self.driver = None


def stop_group(process: subprocess.Popen) -> None:
    """Stop the process and everything it started (it leads its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def run_process(argv: list[str], cwd: Path, env: dict[str, str]) -> Outcome:
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        stop_group(process)
        return Outcome(False, f"timed out after {BLOCK_TIMEOUT} s\n{process.stdout.read()}")
    return Outcome(process.returncode == 0, f"exit code {process.returncode}\n{output}")


@pytest.fixture(scope="module")
def page_runs(tmp_path_factory):
    runs: dict[str, PageRun] = {}

    def run_of(page: str) -> PageRun:
        if page not in runs:
            runs[page] = PageRun(page, tmp_path_factory.mktemp(re.sub(r"\W", "_", page)))
        return runs[page]

    yield run_of
    for run in runs.values():
        run.close()


# ------------------------------------------------------------------ the tests


def needs_images_up_to(block: Block) -> bool:
    """Whether running the block needs the images: it, or an earlier block of its page that runs first, does."""
    return any(b.needs_images for b in BLOCKS if b.page == block.page and b.line <= block.line and not b.not_run)


RUNNABLE = [
    pytest.param(block, id=block.id, marks=[pytest.mark.docker] if needs_images_up_to(block) else [])
    for block in BLOCKS
    if not block.not_run
]
MARKED = [block for block in BLOCKS if block.not_run]


@pytest.mark.parametrize("block", RUNNABLE)
def test_block_runs_as_written(block, page_runs, request):
    page = page_runs(block.page)
    if needs_images_up_to(block):
        for fixture in IMAGE_FIXTURES:
            request.getfixturevalue(fixture)
    outcome = page.run_through(block)
    assert outcome.ok, f"{block.id} failed when run as written:\n{textwrap.indent(outcome.output[-6000:], '  ')}"


@pytest.mark.parametrize("block", MARKED, ids=[block.id for block in MARKED])
def test_block_marked_not_run_is_allowed_and_checked(block):
    assert block.not_run in ALLOWED_REASONS, f"{block.id}: not-run reason {block.not_run!r} is none of the allowed"
    if block.language == "python":
        compile(block.code, block.id, "exec")
        return
    for words in commands(block):
        if words[0] == "make":
            done = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{block.id}: `make -n {' '.join(words[1:])}`: {done.stderr}"
        elif Path(words[0]).name == "flyte-prebuilt":
            first_option = next((i for i, w in enumerate(words) if w.startswith(("-", "["))), len(words))
            leading = words[1:first_option]  # the subcommand and its arguments
            done = subprocess.run(
                [str(VENV / "bin" / "flyte-prebuilt"), *leading, "--help"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, f"{block.id}: `flyte-prebuilt {' '.join(leading)} --help`: {done.stderr}"
            options = {option for word in words for option in re.findall(r"--[a-z][\w-]*", word)}
            unknown = sorted(o for o in options if not re.search(rf"{re.escape(o)}(?![\w-])", done.stdout))
            assert unknown == [], f"{block.id}: `flyte-prebuilt {' '.join(leading)}` takes no {', '.join(unknown)}"


def test_not_run_markers_precede_a_block_and_give_an_allowed_reason():
    """A marker anywhere but right before a block's fence would mark nothing; a reason must be one allowed."""
    misplaced, reasons = [], set()
    for page in doc_pages():
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            marker = NOT_RUN.match(line)
            if not marker:
                continue
            reasons.add(marker.group("reason"))
            fence = FENCE.match(lines[number]) if number < len(lines) else None
            words = fence.group("info").split() if fence else []
            if not words or words[0] not in LANGUAGES:
                misplaced.append(f"{page.relative_to(ROOT)}:{number}")
    assert misplaced == [], "not-run markers not right before a python/bash/sh/console block"
    assert reasons <= set(ALLOWED_REASONS), sorted(reasons - set(ALLOWED_REASONS))
    assert {block.page for block in BLOCKS} >= {"README.md", "docs/emulator.md"}  # the parser finds blocks
