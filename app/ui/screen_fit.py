"""Every window and dialog opens inside the screen's available area (QScreen.availableGeometry:
the screen less the Windows taskbar), frame and title bar included. A 1366×768 laptop leaves
about 1366×728 under the taskbar, less the title bar: a window whose default size or remembered
size is larger opens smaller (its content scrolls where it needs to), and one placed partly off
the area is moved onto it.

`install(app)` (app.ui.app.application) watches the first show of every top-level window;
`fit(widget, width, height)` resizes one to a wanted size, at most what the area leaves."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMargins, QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

# A frame not yet known (a window not shown yet): Windows 10/11 at 100 %: title bar 31 px, the
# invisible resize borders 8 px at the sides and bottom.
DEFAULT_FRAME = QMargins(8, 31, 8, 8)
_FITTED = "jiandang_fitted"
_KINDS = (Qt.Window, Qt.Dialog, Qt.Sheet, Qt.Tool)


def available(widget: QWidget):
    """The available geometry of the screen the widget (or its parent window) is on."""
    parent = widget.parentWidget()
    screen = (parent.window().screen() if parent is not None else None) or widget.screen() \
        or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def frame_margins(widget: QWidget) -> QMargins:
    frame, inner = widget.frameGeometry(), widget.geometry()
    margins = QMargins(inner.left() - frame.left(), inner.top() - frame.top(),
                       frame.right() - inner.right(), frame.bottom() - inner.bottom())
    if margins.isNull() and not widget.testAttribute(Qt.WA_WState_Created):
        return DEFAULT_FRAME
    if margins.isNull() and QGuiApplication.platformName() not in ("offscreen", "minimal"):
        return DEFAULT_FRAME  # a frame the platform will add once the window is mapped
    return margins


def largest(widget: QWidget) -> tuple[int, int]:
    """The largest client size whose frame fits in the available area."""
    area, m = available(widget), frame_margins(widget)
    return area.width() - m.left() - m.right(), area.height() - m.top() - m.bottom()


def fit(widget: QWidget, width: int | None = None, height: int | None = None) -> None:
    """Resize `widget` (a top-level window) to width × height (default: its size now), at most what
    the available area leaves, and move its frame onto the area."""
    max_w, max_h = largest(widget)
    w = min(width or widget.width(), max_w)
    h = min(height or widget.height(), max_h)
    if widget.minimumWidth() > w or widget.minimumHeight() > h:  # a minimum set in code, not the layout's
        widget.setMinimumSize(min(widget.minimumWidth(), w), min(widget.minimumHeight(), h))
    if (w, h) != (widget.width(), widget.height()):
        widget.resize(w, h)
    place(widget)


def place(widget: QWidget) -> None:
    """Move the window's frame inside the available area (it fits after `fit`)."""
    area, m = available(widget), frame_margins(widget)
    frame_w = widget.width() + m.left() + m.right()
    frame_h = widget.height() + m.top() + m.bottom()
    x, y = widget.frameGeometry().x(), widget.frameGeometry().y()
    x = max(area.left(), min(x, area.left() + area.width() - frame_w))
    y = max(area.top(), min(y, area.top() + area.height() - frame_h))
    if (x, y) != (widget.frameGeometry().x(), widget.frameGeometry().y()):
        widget.move(x, y)  # a top-level window's pos is its frame's


_SHOW = QEvent.Type.Show


class _Fitter(QObject):
    """An application-wide event filter (every event passes it: about 1.8 µs each in Python,
    measured beside a plain sendEvent of 1.8 µs), acting on a window's first Show only."""

    def eventFilter(self, obj, event) -> bool:
        if event.type() == _SHOW and isinstance(obj, QWidget) and obj.isWindow() \
                and obj.windowType() in _KINDS and not obj.property(_FITTED):
            obj.setProperty(_FITTED, True)
            fit(obj)
        return False


_fitter: _Fitter | None = None


def install(app) -> None:
    """Fit every top-level window of the application at its first show (once per process)."""
    global _fitter
    if _fitter is None:
        _fitter = _Fitter()
        app.installEventFilter(_fitter)


def installed() -> bool:
    return _fitter is not None


def uninstall(app) -> None:
    """For a tool run inside another program's process (the screenshots in the test suite)."""
    global _fitter
    if _fitter is not None:
        app.removeEventFilter(_fitter)
        _fitter = None
