"""Defects a new user met trying the window at 1366×768: what they typed and saw must be what is
saved, keyboard focus starts where typing starts, the editor's header does not push the history aside."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QMessageBox, QScrollArea  # noqa: E402

from app.services import households  # noqa: E402
from tests.test_ui import a_household, editor_of, home, open_window, typed  # noqa: E402, F401 - home: autouse


def in_front(qtbot, window) -> None:
    """The window activated, as a user's click brings it in front, once Qt says it is the active one."""
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)


def edit_cell(qtbot, editor, kind: str, row: int, column: str, text: str) -> QLineEdit:
    """F2 on a cell of a child table and a text typed into it, not confirmed with Enter."""
    in_front(qtbot, editor)
    panel = editor.panels[kind]
    editor.tabs.setCurrentWidget(panel)
    table = panel.table
    table.setCurrentIndex(table.model().index(row, panel.columns.index(column)))
    table.setFocus()
    qtbot.keyClick(table, Qt.Key_F2)
    cell = QApplication.focusWidget()
    assert isinstance(cell, QLineEdit) and cell is not panel.form.inputs[column].widget
    typed(qtbot, cell, text)
    assert cell.text() == text
    return cell


def test_a_value_typed_in_a_cell_is_saved_by_ctrl_s_without_enter(qtbot, demo_store):
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    cell = edit_cell(qtbot, editor, "member", 1, "name", "改名测试")
    qtbot.keyClick(cell, Qt.Key_S, Qt.ControlModifier)  # the shortcut leaves the focus in the cell
    qtbot.waitUntil(lambda: not editor.dirty)
    saved = households.document(demo_store, doc["id"])
    assert "改名测试" in [m["name"] for m in saved["members"]]
    assert editor.panels["member"].records[1]["name"] == "改名测试"


def test_closing_the_editor_with_a_cell_being_typed_asks_to_save_it(qtbot, demo_store, monkeypatch):
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    edit_cell(qtbot, editor, "member", 0, "name", "关窗前改名")
    asked = []
    monkeypatch.setattr("app.ui.editor.ask_unsaved", lambda *a: asked.append(1) or QMessageBox.Save)
    editor.close()
    assert asked, "the typed name was dropped without the question"
    saved = households.document(demo_store, doc["id"])
    assert "关窗前改名" in [m["name"] for m in saved["members"]]


def _new_household_editor(qtbot, store):
    """The main window and, active in front of it, the editor of a new household of the first village."""
    w = open_window(qtbot, store)
    editor = w._editor(village_code=store.divisions("village")[0]["code"])
    qtbot.addWidget(editor)
    in_front(qtbot, editor)
    return w, editor


def test_a_new_household_starts_typing_in_its_first_empty_required_field(qtbot, demo_store):
    w, editor = _new_household_editor(qtbot, demo_store)
    assert QApplication.focusWidget() is editor.household_forms[0].inputs["head_name"].widget
    # Tab goes from field to field: the scrolling frame around a form is no stop of its own
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Tab)
    assert QApplication.focusWidget() is editor.household_forms[0].inputs["phone"].widget
    for _ in range(40):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Tab)
        assert not isinstance(QApplication.focusWidget(), QScrollArea)


