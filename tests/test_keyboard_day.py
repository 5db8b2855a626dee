"""A village team's day in the window with the keyboard only, using only keys the screen shows:
open, find a household, add a member, record a visit and an assistance measure, print the card,
export for the USB stick."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QComboBox, QFileDialog  # noqa: E402

from app.core import demo as demo_core  # noqa: E402
from app.core import idnumber  # noqa: E402
from app.services import households  # noqa: E402
from tests.sync_helpers import VILLAGE, make_county, make_device  # noqa: E402
from tests.test_ui import home, open_window, typed  # noqa: E402, F401 - home: autouse


def press(qtbot, key, modifier=Qt.NoModifier):
    """A key pressed where the keyboard focus is (as a person types, not at a chosen widget)."""
    target = QApplication.focusWidget() or QApplication.activeWindow()
    qtbot.keyClick(target, key, modifier)


def tab_to(qtbot, widget, limit=12):
    for _ in range(limit):
        if QApplication.focusWidget() is widget or widget.isAncestorOf(QApplication.focusWidget()):
            return
        press(qtbot, Qt.Key_Tab)
    raise AssertionError(f"Tab never reached {widget.objectName()}")


def choose(qtbot, combo: QComboBox, code: str):
    """Arrow keys in a drop-down until the wanted entry shows."""
    for _ in range(combo.count()):
        if combo.currentData() == code:
            return
        qtbot.keyClick(combo, Qt.Key_Down)
    raise AssertionError(code)


def shown(window, text: str) -> bool:
    """The key is written on the screen: a button, tab or hint that is visible says it."""
    from PySide6.QtWidgets import QAbstractButton, QLabel, QTabBar

    for w in window.findChildren(QAbstractButton) + window.findChildren(QLabel):
        if w.isVisible() and text in w.text():
            return True
    for bar in window.findChildren(QTabBar):
        if any(text in bar.tabText(i) for i in range(bar.count())):
            return True
    return False


def test_a_village_teams_day_with_the_keyboard_only(qtbot, tmp_path, monkeypatch):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    with laptop.transaction():
        for doc in demo_core.households(per_village=6, villages=[VILLAGE]):
            doc.update(status="1", household_number=None)  # as a laptop enters new households
            households.save(laptop, doc, allow_errors=True)
    doc = households.documents(laptop, VILLAGE)[2]
    w = open_window(qtbot, laptop)
    w.resize(1366, 768)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)

    # find the household: Ctrl+F (on the toolbar), its head's name, Enter to the list, Enter to open
    assert shown(w, "Ctrl+F")
    press(qtbot, Qt.Key_F, Qt.ControlModifier)
    assert QApplication.focusWidget() is w.search
    typed(qtbot, w.search, doc["head_name"])
    press(qtbot, Qt.Key_Return)
    assert QApplication.focusWidget() is w.table and w.current_household_id() == doc["id"]
    press(qtbot, Qt.Key_Return)
    qtbot.waitUntil(lambda: any(e.household_id == doc["id"] for e in w.editors))
    editor = next(e for e in w.editors if e.household_id == doc["id"])
    editor.resize(1366, 740)
    editor.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is editor)

    # add a member: Alt+3 (家庭成员), Alt+A (添加), name, Tab to the ID number, Tab to 与户主关系
    members = editor.panels["member"]
    assert shown(editor, "Alt+数字") and editor.tabs.tabText(2).startswith("&3.")
    press(qtbot, Qt.Key_3, Qt.AltModifier)
    assert editor.tabs.currentWidget() is members
    assert shown(editor, "(&A)") or "(&A)" in members.add_button.text()
    press(qtbot, Qt.Key_A, Qt.AltModifier)
    qtbot.waitUntil(lambda: len(members.records) == len(doc["members"]) + 1)  # a mnemonic animates the click
    name = members.form.inputs["name"].widget
    assert QApplication.focusWidget() is name
    typed(qtbot, name, "郭小新")
    number = idnumber.make("522634", dt.date(2019, 3, 4), 77, "1")
    id_box = members.form.inputs["id_number"].widget
    tab_to(qtbot, id_box)
    qtbot.keyClicks(id_box, number)
    relation = members.form.inputs["relation"].widget
    tab_to(qtbot, relation)
    choose(qtbot, relation, "07")  # 之孙子
    assert members.current()["sex"] == "1" and members.current()["birth_date"] == "2019-03-04"

    # a visit: Alt+8 (工作台账), Alt+A, date, Tab, visitor, Tab, what was done
    press(qtbot, Qt.Key_8, Qt.AltModifier)
    visits = editor.panels["visit"]
    assert editor.tabs.currentWidget() is visits
    before = len(visits.records)
    press(qtbot, Qt.Key_A, Qt.AltModifier)
    qtbot.waitUntil(lambda: len(visits.records) == before + 1)
    date = QApplication.focusWidget()
    qtbot.keyClicks(date, "20261201")
    press(qtbot, Qt.Key_Tab)
    typed(qtbot, QApplication.focusWidget(), "王队长")
    press(qtbot, Qt.Key_Tab)
    typed(qtbot, QApplication.focusWidget(), "入户走访,登记新生儿")

    # an assistance measure: Alt+6 (帮扶措施), Alt+A, year, Tab, category by arrow keys, Tab, content
    press(qtbot, Qt.Key_6, Qt.AltModifier)
    measures = editor.panels["measure"]
    assert editor.tabs.currentWidget() is measures
    before = len(measures.records)
    press(qtbot, Qt.Key_A, Qt.AltModifier)
    qtbot.waitUntil(lambda: len(measures.records) == before + 1)
    qtbot.keyClicks(QApplication.focusWidget(), "2026")
    category = measures.form.inputs["category"].widget
    tab_to(qtbot, category)
    choose(qtbot, category, "04")  # 教育(雨露计划)
    tab_to(qtbot, measures.form.inputs["content"].widget)
    typed(qtbot, QApplication.focusWidget(), "雨露计划助学补助")

    # save (Ctrl+S), then print the card (Ctrl+P): Enter makes it, 另存为 by Tab and Space
    assert shown(editor, "Ctrl+S") and shown(editor, "Ctrl+P")
    press(qtbot, Qt.Key_S, Qt.ControlModifier)
    qtbot.waitUntil(lambda: not editor.dirty)
    saved = households.document(laptop, doc["id"])
    assert "郭小新" in [m["name"] for m in saved["members"]]
    assert [v["visitor"] for v in saved["visits"]].count("王队长") == 1
    assert any(m.get("category") == "04" and m.get("content") == "雨露计划助学补助" for m in saved["measures"])
    press(qtbot, Qt.Key_P, Qt.ControlModifier)
    dialog = editor.print_dialog
    qtbot.waitUntil(lambda: dialog.isVisible())
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog)
    assert dialog.current_document() == "card_household"
    press(qtbot, Qt.Key_Return)  # 生成 is the default button
    qtbot.waitUntil(lambda: dialog.pdf is not None, timeout=30000)
    card = tmp_path / "card.pdf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(card), "PDF 文件 (*.pdf)"))
    tab_to(qtbot, dialog.save_button, limit=20)
    press(qtbot, Qt.Key_Space)
    assert card.exists() and card.stat().st_size > 1000
    press(qtbot, Qt.Key_Escape)
    qtbot.waitUntil(lambda: not dialog.isVisible())

    # close the editor (Ctrl+W) and export for the USB stick: Ctrl+U, Alt+F folder, Alt+E export
    editor.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is editor)
    press(qtbot, Qt.Key_W, Qt.ControlModifier)
    qtbot.waitUntil(lambda: not w.editors)
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w)
    assert shown(w, "Ctrl+U")
    press(qtbot, Qt.Key_U, Qt.ControlModifier)
    sync = w.external["SyncDialog"]
    sync.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is sync)
    usb = tmp_path / "usb"
    usb.mkdir()
    press(qtbot, Qt.Key_F, Qt.AltModifier)
    qtbot.keyClicks(QApplication.focusWidget(), str(usb))
    press(qtbot, Qt.Key_E, Qt.AltModifier)
    qtbot.waitUntil(lambda: bool(list(usb.glob("*.jdb"))), timeout=20000)
    county.close()
