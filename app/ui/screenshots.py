"""PNG screenshots of every screen a new user meets, at the size of a 1366×768 laptop, from a new
demo database:

    python -m app.ui.screenshots OUTDIR

start screen, new-database wizard (each page), unlock, main window (and a search), each editor tab
(and an ID number with a wrong check digit), the table import/export dialog, the print dialog with
a card made, the sync dialog, the proposals window and its work lists, the 拍照 dialog (on a computer
without a camera: its message), the 参考数据 window and its 防返贫监测标准 tab. Uses the offscreen platform with one 1366×768 screen
unless QT_QPA_PLATFORM names another platform (or offscreen with options of its own); on offscreen the screen's available area leaves out a Windows taskbar
(40 px at the bottom), so every window opens as it would on such a laptop (app/ui/screen_fit.py)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

SCREEN = (1366, 768)
TASKBAR = 40  # the Windows taskbar at 100 %: 1366×728 available
WINDOW = SCREEN  # a window as large as the available area lets it be (a maximised one)


def _laptop_screen() -> Path | None:
    """The offscreen platform with one 1366×768 screen (its default is 800×600) with frames. Returns
    the configuration file, which the caller removes once the application has read it."""
    if os.environ.get("QT_QPA_PLATFORM", "offscreen") != "offscreen":  # a platform the caller chose
        return None
    handle, name = tempfile.mkstemp(prefix="jiandang-screen-", suffix=".json")
    with os.fdopen(handle, "w") as config:
        config.write(json.dumps({"windowFrameMargins": True, "screens": [
            {"name": "laptop", "x": 0, "y": 0, "width": SCREEN[0], "height": SCREEN[1], "logicalDpi": 96}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={name}"
    return Path(name)


def _under_taskbar() -> None:
    """Offscreen screens have no taskbar: their available area is made 40 px shorter, as Windows'."""
    from PySide6.QtGui import QGuiApplication, QScreen

    if QGuiApplication.platformName() != "offscreen" or getattr(QScreen, "_jiandang_taskbar", False):
        return
    whole = QScreen.availableGeometry
    QScreen.availableGeometry = lambda screen: whole(screen).adjusted(0, 0, 0, -TASKBAR)
    QScreen._jiandang_taskbar = True


