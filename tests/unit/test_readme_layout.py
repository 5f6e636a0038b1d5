"""The README's "Development" layout is the map a newcomer reads first: it names every package folder of plugins/,
executors/ and build_tools/, each under its parent, so a new one cannot be left out of it."""

import re

from tests.conftest import ROOT

TOP_LEVEL = ("plugins", "executors", "build_tools")


def layout_block() -> str:
    development = (ROOT / "README.md").read_text().split("\n## Development\n", 1)[1]
    return re.search(r"```\n(.*?)```", development, re.S).group(1)


def named_folders(block: str) -> set[str]:
    """The folders the block names, as paths: an entry ``name/`` indented two spaces more than its parent's."""
    named, parents = set(), []  # parents: (indent, path) of the enclosing entries
    for line in block.splitlines():
        entry = line.split()[0] if line.strip() else ""
        if not entry.endswith("/"):
            continue  # a module, or a description continued
        indent = len(line) - len(line.lstrip())
        parents = [(i, p) for i, p in parents if i < indent]
        path = "/".join([*(p for _, p in parents[-1:]), entry.rstrip("/")])
        named.add(path)
        parents.append((indent, path))
    return named


def package_folders() -> set[str]:
    return {
        init.parent.relative_to(ROOT).as_posix()
        for top in TOP_LEVEL
        for init in (ROOT / top).rglob("__init__.py")
        if init.parent != ROOT / top or top == "build_tools"
    }


def test_the_layout_names_every_package_folder():
    missing = package_folders() - named_folders(layout_block())
    assert not missing, f"README.md's Development layout does not name {sorted(missing)}: add a line for each"


def test_the_layout_is_read_as_a_tree():
    block = "plugins/   x\n  kit/   y\n    inner/  z\n  cli.py  v\nbuild_tools/  w\n              continued text/\n"
    assert named_folders(block) == {"plugins", "plugins/kit", "plugins/kit/inner", "build_tools"}
