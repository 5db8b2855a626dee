"""The 识别与退出 window: proposals by stage, doing the next stage, role refusals, work lists."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("PySide6")

from app.services import demo, households, proposals  # noqa: E402
from app.ui.proposals_panel import NewProposalDialog, ProposalsWindow  # noqa: E402
from app.ui import workers  # noqa: E402
from tests.factories import household  # noqa: E402


def ago(days):
    return (dt.date.today() - dt.timedelta(days=days)).isoformat()


def setup(store):
    demo.install_reference_data(store)
    store.set_poverty_line(2025, 4000)
    a = households.save(store, household(dilapidated="0")).household_id
    b = households.save(store, household("东方明", "西门兰", seq=4, dilapidated="0", helpers=[])).household_id
    return a, b


def open_window(qtbot, store):
    w = ProposalsWindow(store)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.loaded, timeout=10000):
        w.show()
    return w


def test_the_window_lists_proposals_and_records_the_village_review(qtbot, make_store):
    store = make_store()
    a, _ = setup(store)
    p = proposals.propose(store, a, "exit", reasons="务工增收", food_secure=True, clothing_secure=True, date=ago(10))
    w = open_window(qtbot, store)
    assert w.table.rowCount() == 1 and w.table.item(0, 4).text() == "等待村级评议"
    assert w.table.item(0, 6).text() == "达标"
    assert "年人均纯收入" in w.detail.toPlainText() and "4,500.00" in w.detail.toPlainText()
    assert w.do_button.isEnabled() and w.do_button.text() == "办理“村级评议”"
    # a review without the household's signature is refused in the window, nothing written
    w.meeting_date.setDate(w.meeting_date.date().addDays(-3))
    w.attendance.setValue(20)
    w.votes_for.setValue(15)
    w.do_button.click()
    assert "农户签字同意" in w.action_message.text()
    assert proposals.get(store, p["id"])["stage"] == "nominate"
    w.signed.setChecked(True)
    with qtbot.waitSignal(w.loaded, timeout=10000):
        w.do_button.click()
    assert proposals.get(store, p["id"])["stage"] == "review"
    assert proposals.get(store, p["id"])["review_votes_for"] == 15
    assert w.table.item(0, 4).text() == "等待村内公示"
    assert "村级评议" in w.detail.toPlainText() and "参会 20 人" in w.detail.toPlainText()


def test_a_stage_this_role_may_not_do_is_shown_and_disabled(qtbot, make_store):
    store = make_store("county.db", role="county")
    a, _ = setup(store)
    w = open_window(qtbot, store)
    assert not w.new_button.isEnabled()  # the county does not nominate
    # a proposal that reached the county database waiting for the township
    store.put("proposal", {"proposal_kind": "exit", "reasons": "x", "stage": "notice", "nominate_outcome": "pass",
                           "review_outcome": "pass", "notice_outcome": "pass", "income_year": 2025},
              village_code="522634101201", parent_id=a)
    with qtbot.waitSignal(w.loaded, timeout=10000):
        pass  # the store listener reloads the window
    assert w.table.rowCount() == 1
    assert not w.do_button.isEnabled()
    assert "“乡级初核”只能由乡级数据库办理,本数据库是县级" in w.next_label.text()


def test_the_work_lists_tab_counts_each_list(qtbot, make_store):
    store = make_store()
    a, b = setup(store)
    proposals.propose(store, a, "exit", reasons="增收", food_secure=True, clothing_secure=False,
                      justification="衣物已由帮扶单位解决")
    w = open_window(qtbot, store)
    titles = [w.tree.topLevelItem(i).text(0) for i in range(w.tree.topLevelItemCount())]
    assert "缺帮扶责任人(1 户)" in titles
    assert "等待村级评议(1 户)" in titles
    assert "退出未达标(乡级初核重点核查)(1 户)" in titles
    missing = w.tree.topLevelItem(titles.index("缺帮扶责任人(1 户)")).child(0)
    assert missing.text(1) == "东方明"


def test_the_new_proposal_dialog_refuses_without_a_reason_then_nominates(qtbot, make_store):
    store = make_store()
    _, b = setup(store)
    dialog = NewProposalDialog(store, household_id=b)
    qtbot.addWidget(dialog)
    dialog.kind.setCurrentIndex(dialog.kind.findData("exit"))
    assert "年人均纯收入" in dialog.assessment.text()
    dialog.submit()
    assert "请写明申报理由" in dialog.message.text() and proposals.proposals(store) == []
    dialog.reasons.setPlainText("务工收入稳定")
    dialog.food.setChecked(True)
    dialog.clothing.setChecked(True)
    dialog.submit()
    assert dialog.result_proposal is not None
    assert [p["household_id"] for p in proposals.proposals(store)] == [b]


def test_the_window_opens_as_its_own_window_from_a_parent(qtbot, make_store):
    from PySide6.QtWidgets import QMainWindow

    store = make_store()
    setup(store)
    main = QMainWindow()
    qtbot.addWidget(main)
    w = ProposalsWindow(store, main)
    with qtbot.waitSignal(w.loaded, timeout=10000):
        w.show()
    assert w.isWindow() and w.parent() is main
    w.close()
    assert not workers.listening(store, w._on_changes)  # the window no longer hears the store


def test_the_countys_decision_says_it_was_done_and_where_the_proposal_went(qtbot, make_store):
    """The county's 县级确定 of a 监测识别 ends the proposal: it left the 全部未办结 list and the window
    said only 没有申报 and 未办结 0 份, with no word that the decision was recorded. Now the status line
    names what was done for whom, and the empty pane points at 全部申报."""
    store = make_store("county.db", role="county")
    demo.install_reference_data(store)
    a = households.save(store, household(status="2")).household_id  # a 脱贫户
    store.put("proposal", {"proposal_kind": "monitor", "reasons": "户主住院", "stage": "township",
                           "monitoring_type": "3", "risk_source": "1", "household_authorised": True,
                           "nominate_outcome": "pass", "nominate_date": ago(20), "review_outcome": "pass",
                           "review_date": ago(15), "notice_outcome": "pass", "notice_date": ago(8),
                           "township_outcome": "pass", "township_date": ago(5)},
              village_code="522634101201", parent_id=a)
    store.put("risk", {"risk_type": "01", "found_date": ago(21)}, village_code="522634101201", parent_id=a)
    w = open_window(qtbot, store)
    assert w.table.rowCount() == 1 and w.do_button.text() == "办理“县级确定”"
    with qtbot.waitSignal(w.loaded, timeout=10000):
        w.do_button.click()
    assert not w.action_message.text()
    qtbot.waitUntil(lambda: not w.loading and not w._pending_reload.isActive(), timeout=10000)
    assert w.table.rowCount() == 0
    assert "已办理“县级确定”:通过,户主“欧阳明远”" in w.status.text() and "全部申报" in w.status.text()
    assert "全部申报" in w.detail.toPlainText() and "共有申报 1 份" in w.detail.toPlainText()
    assert w.do_button.text() == "办理"
    w.filter.setCurrentIndex(w.filter.findData("all"))
    assert w.table.rowCount() == 1



def test_at_laptop_size_the_table_is_readable_at_first_paint_and_holds_still(qtbot, make_store):
    """At 1366×768 the window opens filling the area under the taskbar and the table takes all but the
    detail pane: its columns (户编号 of 16 digits, a 户主 of four characters) are laid out before the
    proposals are read and do not move when they arrive. It opened at 1180 wide with a 700-pixel table,
    every column 100 pixels (户编号 cut) until the rows came, and the 办理 box showed every stage's rows."""
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QApplication

    from app.ui.fonts import install_font

    install_font(QApplication.instance())
    store = make_store()
    a, b = setup(store)
    proposals.propose(store, a, "exit", reasons="务工增收", food_secure=True, clothing_secure=True, date=ago(10))
    proposals.propose(store, b, "exit", reasons="务工增收", food_secure=True, clothing_secure=True, date=ago(9))
    w = ProposalsWindow(store)
    qtbot.addWidget(w)
    assert (w.width(), w.height()) == (1366, 728)
    w.show()  # the first paint: nothing read yet
    assert w.loading and w.table.rowCount() == 0
    table, metrics = w.table, QFontMetrics(w.table.font())
    assert table.width() >= 1366 - 480 - 60 and w.detail.width() >= 440
    first = [table.columnWidth(col) for col in range(6)]
    assert first[2] >= metrics.horizontalAdvance("5226341012010001") + 8  # 户编号
    assert first[3] >= metrics.horizontalAdvance("欧阳明远") + 8  # 户主
    assert sum(first) <= table.viewport().width()
    assert not w.meeting_date.isVisibleTo(w) and not w.notice_start.isVisibleTo(w)
    qtbot.waitUntil(lambda: not w.loading and table.rowCount() == 2, timeout=10000)
    assert [table.columnWidth(col) for col in range(6)] == first  # nothing moved
    for col in range(6):
        assert table.columnWidth(col) >= table.sizeHintForColumn(col) + 8, col
    assert w.meeting_date.isVisibleTo(w)  # the chosen proposal waits for 村级评议
    w.close()

