"""防返贫动态监测 on paper (issue #20): the village's 公示 of 监测识别 and 风险消除, without ID numbers,
phone numbers or the health details of the proposal's reasons; the card shows type, risks and state."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from pypdf import PdfReader

from app.cli.main import main
from app.services import households, proposals
from tests.conftest import PASSPHRASE
from tests.factories import VILLAGE, household

TODAY = dt.date.today()


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


def text(path) -> str:
    return re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(str(path)).pages))


@pytest.fixture
def db(tmp_path, make_store, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    s = make_store("v.db")
    from app.services import demo
    demo.install_reference_data(s)
    s.set_monitoring_criteria(2025, 4000)
    hid = households.save(s, household(status="2", group="3组", dilapidated="0", water_safe=True)).household_id
    p = proposals.propose(s, hid, "监测识别", reasons="户主脑梗住院", date=ago(20), monitoring_type="突发严重困难户",
                          risk_source="干部走访排查", risks=["因病", "因意外事故"], household_authorised=True)
    proposals.advance(s, p["id"], "review", "pass", date=ago(15), meeting_date=ago(15), attendance=40, votes_for=36)
    proposals.plan_notice(s, p["id"], ago(14), ago(8))
    doc = household(head="上官婉儿", seq=5, status="2", household_type="2", monitoring_type="3", risk_eliminated=False,
                    risk_identified_date=ago(400), dilapidated="0", water_safe=True)
    doc["risks"] = [{"risk_type": "05", "found_date": ago(401)}]
    other = households.save(s, doc).household_id
    q = proposals.propose(s, other, "风险消除", reasons="房屋修复", date=ago(20), food_secure=True, clothing_secure=True)
    proposals.advance(s, q["id"], "review", "pass", date=ago(15), meeting_date=ago(15), attendance=40, votes_for=36,
                      household_signed=True)
    proposals.plan_notice(s, q["id"], ago(14), ago(8))
    ids = [m["id_number"] for m in households.document(s, hid)["members"]]
    s.close()
    return tmp_path / "v.db", ids


def test_the_village_prints_the_monitoring_identification_notice(db, tmp_path, capsys):
    path, ids = db
    out = tmp_path / "监测识别公示.pdf"
    assert main(["print", "notice", str(path), "--village", VILLAGE, "--kind", "monitor", "--out", str(out)]) == 0
    t = text(out)
    assert f"{TODAY.year}年拟纳入防返贫监测对象公示" in t and "拟将以下1户纳入防返贫监测对象" in t
    assert "欧阳明远" in t and "突发严重困难户" in t and "因病、因意外事故" in t and "干部走访排查" in t
    assert "上官婉儿" not in t  # that one is an elimination
    assert "脑梗" not in t and not any(i in t for i in ids) and "13912345678" not in t


def test_the_village_prints_the_risk_elimination_notice(db, tmp_path):
    path, _ = db
    out = tmp_path / "风险消除公示.pdf"
    assert main(["print", "notice", str(path), "--village", VILLAGE, "--kind", "eliminate", "--out", str(out)]) == 0
    t = text(out)
    assert "监测对象拟风险消除公示" in t and "上官婉儿" in t and "突发严重困难户" in t and ago(400) in t
    assert "4,500.00" in t and "4,000" in t and "欧阳明远" not in t


def test_a_monitoring_identification_notice_may_be_posted_five_days_an_elimination_seven(tmp_path, make_store,
                                                                                       monkeypatch, capsys):
    """监测识别 is posted once in the village for at least 5 days (REFERENCE.md); a 5-day period is planned
    and printed, a 4-day one refused by name. 风险消除 and the poverty register's notices keep 7 days."""
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    s = make_store("v.db")
    from app.services import demo
    demo.install_reference_data(s)
    s.set_monitoring_criteria(2025, 4000)
    hid = households.save(s, household(status="2", group="3组", dilapidated="0", water_safe=True)).household_id
    p = proposals.propose(s, hid, "监测识别", reasons="因病", date=ago(20), monitoring_type="突发严重困难户",
                          risk_source="干部走访排查", risks=["因病"], household_authorised=True)
    proposals.advance(s, p["id"], "review", "pass", date=ago(15), meeting_date=ago(15), attendance=40, votes_for=36)
    with pytest.raises(proposals.ProcedureError, match="只有 4 天,监测识别村内公示至少 5 天"):
        proposals.plan_notice(s, p["id"], ago(14), ago(11))
    proposals.plan_notice(s, p["id"], ago(14), ago(10))  # five days, first and last counted
    doc = household(head="上官婉儿", seq=5, status="2", household_type="2", monitoring_type="3", risk_eliminated=False,
                    risk_identified_date=ago(400), dilapidated="0", water_safe=True)
    doc["risks"] = [{"risk_type": "05", "found_date": ago(401)}]
    other = households.save(s, doc).household_id
    q = proposals.propose(s, other, "风险消除", reasons="房屋修复", date=ago(20), food_secure=True, clothing_secure=True)
    proposals.advance(s, q["id"], "review", "pass", date=ago(15), meeting_date=ago(15), attendance=40, votes_for=36,
                      household_signed=True)
    with pytest.raises(proposals.ProcedureError, match="风险消除村内公示至少 7 天"):
        proposals.plan_notice(s, q["id"], ago(14), ago(10))
    s.close()
    out = tmp_path / "监测识别公示.pdf"
    assert main(["print", "notice", str(tmp_path / "v.db"), "--village", VILLAGE, "--kind", "monitor",
                 "--out", str(out)]) == 0
    assert f"公示时间:{TODAY.year}" in text(out) and "(共5天)" in text(out)
    start = TODAY.isoformat()  # no period given past the planned one: the default is the 5-day minimum
    assert main(["print", "notice", str(tmp_path / "v.db"), "--village", VILLAGE, "--kind", "monitor",
                 "--start", start, "--out", str(out)]) == 0
    assert "(共5天)" in text(out)
    capsys.readouterr()
    assert main(["print", "notice", str(tmp_path / "v.db"), "--village", VILLAGE, "--kind", "monitor",
                 "--start", start, "--end", (TODAY + dt.timedelta(days=3)).isoformat(), "--out", str(tmp_path / "y.pdf")]) == 1
    assert "监测识别公示期至少 5 天" in capsys.readouterr().err and not (tmp_path / "y.pdf").exists()


