"""Docs that cite tests as proof cite tests that exist (docs/security.md, docs/changes.md)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CITED = re.compile(r"`((?:unit|integration)/[\w/]+\.py)((?:::\w+)?)`|`(::\w+)`")


def citations(page: Path) -> list[tuple[str, str]]:
    """(test file, test name or '') pairs; a bare `::name` refers to the last file cited before it."""
    found, last = [], ""
    for match in CITED.finditer(page.read_text()):
        if match.group(1):
            last = match.group(1)
            found.append((last, match.group(2).lstrip(":")))
        else:
            found.append((last, match.group(3).lstrip(":")))
    return found


@pytest.mark.parametrize("page", ["docs/security.md", "docs/changes.md"])
def test_every_cited_test_exists(page):
    cited = citations(ROOT / page)
    missing = []
    for file, name in cited:
        path = ROOT / "tests" / file
        if not path.is_file():
            missing.append(file)
        elif name:
            names = {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)}
            if name not in names:
                missing.append(f"{file}::{name}")
    assert missing == []
    assert cited or page != "docs/security.md"
