"""The unlock dialog works off the GUI thread: the window keeps painting while Argon2id derives the
key and while the first writing unlock of an older database converts its record bodies, with the
fields and buttons disabled and the stage said; closing the dialog meanwhile is safe."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QDialog  # noqa: E402

from app.store import Store, bodies, crypto  # noqa: E402
from app.ui.start import UnlockDialog  # noqa: E402
from tests.conftest import PASSPHRASE  # noqa: E402
from tests.test_store_bodies import _as_format_1  # noqa: E402

SLOW = 0.6  # seconds a slow step takes here (the real Argon2id profile takes about 0.27 s and more)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))


class Ticks:
    """A 20 ms QTimer on the GUI thread; `during` counts its ticks while a slow step ran (read on the
    step's own thread), and each tick notes what the dialog showed."""

    def __init__(self, dialog):
        self.count = 0
        self.during: list[int] = []
        self.seen: list[tuple[str, bool, bool, bool, bool]] = []
        self.dialog = dialog
        self.timer = QTimer(interval=20, timeout=self.tick)
        self.timer.start()

    def tick(self) -> None:
        self.count += 1
        d = self.dialog
        self.seen.append((d.status.text() if d.status.isVisible() else "", d.unlock_button.isEnabled(),
                          d.cancel_button.isEnabled(), d.passphrase.isEnabled(), d.bar.isVisible()))

    def slowed(self, fn):
        def slow(*args, **kw):
            before = self.count
            result = fn(*args, **kw)
            time.sleep(SLOW)
            self.during.append(self.count - before)
            return result

        return slow


def locked_copy(make_store, name="u.db") -> Store:
    created = make_store(name)
    path = created.path
    created.close()
    return Store.open(path)


def _slow_unlock_dialog(qtbot, make_store, monkeypatch):
    """The unlock dialog of a locked database, shown, its passphrase typed, with the key derivation
    slowed down and the dialog's state sampled meanwhile (`Ticks`)."""
    store = locked_copy(make_store)
    dialog = UnlockDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    ticks = Ticks(dialog)
    monkeypatch.setattr(crypto, "derive_key", ticks.slowed(crypto.derive_key))
    dialog.passphrase.setText(PASSPHRASE)
    return store, dialog, ticks


def test_the_window_keeps_running_while_the_key_is_derived(qtbot, make_store, monkeypatch):
    store, dialog, ticks = _slow_unlock_dialog(qtbot, make_store, monkeypatch)
    qtbot.mouseClick(dialog.unlock_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: dialog.result() == QDialog.Accepted, timeout=10000)
    ticks.timer.stop()
    assert store.unlocked
    assert ticks.during and ticks.during[0] >= SLOW / 0.02 / 3, ticks.during  # the timer ticked meanwhile
    busy = [s for s in ticks.seen if s[0]]
    assert busy and busy[0][0] == "正在解锁…"  # while the key is derived (then any one-time upgrade)
    assert busy.count(("正在解锁…", False, False, False, True)) >= SLOW / 0.02 / 3, set(busy)
    assert all(s[1:] == (False, False, False, True) for s in busy), set(busy)  # fields and buttons disabled
    store.close()


def test_a_wrong_passphrase_off_the_gui_thread_still_says_so(qtbot, make_store):
    store = locked_copy(make_store)
    dialog = UnlockDialog(store)
    qtbot.addWidget(dialog)
    dialog.passphrase.setText("not the passphrase")
    dialog.try_unlock()
    assert dialog.working and not dialog.unlock_button.isEnabled() and not dialog.passphrase.isEnabled()
    qtbot.waitUntil(lambda: not dialog.working, timeout=10000)
    assert "密码不正确" in dialog.error.text() and "秒后再试" in dialog.error.text()
    assert dialog.passphrase.isEnabled() and not dialog.unlock_button.isEnabled()  # until the delay is over
    assert not store.unlocked and dialog.result() != QDialog.Accepted
    store.close()


def test_the_one_time_body_conversion_shows_its_progress_and_keeps_the_window_running(qtbot, make_store, monkeypatch):
    from app.services import demo

    created = make_store("old.db")
    demo.fill(created, per_village=3)
    path = created.path
    created.close()
    _as_format_1(path)
    store = Store.open(path)
    assert store.upgrade_pending()
    dialog = UnlockDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    ticks = Ticks(dialog)
    monkeypatch.setattr(bodies, "CONVERT_BATCH", 7)  # several pages: the bar moves
    monkeypatch.setattr(bodies, "convert", ticks.slowed(bodies.convert))
    dialog.passphrase.setText(PASSPHRASE)
    dialog.try_unlock()
    qtbot.waitUntil(lambda: dialog.result() == QDialog.Accepted, timeout=20000)
    ticks.timer.stop()
    assert store.unlocked and not store.upgrade_pending()
    assert ticks.during and ticks.during[0] >= SLOW / 0.02 / 3, ticks.during
    texts = [s[0] for s in ticks.seen if s[0]]
    total = store.count()
    assert f"正在升级数据格式(只需一次)… {total}/{total} 条记录" in texts, sorted(set(texts))
    assert all(not s[1] and not s[2] for s in ticks.seen if s[0])  # the buttons stay disabled meanwhile
    store.close()


def test_closing_the_dialog_during_the_unlock_waits_and_leaves_the_store_locked(qtbot, make_store, monkeypatch):
    store, dialog, ticks = _slow_unlock_dialog(qtbot, make_store, monkeypatch)
    dialog.try_unlock()
    dialog.close()  # the window's close button, then Esc
    dialog.reject()
    assert dialog.isVisible() and dialog.working  # not closed under the worker
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10000)
    ticks.timer.stop()
    assert dialog.result() == QDialog.Rejected and not dialog.working
    assert not store.unlocked  # locked again: nothing unlocked is left behind a closed dialog
    store.close()


def test_closing_the_main_window_during_a_relock_unlock_waits_for_it(qtbot, demo_store, monkeypatch):
    from app.ui.main_window import MainWindow

    w = MainWindow(demo_store)
    w.set_auto_lock_minutes(0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    w.lock(manual=True)
    ticks = Ticks(w.unlock_dialog)
    monkeypatch.setattr(crypto, "derive_key", ticks.slowed(crypto.derive_key))
    w.unlock_dialog.passphrase.setText(PASSPHRASE)
    w.unlock_dialog.try_unlock()
    w.close()
    assert w.isVisible() and w.unlock_dialog.working  # the store stays open under the worker
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    ticks.timer.stop()
    assert not w.unlock_dialog.working and not demo_store.unlocked
