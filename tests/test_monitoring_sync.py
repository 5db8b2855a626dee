"""防返贫动态监测 across real databases (issue #20): a 脱贫户 falls ill, is identified as a 监测户
(突发严重困难户) through the village laptop, the township office and the county, carried by signed,
encrypted USB bundles; measures are added; a year later its risk is eliminated the same way. A
laptop cannot make a household 监测户 or mark a risk eliminated itself."""

from __future__ import annotations

import datetime as dt

import pytest

from app.services import households, proposals
from tests.factories import household
from tests.test_proposals_sync import Sites, cli, env, opened  # noqa: F401 (env: fixture)

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

TODAY = dt.date.today()


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


@pytest.fixture
def sites(tmp_path, env, capsys):
    return Sites(tmp_path, capsys, env)


def through_township_and_county(sites: Sites, pid: str, county_stage_label: str) -> None:
    sites.upstream(sites.village)
    sites.downstream(sites.township)
    with opened(sites.township) as t:
        assert proposals.waiting_for(proposals.get(t, pid)) == "township"
        assert proposals.state_label(proposals.get(t, pid)) == "等待乡镇审核"
        proposals.advance(t, pid, "乡镇审核", "pass", by="乡扶贫站 李四")
        with pytest.raises(proposals.ProcedureError, match="只能由县级数据库办理,本数据库是乡级"):
            proposals.advance(t, pid, "county", "pass")
    sites.upstream(sites.township)
    with opened(sites.county) as c:
        p = proposals.advance(c, pid, county_stage_label, "pass")
        assert proposals.waiting_for(p) is None  # no 公告 stage: the county's decision takes effect
        with pytest.raises(proposals.ProcedureError, match="未知的程序环节“announce”.*county\\(县级"):
            proposals.advance(c, pid, "announce", "pass")
    sites.downstream(sites.township)
    sites.downstream(sites.village)


def exited_at_the_county(sites: Sites, **fields) -> str:
    """A 脱贫户 from the county's own ledger, carried to the laptop (a laptop creates households only
    as 未脱贫 一般农户, issue #21)."""
    with opened(sites.county) as c:
        hid = households.save(c, household(status="2", dilapidated="0", **fields)).household_id
    sites.downstream(sites.village)
    return hid


def test_a_laptop_cannot_create_a_household_already_typed_or_out_of_poverty(sites):
    with opened(sites.village) as v:
        with pytest.raises(households.StatusChangeRefused, match="只能以“未脱贫”登记"):
            households.save(v, household(status="2"))
        with pytest.raises(households.StatusChangeRefused, match="只能登记为“一般农户”"):
            households.save(v, household(household_type="2", monitoring_type="3"))
        hid = households.save(v, household()).household_id
        assert households.document(v, hid)["household_type"] == "3"


def everywhere(sites: Sites, hid: str) -> list[dict]:
    out = []
    for path in (sites.village, sites.township, sites.county):
        with opened(path) as s:
            out.append(households.document(s, hid))
    return out


