"""What a tester saw in the window, fixed: Qt's own buttons in Chinese (with and without Qt's
catalogue, and in the packaged build), a prompt whose buttons carry the words its text names, the
reason for a lock, findings that name fields and lists in Chinese, nothing cut or squeezed (history
panel, member table, proposals and work lists, the wizard's hints), the county window only on county
databases at a usable size, and the new-database wizard creating a laptop database from the county's
enrollment package."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtGui import QFontMetrics  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QApplication, QDialogButtonBox, QFileDialog, QInputDialog, QLabel, QMessageBox, QTreeWidgetItemIterator,
)

from app.core.validation import validate_household  # noqa: E402
from app.paths import resources_dir  # noqa: E402
from app.services import households  # noqa: E402
from app.sync import identity  # noqa: E402
from app.ui import drafts, translations  # noqa: E402
from app.ui.editor import ask_unsaved  # noqa: E402
from tests import factories  # noqa: E402
from tests.conftest import PASSPHRASE  # noqa: E402
from tests.test_ui import a_household, editor_of, home, open_window, typed  # noqa: E402, F401 - home: autouse

ROOT = Path(__file__).resolve().parent.parent
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


def button_texts(box) -> list[str]:
    return [b.text() for b in box.buttons()]


def when_modal(qtbot, act) -> list:
    """Run act(dialog) on the next modal dialog (called before the code that opens it)."""
    seen = []

    def poll():
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, poll)
            return
        seen.append(dialog)
        act(dialog)

    QTimer.singleShot(0, poll)
    return seen


# ---------------------------------------------------------------------------- Qt's own texts


def test_qt_message_input_and_file_dialogs_speak_chinese(qapp):
    source = translations.install_translations(qapp)  # done once by the qapp fixture, as application() does
    assert source.endswith("qtbase_zh_CN.qm")
    box = QMessageBox(QMessageBox.Question, "t", "x", QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel
                      | QMessageBox.Ok | QMessageBox.Yes | QMessageBox.No)
    texts = button_texts(box)
    assert {"保存", "取消", "确定"} <= set(texts) and not any(LATIN_WORD.search(t) for t in texts), texts
    dialog = QInputDialog()
    dialog.setInputMode(QInputDialog.IntInput)
    dialog.show()
    assert button_texts(dialog.findChild(QDialogButtonBox)) == ["确定", "取消"]
    dialog.close()
    files = QFileDialog(None, "打开数据库", str(ROOT), "建档数据库 (*.db)")
    files.setOption(QFileDialog.DontUseNativeDialog)
    files.show()
    shown = [w.text() for w in files.findChildren(QLabel) if w.text()]
    shown += [t for b in files.findChildren(QDialogButtonBox) for t in button_texts(b)]
    assert shown and not [t for t in shown if LATIN_WORD.search(t)], shown  # 查找范围, 文件名称, 文件类型, 打开, 取消
    files.close()


def test_without_qts_catalogue_the_buttons_are_still_chinese(qapp, tmp_path, monkeypatch):
    translators, source = translations._installed.pop(id(qapp))
    for t in translators:
        qapp.removeTranslator(t)
    monkeypatch.setattr(translations, "candidates", lambda: [tmp_path / translations.QM])
    try:
        assert translations.install_translations(qapp) == "fallback"
        box = QMessageBox(QMessageBox.Question, "t", "x", QMessageBox.Ok | QMessageBox.Save | QMessageBox.Cancel
                          | QMessageBox.Discard)
        assert button_texts(box) == ["确定", "保存", "取消", "丢弃"]
    finally:
        for t in translations._installed.pop(id(qapp))[0]:
            qapp.removeTranslator(t)
        for t in translators:
            qapp.installTranslator(t)
        translations._installed[id(qapp)] = (translators, source)


def test_the_packaged_program_carries_qts_chinese_catalogue_where_it_looks_first():
    assert translations.candidates()[0] == resources_dir() / "translations" / translations.QM
    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    assert 'QLibraryInfo.path(QLibraryInfo.TranslationsPath)) / "qtbase_zh_CN.qm"' in spec
    assert 'datas.append((str(QT_ZH), "resources/translations"))' in spec


def test_the_unsaved_changes_prompt_has_the_buttons_its_text_names(qtbot, demo_store, monkeypatch):
    monkeypatch.setattr("app.ui.editor.ask_unsaved", ask_unsaved)  # the real question, not the tests' stand-in
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    typed(qtbot, editor.household_forms[0].inputs["group"].widget, "九组")
    editor.write_draft()
    seen = {}

    def answer(box):
        seen["text"] = box.text()
        seen["buttons"] = button_texts(box)
        box.button(QMessageBox.Discard).click()  # the button the text calls 放弃

    when_modal(qtbot, answer)
    editor.close()
    qtbot.waitUntil(lambda: not w.editors)
    assert "选“放弃”" in seen["text"]
    assert seen["text"].startswith(f"户主“{doc['head_name']}”(户编号 {doc['household_number']})有未保存的修改")
    assert sorted(seen["buttons"]) == sorted(["保存", "放弃", "取消"])
    assert households.document(demo_store, doc["id"]).get("group") == doc.get("group")
    assert drafts.pending(demo_store) == []


# ---------------------------------------------------------------------------- lock


def test_a_lock_by_the_user_says_so_and_an_idle_lock_says_idle(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    action = next(a for a in w.menuBar().actions()[0].menu().actions() if a.text() == "立即锁定")
    assert action.shortcut().toString() == "Ctrl+L"
    action.trigger()
    assert w.locked and not demo_store.unlocked
    message = w.unlock_dialog.message.text()
    assert "立即锁定" in message and "无操作" not in message
    typed(qtbot, w.unlock_dialog.passphrase, PASSPHRASE)
    qtbot.mouseClick(w.unlock_dialog.unlock_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not w.locked and w.loaded, timeout=20000)  # the unlock runs off the GUI thread
    w.set_auto_lock_minutes(0.3 / 60)
    qtbot.waitUntil(lambda: w.locked, timeout=5000)
    assert "长时间无操作" in w.unlock_dialog.message.text()
    w.set_auto_lock_minutes(0)
    typed(qtbot, w.unlock_dialog.passphrase, PASSPHRASE)
    qtbot.mouseClick(w.unlock_dialog.unlock_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not w.locked and w.loaded, timeout=20000)  # the unlock runs off the GUI thread


# ---------------------------------------------------------------------------- findings


def test_findings_name_fields_and_lists_in_chinese_and_jump_to_the_list(qtbot, store):
    saved = households.save(store, factories.household(helpers=[], family_size=3), allow_errors=True)
    w = open_window(qtbot, store)
    editor = editor_of(qtbot, w, saved.household_id)
    lines = [editor.findings_list.item(i).text() for i in range(editor.findings_list.count())]
    assert any(line.endswith("帮扶责任人:该户没有在帮的帮扶责任人") for line in lines), lines
    assert any("家庭人口数:" in line for line in lines), lines
    assert not [line for line in lines if LATIN_WORD.search(line)], lines  # no helpers, family_size, ...
    item = next(editor.findings_list.item(i) for i in range(editor.findings_list.count())
                if "帮扶责任人:" in editor.findings_list.item(i).text())
    editor.findings_list.itemActivated.emit(item)
    assert editor.tabs.currentWidget() is editor.panels["helper"]
    # 检查全部贫困户 lists the same way
    w.validate_all()
    qtbot.waitUntil(lambda: getattr(w, "findings_dialog", None) is not None and w.findings_dialog.isVisible())
    lst = w.findings_dialog.findChild(type(editor.findings_list), "all_findings")
    all_lines = [lst.item(i).text() for i in range(lst.count())]
    assert any("帮扶责任人:该户没有在帮的帮扶责任人" in line for line in all_lines), all_lines
    assert not [line for line in all_lines if LATIN_WORD.search(line)], all_lines
    assert not [line for line in all_lines if line.count("[") > 1]  # one 错误/提示 mark per line
    # a rule about the whole member list is named 家庭成员
    doc = factories.household(village_code=factories.VILLAGE)
    doc["members"][0]["relation"] = "03"
    doc["id"] = "x"
    findings = [f for f in validate_household(doc) if f.field == "members"]
    from app.ui.forms import finding_line  # noqa: PLC0415

    assert findings and "· 家庭成员:" in finding_line(editor.d, findings[0])


# ---------------------------------------------------------------------------- layout


def test_the_history_panel_cuts_no_time_or_value_and_has_tooltips(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    typed(qtbot, editor.household_forms[0].inputs["phone"].widget, "13912345678")
    qtbot.mouseClick(editor.save_button, Qt.LeftButton)
    tree = editor.history.tree
    tree.expandAll()
    metrics = QFontMetrics(tree.font())
    it = QTreeWidgetItemIterator(tree)
    checked = 0
    while it.value():
        item = it.value()
        depth = 0 if item.parent() is None else 1
        for col in range(3):
            text = item.text(col)
            if not text:
                continue
            assert item.toolTip(col) == text
            room = tree.columnWidth(col) - (tree.indentation() * (depth + 1) if col == 0 else 0)
            assert metrics.horizontalAdvance(text) <= room, (text, tree.columnWidth(col))
            checked += 1
        it += 1
    assert checked > 20
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", e[0]) for e in editor.history.entries())
    assert ["联系电话", doc["phone"], "13912345678"] in editor.history.entries()


def test_the_history_panel_shows_every_value_whole_at_1366_without_scrolling_sideways(qtbot, demo_store):
    """At 1366×768 the panel is about 440 pixels wide. Its columns took their contents' width and it
    scrolled sideways, so a new member's 18-digit ID number (and a household's 户编号) was cut at its
    right edge. Now the field names give way (elided, the full name in the tooltip) and every value
    is whole inside the panel."""
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    editor.resize(1366, 740)
    qtbot.waitUntil(lambda: editor.width() == 1366)
    member = next(m for m in doc["members"] if m.get("id_number"))
    for kind, record_id in (("household", doc["id"]), ("member", member["id"])):
        editor._show_history(kind, record_id)
        tree = editor.history.tree
        qtbot.wait(20)
        assert tree.header().length() <= tree.viewport().width(), (kind, tree.header().length(), tree.viewport().width())
        metrics = QFontMetrics(tree.font())
        values = [tree.topLevelItem(0).child(j).text(2) for j in range(tree.topLevelItem(0).childCount())]
        assert member["id_number"] in values or kind == "household"
        for text in values:
            assert metrics.horizontalAdvance(text) <= tree.columnWidth(2), (kind, text, tree.columnWidth(2))
    # a changed ID number: the old one (原来) and the new one (改为) both whole, side by side
    from stdnum.cn import ric

    body = "52263419" + ("800101" if member["id_number"][8:14] != "800101" else "800102") + "123"
    new_number = body + ric.calc_check_digit(body)
    demo_store.put("member", {"id_number": new_number}, record_id=member["id"])
    editor._show_history("member", member["id"])
    qtbot.wait(20)
    tree = editor.history.tree
    change = next(tree.topLevelItem(0).child(j) for j in range(tree.topLevelItem(0).childCount())
                  if tree.topLevelItem(0).child(j).text(2) == new_number)
    assert change.text(1) == member["id_number"]
    assert tree.header().length() <= tree.viewport().width()
    for col in (1, 2):
        assert metrics.horizontalAdvance(change.text(col)) <= tree.columnWidth(col), (col, tree.columnWidth(col))


def test_all_eleven_editor_tabs_show_on_a_1366_pixel_screen_without_scrolling(qtbot, demo_store):
    """The tabs carry short names (forms/ `tab_label`) so that none hides behind the tab bar's scroll
    arrows on a 1366×768 laptop (they did: 防返贫监测 and 照片 were out of sight); the full name is the tooltip."""
    w = open_window(qtbot, demo_store)
    doc = a_household(demo_store)
    editor = editor_of(qtbot, w, doc["id"])
    bar = editor.tabs.tabBar()
    assert bar.count() == 11
    for size in ((1366, 740), (editor.width(), editor.height())):  # maximised under the taskbar; its own size
        editor.resize(*size)
        qtbot.waitUntil(lambda: editor.width() == size[0])
        qtbot.wait(20)
        room = editor.tabs.width()
        needed = bar.sizeHint().width()
        assert needed <= room, (size, needed, room)
        assert all(bar.rect().contains(bar.tabRect(i)) for i in range(bar.count())), size
        if size[0] == 1366:
            assert room - needed >= 60  # room to spare (fonts and styles differ a little)
    tips = [bar.tabToolTip(i) for i in range(bar.count())]
    assert tips[2] == "家庭成员(Alt+3)" and tips[-1] == "防返贫监测" and "照片" in tips[9]
    texts = [bar.tabText(i) for i in range(bar.count())]
    assert texts[0] == "&1.基本情况" and texts[9] == "&0.照片"  # Alt+1 … Alt+0 unchanged (the digit in front)
    editor.discard()


def test_the_member_table_shows_a_whole_household_of_seven(qtbot, store):
    doc = factories.household()
    for i, (name, sex) in enumerate([("欧阳子轩", "1"), ("欧阳梓涵", "2"), ("欧阳浩然", "1"), ("欧阳雨桐", "2"),
                                     ("欧阳一诺", "1")]):
        doc["members"].append(factories.member(name, sex, dt.date(2000 + i, 1, 2), "03" if sex == "1" else "04", 10 + i))
    doc["family_size"] = 7
    saved = households.save(store, doc, allow_errors=True)
    w = open_window(qtbot, store)
    editor = editor_of(qtbot, w, saved.household_id)  # the editor's own default size
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    table = panel.table
    qtbot.waitUntil(lambda: table.rowCount() == 7 and panel._fitted)
    for row in range(7):
        bottom = table.rowViewportPosition(row) + table.rowHeight(row)
        assert 0 <= table.rowViewportPosition(row) and bottom <= table.viewport().height(), row
    assert panel.split.sizes()[1] >= 200  # the form below still has room
    panel.add()  # an eighth grows the table too
    qtbot.wait(50)
    assert table.rowViewportPosition(7) + table.rowHeight(7) <= table.viewport().height()
    editor.discard()


def test_proposals_and_work_lists_are_not_squeezed(qtbot, demo_store):
    from app.services import proposals
    from app.ui.proposals_panel import ProposalsWindow

    made = 0
    for doc in households.documents(demo_store):
        try:
            proposals.propose(demo_store, doc["id"], "exit", reasons="收入稳定", income_year=2025, food_secure=True,
                              clothing_secure=True, justification="已核实")
            made += 1
        except proposals.ProcedureError:
            continue
    assert made
    window = ProposalsWindow(demo_store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.loading and window.table.rowCount() == made, timeout=20000)
    table = window.table
    assert table.horizontalHeader().length() <= table.viewport().width()  # every column fits, 退出标准 too
    for col in range(table.columnCount() - 1):
        assert table.columnWidth(col) >= table.sizeHintForColumn(col) + 8, col  # room between columns
    tree = window.tree
    window.tabs.setCurrentIndex(1)
    tops = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    assert tops and all(t.isFirstColumnSpanned() for t in tops)  # a list's title does not widen 户编号
    names = [t.child(j).text(1) for t in tops for j in range(t.childCount()) if t.isExpanded()]
    metrics = QFontMetrics(tree.font())
    assert names and tree.columnWidth(1) >= max(metrics.horizontalAdvance(n) for n in names) + 8
    numbers = [t.child(j).text(0) for t in tops for j in range(t.childCount()) if t.isExpanded()]
    assert tree.columnWidth(0) >= max(metrics.horizontalAdvance(n) for n in numbers) + tree.indentation()
    assert tree.columnWidth(0) < 260  # not as wide as the longest title
    window.close()


# ---------------------------------------------------------------------------- county window


def test_county_import_is_offered_only_on_county_databases_at_a_usable_size(qtbot, make_store):
    from app.ui.main_window import EXTERNAL, shown_for

    assert shown_for(("county",), "county") and not shown_for(("county",), "village") and shown_for((), "village")
    assert any(cls == "CountyImportScreen" and "county" in options for _m, _l, _mod, cls, options in EXTERNAL)

    def labels(w):
        return [a.text() for m in w.menuBar().actions() if m.menu() for a in m.menu().actions()]

    village = make_store("v.db")
    w = open_window(qtbot, village)
    assert "县级导入…" not in labels(w) and "同步(U 盘或立即同步)…" in labels(w)
    w.close()
    county = make_store("c.db", role="county")
    identity.setup_county(county)
    cw = open_window(qtbot, county)
    assert "县级导入…" in labels(cw)
    action = next(a for m in cw.menuBar().actions() if m.menu() for a in m.menu().actions() if a.text() == "县级导入…")
    action.trigger()
    screen = cw.external["CountyImportScreen"]
    assert screen.width() >= 900 and screen.height() >= 560
    screen.close()


# ---------------------------------------------------------------------------- enrollment


def test_the_wizards_hints_are_not_cut(qtbot):
    from app.ui.start import CreateWizard

    wizard = CreateWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.manual.setChecked(True)
    wizard.next()
    wizard.site_name.setText("雷山县扶贫办")
    wizard.next()
    for field in (wizard.operator, wizard.passphrase, wizard.passphrase2):
        field.setText("abcdefgh1" if field is not wizard.operator else "王五")
    wizard.next()
    assert wizard.currentId() == CreateWizard.FILES and wizard.key_file.isVisible()
    qtbot.wait(50)
    for edit in (wizard.key_file, wizard.package, wizard.code):
        text = edit.placeholderText()
        room = edit.width() - 12  # the line edit's frame and text margins
        assert QFontMetrics(edit.font()).horizontalAdvance(text) <= room, text
    assert "留空则生成一对密钥" in wizard.key_hint.text() and wizard.key_hint.isVisible()


@pytest.fixture
def package(make_store, tmp_path):
    county = make_store("county.db", role="county", operator="县级")
    from app.services import demo

    demo.install_reference_data(county)
    identity.setup_county(county)
    villages = [d["code"] for d in county.divisions("village")][:2]
    enrollment = identity.enroll(county, site_name="龙井村驻村工作队", role="village", villages=villages)
    path = tmp_path / "longjing.jde"
    path.write_bytes(enrollment.package)
    return path, enrollment, county


def test_the_wizard_creates_a_laptop_database_from_an_enrollment_package(qtbot, package, tmp_path):
    from app.ui import preferences
    from app.ui.start import CreateWizard

    path, enrollment, county = package
    wizard = CreateWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    assert wizard.use_enrollment.isChecked()  # the usual way for a laptop
    wizard.next()
    assert wizard.currentId() == CreateWizard.ENROLL
    wizard.package.setText(str(path))
    typed(qtbot, wizard.code, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
    wizard.next()
    assert wizard.currentId() == CreateWizard.ENROLL  # refused
    assert "登记码不对" in wizard.enroll_error.text()
    typed(qtbot, wizard.code, enrollment.code_display.lower())  # case and dashes do not matter
    wizard.next()
    assert wizard.currentId() == CreateWizard.PERSON, wizard.enroll_error.text()
    assert "龙井村驻村工作队" in wizard.enrolled_as.text() and wizard.enrolled_as.isVisible()
    typed(qtbot, wizard.operator, "李四")
    typed(qtbot, wizard.passphrase, PASSPHRASE)
    typed(qtbot, wizard.passphrase2, PASSPHRASE)
    wizard.next()
    assert wizard.currentId() == CreateWizard.FILES
    assert not wizard.key_file.isVisible() and "取自登记包" in wizard.key_hint.text()
    db = tmp_path / "laptop.db"
    wizard.path.setText(str(db))
    wizard.next()  # 创建
    store = wizard.store
    try:
        assert store is not None and store.unlocked and store.operator == "李四"
        assert store.role == "village" and store.site_name == "龙井村驻村工作队"
        assert identity.device_certificate(store).site_id == enrollment.site_id
        assert store.meta("county_sign_public") == county.meta("county_sign_public")
        assert preferences.load().recent[0] == str(db)
    finally:
        store.close()
    # the same file again: refused, the database untouched
    again = CreateWizard()
    qtbot.addWidget(again)
    again.package.setText(str(path))
    again.code.setText(enrollment.code)
    again.operator.setText("x")
    again.passphrase.setText(PASSPHRASE)
    again.path.setText(str(db))
    assert not again.create() and "已存在" in again.error.text()


def test_a_package_and_folder_pasted_in_quotes_are_found(qtbot, package, tmp_path):
    """Windows' 复制为路径 pastes a file's name in double quotes: the wizard opens the package and the
    USB window reads the folder as if the quotes were not there."""
    from app.ui.start import CreateWizard
    from app.ui.sync_dialog import SyncPanel

    path, enrollment, county = package
    wizard = CreateWizard()
    qtbot.addWidget(wizard)
    wizard.package.setText(f' "{path}" ')
    wizard.code.setText(enrollment.code)
    assert wizard.open_package(), wizard.enroll_error.text()
    wizard.path.setText(f'“{tmp_path / "laptop.db"}”')
    wizard.operator.setText("李四")
    wizard.passphrase.setText(PASSPHRASE)
    assert wizard.create(), wizard.error.text()
    try:
        assert (tmp_path / "laptop.db").exists() and wizard.store.site_name == "龙井村驻村工作队"
    finally:
        wizard.store.close()
    panel = SyncPanel(county)
    qtbot.addWidget(panel)
    panel.folder.setText(f'"{tmp_path}"')
    assert panel._folder() == tmp_path


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not_a_package", "missing"])
def test_a_damaged_enrollment_package_gives_a_clear_message(qtbot, package, tmp_path, damage):
    from app.ui.start import CreateWizard

    path, enrollment, _county = package
    data = path.read_bytes()
    bad = tmp_path / "bad.jde"
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        bad.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    elif damage == "not_a_package":
        bad.write_bytes("这是一个表格".encode() * 20)
    wizard = CreateWizard()
    qtbot.addWidget(wizard)
    wizard.package.setText(str(bad))
    wizard.code.setText(enrollment.code)
    assert not wizard.open_package()
    message = wizard.enroll_error.text()
    assert message and not LATIN_WORD.search(message.replace("bad.jde", "")), message
    if damage == "missing":
        assert "找不到登记包文件 bad.jde" in message
    else:
        assert "不能作为登记包使用" in message and "县扶贫办重新导出登记包" in message
    assert wizard.enrollment is None and not (tmp_path / "laptop.db").exists()
