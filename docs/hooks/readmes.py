"""A MkDocs hook: the distributions' READMEs become pages of the site (``packages/*.md``), and
links between the READMEs and docs/ are rewritten to the site's pages, so that the same Markdown
works on a repository browser and on the site, and ``mkdocs build --strict`` checks every link."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
#: README in the repository -> page of the site.
READMES = {
    "core/README.md": "packages/core.md",
    "plugins/cpu/README.md": "packages/cpu.md",
    "plugins/gpu/README.md": "packages/gpu.md",
    "plugins/openvino/README.md": "packages/openvino.md",
    "plugins/template/README.md": "packages/template.md",
}
_LINK = re.compile(r"\]\((?![a-z]+:|#)([^)#\s]+)(#[^)\s]*)?\)")


def site_path(repository_path: str) -> str | None:
    """The site page of a repository file, or None for a file that is not on the site."""
    if repository_path in READMES:
        return READMES[repository_path]
    if repository_path.startswith("docs/"):
        return repository_path.removeprefix("docs/")
    return None


def rewrite_links(markdown: str, source: str, page: str) -> str:
    """Point the relative links of ``source`` (a repository path), shown as ``page``, at pages."""

    def replace(match: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(source), match.group(1)))
        site = site_path(target)
        if site is None:
            return match.group(0)
        relative = posixpath.relpath(site, posixpath.dirname(page) or ".")
        return f"]({relative}{match.group(2) or ''})"

    return _LINK.sub(replace, markdown)


def on_files(files: Files, config: Any) -> Files:
    for readme, page in READMES.items():
        text = rewrite_links((ROOT / readme).read_text(), readme, page)
        files.append(File.generated(config, page, content=text))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if page.file.src_uri in READMES.values():
        return markdown  # rewritten in on_files
    return rewrite_links(markdown, f"docs/{page.file.src_uri}", page.file.src_uri)