def test_a_household_out_of_poverty_is_monitored_after_an_illness_and_its_risk_eliminated_a_year_later(sites, capsys):
    with opened(sites.county) as c:  # the county's criteria travel downstream like poverty lines
        c.set_monitoring_criteria(TODAY.year, 8800, min_months=6, risk_days=180, source="省乡村振兴局文件")
    hid = exited_at_the_county(sites, exit_year=2019, water_safe=True)
    with opened(sites.village) as v:
        assert households.document(v, hid)["household_type"] == "1"  # 脱贫户
    sites.upstream(sites.village)
    sites.downstream(sites.village)
    sites.downstream(sites.township)
    with opened(sites.village) as v:
        assert v.monitoring_criteria(TODAY.year)["line"] == 8800
        # 监测识别 on the laptop: 干部走访排查 finds the illness, 400 days ago
        p = proposals.propose(v, hid, "监测识别", reasons="户主突发脑梗住院,医疗支出骤增", date=ago(420),
                              monitoring_type="突发严重困难户", risk_source="干部走访排查",
                              risks=[("因病", ago(421))], household_authorised=True)
        assert proposals.state_label(p) == "等待村级评议"
        proposals.advance(v, p["id"], "review", "pass", date=ago(418), meeting_date=ago(418), attendance=30, votes_for=28)
        proposals.advance(v, p["id"], "notice", "pass", notice_start=ago(417), notice_end=ago(411), date=ago(410))
        doc = households.document(v, hid)
        assert [(r["risk_type"], r["found_date"], r.get("state")) for r in doc["risks"]] == [("01", ago(421), "1")]
        assert doc["household_type"] == "1"  # nothing decided yet
    sites.upstream(sites.village)
    sites.downstream(sites.township)
    with opened(sites.township) as t:
        assert proposals.state_label(proposals.get(t, p["id"])) == "等待乡镇审核"
        proposals.advance(t, p["id"], "乡镇审核", "pass", date=ago(409))
    sites.upstream(sites.township)
    with opened(sites.county) as c:
        proposals.advance(c, p["id"], "县级确定", "pass", date=ago(405))
    sites.downstream(sites.village)
    sites.downstream(sites.township)
    for doc in everywhere(sites, hid):
        assert (doc["household_type"], doc["monitoring_type"], doc["risk_eliminated"],
                doc["risk_identified_date"]) == ("2", "3", False, ago(405))

    # measures and a better year's income on the laptop
    with opened(sites.village) as v:
        doc = households.document(v, hid)
        doc["measures"].append({"year": TODAY.year, "category": "01", "content": "医疗救助与临时救助",
                                "amount": 12000, "date": ago(380)})
        doc["incomes"].append({"year": TODAY.year, "wage_income": 21000, "business_income": 1000})
        households.save(v, doc)
        with pytest.raises(proposals.ProcedureError, match="已是监测户"):
            proposals.propose(v, hid, "monitor", reasons="x", monitoring_type="3", risk_source="2", risks=["因病"],
                              household_authorised=True)

    # a year later: 风险消除 (入户核实 → 村级评议 → 公示 → 乡镇审核 → 县级审定)
    with opened(sites.village) as v:
        q = proposals.propose(v, hid, "风险消除", reasons="医疗费用已报销,务工收入稳定", date=ago(20),
                              food_secure=True, clothing_secure=True)
        assert (q["assessed_per_capita"], q["assessed_line"], q.get("assessed_failures")) == (11000, 8800, None)
        with pytest.raises(proposals.ProcedureError, match="须经农户签字同意"):
            proposals.advance(v, q["id"], "review", "pass", date=ago(18), meeting_date=ago(18), attendance=30,
                              votes_for=27)
        proposals.advance(v, q["id"], "review", "pass", date=ago(18), meeting_date=ago(18), attendance=30,
                          votes_for=27, household_signed=True)
        proposals.advance(v, q["id"], "notice", "pass", notice_start=ago(17), notice_end=ago(10), date=ago(9))
    through_township_and_county(sites, q["id"], "县级审定")
    for doc in everywhere(sites, hid):
        assert (doc["household_type"], doc["risk_eliminated"], doc["risk_eliminated_date"]) == ("2", True, TODAY.isoformat())
        assert [(r["risk_type"], r["state"], r["eliminated_date"]) for r in doc["risks"]] == [("01", "2", TODAY.isoformat())]
        assert doc["status"] == "2"  # the poverty status is untouched by monitoring
    code, out, err = cli(capsys, "list", sites.village, "--type", "监测户")
    assert code == 0 and "突发严重困难户" in out and "因病(" in out and "已消除" in out


def forged(sites, capsys, tamper) -> tuple[int, str]:
    hid = exited_at_the_county(sites)
    sites.upstream(sites.village)
    with opened(sites.village) as v:
        tamper(v, hid)
    usb = sites.tmp / "forged"
    usb.mkdir()
    assert cli(capsys, "sync", "export", sites.village, "--to", usb)[0] == 0
    with opened(sites.county) as c:
        before = c.change_count()
    code, out, err = cli(capsys, "sync", "import", sites.county, usb)
    with opened(sites.county) as c:
        assert c.change_count() == before and households.document(c, hid)["household_type"] == "1"
    return code, out + err


def test_a_laptop_cannot_make_a_household_monitored_itself(sites, capsys):
    def tamper(v, hid):
        v.put("household", {"household_type": "2", "monitoring_type": "3"}, record_id=hid)

    code, text = forged(sites, capsys, tamper)
    assert code == 1 and "户类型和监测信息只能通过监测识别、风险消除程序改变" in text and "村级站点不能直接修改" in text


def test_a_laptop_cannot_mark_a_risk_eliminated_itself(sites, capsys):
    def tamper(v, hid):
        v.put("risk", {"risk_type": "01", "found_date": ago(30), "state": "2", "eliminated_date": ago(1)},
              village_code="522634101201", parent_id=hid)

    code, text = forged(sites, capsys, tamper)
    assert code == 1 and "风险的消除状态只能通过监测识别、风险消除程序改变" in text


def test_the_editor_path_refuses_a_typed_monitoring_type(sites):
    hid = exited_at_the_county(sites)
    with opened(sites.village) as v:
        doc = households.document(v, hid)
        doc["household_type"] = "2"
        with pytest.raises(households.StatusChangeRefused, match="户类型和监测信息"):
            households.save(v, doc)
        doc = households.document(v, hid)
        doc["risks"] = [{"risk_type": "01", "found_date": ago(3), "state": "2"}]
        with pytest.raises(households.StatusChangeRefused, match="风险的消除状态"):
            households.save(v, doc)
        doc["risks"] = [{"risk_type": "01", "found_date": ago(3)}]
        households.save(v, doc)  # a village records an open risk
        assert households.document(v, hid)["risks"][0]["risk_type"] == "01"