def make(outdir: Path, per_village: int = 20, frames: list | None = None) -> list[Path]:
    """The screenshots; `frames` (if given) receives (name, frame geometry, available geometry, least
    size) of each window shot: (x, y, width, height) tuples and the (width, height) the window cannot
    be made smaller than."""
    outdir.mkdir(parents=True, exist_ok=True)
    config = _laptop_screen()
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from app.services import demo
    from app.store import Store
    from app.ui.app import application
    from app.ui.main_window import MainWindow
    from app.ui.start import CreateWizard, StartDialog, UnlockDialog

    from app.ui import screen_fit

    fitted_before = screen_fit.installed()
    app = application()
    if config is not None:  # our own laptop screen (not a platform the caller chose)
        config.unlink()  # read when the application started
        _under_taskbar()
    shots = []

    def settle(ms=200):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def shot(widget, name: str, size=WINDOW) -> None:
        if size:
            screen_fit.fit(widget, *size)
        widget.show()
        settle()
        if frames is not None:
            rect = lambda r: (r.x(), r.y(), r.width(), r.height())  # noqa: E731
            least = widget.minimumSize().expandedTo(widget.minimumSizeHint())  # what it cannot shrink below
            frames.append((name, rect(widget.frameGeometry()), rect(screen_fit.available(widget)),
                           (least.width(), least.height())))
        target = outdir / f"{len(shots) + 1:02d}_{name}.png"
        widget.grab().save(str(target))
        shots.append(target)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("JIANDANG_HOME", str(Path(tmp) / "home"))  # no real preferences touched
        start = StartDialog()
        shot(start, "start", None)
        start.close()
        wizard = CreateWizard()
        screen_fit.fit(wizard, 720, 560)
        shot(wizard, "wizard_1", None)
        wizard.next()
        shot(wizard, "wizard_2_enrollment", None)
        wizard.back()
        wizard.manual.setChecked(True)  # the other way: a county database or a stand-alone laptop
        wizard.site_name.setText("雷山县扶贫办")
        wizard.operator.setText("张三")
        wizard.passphrase.setText("jiandang-demo-1")
        wizard.passphrase2.setText("jiandang-demo-1")
        for i in range(3, 5):  # 站点, 操作员, then the file page (not validated: it would create a file)
            wizard.next()
            shot(wizard, f"wizard_{i}", None)
        wizard.close()

        store = Store.create(Path(tmp) / "demo.db", role="village", site_name="雷山县驻村工作队(演示)", operator="演示",
                             passphrase="jiandang-demo", recovery_public_key=X25519PrivateKey.generate().public_key())
        demo.fill(store, per_village=per_village)
        _a_proposal(store)
        store.lock()
        unlock = UnlockDialog(store)
        shot(unlock, "unlock", None)
        store.unlock("演示", "jiandang-demo")
        unlock.close()

        window = MainWindow(store)
        window.set_auto_lock_minutes(0)
        screen_fit.fit(window, *WINDOW)
        window.show()
        while not window.loaded:
            QCoreApplication.processEvents(QEventLoop.AllEvents, 50)
        settle()
        if window.drafts_dialog:
            window.drafts_dialog.reject()
        shot(window, "main")
        row = max(window.model.rows, key=lambda r: r.population)
        window.search.setText(window.model.rows[0].head_name[:1])  # a surname: heads and members match
        shot(window, "main_search")
        window.search.clear()
        # a household with several members and an income record
        editor = window.open_household(row.id)  # at the size it opens with
        settle()
        for i in range(editor.tabs.count()):
            editor.tabs.setCurrentIndex(i)
            settle(150)
            widget = editor.tabs.widget(i)
            key = "attachments" if widget is editor.attachments else next(
                (k for k, p in editor.panels.items() if p is widget), None) or next(
                s.key for s in editor.d.kinds["household"].sections
                if any(widget.isAncestorOf(f) and s.fields[0].key in f.inputs for f in editor.household_forms))
            shot(editor, f"editor_{i + 1}_{key}", None)
        from app.ui.camera import CaptureDialog  # 拍照… (here: the message of a computer without a camera)

        capture = CaptureDialog(store, store.get(row.id), row.id, "本户", parent=editor)
        shot(capture, "camera", None)
        capture.close()
        # an ID number with a wrong check digit: the message beside the field and in the list
        panel = editor.panels["member"]
        editor.tabs.setCurrentWidget(panel)
        panel.table.selectRow(1)
        field = panel.form.inputs["id_number"]
        number = field.value() or ""
        field.set_value(number[:17] + ("0" if number[17:] != "0" else "1"))
        panel.form._edited("id_number")
        settle(300)
        shot(editor, "editor_id_number_error", None)
        editor.discard()
        editor.close()

        window.table.selectRow(window.model.view_row_of(row.id))
        for module, cls, name, size in (("app.ui.table_dialog", "TableDialog", "import_export", None),
                                        ("app.ui.print_dialog", "PrintDialog", "print", None),
                                        ("app.ui.sync_dialog", "SyncDialog", "sync", None),
                                        ("app.ui.proposals_panel", "ProposalsWindow", "proposals", WINDOW),
                                        ("app.ui.reference_dialog", "ReferenceDialog", "reference", None)):
            options = ("household_id", "village_code") if cls == "PrintDialog" else ()
            other = window.open_external(module, cls, options)
            if other is None:
                continue
            if size:
                screen_fit.fit(other, *size)
            settle(400)
            shot(other, name, None)
            if cls == "PrintDialog":
                other.generate()
                for _ in range(100):
                    if other.pdf is not None:
                        break
                    settle(100)
                settle(300)
                shot(other, "print_card_made", None)
            if cls == "ProposalsWindow":
                other.tabs.setCurrentIndex(1)
                settle(600)
                shot(other, "worklists", None)
            if cls == "ReferenceDialog":
                other.tabs.setCurrentWidget(other.criteria)
                settle()
                shot(other, "reference_monitoring", None)
            other.close()
            settle()
        window.close()
        store.close()
    if not fitted_before:  # a process that made its own application (the test suite's) is left as it was
        screen_fit.uninstall(app)
    return shots


def _a_proposal(store) -> None:
    """One exit proposal, so the proposals window shows one being worked on."""
    import datetime as dt

    from app.services import households, proposals

    for doc in households.documents(store):
        if doc.get("status") != "1":
            continue
        try:
            proposals.propose(store, doc["id"], "exit", reasons="务工收入稳定", justification="年底分红后可达标",
                              date=dt.date.today() - dt.timedelta(days=3), food_secure=True, clothing_secure=True)
            return
        except proposals.ProcedureError:
            continue


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):  # "--help" is a question, not a folder to fill
        print("用法:python -m app.ui.screenshots 输出目录", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    for p in make(Path(argv[0])):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
