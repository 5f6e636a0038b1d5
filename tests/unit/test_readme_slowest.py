"""The README's "Slowest tests" table names the 20 slowest tests of a `make test` run and what each proves: each row
must name a test that exists, so that the table cannot drift from the suite as tests are renamed or removed."""

import ast
import re

from tests.conftest import ROOT

ROW = re.compile(r"^\|\s*(?P<seconds>\d+)\s*\|\s*`(?P<test>tests/[^`]+)`\s*\|\s*(?P<proves>[^|]+?)\s*\|$", re.M)


def rows() -> list[re.Match]:
    section = (ROOT / "README.md").read_text().split("\n### Slowest tests\n", 1)[1].split("\n## ", 1)[0]
    return list(ROW.finditer(section))


def defined_tests(path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test")}


def test_the_table_lists_twenty_tests_slowest_first_each_with_what_it_proves():
    found = rows()
    assert len(found) == 20, f"the README's Slowest tests table has {len(found)} rows, not 20"
    seconds = [int(row["seconds"]) for row in found]
    assert seconds == sorted(seconds, reverse=True)
    assert all(len(row["proves"]) > 20 for row in found)


def test_every_test_the_table_names_exists():
    missing = []
    for row in rows():
        path, _, name = row["test"].partition("::")
        name = name.split("[")[0]
        file = ROOT / path
        if not file.is_file() or name not in defined_tests(file):
            missing.append(row["test"])
    assert missing == [], f"the README's Slowest tests table names tests that do not exist: {missing}"
