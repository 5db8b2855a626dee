"""The window's way to a county database on PostgreSQL: the start screen's 服务器上的县级库 button,
its address dialog, and the recent list that keeps the address but never the password."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialog, QPushButton

from app.store import Store
from app.ui import preferences
from app.ui.server_address import ServerAddressDialog
from app.ui.start import StartDialog
from tests.conftest import PASSPHRASE


@pytest.fixture
def home(tmp_path, monkeypatch, qapp):
    from app.ui.fonts import install_font

    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    install_font(qapp)
    return tmp_path


def test_the_address_dialog_builds_the_url_and_refuses_anything_else(qtbot, home):
    dialog = ServerAddressDialog(None, "postgresql://county:old@db.example:5432/jiandang")
    qtbot.addWidget(dialog)
    assert dialog.address.text() == "postgresql://county@db.example:5432/jiandang"  # a password is never shown
    dialog.password.setText("p@ss/word")
    dialog._accept()
    assert dialog.result() == QDialog.Accepted
    assert dialog.url == "postgresql://county:p%40ss%2Fword@db.example:5432/jiandang"

    other = ServerAddressDialog(None)
    qtbot.addWidget(other)
    other.address.setText(r"D:\建档\县级.db")
    other._accept()
    assert other.url is None and "postgresql://" in other.error.text()
    other.address.setText("postgresql://db.example/jiandang")
    other.password.setText("secret")
    other._accept()
    assert other.url is None and "缺少用户名" in other.error.text()


def test_the_recent_list_keeps_a_server_address_without_its_password(qtbot, home, monkeypatch):
    preferences.remember("postgresql://county:secret@db.example:5432/jiandang?sslmode=require&password=x")
    assert preferences.load().recent == ["postgresql://county@db.example:5432/jiandang?sslmode=require"]
    assert "secret" not in preferences.path().read_text(encoding="utf-8")
    start = StartDialog()
    qtbot.addWidget(start)
    assert start.recent.item(0).text() == "postgresql://county@db.example:5432/jiandang?sslmode=require"  # no "(文件不存在)"
    assert any(b.text() == "服务器上的县级库…" for b in start.findChildren(QPushButton))
    asked = []

    def fake_exec(dialog):  # the password is asked for again; what the user typed is used once
        asked.append(dialog.address.text())
        dialog.password.setText("typed")
        dialog._accept()
        return QDialog.Accepted

    monkeypatch.setattr(ServerAddressDialog, "exec", fake_exec)
    start._choose(start.recent.item(0).data(0x0100))
    assert asked == ["postgresql://county@db.example:5432/jiandang?sslmode=require"]
    assert start.chosen == "postgresql://county:typed@db.example:5432/jiandang?sslmode=require"


def test_the_window_opens_a_county_on_postgresql(qtbot, home, pg_url, recovery_key):
    from app.ui.app import open_store
    from app.ui.main_window import MainWindow
    from tests.conftest import fill_demo

    county = Store.create(pg_url, role="county", site_name="雷山县扶贫办", operator="admin", passphrase=PASSPHRASE,
                          recovery_public_key=recovery_key.public_key())
    fill_demo(county, per_village=1)
    county.close()
    store = open_store(pg_url)
    store.unlock("admin", PASSPHRASE)
    window = MainWindow(store, unclean=False, daily_backup=True)
    window.set_auto_lock_minutes(0)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.loaded, timeout=20000)
    assert window.windowTitle().endswith(str(store.path))
    assert ":***@" in window.windowTitle() and "jiandang-test" not in window.windowTitle()
    assert window.model.rowCount() == 6  # the six demo households, read from the server
