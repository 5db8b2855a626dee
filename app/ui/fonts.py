"""The bundled CJK font (resources/fonts/DroidSansFallbackFull.ttf), loaded at start so that the
window renders Chinese on a machine with no Chinese fonts installed."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from app.paths import font_path

_family: str | None = None


def install_font(app: QApplication, point_size: int = 10) -> str:
    """Register the bundled font and make it the application font. Returns its family name."""
    global _family
    if _family is None:
        font_id = QFontDatabase.addApplicationFont(str(font_path()))
        families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
        if not families:
            raise RuntimeError(f"无法加载程序自带的字体 {font_path()}。请重新安装建档程序。")
        _family = families[0]
    font = QFont(_family, point_size)
    app.setFont(font)
    return _family


def family() -> str | None:
    """The bundled font's family once install_font has run."""
    return _family
