"""Work lists (工作清单) for the work team, the township and the county, built on the household
documents (helpers, visits) and the proposals:

- registered households without a current helper pairing (帮扶责任人);
- registered households without a visit (工作台账) in the last N days;
- proposals waiting at each stage;
- exit proposals that fail a criterion (flagged for the township's 初核), with their written
  justification;
- 防返贫动态监测 (issue #20, `MonitoringLists`): households whose per-capita income is near or under
  the county's monitoring line, 监测对象 with no measure in force, 监测对象 not visited within N days,
  and risks open longer than the county's limit.

"Registered" means a status other than 自然减少 / 销号.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core import procedures
from app.core.procedures import STAGES, STAGE_LABELS
from app.core.dictionary import default
from app.core.income import per_capita
from app.services import households, monitoring, proposals
from app.store import Store

LEFT_REGISTER = ("6", "7")
DEFAULT_VISIT_DAYS = 90


@dataclass
class Entry:
    household_id: str
    village_code: str | None
    household_number: str
    head_name: str
    detail: str
    proposal_id: str | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MonitoringLists:
    """防返贫动态监测 work lists (issue #20)."""
    near_line: list[Entry] = field(default_factory=list)
    no_measure: list[Entry] = field(default_factory=list)
    not_visited: list[Entry] = field(default_factory=list)
    risks_overdue: list[Entry] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: [e.as_dict() for e in v] for k, v in self.__dict__.items()}


@dataclass
class WorkLists:
    on: str
    visit_days: int
    missing_helper: list[Entry] = field(default_factory=list)
    no_recent_visit: list[Entry] = field(default_factory=list)
    waiting: dict[str, list[Entry]] = field(default_factory=lambda: {s: [] for s in STAGES[1:]})
    failing_exits: list[Entry] = field(default_factory=list)
    monitoring: MonitoringLists = field(default_factory=lambda: MonitoringLists())
    notices: list[str] = field(default_factory=list)  # the laptop's 户编号 running out, and the like
    incomplete: list[Entry] = field(default_factory=list)  # 待完善: required values left empty

    def as_dict(self) -> dict:
        return {
            "on": self.on,
            "visit_days": self.visit_days,
            "missing_helper": [e.as_dict() for e in self.missing_helper],
            "no_recent_visit": [e.as_dict() for e in self.no_recent_visit],
            "waiting": {s: [e.as_dict() for e in entries] for s, entries in self.waiting.items()},
            "failing_exits": [e.as_dict() for e in self.failing_exits],
            "monitoring": self.monitoring.as_dict(),
            "notices": list(self.notices),
            "incomplete": [e.as_dict() for e in self.incomplete],
        }


def _entry(doc: dict, detail: str, proposal_id: str | None = None) -> Entry:
    return Entry(doc["id"], doc.get("village_code"), str(doc.get("household_number", "")),
                 str(doc.get("head_name", "")), detail, proposal_id)


def current_helpers(doc: dict, on: dt.date) -> list[dict]:
    """Helper pairings that have started and not ended on the date."""
    day = on.isoformat()
    return [h for h in doc.get("helpers", [])
            if (not h.get("start_date") or str(h["start_date"]) <= day)
            and (not h.get("end_date") or str(h["end_date"]) >= day)]


def last_visit(doc: dict) -> str | None:
    dates = [str(v["date"]) for v in doc.get("visits", []) if v.get("date")]
    return max(dates) if dates else None


def registered(doc: dict) -> bool:
    return doc.get("status") not in LEFT_REGISTER


def build(store: Store, *, village_code: str | None = None, visit_days: int = DEFAULT_VISIT_DAYS,
          on: dt.date | None = None, progress: Callable[[int, int], None] | None = None) -> WorkLists:
    """All four lists for the database (or one village) on a date (default today)."""
    on = on or dt.date.today()
    if visit_days < 0:
        raise ValueError("天数不能为负数")
    lists = WorkLists(on.isoformat(), visit_days)
    lists.notices = number_notices(store, village_code)
    docs = households.documents(store, village_code, progress=progress)
    by_id = {doc["id"]: doc for doc in docs}
    cutoff = (on - dt.timedelta(days=visit_days)).isoformat()
    for doc in docs:
        if not registered(doc):
            continue
        missing = missing_required(doc)
        if missing:
            lists.incomplete.append(_entry(doc, "待完善:未填 " + "、".join(missing)))
        if not current_helpers(doc, on):
            ended = [h for h in doc.get("helpers", []) if h.get("end_date")]
            lists.missing_helper.append(_entry(doc, "结对已结束,未安排新的帮扶责任人" if ended else "没有帮扶责任人"))
        last = last_visit(doc)
        if last is None:
            lists.no_recent_visit.append(_entry(doc, "从未走访"))
        elif last < cutoff:
            days = (on - dt.date.fromisoformat(last)).days
            lists.no_recent_visit.append(_entry(doc, f"最近走访 {last}({days} 天前)"))
    _monitoring_lists(store, docs, lists, on)
    for p in proposals.proposals(store, village_code=village_code):
        stage = proposals.waiting_for(p)
        doc = by_id.get(p["household_id"])
        if stage is None or doc is None:
            continue
        kind = procedures.KINDS.get(p.get("proposal_kind"), "")
        stages = procedures.stages_of(p.get("proposal_kind"))
        done = p.get(f"{stages[stages.index(stage) - 1]}_date", "")
        detail = f"{kind};上一环节 {done}"
        if stage == "notice" and p.get("notice_start"):
            detail += f";公示期 {p['notice_start']} 至 {p.get('notice_end', '')}"
        lists.waiting[stage].append(_entry(doc, detail, p["id"]))
        assessment = proposals.assessment_of(store, p, doc, on=on)
        if assessment is not None and not assessment.passed:
            note = p.get("justification")
            lists.failing_exits.append(_entry(doc, assessment.summary() + (f"。书面说明:{note}" if note else "。无书面说明"),
                                              p["id"]))
    return lists