def test_monitoring_notices_are_village_only(db, tmp_path, capsys):
    path, _ = db
    assert main(["print", "notice", str(path), "--township", VILLAGE[:9], "--kind", "monitor",
                 "--out", str(tmp_path / "x.pdf")]) == 1
    assert "只在村内公示一次" in capsys.readouterr().err and not (tmp_path / "x.pdf").exists()


def test_the_card_shows_the_type_the_risks_and_their_state(db, tmp_path):
    path, _ = db
    from app.store import Store
    with Store.open(path) as s:
        s.unlock(s.operators()[0], PASSPHRASE)
        number = households.document(s, next(r.id for r in s.records("household")
                                             if r.fields["head_name"] == "上官婉儿"))["household_number"]
    out = tmp_path / "卡.pdf"
    assert main(["print", "card", str(path), "--household", number, "--out", str(out)]) == 0
    t = text(out)
    assert "九、防返贫监测" in t and "户类型监测对象类型风险是否消除风险识别时间风险消除时间" in t
    assert f"监测户突发严重困难户否{ago(400)}" in t and f"因自然灾害{ago(401)}未消除" in t


def test_the_monitoring_register_and_book_list_the_monitored_households(db, tmp_path, capsys):
    path, _ = db
    out = tmp_path / "监测对象名册.pdf"
    assert main(["print", "monitoring", str(path), "--village", VILLAGE, "--out", str(out)]) == 0
    t = text(out)
    assert "防返贫监测对象名册" in t and "监测户1户,其中风险未消除1户" in t
    assert "上官婉儿" in t and f"因自然灾害({ago(401)},未消除)" in t and "欧阳明远" not in t  # not yet decided
    book = tmp_path / "监测对象簿.pdf"
    assert main(["print", "monitoring", str(path), "--township", VILLAGE[:9], "--out", str(book)]) == 0
    assert "防返贫监测对象簿" in text(book) and "龙井村" in text(book)
    assert main(["print", "monitoring", str(path), "--village", "522634101202", "--out", str(tmp_path / "x.pdf")]) == 1
    assert "没有监测户" in capsys.readouterr().err
