"""Every character the window can show is in a font the program brings along: on a laptop without
Chinese fonts (or a Windows install missing a fallback) a character outside them is drawn as a box."""

from __future__ import annotations

import ast
import os
import tomllib
import unicodedata
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QRawFont  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app import paths  # noqa: E402
from app.ui import fonts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# Packages whose texts never reach the window or a PDF: the commands print to a console, where
# app/cli/console.py writes each character the console's encoding lacks as the nearest one it has.
CONSOLE_ONLY = ("cli",)


def window_modules() -> list[Path]:
    """Every module of app/ whose string constants can reach the window or a PDF: app/ui's own, and the
    services, sync, reports, tables, store, server and core modules whose messages, reports and
    labels the window shows in its dialogs (a sync report's 区划更名, an import's problems, a refusal)
    or prints."""
    return [path for path in sorted((ROOT / "app").rglob("*.py"))
            if path.relative_to(ROOT / "app").parts[0] not in CONSOLE_ONLY]


def _strings_of_the_window() -> dict[str, str]:
    """character -> where it was found: string constants of window_modules() (docstrings left out)
    and every text value of forms/ (labels, code lists, hints, synonyms the window lists). Control and
    format characters (Unicode Cc, Cf: the byte-order mark, bidirectional marks the program strips
    from input) are never drawn and are left out."""
    found: dict[str, str] = {}

    def note(text: str, where: str) -> None:
        for ch in text:
            if ord(ch) > 127 and not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf"):
                found.setdefault(ch, where)

    for path in window_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                note(node.value, f"{path.relative_to(ROOT).as_posix()}:{node.lineno}")

    def walk(value, where: str) -> None:
        if isinstance(value, str):
            note(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                note(str(key), where)
                walk(item, where)
        elif isinstance(value, list):
            for item in value:
                walk(item, where)

    for path in sorted((ROOT / "forms").rglob("*.toml")):
        walk(tomllib.loads(path.read_text(encoding="utf-8")), f"forms/{path.relative_to(ROOT / 'forms')}")
    return found


@pytest.fixture(scope="module")
def app_fonts():
    app = QApplication.instance() or QApplication([])
    fonts.install_font(app)
    return fonts.font_files()


def test_the_application_font_falls_back_to_the_bundled_latin_font_not_to_the_system(app_fonts):
    assert QApplication.font().families() == list(app_fonts)
    assert list(app_fonts.values()) == [str(paths.font_path()), str(paths.latin_font_path())]
    assert all(Path(file).is_file() for file in app_fonts.values())


def test_every_character_the_window_shows_is_in_a_bundled_font(app_fonts):
    raw = [QRawFont(file, 12) for file in app_fonts.values()]
    assert all(font.isValid() for font in raw)
    # the characters the CJK font lacks are the reason for the second font
    assert not raw[0].supportsCharacter(ord("·")) and raw[1].supportsCharacter(ord("·"))
    assert {"ui", "services", "sync", "reports", "tables", "store", "server", "core"} <= {
        path.relative_to(ROOT / "app").parts[0] for path in window_modules()}
    missing = {ch: where for ch, where in _strings_of_the_window().items()
               if not any(font.supportsCharacter(ord(ch)) for font in raw)}
    assert not missing, "not in any bundled font: " + ", ".join(
        f"{ch!r} (U+{ord(ch):04X}, {where})" for ch, where in sorted(missing.items()))