def test_tab_leaves_the_household_list(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    in_front(qtbot, w)
    w.table.setFocus()
    qtbot.keyClick(w.table, Qt.Key_Tab)
    assert QApplication.focusWidget() is not w.table


def test_the_saved_message_and_a_long_title_leave_the_history_panel_its_width(qtbot, demo_store):
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    editor.resize(1240, 689)  # its opening size under a Windows taskbar at 1366×768
    qtbot.waitUntil(lambda: editor.history_dock.width() > 300)
    width = editor.history_dock.width()
    typed(qtbot, editor.household_forms[0].inputs["head_name"].widget, "欧阳木合塔尔·买买提艾力")
    typed(qtbot, editor.household_forms[0].inputs["phone"].widget, "123")  # an error: 仍有 N 个错误待改正
    assert editor.save()
    assert "错误" in editor.draft_state.text() and editor.draft_state.isVisible()
    qtbot.wait(50)
    assert editor.history_dock.width() >= width - 2
    assert editor.width() <= 1240 and "欧阳木合塔尔" in editor.title.toolTip()


def test_a_title_too_long_for_the_editor_ends_in_an_ellipsis(qtbot, demo_store):
    """At 1366×768 a long name and village do not fit the editor's header: the cut shows as “…”
    (the whole title in the tooltip), and a title that fits is shown whole."""
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    editor.resize(1240, 689)
    title = editor.title
    whole = title.text()
    assert title.shown_text() == whole and "…" not in whole
    typed(qtbot, editor.household_forms[0].inputs["head_name"].widget, "欧阳木合塔尔·买买提艾力" * 4)
    qtbot.waitUntil(lambda: title.toolTip().count("买买提艾力") == 4)
    shown = title.shown_text()
    assert shown.endswith("…") and shown.startswith("欧阳木合塔尔")
    assert title.fontMetrics().horizontalAdvance(shown) <= title.width()
    assert title.text() == title.toolTip() and title.toolTip().endswith(demo_store.division_name(doc["village_code"]))
    typed(qtbot, editor.household_forms[0].inputs["head_name"].widget, "<b>王</b>")  # shown as typed, not as markup
    qtbot.waitUntil(lambda: title.text().startswith("<b>王</b>"))
    assert title.textFormat() == Qt.PlainText and title.shown_text().startswith("<b>王</b>")
    editor.dirty = False


def test_a_drawer_of_sticks_names_each_refused_file_by_its_stick(qtbot, tmp_path):
    """Two sticks holding a file of the same name (a good copy and a damaged one): the county's
    report says which stick's file was refused, as `sync import` does."""
    from app.sync import exchange
    from tests import factories
    from tests.sync_helpers import make_county, make_device
    from tests.test_sync_ui import imported_in_county_window

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    households.save(laptop, factories.household())
    out = tmp_path / "out"
    out.mkdir()
    (bundle,) = exchange.export_to(laptop, out)
    drawer = tmp_path / "抽屉"
    for stick, damage in (("好U盘", False), ("坏U盘", True)):
        (drawer / stick).mkdir(parents=True)
        data = bytearray(Path(bundle).read_bytes())
        if damage:
            data[len(data) // 2] ^= 1
        (drawer / stick / Path(bundle).name).write_bytes(bytes(data))
    _, rows = imported_in_county_window(qtbot, county, drawer)
    assert rows == {f"好U盘/{Path(bundle).name}": "已接收", f"坏U盘/{Path(bundle).name}": "已拒收"}
    county.close()
    laptop.close()


def test_the_import_window_names_its_own_choice_for_bare_code_numbers_not_the_commands_option(qtbot, store, tmp_path):
    from app.ui.table_dialog import TableDialog
    from tests.test_tables import SYN_HEADER, V, ledger, syn_rows

    rows = syn_rows()
    rows[0][6] = "3"  # 脱贫状态 as a bare number: whose code?
    path = ledger(tmp_path / "台账.xlsx", SYN_HEADER, rows)
    dialog = TableDialog(store)
    qtbot.addWidget(dialog)
    dialog.set_file(path)
    dialog.village.setCurrentIndex(dialog.village.findData(V))
    dialog.check()
    assert dialog.wait_until_done()
    reasons = [dialog.rejections.item(r, 3) for r in range(dialog.rejections.rowCount())]
    coded = [item for item in reasons if "数字代码" in item.text()]
    assert coded and "代码列中的数字" in coded[0].text() and "--codes" not in coded[0].text()
    assert coded[0].toolTip() == coded[0].text()


def test_the_photo_tabs_caption_box_is_wide_enough_to_type_in(qtbot, demo_store):
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    editor.resize(1240, 689)  # its opening size under a Windows taskbar at 1366×768
    editor.tabs.setCurrentWidget(editor.attachments)
    qtbot.waitUntil(editor.attachments.isVisible)
    caption = editor.attachments.caption
    wanted = caption.fontMetrics().horizontalAdvance(caption.placeholderText())
    assert caption.width() >= max(wanted + 20, 200), caption.width()
    for button in (editor.attachments.add_button, editor.attachments.print_button):
        assert button.width() >= button.sizeHint().width()  # no button cut either


def test_a_lock_keeps_a_cell_being_typed_in_the_draft(qtbot, demo_store):
    from app.ui import drafts
    from tests.conftest import PASSPHRASE

    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    edit_cell(qtbot, editor, "member", 0, "name", "锁屏前改名")
    w.lock(manual=True)
    assert not demo_store.unlocked
    demo_store.unlock(demo_store.operators()[0], PASSPHRASE)
    state = drafts.load(demo_store, editor.draft_key)
    assert state and state["children"]["member"][0]["name"] == "锁屏前改名"


def test_after_a_dry_run_the_missing_columns_and_the_rejected_rows_show_at_1366_by_768(qtbot, store, tmp_path):
    from app.ui.table_dialog import TableDialog
    from tests.test_tables import SYN_HEADER, V, ledger, syn_rows

    header = [h for h in SYN_HEADER if h not in ("识别标准", "识别时间")]  # two required columns missing
    rows = [[v for h, v in zip(SYN_HEADER, r) if h in header] for r in syn_rows() * 3]
    for r in rows:
        r[header.index("身份证号")] = r[header.index("身份证号")][:-1] + "Z"  # every row rejected
    path = ledger(tmp_path / "台账.xlsx", header, rows)
    dialog = TableDialog(store)
    qtbot.addWidget(dialog)
    dialog.resize(1350, 689)  # the largest it opens at on a 1366×768 laptop under the taskbar
    dialog.show()
    dialog.set_file(path)
    dialog.village.setCurrentIndex(dialog.village.findData(V))
    dialog.check()
    assert dialog.wait_until_done()
    qtbot.wait(50)
    fixed, rejected = dialog.fixed_table, dialog.rejections
    assert fixed.rowCount() == 2 and rejected.rowCount() >= 6
    assert fixed.viewport().height() >= 2 * fixed.rowHeight(0)  # both missing columns, each with its box
    assert rejected.viewport().height() >= 4 * rejected.rowHeight(0)


def test_the_countys_device_list_names_each_devices_villages(qtbot, tmp_path):
    from app.ui.county_import import CountyImportScreen
    from tests.sync_helpers import VILLAGE, make_county, make_device

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    screen = CountyImportScreen(county)
    qtbot.addWidget(screen)
    texts = [screen.devices.item(r, 3).text() for r in range(screen.devices.rowCount())]
    name = county.division_name(VILLAGE)
    assert name != VILLAGE and f"{name}({VILLAGE})" in texts
    county.close()
    laptop.close()


def test_sync_now_on_a_database_never_enrolled_says_so_in_the_windows_words(qtbot, demo_store):
    from app.ui.sync_dialog import SyncDialog

    dialog = SyncDialog(demo_store)
    qtbot.addWidget(dialog)
    dialog.sync_now()
    text = dialog.panel.summary.text()
    assert "没有在县扶贫办登记" in text and "--server" not in text  # not "no address: use --server"


def test_sync_now_without_an_address_points_at_the_field_not_at_an_option(qtbot, tmp_path):
    from app.ui.sync_dialog import SyncDialog
    from tests.sync_helpers import make_county, make_device

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    dialog = SyncDialog(laptop)
    qtbot.addWidget(dialog)
    dialog.server.clear()
    dialog.sync_now()
    text = dialog.panel.summary.text()
    assert "县同步服务" in text and "--server" not in text
    county.close()
    laptop.close()


def test_a_ledger_without_a_village_column_asks_for_the_dialogs_village_choice(qtbot, store, tmp_path):
    from app.ui.table_dialog import TableDialog
    from tests.test_tables import SYN_HEADER, ledger, syn_rows

    path = ledger(tmp_path / "台账.xlsx", SYN_HEADER, syn_rows())
    dialog = TableDialog(store)
    qtbot.addWidget(dialog)
    dialog.set_file(path)
    dialog.village.setCurrentIndex(0)  # 按表中的“村代码/村名称”列: the file has neither
    dialog.check()
    assert dialog.wait_until_done()
    assert "“村”中选择" in dialog.summary.text() and "--village" not in dialog.summary.text()


def test_the_proposals_window_names_its_own_fields_not_the_commands_options(qtbot, demo_store):
    from app.ui.proposals_panel import NewProposalDialog, ProposalsWindow
    from app.ui.screenshots import _a_proposal

    _a_proposal(demo_store)  # an exit waiting for 村级评议
    window = ProposalsWindow(demo_store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.table.model().rowCount() == 1, timeout=20000)
    window.table.selectRow(0)
    qtbot.waitUntil(lambda: window.current is not None)
    window.do_stage()  # 通过 with no meeting figures and 农户已签字同意 not ticked
    refused = window.action_message.text()
    assert refused and "--" not in refused, refused

    dialog = NewProposalDialog(demo_store, parent=window)
    qtbot.addWidget(dialog)
    dialog.kind.setCurrentIndex(dialog.kind.findData("monitor"))
    dialog.reasons.setPlainText("突发重病")
    dialog.submit()  # no 监测对象类型, 发现方式, risk or 授权承诺书
    assert dialog.message.text() and "--" not in dialog.message.text(), dialog.message.text()


def test_the_editor_tabs_keys_do_not_read_as_counts(qtbot, demo_store):
    """成员(3) on a household of six members, 照片(0) beside its photos: the Alt digit goes in front."""
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    texts = [editor.tabs.tabText(i) for i in range(editor.tabs.count())]
    assert texts[2] == "&3.成员" and "&0.照片" in texts
    assert not any(t.endswith(")") for t in texts)


def test_usb_sync_at_the_county_opens_the_countys_import_not_the_laptops_window(qtbot, make_store):
    from app.sync import identity

    county = make_store("c.db", role="county")
    identity.setup_county(county)
    w = open_window(qtbot, county)
    labels = [a.text() for m in w.menuBar().actions() if m.menu() for a in m.menu().actions()]
    assert "县级导入…" in labels and "同步(U 盘或立即同步)…" not in labels  # the laptop's: "not enrolled"
    usb = next(a for a in w.toolbar.actions() if a.text().startswith("U 盘同步"))
    usb.trigger()
    assert "CountyImportScreen" in w.external and "SyncDialog" not in w.external
    w.external["CountyImportScreen"].close()


def test_printing_with_a_township_chosen_in_the_tree_offers_its_book(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    township = demo_store.divisions("township")[0]["code"]
    item = next(it for it in w.tree.findItems("*", Qt.MatchWildcard | Qt.MatchRecursive)
                if it.data(0, Qt.UserRole) == township)
    w.tree.setCurrentItem(item)
    w.table.clearSelection()
    w.table.setCurrentIndex(w.model.index(-1, -1))
    assert w.current_household_id() is None
    window = w.open_external("app.ui.print_dialog", "PrintDialog", ("household_id", "village_code"))
    qtbot.addWidget(window)
    keys = [window.document.itemData(i) for i in range(window.document.count())]
    assert keys == ["book"] or ("book" in keys and "register" not in keys), keys
    assert window.options()["township_code"] == township


def test_tab_leaves_a_several_line_field_instead_of_typing_a_tab(qtbot, demo_store):
    from app.ui.proposals_panel import NewProposalDialog

    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    in_front(qtbot, editor)
    measures = editor.panels["measure"]
    editor.tabs.setCurrentWidget(measures)
    qtbot.mouseClick(measures.add_button, Qt.LeftButton)
    content = measures.form.inputs["content"].widget  # 帮扶内容: several lines
    content.setFocus()
    qtbot.keyClicks(content, "ab")
    qtbot.keyClick(content, Qt.Key_Tab)
    assert QApplication.focusWidget() is not content and "\t" not in content.toPlainText()

    dialog = NewProposalDialog(demo_store, doc["village_code"], parent=w)
    qtbot.addWidget(dialog)
    dialog.show()
    in_front(qtbot, dialog)
    dialog.reasons.setFocus()
    qtbot.keyClick(dialog.reasons, Qt.Key_Tab)
    assert QApplication.focusWidget() is not dialog.reasons and dialog.reasons.toPlainText() == ""


def test_a_complete_household_opens_on_the_tab_bar_not_on_a_button_or_field(qtbot, demo_store):
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    in_front(qtbot, editor)
    assert QApplication.focusWidget() is editor.tabs.tabBar()


def test_a_new_household_shows_its_required_fields_calmly_until_one_is_left_or_a_save_is_tried(qtbot, demo_store,
                                                                                                monkeypatch):
    """A new household opened with six red “…为必填项” errors before anything was typed. Now its
    required fields carry their * and the 检查结果 line counts what is left to fill in; a field's
    error shows once the field is left (Tab) and all of them once 保存 is tried. A record just added
    to a list waits the same way; a stored household with a problem shows it at once."""
    w, editor = _new_household_editor(qtbot, demo_store)
    form = editor.household_forms[0]

    def red(panel_form) -> list[str]:
        return [k for k, m in panel_form.messages.items() if not m.isHidden()]

    def listed_errors() -> list[str]:
        return [editor.findings_list.item(i).text() for i in range(editor.findings_list.count())
                if "[错误]" in editor.findings_list.item(i).text()]

    assert red(form) == [] and listed_errors() == []
    assert "带 * 的必填项还有 6 项未填" in editor.findings_title.text()
    assert editor.has_errors()  # still errors for saving and closing, only not shouted
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Tab)  # 户主姓名 left empty
    assert red(form) == ["head_name"] and len(listed_errors()) == 1
    assert "为必填项" in form.messages["head_name"].text()
    assert "还有 5 项未填" in editor.findings_title.text()

    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a: told.append(a[2]))
    assert not editor.save() and told  # nothing typed: not saved, and now every error shows
    required = {k for k, i in form.inputs.items() if i.field.required and i.widget.isEnabled() and form.is_shown(k)}
    assert len(required) >= 5 and required <= set(red(form)) and len(listed_errors()) >= len(required)
    assert "未填" not in editor.findings_title.text()

    members = editor.panels["member"]
    editor.tabs.setCurrentWidget(members)
    members._add_clicked()  # a member just added waits to be typed too
    editor.validate()
    assert red(members.form) == []
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key_Tab)  # its first field (姓名) left empty
    assert red(members.form) == ["name"]

    doc = a_household(demo_store)
    doc["phone"] = "123"
    households.save(demo_store, doc, allow_errors=True)
    stored = editor_of(qtbot, w, doc["id"])
    assert "phone" in red(stored.household_forms[0])


