"""The main window's household list while it loads and after imports: usable from its first part
(search, sort, selection, opening deferred until the store is free), complete and correct once
every part is in, and the village tree's counts following a table import made in the window."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from app.services import households  # noqa: E402
from app.ui import main_window, model  # noqa: E402
from app.ui.fonts import install_font  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from tests.test_tables import SYN_HEADER, V, ledger, syn_rows  # noqa: E402
from tests.test_ui import typed  # noqa: E402


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    install_font(qapp)


@pytest.fixture
def held_loading(monkeypatch):
    """Load the list in small parts and hold the worker after the first part until the returned
    event is set (the rest of a county's households being decrypted while the user works)."""
    gate = threading.Event()
    yield lambda: hold(monkeypatch, gate)
    gate.set()  # never leave a worker waiting after a failed test


def hold(monkeypatch, gate: threading.Event, first: int = 3, size: int = 4) -> threading.Event:
    real = model.load_parts

    def held(store, part, progress=None):
        def hand(p):
            part(p)
            if p.done <= first:
                gate.wait(30)

        return real(store, hand, progress, first=first, size=size)

    monkeypatch.setattr(main_window, "load_parts", held)
    return gate


def shown_ids(w: MainWindow) -> list[str]:
    return [w.model.row_at(i).id for i in range(w.model.rowCount())]


def open_loading(qtbot, store) -> MainWindow:
    w = MainWindow(store)
    w.set_auto_lock_minutes(0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.shown, timeout=20000)
    return w


def test_the_list_is_usable_from_its_first_part_and_a_search_typed_meanwhile_covers_every_household(
        qtbot, demo_store, held_loading):
    docs = households.documents(demo_store)  # before the window: its worker alone uses the store
    late = next(d for d in reversed(docs) if any(m["name"] not in d["head_name"] for m in d["members"]))
    assert docs.index(late) >= 4  # read in a later part
    text = next(m["name"] for m in late["members"] if m["name"] not in late["head_name"])
    expected = set(demo_store.search(text))
    gate = held_loading()
    w = open_loading(qtbot, demo_store)
    assert not w.loaded and w.model.rowCount() == 3
    assert w.table.isEnabled() and w.search.isEnabled() and "读取中" in w.count_label.text()
    assert not w.new_action.isEnabled() and not w.open_action.isEnabled()  # they need the store
    # Enter on a row while loading: opened once the store is free, not meanwhile
    rect = w.table.visualRect(w.model.index(0, 1))
    qtbot.mouseClick(w.table.viewport(), Qt.LeftButton, pos=rect.center())
    first = w.current_household_id()
    w.table.setFocus()
    qtbot.keyClick(w.table, Qt.Key_Return)
    assert w.editors == [] and "读完后打开" in w.statusBar().currentMessage()
    typed(qtbot, w.search, text)
    assert late["id"] not in shown_ids(w)  # not read yet
    gate.set()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    assert set(shown_ids(w)) == expected and late["id"] in expected
    assert w.model.reason(late["id"]) == f"成员“{text}”" and not w.table.isColumnHidden(model.MATCH_COLUMN)
    assert w.count_label.text() == f"{len(expected)} / 12 户"
    assert w.tree.topLevelItem(0).text(0) == "全部(12 户)"
    qtbot.waitUntil(lambda: [e.household_id for e in w.editors] == [first])
    w.search.clear()
    assert len(shown_ids(w)) == 12 and w.new_action.isEnabled()


def test_parts_arrive_in_the_sort_order_the_selection_stays_and_the_sort_holds_through_a_search(
        qtbot, demo_store, held_loading):
    docs = households.documents(demo_store)
    gate = held_loading()
    w = open_loading(qtbot, demo_store)
    numbers = [w.model.row_at(i).household_number for i in range(w.model.rowCount())]
    assert numbers == sorted(numbers)  # by 户编号, as the header shows, until the user sorts
    w.table.sortByColumn(1, Qt.DescendingOrder)  # 户主, while the rest is still being read
    w.table.selectRow(1)
    chosen = w.current_household_id()
    gate.set()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    heads = [w.model.row_at(i).head_name for i in range(w.model.rowCount())]
    assert len(heads) == 12 and heads == sorted(heads, reverse=True)
    assert w.current_household_id() == chosen  # still on the household the user chose
    # a search keeps the order the header shows
    surname = docs[0]["head_name"][0]
    typed(qtbot, w.search, surname)
    heads = [w.model.row_at(i).head_name for i in range(w.model.rowCount())]
    assert heads and heads == sorted(heads, reverse=True)
    # so does saving a household (the list is refreshed from the store)
    doc = households.document(demo_store, docs[1]["id"])
    doc["phone"] = "13800000000"
    households.save(demo_store, doc, allow_errors=True)
    heads = [w.model.row_at(i).head_name for i in range(w.model.rowCount())]
    assert heads and heads == sorted(heads, reverse=True)


def test_a_table_import_in_the_window_changes_the_village_counts_in_the_tree(qtbot, store, tmp_path):
    w = MainWindow(store)
    w.set_auto_lock_minutes(0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)

    def label(code):
        stack = [w.tree.topLevelItem(0)]
        while stack:
            item = stack.pop()
            if item.data(0, Qt.UserRole) == code:
                return item.text(0)
            stack += [item.child(i) for i in range(item.childCount())]
        raise AssertionError(code)

    name = store.division_name(V)
    town = next(d for d in store.divisions("village") if d["code"] == V)["parent"]
    town_name = store.division_name(town)
    assert label(V) == f"{name}(0)" and label(town) == f"{town_name}(0)" and label("") == "全部(0 户)"
    dialog = w.open_external("app.ui.table_dialog", "TableDialog")
    dialog.village.setCurrentIndex(dialog.village.findData(V))
    dialog.set_file(ledger(tmp_path / "台账.xlsx", SYN_HEADER, syn_rows()))
    dialog.check()
    assert dialog.wait_until_done()
    dialog.confirm_import()
    assert dialog.wait_until_done() and dialog.report.created == 2
    qtbot.waitUntil(lambda: w.model.rowCount() == 2)
    assert label(V) == f"{name}(2)" and label(town) == f"{town_name}(2)" and label("") == "全部(2 户)"
    # a household removed from the list leaves the count too
    hid = w.model.row_at(0).id
    store.delete(hid, reason="测试")
    assert label(V) == f"{name}(1)" and label("") == "全部(1 户)"


def test_after_an_unclean_end_the_check_runs_first_and_the_days_backup_after_the_list_is_read(
        qtbot, demo_store, monkeypatch, held_loading):
    from app import settings
    from app.services import backup

    said = []
    monkeypatch.setattr(main_window.QMessageBox, "information", lambda _w, title, text: said.append(title))
    monkeypatch.setattr(main_window.QMessageBox, "warning", lambda _w, title, text: said.append(title))
    folder = settings.backup_folder()
    gate = held_loading()
    w = MainWindow(demo_store, unclean=True, daily_backup=True)
    w.set_auto_lock_minutes(0)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.shown, timeout=20000)
    assert backup.backups(folder, demo_store.db_id) == []  # the backup waits until every household is read
    gate.set()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    assert said == ["上次未正常关闭"] and len(w.model.rows) == 12
    assert len(backup.backups(folder, demo_store.db_id)) == 1 and w.count_label.text() == "12 / 12 户"


def test_a_village_and_a_status_chosen_while_loading_filter_every_household_read_after(
        qtbot, demo_store, held_loading):
    docs = households.documents(demo_store)
    village = docs[-1]["village_code"]  # a village whose households come in a later part
    status = docs[-1]["status"]
    expected = {d["id"] for d in docs if d["village_code"] == village and d["status"] == status}
    gate = held_loading()
    w = open_loading(qtbot, demo_store)
    stack = [w.tree.topLevelItem(0)]
    while stack:
        item = stack.pop()
        if item.data(0, Qt.UserRole) == village:
            w.tree.setCurrentItem(item)
        stack += [item.child(i) for i in range(item.childCount())]
    w.status_filter.setCurrentIndex(w.status_filter.findData(status))
    assert not w.loaded and set(shown_ids(w)) <= expected and docs[-1]["id"] not in shown_ids(w)  # not read yet
    gate.set()
    qtbot.waitUntil(lambda: w.loaded, timeout=20000)
    assert set(shown_ids(w)) == expected and w.count_label.text() == f"{len(expected)} / 12 户"
