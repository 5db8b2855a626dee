"""The work team's window, driven offscreen as a user would: unlock, search, edit, add and remove
members, save and find the change in the history, auto-lock, drafts surviving a killed process,
the bundled CJK font."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QFontDatabase, QFontInfo, QFontMetrics, QInputMethodEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QLineEdit, QMessageBox  # noqa: E402

from app.core import idnumber  # noqa: E402
from app.paths import font_path  # noqa: E402
from app.services import households  # noqa: E402
from app.store import Store, StoreError  # noqa: E402
from app.ui import drafts  # noqa: E402
from app.ui.editor import KEY, HouseholdEditor  # noqa: E402
from app.ui.fonts import install_font  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.start import UnlockDialog  # noqa: E402
from tests.conftest import PASSPHRASE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    # pytest-qt closes the windows after a test: a modal "unsaved changes?" must not block it
    monkeypatch.setattr("app.ui.editor.ask_unsaved", lambda *a, **k: QMessageBox.Discard)
    install_font(qapp)


def open_window(qtbot, store) -> MainWindow:
    w = MainWindow(store)
    w.set_auto_lock_minutes(0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    return w


def editor_of(qtbot, w: MainWindow, household_id: str) -> HouseholdEditor:
    row = w.model.view_row_of(household_id)
    rect = w.table.visualRect(w.model.index(row, 1))
    qtbot.mouseClick(w.table.viewport(), Qt.LeftButton, pos=rect.center())  # select the row
    w.table.setFocus()
    qtbot.keyClick(w.table, Qt.Key_Return)  # and open it with the keyboard
    qtbot.waitUntil(lambda: any(e.household_id == household_id for e in w.editors))
    editor = next(e for e in w.editors if e.household_id == household_id)
    qtbot.addWidget(editor)
    return editor


def typed(qtbot, widget, text: str) -> None:
    """Replace a line edit's text as a user does: ASCII key by key, Chinese through the input
    method (a commit event, as a pinyin IME sends it)."""
    widget.setFocus()
    widget.selectAll()
    qtbot.keyClick(widget, Qt.Key_Backspace)
    if text.isascii():
        qtbot.keyClicks(widget, text)
    else:
        event = QInputMethodEvent()
        event.setCommitString(text)
        QApplication.sendEvent(widget, event)


def choose(combo, code) -> None:
    combo.setCurrentIndex(combo.findData(code))


def a_household(store, min_members=2):
    for doc in households.documents(store):
        if len(doc["members"]) >= min_members and doc["incomes"]:
            return doc
    raise AssertionError("demo data has no household with members and income")


# ---------------------------------------------------------------------------- font


def test_the_bundled_cjk_font_is_loaded_and_draws_the_window(qtbot, demo_store):
    family = install_font(QApplication.instance())
    assert family in QFontDatabase.families()
    assert family in QFontDatabase.applicationFontFamilies(QFontDatabase.addApplicationFont(str(font_path())))
    assert QApplication.font().family() == family
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, w.model.row_at(0).id)
    for widget in (w.count_label, w.table, editor.title, editor.tabs.tabBar(), editor.household_forms[0]):
        info = QFontInfo(widget.font())
        assert info.family() == family, widget
        metrics = QFontMetrics(widget.font())
        assert all(metrics.inFontUcs4(ord(ch)) for ch in "户主姓名脱贫状态"), widget
    # the tab labels really are drawn: the tab bar's pixels are not all one colour
    image = editor.tabs.tabBar().grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 3) for y in range(0, image.height(), 3)}
    assert len(colours) > 5
    editor.dirty = False


# ---------------------------------------------------------------------------- unlock


def test_unlock_shows_wrong_passphrase_and_waits_before_the_next_try(qtbot, make_store):
    created = make_store("u.db")
    created.close()  # open it again as the program does: locked
    store = Store.open(created.path)
    dialog = UnlockDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    typed(qtbot, dialog.passphrase, "wrong passphrase")
    qtbot.mouseClick(dialog.unlock_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dialog.working, timeout=10000)  # the unlock runs off the GUI thread
    assert "密码" in dialog.error.text()
    assert not dialog.unlock_button.isEnabled()
    assert not store.unlocked and dialog.result() != QDialog.Accepted
    qtbot.waitUntil(dialog.unlock_button.isEnabled, timeout=5000)
    typed(qtbot, dialog.passphrase, PASSPHRASE)
    qtbot.mouseClick(dialog.unlock_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not dialog.working, timeout=10000)
    assert store.unlocked and dialog.result() == QDialog.Accepted, dialog.error.text()
    assert dialog.passphrase.text() == ""
    store.close()


def test_a_database_open_in_another_instance_gives_a_clear_message(qtbot, make_store, monkeypatch):
    store = make_store("busy.db")  # stays open: this is the "other instance"
    from app.ui import app as ui_app

    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    monkeypatch.setattr(ui_app.StartDialog, "exec", lambda self: QDialog.Rejected)
    assert ui_app.choose_and_unlock(QApplication.instance(), str(store.path)) is None
    assert shown and "另一个正在运行的建档程序" in shown[0] and "busy.db" in shown[0]
    with pytest.raises(StoreError):
        ui_app.open_store(str(store.path))


# ---------------------------------------------------------------------------- list


def test_typing_part_of_a_name_or_id_number_finds_the_household(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    assert w.model.rowCount() == 12
    doc = a_household(demo_store)
    member = doc["members"][1]
    typed(qtbot, w.search, member["name"][1:])
    ids = [w.model.row_at(i).id for i in range(w.model.rowCount())]
    assert doc["id"] in ids and len(ids) < 12
    w.search.clear()
    typed(qtbot, w.search, member["id_number"][6:14])
    assert doc["id"] in [w.model.row_at(i).id for i in range(w.model.rowCount())]
    w.search.clear()
    assert w.model.rowCount() == 12
    # filter by status: every row shown has that status
    status = doc["status"]
    choose(w.status_filter, status)
    shown = [w.model.row_at(i) for i in range(w.model.rowCount())]
    assert shown and all(r.status_code == status for r in shown) and doc["id"] in [r.id for r in shown]
    # the village tree narrows the list
    choose(w.status_filter, "")
    other = next(r for r in w.model.rows if r.village_code != doc["village_code"])
    item = next(it for it in _tree_items(w.tree) if it.data(0, Qt.UserRole) == doc["village_code"])
    w.tree.setCurrentItem(item)
    shown = [w.model.row_at(i).id for i in range(w.model.rowCount())]
    assert doc["id"] in shown and other.id not in shown
    assert "操作员:admin" in w.operator_label.text() and "未在县里登记,不同步" in w.unsynced_label.text()


def _tree_items(tree):
    stack = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    while stack:
        item = stack.pop()
        yield item
        stack += [item.child(i) for i in range(item.childCount())]


# ---------------------------------------------------------------------------- editing


def test_edit_an_id_number_add_a_member_save_and_find_the_history(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    typed(qtbot, w.search, doc["head_name"][1:])
    editor = editor_of(qtbot, w, doc["id"])
    assert not editor.household_forms[0].inputs["status"].widget.isEnabled()  # read-only status
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    second = doc["members"][1]
    panel.table.selectRow(1)
    assert panel.current()[KEY] == second["id"]
    id_edit = panel.form.inputs["id_number"].widget
    good = second["id_number"]
    bad = good[:17] + ("0" if good[17] != "0" else "1")
    typed(qtbot, id_edit, bad)
    qtbot.waitUntil(lambda: panel.form.messages["id_number"].isVisibleTo(panel.form))
    assert "校验位" in panel.form.messages["id_number"].text()
    listed = [editor.findings_list.item(i) for i in range(editor.findings_list.count())]
    assert any("校验位" in item.text() for item in listed)
    # the list jumps to the field
    editor.tabs.setCurrentIndex(0)
    item = next(i for i in listed if "校验位" in i.text())
    editor.findings_list.itemActivated.emit(item)
    assert editor.tabs.currentWidget() is panel and panel.current()[KEY] == second["id"]

    # add a member: a valid ID number fills the birth date and sex
    qtbot.mouseClick(panel.add_button, Qt.LeftButton)
    new = panel.current()
    assert new[KEY].startswith("new-")
    typed(qtbot, panel.form.inputs["name"].widget, "新成员甲")
    number = idnumber.make("522634", dt.date(2024, 3, 5), 77, "2")
    typed(qtbot, panel.form.inputs["id_number"].widget, number)
    assert new["birth_date"] == "2024-03-05" and new["sex"] == "2"
    assert panel.form.inputs["sex"].widget.currentText() == "女"
    choose(panel.form.inputs["relation"].widget, next(iter(editor.d.codes["relation"])))
    assert editor.dirty and "*" in editor.windowTitle()

    qtbot.mouseClick(editor.save_button, Qt.LeftButton)
    assert not editor.dirty
    saved = households.document(demo_store, doc["id"])
    assert len(saved["members"]) == len(doc["members"]) + 1
    assert any(m["name"] == "新成员甲" and m["birth_date"] == "2024-03-05" for m in saved["members"])
    assert next(m for m in saved["members"] if m["id"] == second["id"])["id_number"] == bad  # kept, listed
    assert any("校验位" in editor.findings_list.item(i).text() for i in range(editor.findings_list.count()))
    assert drafts.pending(demo_store) == []
    # the list row follows (population)
    row = w.model.rows[w.model._by_id[doc["id"]]]
    assert row.population == len(doc["members"]) + 1
    editor.close()
    qtbot.waitUntil(lambda: not w.editors)

    # reopen: the change is there, with its history entry
    editor = editor_of(qtbot, w, doc["id"])
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    panel.select_key(second["id"])
    assert panel.form.inputs["id_number"].widget.text() == bad
    entries = editor.history.entries()
    assert entries[0][1] == "admin" and entries[0][2] == "修改家庭成员"
    assert ["公民身份号码", good, bad] in entries
    editor.dirty = False


def test_an_id_number_or_household_number_another_household_holds_is_shown_while_typing(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    other = next(d for d in households.documents(demo_store) if d["id"] != doc["id"] and d["members"])
    editor = editor_of(qtbot, w, doc["id"])
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    qtbot.mouseClick(panel.add_button, Qt.LeftButton)
    typed(qtbot, panel.form.inputs["id_number"].widget, other["members"][0]["id_number"])
    editor.validate()
    lines = [editor.findings_list.item(i).text() for i in range(editor.findings_list.count())]
    assert any(f"身份证号码已登记在户主“{other['head_name']}”" in line for line in lines), lines
    assert "已登记在" in panel.form.messages["id_number"].text()
    panel.drop(panel.current()[KEY])
    # the 户编号 of another household, typed on the household tab
    number_edit = next(f for f in editor.household_forms if "household_number" in f.inputs).inputs["household_number"].widget
    typed(qtbot, number_edit, other["household_number"])
    editor.validate()
    lines = [editor.findings_list.item(i).text() for i in range(editor.findings_list.count())]
    assert any(f"户编号 {other['household_number']} 已用在户主“{other['head_name']}”的户上" in line for line in lines), lines
    typed(qtbot, number_edit, doc["household_number"])  # its own number again: no finding
    editor.validate()
    assert not any("已用在户主" in editor.findings_list.item(i).text() for i in range(editor.findings_list.count()))
    editor.discard()


def test_the_member_roster_is_editable_in_the_table(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    panel.table.selectRow(0)
    cell = panel.table.item(0, panel.columns.index("id_number"))
    panel.table.editItem(cell)
    line = next(e for e in panel.table.viewport().findChildren(QLineEdit) if e.isVisible())
    number = idnumber.make("522634", dt.date(1990, 7, 1), 31, "1")
    typed(qtbot, line, number)
    qtbot.keyClick(line, Qt.Key_Return)
    record = panel.records[0]
    assert record["id_number"] == number and record["birth_date"] == "1990-07-01" and record["sex"] == "1"
    assert panel.form.inputs["id_number"].widget.text() == number  # the form below follows
    assert panel.table.item(0, panel.columns.index("id_number")).text() == number
    assert editor.dirty
    editor.discard()


def test_removing_a_member_asks_a_reason_and_leaves_a_tombstone(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    victim = doc["members"][-1]
    panel.select_key(victim["id"])

    def answer():
        dialog = QApplication.activeModalWidget()
        choose(dialog.reason, "22")
        dialog.accept()

    QTimer.singleShot(200, answer)
    qtbot.mouseClick(panel.remove_button, Qt.LeftButton)
    record = demo_store.get(victim["id"])
    assert record.deleted
    assert demo_store.history(victim["id"])[-1].reason == "22"
    assert victim["id"] not in [r[KEY] for r in panel.records]
    assert len(households.document(demo_store, doc["id"])["members"]) == len(doc["members"]) - 1


def test_show_if_hides_and_shows_fields_and_income_totals_are_live(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    form = editor.panels["member"].form
    form_layout, row = form._rows["dropout_reason"]
    choose(form.inputs["school_status"].widget, "02")
    assert not form_layout.isRowVisible(row)
    choose(form.inputs["school_status"].widget, "00")
    assert form_layout.isRowVisible(row)
    incomes = editor.panels["income"]
    editor.tabs.setCurrentWidget(incomes)
    before = incomes.extra.text()
    assert "人均" in before
    wage = incomes.form.inputs["wage_income"].widget
    typed(qtbot, wage, "123456")
    assert incomes.extra.text() != before and "123,456" not in before
    editor.discard()


def test_closing_with_unsaved_changes_asks(qtbot, demo_store, monkeypatch):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    typed(qtbot, editor.household_forms[0].inputs["head_name"].widget, "改过的名字")
    editor.write_draft()
    answers = [QMessageBox.Cancel]
    asked = []
    monkeypatch.setattr("app.ui.editor.ask_unsaved", lambda parent: (asked.append(parent.household_id), answers[0])[1])
    editor.close()
    assert asked and editor.isVisible()
    answers[0] = QMessageBox.Discard
    editor.close()
    qtbot.waitUntil(lambda: not w.editors)
    assert households.document(demo_store, doc["id"])["head_name"] == doc["head_name"]
    assert drafts.pending(demo_store) == []


# ---------------------------------------------------------------------------- locking


def test_idle_auto_lock_hides_the_data_and_unlocks_again(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    typed(qtbot, editor.household_forms[0].inputs["group"].widget, "九组")
    w.set_auto_lock_minutes(0.3 / 60)  # 0.3 s without input
    qtbot.waitUntil(lambda: w.locked, timeout=5000)
    assert not demo_store.unlocked
    assert w.model.rowCount() == 0 and w.stack.currentIndex() == 1
    assert not editor.isVisible()
    assert w.unlock_dialog.isVisible()
    typed(qtbot, w.unlock_dialog.passphrase, PASSPHRASE)
    qtbot.mouseClick(w.unlock_dialog.unlock_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not w.locked and w.loaded, timeout=20000)  # the unlock runs off the GUI thread
    assert demo_store.unlocked and w.model.rowCount() == 12 and editor.isVisible()
    assert editor.household["group"] == "九组"
    assert [k for k, _ in drafts.pending(demo_store)] == [doc["id"]]  # written before the keys were dropped
    w.set_auto_lock_minutes(0)
    editor.discard()


# ---------------------------------------------------------------------------- drafts after a crash

CHILD = textwrap.dedent("""
    import os, sys, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import app.ui
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QInputMethodEvent
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from app.store import Store
    from app.ui.editor import HouseholdEditor
    app = QApplication([])
    store = Store.open(sys.argv[1])
    store.unlock("admin", sys.argv[2])
    editor = HouseholdEditor(store, household_id=sys.argv[3])
    editor.show()
    field = editor.household_forms[0].inputs["head_name"].widget
    field.setFocus()
    field.selectAll()
    QTest.keyClick(field, Qt.Key_Backspace)
    event = QInputMethodEvent()
    event.setCommitString(sys.argv[4])
    QApplication.sendEvent(field, event)
    deadline = time.time() + 30
    while not editor.draft_state.text() and time.time() < deadline:
        app.processEvents()
        time.sleep(0.05)
    print("DRAFT" if editor.draft_state.text() else "NO DRAFT", flush=True)
    while True:
        app.processEvents()
        time.sleep(0.05)
