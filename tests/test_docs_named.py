"""Messages that send the user to a page ("见 docs/tables.md") name pages that exist: the built
program's folder carries docs/ beside it (build.spec), so a name that is wrong or a page that was
renamed leaves the user with nothing to open."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = re.compile(r"docs/([A-Za-z0-9_-]+\.md)")


def _named_pages() -> dict[str, list[str]]:
    """Every docs/ page named in a string constant of app/ (docstrings included), with where."""
    named: dict[str, list[str]] = {}
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for page in PAGE.findall(node.value):
                    named.setdefault(page, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return named


def test_every_page_a_message_names_exists():
    named = _named_pages()
    assert "tables.md" in named and "serve.md" in named  # the messages this test is about are found
    missing = {page: where for page, where in named.items() if not (ROOT / "docs" / page).is_file()}
    assert not missing, missing
