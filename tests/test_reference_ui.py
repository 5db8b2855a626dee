"""The 参考数据 window: poverty lines edited in the table, divisions added and imported from a file
(problems listed, nothing written), read-only on an enrolled laptop, and the main window's
township/village tree refreshed when the window closes."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QAbstractItemView, QTreeWidgetItemIterator  # noqa: E402

from app.services import reference  # noqa: E402
from app.store import Store  # noqa: E402
from app.sync import identity  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.reference_dialog import ReferenceDialog  # noqa: E402
from tests import sync_helpers as sh  # noqa: E402
from tests.conftest import PASSPHRASE  # noqa: E402
from tests.test_reference import GOOD  # noqa: E402


@pytest.fixture
def county(tmp_path):
    c = Store.create(tmp_path / "c.db", role="county", site_name="雷山县扶贫办", operator="admin",
                     passphrase=PASSPHRASE, recovery_public_key=X25519PrivateKey.generate().public_key())
    identity.setup_county(c)
    yield c
    c.close()


def dialog(qtbot, store) -> ReferenceDialog:
    d = ReferenceDialog(store)
    qtbot.addWidget(d)
    d.show()
    return d


def tree_codes(tree) -> list[str]:
    out = []
    it = QTreeWidgetItemIterator(tree)
    while it.value():
        data = it.value().data(0, Qt.UserRole)
        out.append(data["code"] if isinstance(data, dict) else data)
        it += 1
    return out


def test_a_poverty_line_is_edited_in_the_table(qtbot, store):
    d = dialog(qtbot, store)
    d.tabs.setCurrentIndex(1)
    row = next(r for r in range(d.lines.rowCount()) if d.lines.item(r, 0).text() == "2025")
    d.lines.item(row, 1).setText("7400")  # what the delegate does when the user types in the cell
    assert store.poverty_line(2025) == 7400 and "已设定 2025 年贫困线 7400" in d.line_message.text()
    d.lines.item(row, 2).setText("县政府文件")
    assert reference.poverty_lines(store)[-1] == {"year": 2025, "line": 7400, "source": "县政府文件"}
    d.lines.item(row, 1).setText("0")  # refused: the stored value comes back, the reason is shown
    assert store.poverty_line(2025) == 7400 and d.lines.item(row, 1).text() == "7400"
    assert "应大于 0" in d.line_message.text()
    # a new year from the row below the table
    d.new_year.setValue(2026)
    d.new_amount.setText("7,600")
    d.new_source.setText("县级文件")
    qtbot.mouseClick(d.set_button, Qt.LeftButton)
    assert store.poverty_line(2026) == 7600 and d.lines.item(d.lines.rowCount() - 1, 0).text() == "2026"
    # Enter in the source sets the line as 设定 does (keyboard users)
    d.new_year.setValue(2027)
    d.new_amount.setText("7800")
    d.new_source.setText("县级文件")
    qtbot.keyClick(d.new_source, Qt.Key_Return)
    assert store.poverty_line(2027) == 7800


def test_divisions_are_added_and_imported_and_a_bad_file_writes_nothing(qtbot, county, tmp_path):
    d = dialog(qtbot, county)
    assert d.add_button.isEnabled() and not d.rename_button.isEnabled()
    assert d.add_division("522634", "雷山县") and tree_codes(d.tree) == ["522634"]
    assert not d.add_division("522634101201", "龙井村") and "还不存在" in d.division_message.text()
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD + "52263410120,坪上村,村,522634101\n", encoding="utf-8")
    d.start_import(str(bad))
    qtbot.waitUntil(lambda: not d.busy, timeout=10000)
    assert "未导入任何区划" in d.division_message.text() and not d.confirm_button.isVisible()
    assert d.import_list.count() == 1 and "bad.csv 第 8 行 列“代码”" in d.import_list.item(0).text()
    assert [x["code"] for x in county.divisions()] == ["522634"]
    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    d.start_import(str(good))
    qtbot.waitUntil(lambda: not d.busy, timeout=10000)
    assert d.confirm_button.isVisible() and "将新增 5 个区划" in d.division_message.text()
    assert len(county.divisions()) == 1  # nothing written before the user confirms
    qtbot.mouseClick(d.confirm_button, Qt.LeftButton)
    assert len(county.divisions()) == 6 and "已新增 5 个区划" in d.division_message.text()
    assert tree_codes(d.tree) == ["522634", "522634101", "522634101201", "522634101202", "522634102", "522634102201"]
    assert d.rename_division("522634101202", "石桥新村") and county.division_name("522634101202") == "石桥新村"


def test_read_only_on_an_enrolled_laptop(qtbot, tmp_path):
    county = sh.make_county(tmp_path)
    laptop = sh.make_device(tmp_path, county, "龙井村工作队")
    try:
        d = dialog(qtbot, laptop)
        assert d.banner.text().startswith("只读:") and "县扶贫办" in d.banner.text()
        assert not any(b.isEnabled() for b in (d.add_button, d.rename_button, d.import_button))
        assert d.lines.editTriggers() == QAbstractItemView.NoEditTriggers
        assert tree_codes(d.tree) == ["522634", "522634101", "522634101201"]
        assert d.lines.rowCount() == len(laptop.poverty_lines()) > 0
        before = laptop.poverty_line(2025)
        assert not d.set_line(2025, 9999) and laptop.poverty_line(2025) == before
    finally:
        laptop.close()
        county.close()


def test_the_main_window_tree_shows_a_village_added_in_the_window(qtbot, demo_store):
    w = MainWindow(demo_store)
    w.set_auto_lock_minutes(0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    assert "参考数据" in [a.text() for a in w.menuBar().actions()]
    window = w.open_external("app.ui.reference_dialog", "ReferenceDialog")
    assert isinstance(window, ReferenceDialog) and window.isVisible()
    assert window.add_division("522634101209", "新设村")
    window.close()
    qtbot.waitUntil(lambda: "522634101209" in tree_codes(w.tree), timeout=5000)
    item = next(i for i in w.tree.findItems("新设村", Qt.MatchStartsWith | Qt.MatchRecursive))
    w.tree.setCurrentItem(item)
    editor = w.new_household()
    assert editor is not None and editor.village_code == "522634101209"
    editor.close()


def test_typing_a_new_townships_own_digits_adds_them_to_the_county_code(qtbot):
    from app.ui.reference_dialog import DivisionForm

    form = DivisionForm({"code": "522634", "name": "雷山县", "level": "county"})
    qtbot.addWidget(form)
    form.show()
    qtbot.waitExposed(form)
    qtbot.waitUntil(lambda: form.code.hasFocus() and not form.code.hasSelectedText())
    qtbot.keyClicks(form.code, "101")
    assert form.code.text() == "522634101"


def test_the_monitoring_criteria_are_set_and_edited_in_their_tab(qtbot, county):
    """防返贫监测标准 beside 贫困线 (as `jiandang reference monitoring`): set from the row below the table,
    edited in a cell, a refused value explained and the stored value back."""
    d = dialog(qtbot, county)
    page = d.criteria
    d.tabs.setCurrentWidget(page)
    assert d.tabs.tabText(d.tabs.currentIndex()) == "防返贫监测标准"
    assert page.table.rowCount() == 0 and "还没有设定监测收入标准" in page.message.text()
    page.new_year.setValue(2025)
    page.new_line.setText("8,800")
    page.new_months.setValue(6)
    page.new_days.setValue(120)
    page.new_source.setText("省乡村振兴局〔2025〕1号")
    qtbot.keyClick(page.new_source, Qt.Key_Return)  # Enter sets it, as 设定 does
    assert county.monitoring_criteria(2025) == {"year": 2025, "line": 8800, "min_months": 6, "risk_days": 120,
                                                "source": "省乡村振兴局〔2025〕1号"}
    assert [page.table.item(0, c).text() for c in range(4)] == ["2025", "8800", "6", "120"]
    assert "已设定 2025 年监测收入标准 8800" in page.message.text()
    page.table.item(0, 1).setText("9000")  # what the delegate does when the user types in the cell
    assert county.monitoring_criteria(2025)["line"] == 9000
    page.table.item(0, 2).setText("六")  # refused: said, and the stored value comes back
    assert "最短监测时间(月)应为整数" in page.message.text() and page.table.item(0, 2).text() == "6"
    assert county.monitoring_criteria(2025)["min_months"] == 6


def test_the_monitoring_criteria_are_read_only_on_an_enrolled_laptop(qtbot, tmp_path):
    county = sh.make_county(tmp_path)
    county.set_monitoring_criteria(2025, 8800, 6, 180, "省里文件")
    laptop = sh.make_device(tmp_path, county, "龙井村工作队")
    try:
        d = dialog(qtbot, laptop)
        page = d.criteria
        rows = {page.table.item(r, 0).text(): page.table.item(r, 1).text() for r in range(page.table.rowCount())}
        assert rows["2025"] == "8800" and len(rows) == len(county.all_monitoring_criteria())  # came with the enrollment
        assert page.table.editTriggers() == QAbstractItemView.NoEditTriggers
        assert not page.set_button.isVisibleTo(d) and "防返贫监测标准由县扶贫办统一设定" in d.banner.text()
        assert not page.set_criteria(2025, 1) and laptop.monitoring_criteria(2025)["line"] == 8800
        assert "县扶贫办" in page.message.text()
    finally:
        laptop.close()
        county.close()
