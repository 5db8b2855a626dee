"""Where the program finds its bundled data (forms/, resources/).

In a source checkout or an editable install these are beside the `app` package; in a PyInstaller
build they are unpacked under ``sys._MEIPASS``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def project_root() -> Path:
    """The folder holding forms/ and resources/."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parent.parent


def forms_dir() -> Path:
    return project_root() / "forms"


def resources_dir() -> Path:
    return project_root() / "resources"


def font_path() -> Path:
    """The bundled TrueType CJK font used by the window and every PDF."""
    return resources_dir() / "fonts" / "DroidSansFallbackFull.ttf"


def latin_font_path() -> Path:
    """reportlab's own Vera (Bitstream Vera Sans, shipped inside the reportlab package, also in a
    PyInstaller build): the Latin font of every PDF and the window's second font, for the
    punctuation the CJK font lacks (· … — “ ”). Found without importing reportlab."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "reportlab" / "fonts" / "Vera.ttf"
    spec = importlib.util.find_spec("reportlab")
    return Path(spec.submodule_search_locations[0]) / "fonts" / "Vera.ttf"
