"""Where the program finds its bundled data (forms/, resources/).

In a source checkout or an editable install these are beside the `app` package; in a PyInstaller
build they are unpacked under ``sys._MEIPASS``.
"""

from __future__ import annotations

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
