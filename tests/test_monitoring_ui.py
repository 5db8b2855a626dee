"""防返贫动态监测 in the window (issue #20): the nomination dialog offers 监测识别 (type, source, risks,
authorisation) and 风险消除 (its live criteria); the household editor shows the type read-only and the
risks; the work list tab has the monitoring lists."""

from __future__ import annotations

import datetime as dt

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QDate  # noqa: E402

from app.services import demo, households  # noqa: E402
from app.ui.editor import HouseholdEditor  # noqa: E402
from app.ui.proposals_panel import NewProposalDialog, ProposalsWindow  # noqa: E402
from tests.factories import household  # noqa: E402


def ago(days):
    return (dt.date.today() - dt.timedelta(days=days)).isoformat()


def test_the_dialog_starts_a_monitoring_identification(qtbot, make_store):
    store = make_store()
    demo.install_reference_data(store)
    hid = households.save(store, household(status="2")).household_id
    dlg = NewProposalDialog(store, household_id=hid)
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.windowTitle() == "发起申报(村民小组提名)" and dlg.ok_button.text() == "提名"
    dlg.kind.setCurrentIndex(dlg.kind.findData("monitor"))
    assert dlg.monitoring_box.isVisible() and not dlg.exit_box.isVisible()
    # the first stage of a 监测识别 is 申报排查, not a 村民小组提名: the dialog says so
    labels = [dlg.layout().itemAt(0).layout().labelForField(w).text() for w in (dlg.date, dlg.by)]
    assert labels == ["申报排查日期", "经办人"] and dlg.windowTitle() == "发起申报(申报排查)"
    assert dlg.ok_button.text() == "申报"
    dlg.reasons.setPlainText("户主住院")
    dlg.monitoring_box.monitoring_type.setCurrentIndex(dlg.monitoring_box.monitoring_type.findText("突发严重困难户"))
    dlg.submit()
    assert "授权承诺书" in dlg.message.text() and dlg.result_proposal is None
    dlg.monitoring_box.authorised.setChecked(True)
    dlg.submit()
    assert "没有未消除的风险" in dlg.message.text() and dlg.result_proposal is None
    box = dlg.monitoring_box
    assert not box.risk_dates["01"].isEnabled()  # a 发现日期 only for a risk ticked
    dlg.date.setDate(QDate.currentDate().addDays(-2))  # 申报排查日期
    box.check_risk("因病", QDate.currentDate().addDays(-1))
    assert box.risk_dates["01"].isEnabled()
    assert box.risk_dates["01"].date() == QDate.currentDate().addDays(-2)  # not found after it was reported
    assert households.document(store, hid)["risks"] == []
    box.check_risk("因病", QDate.currentDate().addDays(-20))
    box.check_risk("因学")  # found on the day shown: today's date by default
    box.risk_dates["02"].setDate(QDate.currentDate().addDays(-5))
    dlg.submit()
    p = dlg.result_proposal
    assert p and (p["proposal_kind"], p["monitoring_type"], p["risk_source"]) == ("monitor", "3", "1")
    risks = sorted(households.document(store, hid)["risks"], key=lambda r: r["risk_type"])
    assert [(r["risk_type"], r["found_date"]) for r in risks] == [("01", ago(20)), ("02", ago(5))]


def test_the_dialog_shows_the_elimination_criteria(qtbot, make_store):
    store = make_store()
    demo.install_reference_data(store)
    store.set_monitoring_criteria(2025, 4000, min_months=6)
    doc = household(status="2", household_type="2", monitoring_type="3", risk_eliminated=False,
                    risk_identified_date=ago(400), dilapidated="0", water_safe=True)
    doc["risks"] = [{"risk_type": "01", "found_date": ago(401)}]
    hid = households.save(store, doc).household_id
    dlg = NewProposalDialog(store, household_id=hid)
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.kind.setCurrentIndex(dlg.kind.findData("eliminate"))
    assert dlg.exit_box.title() == "风险消除标准" and dlg.water.isVisible()
    dlg.food.setChecked(True)
    dlg.clothing.setChecked(True)
    assert "饮水安全有保障" in dlg.assessment.text() and "未达到风险消除标准" in dlg.assessment.text()
    dlg.water.setChecked(True)
    assert "达到风险消除标准" in dlg.assessment.text() and "未达到" not in dlg.assessment.text()


def test_the_editor_shows_the_monitoring_tab_read_only_and_the_risks(qtbot, make_store):
    store = make_store()
    demo.install_reference_data(store)
    doc = household(status="2", household_type="2", monitoring_type="3", risk_eliminated=False,
                    risk_identified_date=ago(30))
    doc["risks"] = [{"risk_type": "01", "found_date": ago(31)}]
    hid = households.save(store, doc).household_id
    editor = HouseholdEditor(store, hid)
    qtbot.addWidget(editor)
    tabs = [editor.tabs.tabToolTip(i).split("(Alt")[0] for i in range(editor.tabs.count())]  # full names
    assert "防返贫监测" in tabs and "返贫致贫风险" in tabs
    form = next(f for f in editor.household_forms if "household_type" in f.inputs)
    assert not form.inputs["household_type"].widget.isEnabled()
    assert form.inputs["monitoring_type"].widget.currentText() == "突发严重困难户"
    assert editor.panels["risk"].table.rowCount() == 1