def test_ctrl_n_on_a_laptop_of_one_village_opens_a_new_household_there(qtbot, tmp_path, monkeypatch):
    """A work team's laptop knows one village: 新建贫困户 (Ctrl+N) at first start opens the editor for
    it, instead of asking to choose the only village in the tree first."""
    from tests.sync_helpers import VILLAGE, make_county, make_device

    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: told.append(a[1:3]) or QMessageBox.Ok)
    laptop = make_device(tmp_path, make_county(tmp_path), "龙井村工作队")
    w = open_window(qtbot, laptop)
    in_front(qtbot, w)
    qtbot.keyClick(w, Qt.Key_N, Qt.ControlModifier)
    qtbot.waitUntil(lambda: len(w.editors) == 1)
    editor = w.editors[0]
    assert told == [] and editor.village_code == VILLAGE
    assert editor.title.text().endswith(laptop.division_name(VILLAGE))
    editor.dirty = False


def test_the_drafts_offered_at_start_are_explained_in_full(qtbot, demo_store):
    """After an interrupted edit the next start offers the draft: the explanation above the list is
    not cut at the dialog's edge."""
    doc = a_household(demo_store)
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    typed(qtbot, editor.household_forms[0].inputs["head_name"].widget, "中断前输入")
    editor.write_draft()
    editor.dirty = False
    editor.hide()
    w.hide()  # the laptop goes off: nothing is closed
    again = open_window(qtbot, demo_store)
    dialog = again.drafts_dialog
    assert dialog is not None and dialog.isVisible() and "中断前输入" in dialog.list.item(0).text()
    label = dialog.findChild(QLabel)
    needed = label.fontMetrics().horizontalAdvance(label.text())
    assert needed <= label.width() or (label.wordWrap() and label.height() >= label.heightForWidth(label.width())), \
        (needed, label.width())
    assert "“丢弃”" in label.text()
    dialog.reject()