def test_at_laptop_size_the_detail_shows_the_stages_and_the_criteria_above_the_review_fields(qtbot, make_store):
    """At 1366×768 (728 under the taskbar), in the program's font, a proposal waiting for the village
    review shows its 办理经过 and its first criterion without scrolling: the review's fields share rows."""
    from PySide6.QtWidgets import QApplication

    from app.ui.fonts import install_font

    install_font(QApplication.instance())
    store = make_store()
    a, _ = setup(store)
    proposals.propose(store, a, "exit", reasons="务工增收", food_secure=True, clothing_secure=True, date=ago(10))
    w = open_window(qtbot, store)
    w.resize(1366, 728)
    qtbot.waitUntil(lambda: w.action_box.height() <= w.action_box.sizeHint().height())  # laid out
    assert w.meeting_date.isVisible() and w.votes_abstain.isVisible()
    cursor = w.detail.document().find("年人均纯收入")  # the first row of the 退出标准
    assert not cursor.isNull()
    assert w.detail.cursorRect(cursor).bottom() <= w.detail.viewport().height(), (w.detail.height(), w.action_box.height())


def test_the_disabled_action_box_shows_no_hint_that_could_pass_for_an_opinion(qtbot, make_store):
    """With no proposal selected the 办理 box is disabled; a hint in its 意见/原因 field would be drawn
    like a disabled value (an opinion someone gave), so it shows none until a proposal is selected."""
    store = make_store()
    a, _ = setup(store)
    empty = open_window(qtbot, store)  # nothing proposed: nothing to select
    assert not empty.action_box.isEnabled()
    assert empty.reason.placeholderText() == "" and empty.reason.text() == ""
    empty.close()
    proposals.propose(store, a, "exit", reasons="务工增收", food_secure=True, clothing_secure=True, date=ago(10))
    w = open_window(qtbot, store)
    w.table.selectRow(0)
    assert w.action_box.isEnabled() and w.reason.placeholderText() == "意见;退回时必须写明原因"
    qtbot.waitUntil(lambda: not empty.loading and not w.loading)  # no load left running past the test


def test_a_window_closed_while_its_list_loads_starts_nothing_more_and_shows_no_dialog(qtbot, make_store, monkeypatch):
    """A change, the refresh timer or a queued "load again" can reach the window after it was closed
    (and is being deleted): it starts no more background work, and a failed load puts up no dialog
    over it (a modal box over a window Qt deletes under it crashed the program in a test run)."""
    from app.ui import proposals_panel

    store = make_store()
    setup(store)
    w = open_window(qtbot, store)
    shown = []
    monkeypatch.setattr(proposals_panel.QMessageBox, "warning", lambda *args: shown.append(args))
    w.close()
    w._reload_again = True
    w._failed("数据库已关闭")
    assert shown == [] and not w.loading  # and the queued reload did not start
    w.reload()
    assert not w.loading