def number_notices(store: Store, village_code: str | None = None) -> list[str]:
    """A sentence for each village where this laptop has few household numbers (户编号) left: new
    households are saved as drafts without a number once they run out, until the county's next
    bundle brings a new block."""
    from app.sync import numbers  # noqa: PLC0415 - only enrolled devices have blocks

    if not store.meta("number_block"):
        return []
    certificate = store.meta("certificate")
    places = []
    if certificate:
        import json  # noqa: PLC0415

        places = json.loads(certificate)["body"]["villages"]
    villages = sorted({d["code"] for d in store.divisions("village") if any(d["code"].startswith(p) for p in places)})
    out = []
    for village in villages:
        if village_code and village != village_code:
            continue
        left = numbers.numbers_left(store, village)
        if left is not None and left < numbers.WARN_LEFT:
            name = store.division_name(village)
            state = "已用完,新户暂存为无户编号的草稿" if left == 0 else f"只剩 {left} 个"
            out.append(f"本机在{name}({village})的户编号{state}:请尽快与县里同步"
                       "(县里会随县级包自动发来新的号段,不需要重新登记本机)")
    return out


def missing_required(doc: dict) -> list[str]:
    """Labels of the required values a household (or its members) leaves empty: a household imported
    with --allow-incomplete or saved as a draft. Member fields are named with the member. Checks the
    required fields only (the same test as validation's “为必填项”), not every rule: it runs for every
    household of the work list."""
    from app.core.dictionary import default  # noqa: PLC0415
    from app.core.values import is_empty  # noqa: PLC0415

    d = default()
    out: list[str] = []
    for kind, records in (("household", [doc]), ("member", doc.get("members", []))):
        for record in records:
            for f in d.kinds[kind].fields.values():
                if (f.required and is_empty(record.get(f.key)) and f.visible(record)
                        and not (f.readonly and f.default is not None)):
                    label = f.label if kind == "household" else f"成员“{record.get('name') or '?'}”的{f.label}"
                    if label not in out:
                        out.append(label)
    return out


def stage_title(stage: str) -> str:
    return f"等待{STAGE_LABELS[stage]}"


# ---------------------------------------------------------------------- 防返贫动态监测 (issue #20)

NEAR_LINE = 1.1  # "near" the monitoring line: per-capita income up to 10% above it
DEFAULT_RISK_DAYS = 180  # when the county has set no monitoring criteria yet


def measure_in_force(doc: dict, on: dt.date) -> bool:
    """A measure of this year, or one carried out in the last 365 days."""
    since = (on - dt.timedelta(days=365)).isoformat()
    return any(m.get("year") == on.year or (m.get("date") and str(m["date"]) >= since) for m in doc.get("measures", []))


def _criteria_for(all_criteria: list[dict], year: int) -> dict | None:
    """The county's criteria of a year, else those of the latest earlier year (`all_criteria` oldest first)."""
    earlier = [c for c in all_criteria if c["year"] <= year]
    return earlier[-1] if earlier else None


def _monitoring_lists(store: Store, docs: list[dict], lists: WorkLists, on: dt.date) -> None:
    m = lists.monitoring
    all_criteria = store.all_monitoring_criteria()  # read once: a few rows
    today = _criteria_for(all_criteria, on.year)
    risk_days = today["risk_days"] if today else DEFAULT_RISK_DAYS
    cutoff = (on - dt.timedelta(days=lists.visit_days)).isoformat()
    risk_cutoff = (on - dt.timedelta(days=risk_days)).isoformat()
    for doc in docs:
        if not registered(doc):
            continue
        under = monitoring.monitored(doc) and doc.get("risk_eliminated") is not True
        year = procedures.latest_income_year(doc)
        criteria = _criteria_for(all_criteria, year) if year is not None else None
        if not under and criteria is not None:
            pc = per_capita(procedures.income_of(doc, year), doc.get("family_size"))
            if pc is not None and pc <= criteria["line"] * NEAR_LINE:
                word = "低于" if pc < criteria["line"] else "接近"
                m.near_line.append(_entry(doc, f"{monitoring.type_label(doc.get('household_type'))};{year} 年人均 "
                                               f"{pc:,.2f} 元,{word}监测收入标准 {criteria['line']:,.0f} 元"))
        if not under:
            continue
        if not measure_in_force(doc, on):
            m.no_measure.append(_entry(doc, f"{monitoring.risk_summary(doc)};没有 {on.year} 年或近一年的帮扶措施"))
        last = last_visit(doc)
        if last is None or last < cutoff:
            m.not_visited.append(_entry(doc, "从未走访" if last is None else
                                        f"最近走访 {last}({(on - dt.date.fromisoformat(last)).days} 天前)"))
        for risk in monitoring.open_risks(doc):
            found = str(risk.get("found_date") or "")
            if found and found < risk_cutoff:
                days = (on - dt.date.fromisoformat(found)).days
                label = default().code_label("risk_type", risk.get("risk_type"))
                note = "" if today else f"(县未设定期限,按 {DEFAULT_RISK_DAYS} 天)"
                m.risks_overdue.append(_entry(doc, f"{label}风险 {found} 发现,已 {days} 天未消除,超过 {risk_days} 天{note}"))
