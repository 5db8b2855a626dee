"""The window's fonts, loaded at start so that it renders every character it shows on a machine with
no Chinese fonts installed: the bundled CJK font (resources/fonts/DroidSansFallbackFull.ttf) first,
then reportlab's Vera (the PDFs' Latin font) for the punctuation the CJK font lacks (· … — “ ”). The
application font names both families; Qt takes each character from the first that has it."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from app.paths import font_path, latin_font_path

_family: str | None = None
_families: list[str] = []


def _load(path) -> str:
    font_id = QFontDatabase.addApplicationFont(str(path))
    families = QFontDatabase.applicationFontFamilies(font_id) if font_id >= 0 else []
    if not families:
        raise RuntimeError(f"无法加载程序自带的字体 {path}。请重新安装建档程序。")
    return families[0]


def install_font(app: QApplication, point_size: int = 10) -> str:
    """Register the bundled fonts and make them the application font. Returns the CJK font's family."""
    global _family, _families
    if _family is None:
        cjk = _load(font_path())
        _families = [cjk, _load(latin_font_path())]
        _family = cjk
    font = QFont(_family, point_size)
    font.setFamilies(_families)
    app.setFont(font)
    return _family


def family() -> str | None:
    """The bundled CJK font's family once install_font has run."""
    return _family


def font_files() -> dict[str, str]:
    """The application font's families (in the order Qt tries them) and the file each comes from."""
    return dict(zip(_families, (str(font_path()), str(latin_font_path()))))