def test_the_work_list_tab_has_the_monitoring_lists(qtbot, make_store):
    store = make_store()
    demo.install_reference_data(store)
    doc = household(status="2", household_type="2", monitoring_type="3", risk_eliminated=False,
                    risk_identified_date=ago(400))
    doc["risks"] = [{"risk_type": "01", "found_date": ago(401)}]
    households.save(store, doc)
    w = ProposalsWindow(store)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.loaded, timeout=10000):
        w.show()
    titles = [w.tree.topLevelItem(i).text(0) for i in range(w.tree.topLevelItemCount())]
    assert "风险超期未消除(1 户)" in titles and "监测对象无在帮措施(1 户)" in titles


def test_unlocking_in_the_window_migrates_older_households(qtbot, make_store):
    from PySide6.QtWidgets import QDialog

    from app.services import monitoring
    from app.store import Store
    from app.ui.start import UnlockDialog
    from tests.conftest import PASSPHRASE

    created = make_store("old.db")
    demo.install_reference_data(created)
    hid = households.save(created, household(status="2")).household_id
    created.put("household", {"household_type": None}, record_id=hid)  # as a version before #20 left it
    created.set_meta(monitoring.DATA_VERSION_KEY, "")
    created.close()
    store = Store.open(created.path)
    dialog = UnlockDialog(store)
    qtbot.addWidget(dialog)
    dialog.passphrase.setText(PASSPHRASE)
    dialog.try_unlock()
    qtbot.waitUntil(lambda: not dialog.working, timeout=10000)  # the unlock runs off the GUI thread
    assert dialog.result() == QDialog.Accepted, dialog.error.text()
    assert store.get(hid).fields["household_type"] == "1"
    store.close()


def test_the_nomination_dialog_calls_the_household_a_household_not_a_poor_household(qtbot, make_store):
    """A 监测识别 is for a 脱贫户 or a 一般农户, a 风险消除 for a 监测户: the row choosing the household
    was labelled 贫困户 for every kind (and 请选择贫困户 when nothing matched what was typed)."""
    from PySide6.QtWidgets import QFormLayout, QLabel

    store = make_store()
    demo.install_reference_data(store)
    households.save(store, household(status="2"))
    dlg = NewProposalDialog(store)
    qtbot.addWidget(dlg)
    dlg.kind.setCurrentIndex(dlg.kind.findData("monitor"))
    form = dlg.findChild(QFormLayout)
    label = form.labelForField(dlg.household)
    assert isinstance(label, QLabel) and label.text() == "农户"
    assert not [w.text() for w in dlg.findChildren(QLabel) if w.text() == "贫困户"]
    dlg.household.setEditText("查无此户")
    dlg.household.setCurrentIndex(-1)
    dlg.submit()
    assert dlg.message.text().startswith("请选择农户") and dlg.result_proposal is None


def test_the_proposal_list_names_the_risks_of_a_monitoring_identification(qtbot, make_store):
    """The list's last column is not an empty 退出标准 for a 监测识别: it names the risks the
    identification is about; a 风险消除 is 达标/未达标 against the 风险消除标准."""
    from app.services import proposals

    store = make_store()
    demo.install_reference_data(store)
    store.set_monitoring_criteria(2025, 4000, min_months=6)
    hid = households.save(store, household(status="2")).household_id
    proposals.propose(store, hid, "monitor", reasons="户主住院", date=ago(3), monitoring_type="突发严重困难户",
                      risk_source="干部走访排查", risks=["因病", "因学"], household_authorised=True)
    doc = household("东方明", "西门兰", seq=4, status="2", household_type="2", monitoring_type="3",
                    risk_eliminated=False, risk_identified_date=ago(400), water_safe=True)
    doc["risks"] = [{"risk_type": "01", "found_date": ago(401)}]
    other = households.save(store, doc).household_id
    proposals.propose(store, other, "eliminate", reasons="务工增收", date=ago(2), food_secure=True,
                      clothing_secure=True, water_secure=True, justification="已稳定")
    w = ProposalsWindow(store)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.loaded, timeout=10000):
        w.show()
    header = w.table.horizontalHeaderItem(6).text()
    assert header != "退出标准"
    rows = {w.table.item(r, 1).text(): w.table.item(r, 6) for r in range(w.table.rowCount())}
    assert rows["监测识别"].text() == "风险:因病、因学" and "风险" in rows["监测识别"].toolTip()
    assert rows["风险消除"].text() in ("达标", "未达标") and "风险消除标准" in rows["风险消除"].toolTip()
