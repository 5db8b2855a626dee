"""The program's look beyond the style's: a disabled field shows no hint.

A hint (placeholder text, such as 18位身份证号码 or 意见;退回时必须写明原因) is drawn in grey, and so is
the value of a disabled field: in a disabled empty field the hint passed for a value someone had
typed (a member form with no member selected, the 办理 box with no proposal chosen). The palette's
placeholder colour of the disabled group is made transparent, so a disabled empty field looks empty
in every window; an enabled one shows its hint as before."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette


def quiet_disabled_hints(app) -> None:
    palette = app.palette()
    palette.setColor(QPalette.Disabled, QPalette.PlaceholderText, QColor(Qt.transparent))
    app.setPalette(palette)
