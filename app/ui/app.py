"""Start of the windowed program: `jiandang` with no subcommand calls run(argv).

run([]) shows the start screen (recent databases, open, create); run([path]) opens that database.
Opening (which checks the file) runs off the GUI thread; then the unlock dialog, then the main
window. Returns the exit code."""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QProgressDialog

from app import settings
from app.services import backup, integrity
from app.store import Store, StoreError, location
from app.ui import preferences, screen_fit, workers
from app.ui.fonts import install_font
from app.ui.look import quiet_disabled_hints
from app.ui.main_window import MainWindow
from app.ui.start import StartDialog, UnlockDialog
from app.ui.translations import install_translations

log = logging.getLogger(__name__)


def application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("建档")
    app.setOrganizationName("jiandang")
    install_font(app)
    quiet_disabled_hints(app)  # a disabled empty field looks empty: no grey hint passing for a value
    install_translations(app)  # Qt's own buttons and dialogs in Chinese
    screen_fit.install(app)  # every window opens inside the screen's available area (1366×768 laptops)
    return app


def open_store(path: str, parent=None) -> Store:
    """Store.open on a worker thread with a busy indicator. Raises StoreError (Chinese message)."""
    box = QProgressDialog(f"正在打开 {location(path).name}…", None, 0, 0, parent)
    box.setWindowTitle("建档")
    box.setWindowModality(Qt.ApplicationModal)
    box.setMinimumDuration(300)
    loop = QEventLoop()
    outcome: dict = {}

    def done(store):
        outcome["store"] = store
        loop.quit()

    def failed(message):
        outcome["error"] = message
        loop.quit()

    def work(progress):
        try:
            return Store.open(path)
        except StoreError as exc:
            raise _Failed(str(exc)) from None

    workers.start(work, done, failed)
    if not outcome:
        loop.exec()
    box.close()
    if "error" in outcome:
        raise StoreError(outcome["error"])
    return outcome["store"]


class _Failed(Exception):
    pass


def choose_and_unlock(app, path: str | None, message: str = "") -> Store | None:
    """Start screen until a database is open and unlocked (None: the user quit). The store's
    `unclean_before` tells whether the previous session ended without closing."""
    while True:
        chosen = path
        path = None
        if chosen is None:
            start = StartDialog(message=message)
            if start.exec() != QDialog.Accepted:
                return None
            chosen = start.chosen
        if isinstance(chosen, Store):
            chosen.unclean_before = False
            return chosen  # just created: unlocked
        try:
            store = open_store(str(chosen))
        except StoreError as exc:
            QMessageBox.critical(None, "无法打开数据库", str(exc))
            message = str(exc)
            continue
        preferences.remember(str(chosen))
        store.unclean_before = integrity.previous_session_unclean(store)
        dialog = UnlockDialog(store)
        if dialog.exec() == QDialog.Accepted:
            return store
        store.close()
        message = ""


def run(argv: list[str]) -> int:
    app = application()
    try:
        settings.setup_logging(program="window")
    except OSError:
        pass  # no log folder: the window still works
    log.info("Qt 界面翻译: %s", install_translations(app))  # which qtbase_zh_CN.qm, or "fallback"
    from app.ui.print_dialog import remove_leftover_previews  # noqa: PLC0415

    remove_leftover_previews()  # household cards an earlier run left for the PDF viewer
    from app.tables import workbook_temp  # noqa: PLC0415

    workbook_temp.clean_stale()  # sheet XML a killed Excel export left in the temp folder
    path = next((a for a in argv if not a.startswith("-")), None)
    store = choose_and_unlock(app, path)
    if store is None:
        return 0
    integrity.mark_session_open(store)
    window = MainWindow(store, unclean=store.unclean_before, daily_backup=True)
    window.show()
    code = app.exec()
    while workers.busy():  # work still running (an unlock, a backup) ends before the store closes
        app.processEvents(QEventLoop.AllEvents, 50)
    try:
        if store.unlocked:
            backup.daily_backup(store)
    except OSError as exc:
        log.warning("关闭时自动备份失败: %s", exc)
    try:
        integrity.mark_session_closed(store)
        store.close()
    except Exception as exc:  # closing must not hide the exit code
        log.warning("关闭数据库时出错: %s", type(exc).__name__)
    return int(code)
