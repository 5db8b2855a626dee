"""The one way to run work off the GUI thread (app.ui.workers): progress, one error path, and store
change notifications that reach the windows on the GUI thread, also when a worker commits."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QThread  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from app.services import households  # noqa: E402
from app.tables import TableError  # noqa: E402
from app.ui import workers  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.table_dialog import TableDialog  # noqa: E402
from tests import factories  # noqa: E402
from tests.test_tables import SYN_HEADER, V, ledger, syn_rows  # noqa: E402


def gui_thread() -> bool:
    return QThread.currentThread() is QApplication.instance().thread()


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("app.ui.editor.ask_unsaved", lambda *a, **k: QMessageBox.Discard)


def test_a_table_import_on_a_worker_refreshes_the_main_window_on_the_gui_thread(qtbot, monkeypatch, store, tmp_path):
    heard: list[tuple[bool, int]] = []
    original = MainWindow._store_changed

    def spy(self, changes):
        heard.append((gui_thread(), len(changes)))
        original(self, changes)

    monkeypatch.setattr(MainWindow, "_store_changed", spy)
    window = MainWindow(store)
    window.set_auto_lock_minutes(0)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.loaded, timeout=20000)
    assert window.model.rowCount() == 0

    dialog = TableDialog(store, window)
    qtbot.addWidget(dialog)
    dialog.village.setCurrentIndex(dialog.village.findData(V))
    dialog.set_file(ledger(tmp_path / "台账.xlsx", SYN_HEADER, syn_rows()))
    dialog.check()
    assert dialog.wait_until_done() and dialog.report.created == 2
    dialog.confirm_import()  # commits on the worker thread
    assert dialog.wait_until_done()
    assert store.count("household") == 2
    assert heard, "the main window was not told of the import"
    assert all(on_gui for on_gui, _ in heard), "a store listener ran off the GUI thread"
    assert window.model.rowCount() == 2  # the list shows the imported households without a reload


def test_changes_committed_by_a_worker_are_delivered_on_the_gui_thread_when_it_ends(qtbot, store):
    heard, outcome = [], {}
    workers.listen(store, lambda changes: heard.append((gui_thread(), [c.kind for c in changes], dict(outcome))))

    def work(progress):
        for i in range(3):
            households.save(store, factories.household(seq=i + 1))
            progress(i + 1, 3)
        return threading.get_ident()

    steps = []
    op = workers.start(work, lambda ident: outcome.setdefault("done", ident), lambda m: outcome.setdefault("failed", m),
                       lambda done, total: steps.append((done, total)))
    assert op.wait()
    assert outcome["done"] != threading.get_ident()  # the work itself ran on another thread
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert len(heard) == 1 and heard[0][0]  # once, on the GUI thread
    assert heard[0][1].count("household") == 3
    assert heard[0][2] == {}  # before on_done: the windows are up to date when the caller continues

    # a commit on the GUI thread reaches the listener at once, as before
    households.save(store, factories.household(seq=9))
    assert len(heard) == 2 and heard[1][0]


def test_one_error_path_with_the_programs_message_or_an_internal_error(qtbot, store):
    messages = []

    def fail_with(exc):
        def work(progress):
            raise exc
        op = workers.start(work, lambda _: messages.append(None), messages.append)
        assert op.wait()

    fail_with(TableError("台账.xlsx 第 3 行:身份证号校验位不对,请改正后重新导入"))
    fail_with(KeyError("head_name"))
    fail_with(FileNotFoundError(2, "No such file or directory", "E:/台账.xlsx"))
    assert messages[0] == "台账.xlsx 第 3 行:身份证号校验位不对,请改正后重新导入"
    assert messages[1].startswith("程序内部错误(KeyError") and "日志" in messages[1]
    assert "E:/台账.xlsx" in messages[2] and "Traceback" not in "".join(messages)
    assert not workers.busy()
