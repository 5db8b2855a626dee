"""防返贫动态监测 on one database (issue #20): the data migration of households entered before
household types existed, the monitoring procedures' checks, the 风险消除 criteria, the work lists and
the command line."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.cli.main import main
from app.core import procedures
from app.services import households, monitoring, proposals, worklists
from app.store import Store
from tests.conftest import PASSPHRASE
from tests.factories import VILLAGE, household

TODAY = dt.date.today()


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


def old_household(store: Store, status: str, head: str, seq: int) -> str:
    """A household as a version before issue #20 stored it: no 户类型."""
    doc = household(head=head, seq=seq, status=status)
    hid = households.save(store, doc).household_id
    store.put("household", {"household_type": None}, record_id=hid)  # as if never written
    assert "household_type" not in store.get(hid).fields
    return hid


def test_the_migration_makes_households_out_of_poverty_脱贫户_and_leaves_the_others(store):
    exited = old_household(store, "2", "甲", 1)
    marked = old_household(store, "5", "乙", 2)
    poor = old_household(store, "1", "丙", 3)
    gone = old_household(store, "6", "丁", 4)
    store.set_meta(monitoring.DATA_VERSION_KEY, "")
    assert monitoring.ensure_migrated(store) == 2
    types = {hid: store.get(hid).fields.get("household_type") for hid in (exited, marked, poor, gone)}
    assert types == {exited: "1", marked: "1", poor: None, gone: None}
    assert store.history(exited)[-1].reason == procedures.MIGRATION_REASON
    changes = store.change_count()
    assert monitoring.ensure_migrated(store) == 0 and monitoring.migrate(store) == 0  # idempotent
    assert store.change_count() == changes


