"""mkdocs hooks (mkdocs.yml `hooks:`): the repository's README.md is the site's home page, and a link from a page
to a file of the repository outside docs/ (an example's code) points at that file in the repository.

Both are checked, so that `mkdocs build --strict` still fails on a link to nothing: the README's links are to
docs/ pages, rewritten to the pages' paths (mkdocs then validates them as any link); a link out of docs/ is
rewritten only if the file exists in the repository, else it is left as written and mkdocs reports it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(\]\()([^)\s#]+)(#[^)\s]*)?(\))")


def on_files(files: Files, config) -> Files:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    readme = LINK.sub(lambda m: _readme_link(m), readme)
    files.append(File.generated(config, "index.md", content=readme))
    return files


def _readme_link(match: re.Match) -> str:
    target = match.group(2)
    if target.startswith("docs/"):
        target = target.removeprefix("docs/")
    return f"{match.group(1)}{target}{match.group(3) or ''}{match.group(4)}"


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Links that leave docs/ for a file of the repository: to that file at `repo_url`."""
    docs = Path(config["docs_dir"]).resolve()
    page_dir = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match) -> str:
        target = match.group(2)
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        resolved = (docs / page_dir / target).resolve()
        if resolved.is_relative_to(docs) or not resolved.is_relative_to(ROOT) or not resolved.exists():
            return match.group(0)
        url = f"{config['repo_url'].rstrip('/')}/blob/main/{resolved.relative_to(ROOT).as_posix()}"
        return f"{match.group(1)}{url}{match.group(3) or ''}{match.group(4)}"

    return LINK.sub(rewrite, markdown)