""")


def test_a_draft_survives_a_killed_process_and_is_offered(qtbot, make_store, tmp_path):
    store = make_store("crash.db")
    from app.services import demo

    demo.fill(store, per_village=1)
    doc = a_household(store, min_members=1)
    path = store.path
    store.close()
    typed_name = "崩溃前输入的名字"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path), PASSPHRASE, doc["id"], typed_name],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "DRAFT"
    finally:
        proc.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
        proc.wait(10)
    # nothing of what was typed is on disk in plain text
    for f in path.parent.glob(path.name + "*"):
        assert typed_name.encode() not in f.read_bytes(), f
    reopened = Store.open(path)
    reopened.unlock("admin", PASSPHRASE)
    try:
        assert households.document(reopened, doc["id"])["head_name"] == doc["head_name"]
        w = open_window(qtbot, reopened)
        dialog = w.drafts_dialog
        assert dialog is not None and dialog.isVisible()
        assert dialog.list.count() == 1 and typed_name in dialog.list.item(0).text()
        qtbot.mouseClick(dialog.recover_button, Qt.LeftButton)
        editor = next(e for e in w.editors if e.household_id == doc["id"])
        qtbot.addWidget(editor)
        assert editor.household_forms[0].inputs["head_name"].widget.text() == typed_name
        assert editor.banner.isVisible() and editor.dirty
        qtbot.mouseClick(editor.save_button, Qt.LeftButton)
        assert households.document(reopened, doc["id"])["head_name"] == typed_name
        assert drafts.pending(reopened) == []
        w.close()
    finally:
        reopened.close()


# ---------------------------------------------------------------------------- first run


def test_the_first_run_wizard_creates_an_unlocked_database_and_remembers_it(qtbot, tmp_path, monkeypatch):
    from app.ui import preferences

    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: told.append(text))
    from app.ui.start import CreateWizard, StartDialog

    wizard = CreateWizard()
    qtbot.addWidget(wizard)
    wizard.manual.setChecked(True)  # without an enrollment package
    typed(qtbot, wizard.site_name, "龙井村驻村工作队")
    typed(qtbot, wizard.operator, "李四")
    typed(qtbot, wizard.passphrase, "short")
    typed(qtbot, wizard.passphrase2, "short")
    db = tmp_path / "new.db"
    wizard.path.setText(str(db))
    assert not wizard.create()  # the store refuses a short passphrase; the wizard says so
    assert "密码" in wizard.error.text() and not db.exists()
    typed(qtbot, wizard.passphrase, PASSPHRASE)
    assert wizard.create()
    store = wizard.store
    try:
        assert store.unlocked and store.operator == "李四" and store.site_name == "龙井村驻村工作队"
        assert wizard.key_written is not None and wizard.key_written.exists()
        assert told and str(wizard.key_written) in told[0]  # told to hand the private key to the county
        assert preferences.load().recent[0] == str(db)
        start = StartDialog()
        qtbot.addWidget(start)
        assert start.recent.item(0).data(Qt.UserRole) == str(db)
    finally:
        store.close()
    # the same file again: refused with a message, the existing database untouched
    again = CreateWizard()
    qtbot.addWidget(again)
    again.manual.setChecked(True)
    again.site_name.setText("x")
    again.operator.setText("x")
    again.passphrase.setText(PASSPHRASE)
    again.path.setText(str(db))
    assert not again.create() and "已存在" in again.error.text()


def test_the_menus_open_the_other_windows(qtbot, demo_store):
    from app.ui.main_window import EXTERNAL

    w = open_window(qtbot, demo_store)
    titles = [a.text() for a in w.menuBar().actions()]
    assert {"打印", "同步", "导入导出", "程序与工作清单"} <= set(titles)
    for _menu, _label, module, cls, options in EXTERNAL:
        window = w.open_external(module, cls, options)
        assert window is not None and window.isWindow() and window.isVisible(), cls
        qtbot.wait(200)  # let a window that loads on a worker thread finish before the next one
        window.close()


def test_a_damaged_record_is_reported_and_the_other_households_load(qtbot, demo_store, monkeypatch):
    rid, blob = demo_store.conn.execute(
        "SELECT id, blob FROM records WHERE kind = 'household' ORDER BY rowid LIMIT 1").fetchone()
    demo_store.conn.execute("UPDATE records SET blob = ? WHERE id = ?", (blob[:-1] + bytes([blob[-1] ^ 1]), rid))
    total = demo_store.count("household")
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: warnings.append((title, text)))
    w = open_window(qtbot, demo_store)
    assert len(w.model.rows) == total - 1 and w.model.view_row_of(rid) == -1
    assert warnings and warnings[0][0] == "部分记录无法读取" and rid in warnings[0][1]


def test_an_empty_date_is_typed_from_the_keyboard_and_tab_moves_on(qtbot, demo_store):
    """首次识别时间 and the other dates: typed as digits (or 2025.3.1, 2025年3月1日), tidied to ISO when
    left, and Tab goes on to the next field; text that is no date stays and is named."""
    editor = HouseholdEditor(demo_store, village_code=demo_store.village_codes()[0])
    qtbot.addWidget(editor)
    editor.show()
    form = next(f for f in editor.household_forms if "first_identified" in f.inputs)
    field = form.inputs["first_identified"].widget
    field.setFocus()
    qtbot.waitUntil(field.line.hasFocus)
    assert field.text() == ""
    qtbot.keyClicks(field.line, "20250301")
    assert form.record["first_identified"] == "2025-03-01"
    qtbot.keyClick(field.line, Qt.Key_Tab)
    assert not field.line.hasFocus() and field.text() == "2025-03-01"
    typed(qtbot, field.line, "2025年13月45日")  # through the input method, as a pinyin IME sends it
    editor.validate()
    assert any("首次识别时间" in editor.findings_list.item(i).text() and "应为日期" in editor.findings_list.item(i).text()
               for i in range(editor.findings_list.count()))
    assert field.text() == "2025年13月45日"  # kept as typed, never replaced by a default
    editor.dirty = False


def test_adding_a_member_by_keyboard_puts_the_cursor_in_its_name_and_tab_leaves_the_list(qtbot, demo_store):
    editor = HouseholdEditor(demo_store, household_id=a_household(demo_store)["id"])
    qtbot.addWidget(editor)
    editor.show()
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    panel.add_button.setFocus()
    qtbot.waitUntil(panel.add_button.hasFocus)
    qtbot.keyClick(panel.add_button, Qt.Key_Space)
    name = panel.form.inputs["name"].widget
    qtbot.waitUntil(name.hasFocus)
    assert panel.current()[KEY].startswith("new-")
    assert not panel.table.tabKeyNavigation()  # Tab in the list goes on to the next widget, not cell by cell
    editor.discard()


def test_a_new_database_without_villages_says_where_to_add_them(qtbot, make_store, monkeypatch):
    store = make_store("empty.db")
    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a: shown.append((title, text)))
    w = open_window(qtbot, store)
    assert w.new_household() is None
    assert shown and shown[-1][0] == "还没有村" and "参考数据 › 行政区划、贫困线和监测标准" in shown[-1][1]


def test_an_entirely_empty_new_household_is_not_saved(qtbot, demo_store, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a: shown.append(text))
    before = demo_store.count("household")
    editor = HouseholdEditor(demo_store, village_code=demo_store.village_codes()[0])
    qtbot.addWidget(editor)
    assert editor.save() is False
    assert demo_store.count("household") == before and "什么都没有填写" in shown[-1]


def test_a_backup_is_made_from_the_file_menu_into_a_chosen_folder(qtbot, demo_store, tmp_path, monkeypatch):
    from app.services import backup

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a: shown.append((title, text)))
    w = open_window(qtbot, demo_store)
    folder = tmp_path / "U盘"
    w.backup_to(str(folder))
    qtbot.waitUntil(lambda: bool(shown), timeout=20000)
    assert shown[-1][0] == "备份完成" and "已加密" in shown[-1][1]
    [made] = list(folder.glob("*"))
    assert backup.read_meta(made)["db_id"] == demo_store.db_id
    head = households.documents(demo_store)[0]["head_name"]
    assert head.encode("utf-8") not in made.read_bytes()  # sealed as in the database
    assert w.stack.isEnabled()