def test_a_failed_migration_leaves_the_stored_data_as_it_was(store, monkeypatch):
    first, second = old_household(store, "2", "甲", 1), old_household(store, "3", "乙", 2)
    store.set_meta(monitoring.DATA_VERSION_KEY, "")
    changes = store.change_count()
    real_put, calls = store.put, []

    def failing_put(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("磁盘已满")
        return real_put(*args, **kw)

    monkeypatch.setattr(store, "put", failing_put)
    with pytest.raises(OSError):
        monitoring.migrate(store)
    monkeypatch.undo()
    assert store.change_count() == changes
    assert [store.get(h).fields.get("household_type") for h in (first, second)] == [None, None]
    assert store.meta(monitoring.DATA_VERSION_KEY) == ""
    assert monitoring.ensure_migrated(store) == 2  # and it runs again next time


def test_the_command_line_migrates_at_unlock_and_lists_by_type(tmp_path, monkeypatch, capsys, recovery_key):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    path = tmp_path / "旧数据.db"
    with Store.create(path, role="village", site_name="村", operator="admin", passphrase=PASSPHRASE,
                      recovery_public_key=recovery_key.public_key()) as s:
        from app.services import demo
        demo.install_reference_data(s)
        old_household(s, "2", "甲", 1)
        old_household(s, "1", "乙", 2)
        s.set_meta(monitoring.DATA_VERSION_KEY, "")  # a database from before this change
    capsys.readouterr()
    assert main(["list", str(path), "--type", "脱贫户"]) == 0
    out = capsys.readouterr()
    assert "已为 1 户已脱贫户补记户类型“脱贫户”" in out.err and "甲" in out.out and "乙" not in out.out
    assert main(["list", str(path), "--type", "脱贫户"]) == 0
    assert "补记户类型" not in capsys.readouterr().err  # once
    assert main(["list", str(path), "--type", "贫困户"]) == 1
    assert "未知的户类型“贫困户”,应为:脱贫户、监测户、一般农户" in capsys.readouterr().err


def test_a_new_household_typed_in_is_an_ordinary_household(store):
    hid = households.save(store, household()).household_id
    assert households.document(store, hid)["household_type"] == "3"  # 一般农户, the candidate


@pytest.fixture
def exited(store) -> str:
    return households.save(store, household(status="2", dilapidated="0", water_safe=True)).household_id


def test_monitor_proposals_name_their_type_source_risk_and_the_households_authorisation(store, exited):
    base = dict(reasons="因病", monitoring_type="突发严重困难户", risk_source="干部走访排查", household_authorised=True)
    with pytest.raises(proposals.ProcedureError, match="没有未消除的风险:请写明风险类型"):
        proposals.propose(store, exited, "monitor", **base)
    with pytest.raises(proposals.ProcedureError, match="授权承诺书"):
        proposals.propose(store, exited, "monitor", **{**base, "household_authorised": None}, risks=["因病"])
    with pytest.raises(proposals.ProcedureError, match="未知的风险类型“生病”,应为:因病、因学"):
        proposals.propose(store, exited, "monitor", **base, risks=["生病"])
    with pytest.raises(proposals.ProcedureError, match="是脱贫户,应识别为脱贫不稳定户或突发严重困难户"):
        proposals.propose(store, exited, "monitor", **{**base, "monitoring_type": "边缘易致贫户"}, risks=["因病"])
    with pytest.raises(proposals.ProcedureError, match="只有监测户才能申报风险消除"):
        proposals.propose(store, exited, "eliminate", reasons="x")
    ordinary = households.save(store, household(head="上官", seq=3)).household_id
    with pytest.raises(proposals.ProcedureError, match="不是脱贫户,不能识别为脱贫不稳定户"):
        proposals.propose(store, ordinary, "monitor", **{**base, "monitoring_type": "脱贫不稳定户"}, risks=["因学"])
    # a risk's 发现日期 is a date, and not after the proposal's: nothing is written otherwise
    with pytest.raises(proposals.ProcedureError, match="因残”的发现日期“2025-13-01”不是有效日期"):
        proposals.propose(store, exited, "monitor", **base, risks=[("因残", "2025-13-01")], date=ago(12))
    with pytest.raises(proposals.ProcedureError, match=f"发现日期 {ago(11)} 晚于申报日期 {ago(12)}"):
        proposals.propose(store, exited, "monitor", **base, risks=[("因残", ago(11))], date=ago(12))
    assert households.document(store, exited)["risks"] == []
    p = proposals.propose(store, exited, "monitor", **base, risks=["因病", ("因残", ago(15))], date=ago(12))
    assert (p["monitoring_type"], p["risk_source"], p["household_authorised"]) == ("3", "2", True)
    risks = households.document(store, exited)["risks"]
    assert [(r["risk_type"], r["found_date"], r["state"]) for r in risks] == [("01", ago(12), "1"),
                                                                               ("03", ago(15), "1")]
    proposals.advance(store, p["id"], "review", "pass", date=ago(10), meeting_date=ago(10), attendance=10, votes_for=9)
    proposals.advance(store, p["id"], "notice", "pass", notice_start=ago(9), notice_end=ago(2), date=ago(1))
    with pytest.raises(proposals.ProcedureError, match="“乡镇审核”只能由乡级数据库办理,本数据库是村级"):
        proposals.advance(store, p["id"], "township", "pass")
    assert households.document(store, exited)["household_type"] == "1"


def monitored_doc(**extra) -> dict:
    doc = household(status="2", household_type="2", monitoring_type="3", risk_eliminated=False,
                    risk_identified_date=ago(400), dilapidated="0", water_safe=True, **extra)
    doc["risks"] = [{"risk_type": "01", "found_date": ago(401)}]
    return doc


def test_the_elimination_check_extends_the_exit_check(store):
    store.set_monitoring_criteria(2025, 8800, min_months=6)
    hid = households.save(store, monitored_doc()).household_id  # 2025: 9000 / 2 = 4500 per head
    doc = households.document(store, hid)
    a = monitoring.assess(store, doc, year=2025, food_secure=True, clothing_secure=True, on=TODAY)
    assert [c.key for c in a.failures] == ["income"]
    assert "4,500.00 元,未超过监测收入标准 8,800 元" in a.failures[0].detail
    store.set_monitoring_criteria(2025, 4000, min_months=24)
    a = monitoring.assess(store, doc, year=2025, food_secure=True, clothing_secure=True, water_secure=False, on=TODAY)
    assert [c.key for c in a.failures] == ["water", "monitored"]
    assert "不足县定的 24 个月" in a.failures[1].detail
    with pytest.raises(proposals.ProcedureError, match="未达到风险消除标准.*饮水安全有保障:否.*书面说明"):
        proposals.propose(store, hid, "风险消除", reasons="x", food_secure=True, clothing_secure=True, water_secure=False)
    with pytest.raises(proposals.ProcedureError, match="尚未设定 2024 年的监测收入标准|没有 2024 年的收入记录"):
        proposals.propose(store, hid, "eliminate", reasons="x", income_year=2024)


def test_exit_check_elimination_on_the_command_line(tmp_path, monkeypatch, capsys, make_store):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    s = make_store("v.db")
    from app.services import demo
    demo.install_reference_data(s)
    s.set_monitoring_criteria(2025, 4000, min_months=6)
    doc = monitored_doc()
    hid = households.save(s, doc).household_id
    number = households.document(s, hid)["household_number"]
    s.close()
    capsys.readouterr()
    code = main(["exit-check", str(tmp_path / "v.db"), "--household", number, "--elimination", "--food", "yes",
                 "--clothing", "yes"])
    out = capsys.readouterr().out
    assert code == 0 and "风险消除标准(2025 年)" in out and "✓ 饮水安全有保障" in out and "已监测 13 个月" in out


def test_monitoring_work_lists(store):
    store.set_monitoring_criteria(TODAY.year, 8800, risk_days=180)
    store.set_monitoring_criteria(2025, 4800)
    under = households.save(store, household(head="低于", seq=2, status="2")).household_id  # 9000 / 2 = 4500
    near = households.save(store, household(head="接近", seq=4, status="2", incomes=[
        {"year": 2025, "wage_income": 10000}])).household_id  # 5000 <= 4800 * 1.1
    far = households.save(store, household(head="较远", seq=3, status="2", incomes=[
        {"year": 2025, "wage_income": 30000}])).household_id
    doc = monitored_doc(head_name="监测")
    doc["measures"] = [{"year": TODAY.year - 2, "category": "01", "content": "旧措施"}]
    doc["visits"] = [{"date": ago(120), "visitor": "队员", "content": "走访"}]
    watched = households.save(store, doc).household_id
    m = worklists.build(store, visit_days=90, on=TODAY).monitoring
    assert {e.household_id: e.detail for e in m.near_line} == {
        under: "脱贫户;2025 年人均 4,500.00 元,低于监测收入标准 4,800 元",
        near: "脱贫户;2025 年人均 5,000.00 元,接近监测收入标准 4,800 元"}  # not `far`, not the 监测户 itself
    assert [e.household_id for e in m.no_measure] == [watched]
    assert [e.household_id for e in m.not_visited] == [watched] and "120 天前" in m.not_visited[0].detail
    assert [e.household_id for e in m.risks_overdue] == [watched]
    assert f"因病风险 {ago(401)} 发现,已 401 天未消除,超过 180 天" in m.risks_overdue[0].detail


def test_worklist_and_reference_monitoring_on_the_command_line(tmp_path, monkeypatch, capsys, make_store):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    s = make_store("c.db", role="county")
    from app.services import demo
    demo.install_reference_data(s)
    households.save(s, monitored_doc())
    s.close()
    db = str(tmp_path / "c.db")
    capsys.readouterr()
    assert main(["reference", "monitoring", db, str(TODAY.year), "8,800", "--risk-days", "90", "--source", "省定"]) == 0
    assert f"已设定 {TODAY.year} 年监测收入标准:8800 元/人·年,最短监测 6 个月,风险超过 90 天" in capsys.readouterr().out
    assert main(["reference", "monitoring", db, "2025", "abc"]) == 1
    assert main(["worklist", db, "--list", "monitoring"]) == 0
    out = capsys.readouterr().out
    assert "== 风险超期未消除:1 户" in out and "== 监测对象无在帮措施:1 户" in out  # its measure is of 2025
    assert main(["worklist", db, "--list", "monitoring", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["monitoring"]["risks_overdue"]) == 1


def test_propose_monitor_on_the_command_line(tmp_path, monkeypatch, capsys, make_store):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    s = make_store("v.db")
    from app.services import demo
    demo.install_reference_data(s)
    number = households.document(s, households.save(s, household(status="2")).household_id)["household_number"]
    s.close()
    db = str(tmp_path / "v.db")
    capsys.readouterr()
    assert main(["propose", db, "--household", number, "--kind", "监测识别", "--reason", "户主重病住院",
                 "--monitoring-type", "突发严重困难户", "--source", "农户自主申报", "--risk", "因病:2026-01-05",
                 "--risk", "因意外事故", "--household-authorised"]) == 0
    out = capsys.readouterr().out
    assert "监测识别" in out and "等待村级评议" in out
    assert main(["proposals", db, "--household", number, "--json"]) == 0
    assert [p["proposal_kind"] for p in json.loads(capsys.readouterr().out)["proposals"]] == ["monitor"]
    assert main(["proposals", db]) == 0  # the remark names the risks the identification is about
    assert capsys.readouterr().out.splitlines()[1].endswith("\t风险:因病、因意外事故")
    assert main(["propose", db, "--household", number, "--kind", "监测识别", "--reason", "x"]) == 1
    assert "已有一份未办结的监测识别申报" in capsys.readouterr().err
