"""识别与退出: proposals stage by stage, roles, the status they set, the exit criteria, bad input."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.core import procedures
from app.core.procedures import authorize_change
from app.services import demo, households, proposals
from app.services.proposals import ProcedureError
from app.store import Record
from tests.factories import household, member

TODAY = dt.date.today()
ROLES_BY_SITE: dict[str, str] = {}
LINE_2025 = 4000


def ago(days: int) -> str:
    return (TODAY - dt.timedelta(days=days)).isoformat()


@pytest.fixture
def sites(make_store):
    """A village laptop, a township office and the county, with the same reference data."""
    out = {}
    for role in ("village", "township", "county"):
        s = make_store(f"{role}.db", role=role, operator=f"{role}-op")
        demo.install_reference_data(s)
        s.set_poverty_line(2025, LINE_2025)
        out[role] = s
        ROLES_BY_SITE[s.site_id] = role
    return out


def carry(src, dst):
    """Stand-in for sync in these unit tests: replay the changes `dst` has not seen, in log order,
    each authorised with the role of the site that made it (as sync does) and merged per field by
    clock. (The cross-database test through real bundles is in test_proposals_sync.py.)"""
    roles = ROLES_BY_SITE
    with dst.transaction():
        for change in list(src.changes()):
            if dst.conn.execute("SELECT 1 FROM changes WHERE site_id = ? AND seq = ?",
                                (change.site_id, change.seq)).fetchone():
                continue
            current = dst.get(change.record_id)
            refusal = authorize_change(change.kind, change.new, change.old, roles[change.site_id], op=change.op,
                                       reason=change.reason)
            assert refusal is None, refusal
            dst.clock.observe(change.hlc)
            if current is None:
                current = Record(change.record_id, change.kind, change.village_code, change.parent_id, change.hlc,
                                 False, {}, {})
            for key, value in change.new.items():
                if key.startswith("__") or change.hlc <= current.clock_of(key):
                    continue
                current.clocks[key] = change.hlc
                if value is None:
                    current.fields.pop(key, None)
                else:
                    current.fields[key] = value
            current.hlc = max(current.hlc, change.hlc)
            dst.write_record_raw(current)
            dst.write_change_raw(change)


def new_household(store, **extra):
    extra.setdefault("dilapidated", "0")
    return households.save(store, household(**extra)).household_id


def exit_proposal(store, hid, **kw):
    kw.setdefault("food_secure", True)
    kw.setdefault("clothing_secure", True)
    return proposals.propose(store, hid, "exit", reasons="务工收入稳定", date=ago(40), **kw)


def village_stages(store, pid, kind="exit"):
    proposals.advance(store, pid, "review", "pass", date=ago(30), meeting_date=ago(30), attendance=40,
                      votes_for=35, votes_against=3, household_signed=True if kind == "exit" else None)
    return proposals.advance(store, pid, "notice", "pass", notice_start=ago(29), notice_end=ago(23))


def test_exit_walks_village_township_county_and_sets_the_status_at_announce(sites):
    v, t, c = sites["village"], sites["township"], sites["county"]
    hid = new_household(v)
    p = exit_proposal(v, hid)
    assert p["stage"] == "nominate" and p["nominate_operator"] == "village-op"
    assert p["assessed_per_capita"] == 4500 and p["assessed_line"] == LINE_2025
    p = village_stages(v, p["id"])
    assert proposals.waiting_for(p) == "township"
    carry(v, t)
    p = proposals.advance(t, p["id"], "township", "pass", by="乡扶贫站")
    assert p["township_site"] == "township.db 站点" and p["township_by"] == "乡扶贫站"
    carry(t, c)
    proposals.advance(c, p["id"], "county", "pass")
    assert households.document(c, hid)["status"] == "1"  # 审定 alone does not change the status
    p = proposals.advance(c, p["id"], "announce", "pass")
    assert p["stage"] == "announce" and proposals.waiting_for(p) is None
    doc = households.document(c, hid)
    assert doc["status"] == "2" and doc["exit_year"] == TODAY.year
    history = proposals.status_history(c, hid)
    assert [(e.old, e.new) for e in history] == [(None, "1"), ("1", "2")]
    assert history[-1].proposal_id == p["id"] and history[-1].operator == "county-op"
    # the county's decision reaches the township and the village: the same status everywhere
    carry(c, t)
    carry(t, v)
    assert households.document(v, hid)["status"] == households.document(t, hid)["status"] == "2"
    assert proposals.get(v, p["id"])["stage"] == "announce"


OWNER = {"review": "village", "notice": "village", "township": "township", "county": "county", "announce": "county"}
PASS_ARGS = {"review": dict(meeting_date=ago(30), attendance=10, votes_for=9, household_signed=True),
             "notice": dict(notice_start=ago(20), notice_end=ago(10))}


def sync_all(sites):
    v, t, c = sites["village"], sites["township"], sites["county"]
    for src, dst in ((v, t), (t, c), (c, t), (t, v)):
        carry(src, dst)


@pytest.mark.parametrize("stage, allowed", [
    ("review", {"village", "township"}),
    ("notice", {"village", "township"}),
    ("township", {"township"}),
    ("county", {"county"}),
    ("announce", {"county"}),
])
def test_the_wrong_role_is_refused_at_each_stage(sites, stage, allowed):
    hid = new_household(sites["village"])
    p = exit_proposal(sites["village"], hid)
    for earlier in procedures.STAGES[1:procedures.STAGES.index(stage)]:
        sync_all(sites)
        proposals.advance(sites[OWNER[earlier]], p["id"], earlier, "pass", **PASS_ARGS.get(earlier, {}))
    sync_all(sites)
    for role in ("village", "township", "county"):
        s = sites[role]
        assert proposals.waiting_for(proposals.get(s, p["id"])) == stage
        if role in allowed:
            continue
        before = s.change_count()
        for outcome, reason in (("pass", None), ("return", "不同意")):
            with pytest.raises(ProcedureError) as exc:
                proposals.advance(s, p["id"], stage, outcome, reason=reason, **PASS_ARGS.get(stage, {}))
            assert f"“{procedures.STAGE_LABELS[stage]}”只能由" in str(exc.value)
            assert f"本数据库是{procedures.ROLE_LABELS[role]}" in str(exc.value)
        assert s.change_count() == before
    # the allowed role can do it
    proposals.advance(sites[OWNER[stage]], p["id"], stage, "pass", **PASS_ARGS.get(stage, {}))


def test_a_stage_out_of_order_is_refused_with_the_stage_it_waits_for(sites):
    v, c = sites["village"], sites["county"]
    hid = new_household(v)
    p = exit_proposal(v, hid)
    with pytest.raises(ProcedureError, match="正等待“村级评议”,不能办理“村内公示”"):
        proposals.advance(v, p["id"], "notice", "pass", notice_start=ago(20), notice_end=ago(10))
    carry(v, c)
    with pytest.raises(ProcedureError, match="正等待“村级评议”"):
        proposals.advance(c, p["id"], "announce", "pass")
    assert households.document(c, hid)["status"] == "1"
    assert proposals.get(c, p["id"])["stage"] == "nominate"


def test_the_notice_period_must_be_at_least_seven_days_and_over_before_it_passes(sites):
    v = sites["village"]
    p = exit_proposal(v, new_household(v))
    proposals.advance(v, p["id"], "review", "pass", meeting_date=ago(30), attendance=10, votes_for=9, household_signed=True)
    with pytest.raises(ProcedureError, match="只有 6 天,村内公示至少 7 天"):
        proposals.advance(v, p["id"], "notice", "pass", notice_start=ago(20), notice_end=ago(15))
    with pytest.raises(ProcedureError, match="只有 6 天"):
        proposals.plan_notice(v, p["id"], ago(20), ago(15))
    with pytest.raises(ProcedureError, match="公示期满后再记录"):
        proposals.advance(v, p["id"], "notice", "pass", notice_start=ago(3), notice_end=(TODAY + dt.timedelta(days=3)).isoformat())
    assert proposals.get(v, p["id"])["stage"] == "review"
    # planned first (so the notice can be printed), then passed with exactly 7 days counted inclusively
    proposals.plan_notice(v, p["id"], ago(20), ago(14))
    p = proposals.advance(v, p["id"], "notice", "pass")
    assert (p["notice_start"], p["notice_end"], p["stage"]) == (ago(20), ago(14), "notice")


def test_an_exit_with_missing_income_is_refused_with_a_clear_message(sites):
    v = sites["village"]
    hid = new_household(v, incomes=[])
    with pytest.raises(ProcedureError, match="没有任何年度的收入记录:请先在户档“家庭收入”中录入"):
        exit_proposal(v, hid)
    hid2 = new_household(v, seq=5, head="东方红", spouse="西门雪")
    with pytest.raises(ProcedureError, match=re.escape("没有 2024 年的收入记录(已有:2025)")):
        exit_proposal(v, hid2, income_year=2024)
    v.conn.execute("DELETE FROM poverty_lines WHERE year = 2025")
    with pytest.raises(ProcedureError, match="县里尚未设定 2025 年的贫困线"):
        exit_proposal(v, hid2)
    assert proposals.proposals(v) == []


def test_a_household_already_in_a_pending_proposal_is_refused_until_it_is_returned(sites):
    v = sites["village"]
    hid = new_household(v)
    first = exit_proposal(v, hid)
    with pytest.raises(ProcedureError, match=re.escape("已有一份未办结的脱贫退出申报(等待村级评议")):
        proposals.propose(v, hid, "natural", reasons="户主去世")
    with pytest.raises(ProcedureError, match="退回申报必须写明原因"):
        proposals.advance(v, first["id"], "review", "return")
    returned = proposals.advance(v, first["id"], "review", "return", reason="收入核实不清", date=ago(20))
    assert returned["stage"] == "returned" and returned["review_reason"] == "收入核实不清"
    assert proposals.state_label(returned) == "已在“村级评议”退回"
    with pytest.raises(ProcedureError, match="已退回,不能再办理"):
        proposals.advance(v, first["id"], "notice", "pass", notice_start=ago(20), notice_end=ago(10))
    second = exit_proposal(v, hid)
    assert second["id"] != first["id"] and proposals.waiting_for(second) == "review"


def test_a_kind_that_does_not_fit_the_status_is_refused(sites):
    v = sites["village"]
    hid = new_household(v, status="2")
    with pytest.raises(ProcedureError, match=re.escape("目前是“已脱贫(享受政策)”,不能申报脱贫退出")):
        exit_proposal(v, hid)
    with pytest.raises(ProcedureError, match="未知的申报类型"):
        proposals.propose(v, hid, "upgrade", reasons="x")


def test_return_to_the_register_and_natural_decrease_set_their_statuses(sites):
    v, t, c = sites["village"], sites["township"], sites["county"]
    back = new_household(c, status="2")  # an exited household comes from the county's ledger
    carry(c, v)
    gone = new_household(v, status="1", seq=4, head="上官云", spouse="慕容雪")
    p1 = proposals.propose(v, back, "return", reasons="因病返贫:户主患大病", date=ago(40))
    p2 = proposals.propose(v, gone, "natural", reasons="全户迁出", date=ago(40))
    for p in (p1, p2):
        village_stages(v, p["id"], kind=p["proposal_kind"])
    carry(v, t)
    for p in (p1, p2):
        proposals.advance(t, p["id"], "township", "pass")
    carry(t, c)
    for p in (p1, p2):
        proposals.advance(c, p["id"], "county", "pass")
        proposals.advance(c, p["id"], "announce", "pass")
    assert households.document(c, back)["status"] == "4"
    assert households.document(c, back)["return_reason"] == "因病返贫:户主患大病"
    assert households.document(c, gone)["status"] == "6"


def test_village_review_needs_a_majority_and_the_households_signature_for_an_exit(sites):
    v = sites["village"]
    p = exit_proposal(v, new_household(v))
    with pytest.raises(ProcedureError, match="未超过参会人数 40 的半数"):
        proposals.advance(v, p["id"], "review", "pass", meeting_date=ago(5), attendance=40, votes_for=20)
    with pytest.raises(ProcedureError, match="票数合计 45 超过参会人数 40"):
        proposals.advance(v, p["id"], "review", "pass", meeting_date=ago(5), attendance=40, votes_for=30, votes_against=15)
    with pytest.raises(ProcedureError, match="需要评议会日期、参会人数和赞成票数"):
        proposals.advance(v, p["id"], "review", "pass", attendance=40, votes_for=30)
    with pytest.raises(ProcedureError, match="农户签字同意"):
        proposals.advance(v, p["id"], "review", "pass", meeting_date=ago(5), attendance=40, votes_for=30)
    p = proposals.advance(v, p["id"], "review", "pass", meeting_date=ago(5), attendance=40, votes_for=30,
                          household_signed=True)
    assert (p["review_attendance"], p["review_votes_for"], p["review_household_signed"]) == (40, 30, True)


# ---------------------------------------------------------------------- exit criteria


def test_exit_criteria_come_from_the_stored_income_and_the_years_line(sites):
    v = sites["village"]
    hid = new_household(v)
    doc = households.document(v, hid)
    # net = 6000 + 2500 + 1200 - 700 = 9000 for 2 people: 4500 per head
    a = proposals.exit_assessment(v, doc, food_secure=True, clothing_secure=True)
    assert (a.year, a.per_capita, a.line, a.passed) == (2025, 4500.0, LINE_2025, True)
    v.set_poverty_line(2025, 4500)  # equal to the line is not above it
    a = proposals.exit_assessment(v, doc, food_secure=True, clothing_secure=True)
    assert not a.passed and [c.key for c in a.failures] == ["income"]
    assert "未超过贫困线 4,500 元" in a.failures[0].detail
    v.set_poverty_line(2025, 4499.99)
    assert proposals.exit_assessment(v, doc, food_secure=True, clothing_secure=True).passed
    # a new income record for the year changes the result: the stored figures are used
    doc["incomes"][0]["wage_income"] = 1000
    households.save(v, doc)
    a = proposals.exit_assessment(v, households.document(v, hid), food_secure=True, clothing_secure=True)
    assert a.per_capita == 2000.0 and not a.passed


def test_two_assurances_three_guarantees_checks_each_member_and_the_house(sites):
    v = sites["village"]
    child_birth = dt.date(TODAY.year - 10, 3, 1)
    doc = household(dilapidated="C", family_size=3)
    doc["members"].append(member("欧阳小明", "1", child_birth, "03", seq=9, school_status="00"))
    doc["members"][1]["basic_medical"] = False
    hid = households.save(v, doc).household_id
    a = proposals.exit_assessment(v, households.document(v, hid), food_secure=True, clothing_secure=None)
    failed = {c.key: c.detail for c in a.failures}
    assert set(failed) == {"clothing", "schooling", "medical", "housing", "income"}
    assert "欧阳小明(10岁)未在校" in failed["schooling"]
    assert failed["medical"] == "未参加基本医疗保险:司马秀兰"
    assert failed["housing"] == "住房为C级危房"
    assert failed["clothing"] == "申报中未回答"
    # a failing exit needs a written justification, and the snapshot keeps what failed
    with pytest.raises(ProcedureError, match="未达到退出标准.*书面说明"):
        exit_proposal(v, hid, clothing_secure=None)
    p = exit_proposal(v, hid, justification="危房改造已开工,年内完成")
    assert p["justification"] == "危房改造已开工,年内完成"
    assert "住房安全有保障" in p["assessed_failures"]


def test_a_school_age_child_at_school_and_a_toddler_pass_schooling(sites):
    v = sites["village"]
    doc = household(dilapidated="0", family_size=4)
    doc["members"].append(member("欧阳小学", "1", dt.date(TODAY.year - 9, 1, 1), "03", seq=8, school_status="02"))
    doc["members"].append(member("欧阳小宝", "2", dt.date(TODAY.year - 3, 1, 1), "04", seq=10, school_status="01"))
    doc["incomes"][0]["wage_income"] = 20000
    hid = households.save(v, doc).household_id
    a = proposals.exit_assessment(v, households.document(v, hid), food_secure=True, clothing_secure=True)
    assert a.passed, a.summary()


def test_an_exit_that_fails_later_cannot_pass_the_township_without_a_justification(sites):
    v, t = sites["village"], sites["township"]
    hid = new_household(v)
    p = exit_proposal(v, hid)
    village_stages(v, p["id"])
    doc = households.document(v, hid)
    doc["dilapidated"] = "D"
    households.save(v, doc)
    carry(v, t)
    with pytest.raises(ProcedureError, match="住房为D级危房.*不能通过"):
        proposals.advance(t, p["id"], "township", "pass")
    p = proposals.advance(t, p["id"], "township", "return", reason="住房鉴定为D级危房")
    assert p["stage"] == "returned"


# ---------------------------------------------------------------------- authorize_change (what sync applies)


def test_authorize_change_refuses_forged_stages_and_direct_status_edits():
    nominate = {"proposal_kind": "exit", "reasons": "x", "stage": "nominate", "nominate_outcome": "pass"}
    assert authorize_change("proposal", nominate, {}, "village") is None
    assert "县级" in authorize_change("proposal", nominate, {}, "county")
    # a village laptop forging the county's decision
    forged = {"stage": "county", "county_outcome": "pass", "county_date": "2026-01-01"}
    assert "“县级审定”只能由县级数据库办理,这项更改来自村级站点" in authorize_change("proposal", forged, {"stage": "township"}, "village")
    assert "只能由县级" in authorize_change("proposal", {"stage": "announce"}, {"stage": "county"}, "village")
    # the county skipping the township
    assert "正等待“乡级初核”" in authorize_change("proposal", forged, {"stage": "notice"}, "county")
    assert authorize_change("proposal", forged, {"stage": "township"}, "county") is None
    assert "必须从“村民小组提名”开始" in authorize_change(
        "proposal", {"stage": "review", "review_outcome": "pass"}, {}, "village", op="create")
    # a nomination must say which procedure it is
    assert "没有写明类型" in authorize_change("proposal", {**nominate, "proposal_kind": None}, {}, "village")
    assert "没有写明类型" in authorize_change("proposal", {**nominate, "proposal_kind": "promote"}, {}, "village")
    # a recorded stage cannot be rewritten; the notice period may be planned
    assert "不能修改" in authorize_change("proposal", {"review_votes_for": 99}, {"review_votes_for": 30}, "village")
    assert authorize_change("proposal", {"notice_start": "2026-01-01", "notice_end": "2026-01-07"}, {}, "village", op="update") is None
    # returns: at the right role, with a reason
    ret = {"stage": "returned", "township_outcome": "return", "township_reason": "材料不全"}
    assert authorize_change("proposal", ret, {"stage": "notice"}, "township") is None
    assert "乡级" in authorize_change("proposal", ret, {"stage": "notice"}, "village")
    assert "原因" in authorize_change("proposal", {**ret, "township_reason": ""}, {"stage": "notice"}, "township")
    assert "不能再办理" in authorize_change("proposal", forged, {"stage": "returned"}, "county")
    # household status: a device creates a household only as 未脱贫, the county in any status (its
    # ledger); afterwards only the county through a proposal
    assert authorize_change("household", {"status": "1", "head_name": "x"}, {}, "village") is None
    assert "只能以“未脱贫”登记" in authorize_change("household", {"status": "2", "head_name": "x"}, {}, "village")
    assert authorize_change("household", {"status": "2", "head_name": "x"}, {}, "county") is None
    assert "不能直接修改" in authorize_change("household", {"status": "2"}, {"status": "1"}, "village")
    assert "不能直接修改" in authorize_change("household", {"status": "2"}, {"status": "1"}, "township")
    assert authorize_change("household", {"status": "2"}, {"status": "1"}, "county") is None
    assert "办理识别或退出程序" in authorize_change("household", {"status": "2"}, {"status": "1"}, "county", reason="手工改")
    assert authorize_change("household", {"status": "2"}, {"status": "1"}, "county",
                            reason=procedures.STATUS_REASON_PREFIX + "脱贫退出申报 x") is None
    assert authorize_change("household", {"phone": "13900000000"}, {"phone": None}, "village") is None


# ---------------------------------------------------------------------- notices for printing


def test_households_for_notice_lists_those_waiting_at_the_village_notice(sites):
    v = sites["village"]
    out_id = new_household(v)
    in_id = new_household(v, seq=6, head="诸葛亮", spouse="黄月英", status="1")
    waiting_review = new_household(v, seq=8, head="司马懿", spouse="张春华")
    p_exit = exit_proposal(v, out_id)
    p_entry = proposals.propose(v, in_id, "entry", reasons="新识别:因病")
    exit_proposal(v, waiting_review)
    proposals.advance(v, p_exit["id"], "review", "pass", meeting_date=ago(12), attendance=10, votes_for=8, household_signed=True)
    proposals.advance(v, p_entry["id"], "review", "pass", meeting_date=TODAY.isoformat(), attendance=10, votes_for=8)
    exits = proposals.households_for_notice(v, "522634101201", "exit")
    entries = proposals.households_for_notice(v, "522634101201", "entry")
    assert [(d["id"], p["id"]) for d, p in exits] == [(out_id, p_exit["id"])]
    assert [(d["id"], p["id"]) for d, p in entries] == [(in_id, p_entry["id"])]
    assert proposals.households_for_notice(v, "522634102201", "exit") == []
    proposals.advance(v, p_exit["id"], "notice", "pass", notice_start=ago(10), notice_end=ago(4))
    assert proposals.households_for_notice(v, "522634101201", "exit") == []
    with pytest.raises(ProcedureError):
        proposals.households_for_notice(v, "522634101201", "members")


def test_the_township_prints_its_own_notice_after_its_check_and_the_county_its_announcement(sites, tmp_path):
    """识别: 村内公示 → 乡级初核 (the second 公示, by the township) → 县级审定 → 公告 (by the county)."""
    from app.services import printing
    from tests.test_reports import compact, text_of

    v, t, c = sites["village"], sites["township"], sites["county"]
    hid = new_household(v, seq=6, head="诸葛亮", spouse="黄月英", status="1")
    p = proposals.propose(v, hid, "entry", reasons="新识别:因病", date=ago(40))
    village_stages(v, p["id"], kind="entry")
    carry(v, t)
    township, county = "522634101", "522634"
    with pytest.raises(printing.PrintError, match="没有通过乡级初核、等待县级审定的拟纳入"):
        printing.print_notice(t, tmp_path / "t.pdf", township, "entry", None, level="township")
    proposals.advance(t, p["id"], "township", "pass", by="乡扶贫站")
    out = tmp_path / "乡级公示.pdf"
    result = printing.print_notice(t, out, township, "entry", None, level="township")
    text = compact(text_of(out))
    assert result.households == 1 and "诸葛亮" in text and "龙井村" in text
    assert "公示(乡级)" in text and "村内公示和乡(镇)初核,拟将以下1户纳入建档立卡贫困户" in text
    assert "西江镇人民政府(盖章)" in text and "(共7天)" in text and "村党组织书记" not in text
    assert "公示地点:西江镇人民政府公示栏" in text and "向西江镇扶贫工作站反映" in text
    carry(t, c)
    proposals.advance(c, p["id"], "county", "pass")
    out = tmp_path / "公告.pdf"
    printing.print_notice(c, out, county, "entry", None, level="county")
    text = compact(text_of(out))
    assert "新识别(纳入)建档立卡贫困户公告" in text and "诸葛亮" in text and "县级审定,以下1户纳入建档立卡贫困户,现予以公告" in text
    assert "特此公告" in text and "扶贫开发领导小组(盖章)" in text and "公示时间" not in text
    with pytest.raises(printing.PrintError, match="不是乡\\(镇\\)代码"):
        printing.print_notice(c, out, "5226341", "entry", None, level="township")


def test_proposals_are_sealed_records_and_their_reasons_never_reach_the_disk_in_plain_text(sites, tmp_path):
    v = sites["village"]
    exit_proposal(v, new_household(v), justification=None)
    proposals.propose(v, new_household(v, seq=7, head="孙权", spouse="步练师", status="2"), "return",
                      reasons="独特返贫原因甲乙丙")
    v.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = (tmp_path / "village.db").read_bytes()
    assert "独特返贫原因甲乙丙".encode() not in raw and "务工收入稳定".encode() not in raw


def test_saving_a_household_document_cannot_change_its_status_at_any_level(sites):
    for role in ("village", "township", "county"):
        s = sites[role]
        hid = new_household(s)
        doc = households.document(s, hid)
        doc["status"] = "2"
        before = s.change_count()
        with pytest.raises(households.InputError, match="脱贫状态"):
            households.save(s, doc)
        assert s.change_count() == before and households.document(s, hid)["status"] == "1"
        doc["status"] = "1"
        doc["phone"] = "13800001111"
        households.save(s, doc)  # other fields still save
        assert households.document(s, hid)["phone"] == "13800001111"


def test_dates_must_follow_the_procedure(sites):
    v = sites["village"]
    p = exit_proposal(v, new_household(v))  # nominated 40 days ago
    with pytest.raises(ProcedureError, match="评议会日期 .* 早于提名日期"):
        proposals.advance(v, p["id"], "review", "pass", meeting_date=ago(50), attendance=10, votes_for=9,
                          household_signed=True)
    with pytest.raises(ProcedureError, match="早于上一环节“村民小组提名”的日期"):
        proposals.advance(v, p["id"], "review", "pass", date=ago(45), meeting_date=ago(45), attendance=10,
                          votes_for=9, household_signed=True)
    proposals.advance(v, p["id"], "review", "pass", date=ago(30), meeting_date=ago(30), attendance=10, votes_for=9,
                      household_signed=True)
    with pytest.raises(ProcedureError, match="公示应在评议之后"):
        proposals.plan_notice(v, p["id"], ago(35), ago(25))
    assert proposals.get(v, p["id"]).get("notice_start") is None


def test_two_proposals_made_offline_on_two_laptops_must_be_settled_to_one_before_either_goes_on(sites, make_store):
    v = sites["village"]
    other = make_store("village2.db", role="village", operator="village2-op")
    demo.install_reference_data(other)
    other.set_poverty_line(2025, LINE_2025)
    ROLES_BY_SITE[other.site_id] = "village"
    hid = new_household(v)
    carry(v, other)
    mine = exit_proposal(v, hid)
    theirs = exit_proposal(other, hid)  # the other laptop did not know: each database allows one
    carry(other, v)
    assert {p["id"] for p in proposals.concurrent_pending(v, hid)} == {mine["id"], theirs["id"]}
    with pytest.raises(ProcedureError, match=rf"同时还有未办结的脱贫退出申报 {theirs['id'][-8:]}.*请先在相应环节退回其中一份"):
        village_stages(v, mine["id"])
    proposals.advance(v, theirs["id"], "review", "return", reason="重复申报,保留另一份", date=ago(35))
    assert proposals.concurrent_pending(v, hid) == []
    assert village_stages(v, mine["id"])["stage"] == "notice"


def test_a_stage_dated_in_the_future_is_refused(sites):
    v = sites["village"]
    hid = new_household(v)
    later = (TODAY + dt.timedelta(days=400)).isoformat()
    with pytest.raises(ProcedureError, match=rf"提名日期 {later} 晚于今天\({TODAY.isoformat()}\):只能登记已经办完的环节"):
        proposals.propose(v, hid, "natural", reasons="户主去世", date=later)
    p = proposals.propose(v, hid, "natural", reasons="户主去世", date=ago(3))
    with pytest.raises(ProcedureError, match="评议会日期 .* 晚于今天"):
        proposals.advance(v, p["id"], "review", "pass", date=ago(1), meeting_date=later, attendance=10, votes_for=9)
    with pytest.raises(ProcedureError, match="办理日期 .* 晚于今天"):
        proposals.advance(v, p["id"], "review", "pass", date=later, meeting_date=ago(1), attendance=10, votes_for=9)
    assert proposals.get(v, p["id"])["stage"] == "nominate"

    proposals.advance(v, p["id"], "review", "pass", date=ago(2), meeting_date=ago(2), attendance=10, votes_for=9)
    with pytest.raises(ProcedureError, match="公示结束日期 .* 早于开始日期"):
        proposals.plan_notice(v, p["id"], ago(1), ago(9))


def test_always_authorized_means_authorize_change_accepts():
    """The county's merge skips `authorize_change` for the changes `always_authorized` names
    (app/sync/county_merge.py): for those it must accept whatever the old fields, role, op and reason."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from app.core.dictionary import default

    d = default()
    keys = sorted({f for k in d.kinds.values() for f in k.fields} | set(procedures.JUDGED_HOUSEHOLD_FIELDS)
                  | {"stage", "state", "eliminated_date", "nominate_outcome", "proposal_kind"})
    values = st.one_of(st.none(), st.sampled_from(["", "1", "2", "3", "4", "open", "pass", "return", "announce",
                                                   "2026-01-01", procedures.MIGRATION_REASON]), st.integers(0, 9))
    fields = st.dictionaries(st.sampled_from(keys), values, max_size=4)
    kinds = st.sampled_from(sorted(set(d.kinds) | {"proposal", "risk", "attachment"}))

    @settings(max_examples=600, deadline=None)
    @given(kinds, fields, fields, st.sampled_from(["village", "township", "county"]),
           st.sampled_from([None, "create", "update", "delete", "restore"]),
           st.one_of(st.none(), st.sampled_from(["", procedures.STATUS_REASON_PREFIX + "x", procedures.MIGRATION_REASON])))
    def check(kind, new, old, role, op, reason):
        if procedures.always_authorized(kind, new):
            assert authorize_change(kind, new, old, role, op=op, reason=reason) is None

    check()
    # and it does not name what authorize_change refuses
    assert not procedures.always_authorized("household", {"status": "2"})
    assert not procedures.always_authorized("household", {"household_type": "2", "note": "x"})
    assert not procedures.always_authorized("proposal", {"note": "x"})
    assert not procedures.always_authorized("risk", {})
