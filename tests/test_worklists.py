"""Work lists: missing helpers, overdue visits, proposals waiting per stage, failing exits."""

from __future__ import annotations

import datetime as dt

import pytest

from app.services import demo, households, proposals, worklists
from tests.factories import household

ON = dt.date(2026, 6, 30)


@pytest.fixture
def village(store):
    store.set_poverty_line(2025, 4000)
    return store


def save(store, seq, **extra):
    extra.setdefault("dilapidated", "0")
    return households.save(store, household(head=f"户主{seq}", spouse=f"配偶{seq}", seq=seq, **extra)).household_id


def ids(entries):
    return {e.household_id for e in entries}


def test_households_without_a_current_helper_are_listed(village):
    ok = save(village, 1)
    none = save(village, 2, helpers=[])
    ended = save(village, 3, helpers=[{"name": "老干部", "unit": "县水利局", "start_date": "2015-01-01",
                                       "end_date": "2026-03-31"}])
    future = save(village, 4, helpers=[{"name": "新干部", "unit": "县水利局", "start_date": "2026-09-01"}])
    left = save(village, 5, helpers=[], status="6")  # 自然减少: no longer on the register
    lists = worklists.build(village, on=ON)
    assert ids(lists.missing_helper) == {none, ended, future}
    details = {e.household_id: e.detail for e in lists.missing_helper}
    assert details[ended] == "结对已结束,未安排新的帮扶责任人" and details[none] == "没有帮扶责任人"
    assert ok not in ids(lists.missing_helper) and left not in ids(lists.missing_helper)


def test_households_without_a_visit_in_n_days_are_listed(village):
    recent = save(village, 1, visits=[{"date": "2026-06-01", "visitor": "队员", "content": "走访"}])
    edge = save(village, 2, visits=[{"date": "2026-04-01", "visitor": "队员", "content": "走访"}])
    old = save(village, 3, visits=[{"date": "2025-01-05", "visitor": "队员", "content": "走访"},
                                   {"date": "2026-01-02", "visitor": "队员", "content": "回访"}])
    never = save(village, 4, visits=[])
    lists = worklists.build(village, on=ON, visit_days=90)  # cutoff 2026-04-01
    assert ids(lists.no_recent_visit) == {old, never}
    detail = {e.household_id: e.detail for e in lists.no_recent_visit}
    assert detail[old] == "最近走访 2026-01-02(179 天前)" and detail[never] == "从未走访"
    assert ids(worklists.build(village, on=ON, visit_days=30).no_recent_visit) == {edge, old, never}
    assert recent not in ids(worklists.build(village, on=ON, visit_days=29).no_recent_visit)
    with pytest.raises(ValueError):
        worklists.build(village, on=ON, visit_days=-1)


def test_proposals_are_listed_at_the_stage_they_wait_for_and_failing_exits_are_flagged(village):
    good = save(village, 1)
    poor = save(village, 2, dilapidated="D")
    entry = save(village, 3)
    p_good = proposals.propose(village, good, "exit", reasons="增收", food_secure=True, clothing_secure=True)
    p_poor = proposals.propose(village, poor, "exit", reasons="增收", food_secure=True, clothing_secure=True,
                               justification="危房改造下月竣工")
    p_entry = proposals.propose(village, entry, "entry", reasons="新识别", date="2026-01-02")
    proposals.advance(village, p_entry["id"], "review", "pass", meeting_date="2026-01-05", attendance=20,
                      votes_for=18, date="2026-01-05")
    lists = worklists.build(village, on=ON)
    assert {e.proposal_id for e in lists.waiting["review"]} == {p_good["id"], p_poor["id"]}
    assert [e.proposal_id for e in lists.waiting["notice"]] == [p_entry["id"]]
    assert all(not lists.waiting[s] for s in ("township", "county", "announce"))
    assert [e.proposal_id for e in lists.failing_exits] == [p_poor["id"]]
    assert "住房为D级危房" in lists.failing_exits[0].detail and "危房改造下月竣工" in lists.failing_exits[0].detail
    # a returned proposal leaves the lists
    proposals.advance(village, p_poor["id"], "review", "return", reason="先完成危房改造")
    lists = worklists.build(village, on=ON)
    assert [e.proposal_id for e in lists.waiting["review"]] == [p_good["id"]] and lists.failing_exits == []


def test_a_demo_village_yields_lists_for_one_village_only(make_store):
    s = make_store("demo.db")
    demo.fill(s, per_village=3, today=ON)
    lists = worklists.build(s, village_code="522634101201", visit_days=30, on=ON)
    assert lists.no_recent_visit and {e.village_code for e in lists.no_recent_visit} == {"522634101201"}
    data = lists.as_dict()
    assert set(data) == {"on", "visit_days", "missing_helper", "no_recent_visit", "waiting", "failing_exits", "incomplete",
                         "monitoring", "notices"}
