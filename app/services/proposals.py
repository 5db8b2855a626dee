"""识别与退出: proposals (申报) and their stages, the exit criteria, the status history.

A proposal is a record of kind "proposal" with parent_id = the household and the household's village
code, so it travels through sync like any record. Every write here checks the stage order and the
database's role (`Store.role`) and then asks `app.core.procedures.authorize_change`, the same rule
sync applies to incoming changes. The household's status changes only when the county records
公告 with outcome pass: the status is written in the same transaction, with a reason that names the
proposal.

A *proposal dict* is ``{"id", "household_id", "village_code", **fields}``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.core import procedures
from app.core.procedures import KINDS, STAGE_LABELS, STAGES, ExitAssessment
from app.core.validation import household_label
from app.services import households
from app.store import Record, Store
from app.store.db import matches_short_id, short_id


class ProcedureError(ValueError):
    """A proposal or stage refused; the message (Chinese) says why and what to do."""


# ---------------------------------------------------------------------- reading


def as_dict(record: Record) -> dict:
    return {"id": record.id, "household_id": record.parent_id, "village_code": record.village_code, **record.fields}


def get(store: Store, proposal_id: str) -> dict:
    """A proposal by id, or by the short number the CLI and window print (`short_id`), or a prefix;
    or by a household's 户编号: that household's one proposal still in progress (so a worked example
    can be typed as written, without the id the nomination printed)."""
    record = store.get(proposal_id) if len(proposal_id) >= 32 else None
    if record is None:
        matches = [r for r in store.records("proposal") if matches_short_id(r.id, proposal_id)]
        if len(matches) > 1:
            raise ProcedureError(f"申报编号“{proposal_id}”不唯一,请多写几位")
        record = matches[0] if matches else None
    if record is None:
        houses = store.find_household_number(str(proposal_id).strip())
        if len(houses) == 1:
            pending = [p for p in proposals(store, household_id=houses[0]) if procedures.is_pending(p)]
            if len(pending) > 1:
                raise ProcedureError(f"户编号 {proposal_id} 有 {len(pending)} 份未办结的申报,请用申报编号"
                                     "(jiandang proposals --household 户编号 可列出)")
            if pending:
                return pending[0]
            raise ProcedureError(f"户编号 {proposal_id} 的贫困户没有未办结的申报。用 jiandang proposals 查看申报编号")
    if record is None or record.kind != "proposal" or record.deleted:
        raise ProcedureError(f"找不到申报“{proposal_id}”。用 jiandang proposals 查看申报编号")
    return as_dict(record)


def proposals(store: Store, *, village_code: str | None = None, household_id: str | None = None,
              waiting: str | None = None) -> list[dict]:
    """Proposals in entry order. `waiting`: only those waiting for that stage, or "returned" /
    "effective" / "pending"."""
    out = []
    for record in store.records("proposal", village_code=village_code, parent_id=household_id):
        p = as_dict(record)
        if waiting and not matches_waiting(p, waiting):
            continue
        out.append(p)
    return out


def waiting_for(p: dict) -> str | None:
    """The stage a proposal waits for, or None when it is effective or returned."""
    return procedures.next_stage(p.get("stage"), p.get("proposal_kind"))


def state_label(p: dict) -> str:
    kind = p.get("proposal_kind")
    if p.get("stage") == procedures.RETURNED:
        returned = next((s for s in STAGES if p.get(f"{s}_outcome") == "return"), None)
        return f"已在“{procedures.stage_label(returned, kind)}”退回" if returned else "已退回"
    stage = waiting_for(p)
    if stage:
        return f"等待{procedures.stage_label(stage, kind)}"
    return f"已{procedures.stage_label('county', kind)}" if kind in procedures.MONITORING_KINDS else "已公告生效"


def matches_waiting(p: dict, waiting: str) -> bool:
    if waiting == "pending":
        return procedures.is_pending(p)
    if waiting == "returned":
        return p.get("stage") == procedures.RETURNED
    if waiting == "effective":
        return p.get("stage") == procedures.final_stage(p.get("proposal_kind"))
    return waiting_for(p) == waiting


def stage_key(text: str) -> str:
    """A stage from its key or its Chinese label (CLI and window accept both)."""
    text = (text or "").strip()
    if text in STAGES or text in ("returned", "effective", "pending"):
        return text
    for key, label in STAGE_LABELS.items():
        if text in (label, label.replace("村民小组", "")):
            return key
    for labels in procedures.KIND_STAGE_LABELS.values():  # 乡镇审核, 县级确定, 入户核实 …
        for key, label in labels.items():
            if text == label:
                return key
    aliases = {"初核": "township", "审定": "county", "审核": "township", "确定": "county", "公告": "announce", "公示": "notice", "评议": "review",
               "提名": "nominate", "已退回": "returned", "退回": "returned", "已生效": "effective", "生效": "effective",
               "未办结": "pending"}
    if text in aliases:
        return aliases[text]
    choices = "、".join(f"{k}({v})" for k, v in STAGE_LABELS.items())
    raise ProcedureError(f"未知的环节“{text}”,应为:{choices}")


def kind_key(text: str) -> str:
    text = (text or "").strip()
    if text in KINDS:
        return text
    for key, label in KINDS.items():
        if text == label:
            return key
    raise ProcedureError(f"未知的申报类型“{text}”,应为:{'、'.join(f'{k}({v})' for k, v in KINDS.items())}")


def find_household(store: Store, ref: str) -> dict:
    """A household document by record id or 户编号."""
    household_id = households.find_id(store, ref)
    if household_id is None and ref and len(ref.strip()) >= 8:  # the short number lists print
        household_id = next((r.id for r in store.records("household") if matches_short_id(r.id, ref)), None)
    doc = households.document(store, household_id) if household_id else None
    if doc is None:
        raise ProcedureError(f"找不到贫困户“{ref}”(可用记录 id 或户编号)")
    return doc


household_title = household_label  # how messages name a household (app.core.validation)


# ---------------------------------------------------------------------- exit criteria


def exit_assessment(store: Store, doc: dict, *, year: int | None = None, food_secure: bool | None = None,
                    clothing_secure: bool | None = None, on: dt.date | None = None) -> ExitAssessment:
    """The exit criteria of a household, computed from its stored income for `year` (default: the
    latest year with an income record) and the county's poverty line for that year."""
    year = year if year is not None else procedures.latest_income_year(doc)
    line = store.poverty_line(year) if year is not None else None
    return procedures.assess_exit(doc, year=year, line=line, food_secure=food_secure,
                                  clothing_secure=clothing_secure, on=on or dt.date.today())


def assessment_of(store: Store, p: dict, doc: dict | None = None, on: dt.date | None = None) -> ExitAssessment | None:
    """The live exit assessment of an exit proposal (None for other kinds or a removed household)."""
    if p.get("proposal_kind") != "exit":
        return None
    doc = doc or households.document(store, p["household_id"])
    if doc is None:
        return None
    return exit_assessment(store, doc, year=p.get("income_year"), food_secure=p.get("food_secure"),
                           clothing_secure=p.get("clothing_secure"), on=on)


# ---------------------------------------------------------------------- writing


def _today(date) -> str:
    if date is None:
        return dt.date.today().isoformat()
    if isinstance(date, dt.date):
        return date.isoformat()
    try:
        return dt.date.fromisoformat(str(date).strip()).isoformat()
    except ValueError:
        raise ProcedureError(f"日期“{date}”格式不对,应为 年-月-日 格式,如 2026-01-31") from None


def _past_day(date, what: str, on: dt.date | None = None) -> str:
    """The date of something that has happened (a nomination, a meeting, a decision): not after today."""
    day = _today(date)
    today = (on or dt.date.today()).isoformat()
    if day > today:
        raise ProcedureError(f"{what} {day} 晚于今天({today}):只能登记已经办完的环节,请核对日期")
    return day


def _put(store: Store, kind: str, fields: dict, old: dict, *, record_id=None, village_code=None, parent_id=None,
         reason=None, op=None):
    refusal = procedures.authorize_change(kind, fields, old, store.role, op=op, reason=reason)
    if refusal:
        raise ProcedureError(refusal)
    return store.put(kind, fields, record_id=record_id, village_code=village_code, parent_id=parent_id, reason=reason)


def propose(store: Store, household_id: str, kind: str, *, reasons: str, date=None, by: str | None = None,
            income_year: int | None = None, food_secure: bool | None = None, clothing_secure: bool | None = None,
            justification: str | None = None, on: dt.date | None = None, monitoring_type: str | None = None,
            risk_source: str | None = None, risks: list | None = None, household_authorised: bool | None = None,
            water_secure: bool | None = None) -> dict:
    """Start a proposal (村民小组提名) for a household. Refuses a household already in a pending
    proposal, a kind that does not fit the household's status, an exit without the year's income or
    the year's poverty line, and a failing exit without a written justification."""
    kind = kind_key(kind)
    doc = households.document(store, household_id)
    if doc is None:
        raise ProcedureError(f"找不到贫困户 {household_id}")
    title = household_title(doc)
    if not procedures.role_may(store.role, "nominate"):
        raise ProcedureError(procedures.role_refusal(store.role, "nominate"))
    if not str(reasons or "").strip():
        raise ProcedureError(f"{title}:请写明申报理由")
    for p in proposals(store, household_id=doc["id"]):
        if procedures.is_pending(p):
            raise ProcedureError(f"{title}已有一份未办结的{KINDS.get(p.get('proposal_kind'), '')}申报"
                                 f"({state_label(p)},编号 {short_id(p['id'])}),办结或退回后才能再申报")
    if kind in procedures.MONITORING_KINDS:
        from app.services import monitoring  # the monitoring procedures' own checks (issue #20)
        day = _past_day(date, "申报日期", on)
        fields, new_risks = monitoring.proposal_fields(
            store, doc, kind, day=day, reasons=reasons, by=by, monitoring_type=monitoring_type,
            risk_source=risk_source, risks=risks, household_authorised=household_authorised,
            income_year=income_year, food_secure=food_secure, clothing_secure=clothing_secure,
            water_secure=water_secure, justification=justification, on=on, error=ProcedureError)
        with store.transaction():
            for risk in new_risks:
                _put(store, "risk", risk, {}, village_code=doc["village_code"], parent_id=doc["id"],
                     reason=f"{KINDS[kind]}申报:登记风险", op="create")
            change = _put(store, "proposal", fields, {}, village_code=doc["village_code"], parent_id=doc["id"],
                          reason=f"{KINDS[kind]}申报", op="create")
        return get(store, change.record_id)
    status = doc.get("status")
    if status not in procedures.ALLOWED_FROM[kind]:
        raise ProcedureError(f"{title}目前是“{procedures.STATUS_LABELS.get(status, status)}”,不能申报{KINDS[kind]}")
    day = _past_day(date, "提名日期", on)
    fields = {"proposal_kind": kind, "reasons": reasons.strip(), "stage": "nominate",
              "nominate_date": day, "nominate_by": by or None, "nominate_operator": store.operator,
              "nominate_site": store.site_name, "nominate_outcome": "pass"}
    if kind == "exit":
        year = income_year if income_year is not None else procedures.latest_income_year(doc)
        if year is None:
            raise ProcedureError(f"{title}没有任何年度的收入记录:请先在户档“家庭收入”中录入上年度收入,再申报脱贫退出")
        if procedures.income_of(doc, year) is None:
            have = "、".join(str(i.get("year")) for i in doc.get("incomes", [])) or "无"
            raise ProcedureError(f"{title}没有 {year} 年的收入记录(已有:{have}):请先录入 {year} 年家庭收入,再申报脱贫退出")
        if store.poverty_line(year) is None:
            raise ProcedureError(f"县里尚未设定 {year} 年的贫困线,无法判断 {title}能否退出:请县扶贫办在参考数据中设定后再申报")
        assessment = exit_assessment(store, doc, year=year, food_secure=food_secure, clothing_secure=clothing_secure, on=on)
        if not assessment.passed and not str(justification or "").strip():
            raise ProcedureError(f"{title}未达到退出标准({assessment.summary()})。"
                                 "如确需申报,请写明书面说明(--justification)")
        fields.update(income_year=year, food_secure=food_secure, clothing_secure=clothing_secure,
                      justification=(justification or "").strip() or None,
                      assessed_per_capita=assessment.per_capita, assessed_line=assessment.line,
                      assessed_failures="、".join(c.label for c in assessment.failures) or None)
    elif justification:
        fields["justification"] = justification.strip()
    fields = {k: v for k, v in fields.items() if v is not None}
    change = _put(store, "proposal", fields, {}, village_code=doc["village_code"], parent_id=doc["id"],
                  reason=f"{KINDS[kind]}申报", op="create")
    return get(store, change.record_id)


def _int(value, label: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ProcedureError(f"“{label}”应为整数,而不是“{value}”") from None
    if number < 0:
        raise ProcedureError(f"“{label}”不能为负数")
    return number


def plan_notice(store: Store, proposal_id: str, start, end) -> dict:
    """Set the 公示 period of a proposal that passed village review (before its outcome is known),
    so the notice can be printed."""
    p = get(store, proposal_id)
    if waiting_for(p) != "notice":
        raise ProcedureError(f"申报 {short_id(p['id'])} {state_label(p)},只有通过村级评议、等待公示的申报才能设定公示期")
    if not procedures.role_may(store.role, "notice"):
        raise ProcedureError(procedures.role_refusal(store.role, "notice"))
    start, end = _today(start), _today(end)
    _check_notice_period(start, end, p)
    old = {k: p.get(k) for k in procedures.NOTICE_PLAN_FIELDS}
    with store.transaction():
        _put(store, "proposal", {"notice_start": start, "notice_end": end}, old, record_id=p["id"], reason="设定公示期")
    return get(store, p["id"])


def _check_notice_period(start: str, end: str, p: dict) -> None:
    review = p.get("review_meeting_date")
    if review and start < review:
        raise ProcedureError(f"公示开始日期 {start} 早于村级评议会日期 {review}:公示应在评议之后")
    if end < start:
        raise ProcedureError(f"公示结束日期 {end} 早于开始日期 {start}:请核对日期(结束日期应在开始日期之后)")
    days, least = procedures.notice_days(start, end), procedures.min_notice_days(p.get("proposal_kind"))
    if days < least:
        which = KINDS[p['proposal_kind']] if p.get("proposal_kind") in procedures.MONITORING_KINDS else ""
        raise ProcedureError(f"公示期 {start} 至 {end} 只有 {max(days, 0)} 天,{which}"
                             f"村内公示至少 {least} 天")


def advance(store: Store, proposal_id: str, stage: str, outcome: str, *, reason: str | None = None, date=None,
            by: str | None = None, meeting_date=None, attendance=None, votes_for=None, votes_against=None,
            votes_abstain=None, household_signed: bool | None = None, notice_start=None, notice_end=None,
            on: dt.date | None = None) -> dict:
    """Record one stage of a proposal: who, when and the outcome (pass, or return with a reason).
    The stage must be the one the proposal waits for and the database's role must be allowed to do
    it. On 公告 pass the county writes the household's new status in the same transaction."""
    p = get(store, proposal_id)
    stage = stage_key(stage)
    kind = p.get("proposal_kind")
    if stage not in STAGES:
        raise ProcedureError(f"“{stage}”不是可以办理的环节")
    refusal = procedures.check_stage(p, stage, store.role)
    if refusal:
        raise ProcedureError(f"申报 {short_id(p['id'])}:{refusal}")
    if outcome not in procedures.OUTCOMES:
        raise ProcedureError(f"结果应为 pass(通过)或 return(退回),而不是“{outcome}”")
    reason = (reason or "").strip() or None
    if outcome == "return" and not reason:
        raise ProcedureError(f"在“{STAGE_LABELS[stage]}”退回申报必须写明原因")
    day = _past_day(date, "办理日期", on)
    doc = households.document(store, p["household_id"])
    if doc is None:
        raise ProcedureError(f"申报 {short_id(p['id'])} 的贫困户已不在库中")
    title = household_title(doc)
    rivals = [q for q in concurrent_pending(store, p["household_id"]) if q["id"] != p["id"]]
    if rivals and outcome == "pass":
        named = "、".join(f"{KINDS.get(q.get('proposal_kind'), '')}申报 {short_id(q['id'])}({state_label(q)})" for q in rivals)
        raise ProcedureError(f"{title}同时还有未办结的{named}:两台电脑离线时分别提出了申报。"
                             "一户同时只能办理一份,请先在相应环节退回其中一份(写明原因),再办理这一份")
    stages = procedures.stages_of(kind)
    previous = stages[stages.index(stage) - 1]
    if p.get(f"{previous}_date") and day < p[f"{previous}_date"]:
        raise ProcedureError(f"办理日期 {day} 早于上一环节“{procedures.stage_label(previous, kind)}”的日期 {p[f'{previous}_date']}")
    fields = {f"{stage}_date": day, f"{stage}_by": by or None, f"{stage}_operator": store.operator,
              f"{stage}_site": store.site_name, f"{stage}_outcome": outcome, f"{stage}_reason": reason,
              "stage": stage if outcome == "pass" else procedures.RETURNED}
    if stage == "review":
        meeting = _past_day(meeting_date, "评议会日期", on) if meeting_date else None
        numbers = {"attendance": _int(attendance, "参会人数"), "votes_for": _int(votes_for, "赞成票"),
                   "votes_against": _int(votes_against, "反对票"), "votes_abstain": _int(votes_abstain, "弃权票")}
        if outcome == "pass":
            if not meeting or numbers["attendance"] is None or numbers["votes_for"] is None:
                raise ProcedureError("村级评议通过需要评议会日期、参会人数和赞成票数(--meeting-date --attendance --votes-for)")
            if numbers["attendance"] == 0:
                raise ProcedureError("参会人数不能为 0")
            votes = sum(v or 0 for k, v in numbers.items() if k != "attendance")
            if votes > numbers["attendance"]:
                raise ProcedureError(f"票数合计 {votes} 超过参会人数 {numbers['attendance']}")
            if numbers["votes_for"] * 2 <= numbers["attendance"]:
                raise ProcedureError(f"赞成票 {numbers['votes_for']} 未超过参会人数 {numbers['attendance']} 的半数,"
                                     "评议不能记为通过;请记为退回并写明原因")
            if meeting > day:
                raise ProcedureError(f"评议会日期 {meeting} 晚于办理日期 {day}")
            if p.get("nominate_date") and meeting < p["nominate_date"]:
                raise ProcedureError(f"评议会日期 {meeting} 早于提名日期 {p['nominate_date']}")
            if p.get("proposal_kind") in ("exit", "eliminate") and household_signed is not True:
                raise ProcedureError(f"{title}:{KINDS[kind]}须经农户签字同意(--household-signed)后才能通过评议")
        fields.update({f"review_{k}": v for k, v in numbers.items()}, review_meeting_date=meeting,
                      review_household_signed=household_signed)
    if stage == "notice":
        start = _today(notice_start) if notice_start else p.get("notice_start")
        end = _today(notice_end) if notice_end else p.get("notice_end")
        if outcome == "pass":
            if not start or not end:
                raise ProcedureError("村内公示通过需要公示开始和结束日期(--notice-start --notice-end)")
            _check_notice_period(start, end, p)
            if day < end:
                raise ProcedureError(f"公示期到 {end} 才结束,公示期满后再记录公示结果(办理日期 {day})")
        fields.update(notice_start=start, notice_end=end)
    if outcome == "pass" and p.get("proposal_kind") == "exit" and stage in ("township", "county", "announce"):
        assessment = assessment_of(store, p, doc, on=on)
        if assessment is not None and not assessment.passed and not p.get("justification"):
            raise ProcedureError(f"{title}目前未达到退出标准({assessment.summary()}),申报中也没有书面说明,不能通过")
    if outcome == "pass" and kind == "eliminate" and stage in ("township", "county"):
        from app.services import monitoring
        assessment = monitoring.assessment_of(store, p, doc, on=on or dt.date.fromisoformat(day))
        if assessment is not None and not assessment.passed and not p.get("justification"):
            raise ProcedureError(f"{title}目前未达到风险消除标准({assessment.summary()}),申报中也没有书面说明,不能通过")
    fields = {k: v for k, v in fields.items() if v is not None}
    old = {k: v for k, v in p.items() if k not in ("id", "household_id", "village_code")}
    with store.transaction():
        _put(store, "proposal", fields, old, record_id=p["id"],
             reason=f"{procedures.stage_label(stage, kind)}{procedures.OUTCOMES[outcome]}")
        if kind in procedures.MONITORING_KINDS and stage == procedures.final_stage(kind) and outcome == "pass":
            from app.services import monitoring
            for record_kind, record_id, written, before in monitoring.effect(p, doc, day):
                _put(store, record_kind, written, before, record_id=record_id, op="update",
                     reason=f"{procedures.STATUS_REASON_PREFIX}{KINDS[kind]}申报 {p['id']} 于 {day} {procedures.stage_label(stage, kind)}")
        elif stage == "announce" and outcome == "pass":
            _take_effect(store, p, doc, day)
    return get(store, p["id"])


def concurrent_pending(store: Store, household_id: str) -> list[dict]:
    """The household's pending proposals when there is more than one (laptops that were offline
    each started one; `propose` refuses a second on one database), else []."""
    return procedures.concurrent_pending(proposals(store, household_id=household_id))


def _take_effect(store: Store, p: dict, doc: dict, day: str) -> None:
    """The county's 公告: the household's new status (and exit year / return reason)."""
    kind = p["proposal_kind"]
    status = procedures.EFFECT[kind]
    if status is None:
        return
    fields = {"status": status}
    if kind == "exit":
        fields["exit_year"] = int(day[:4])
    if kind == "return":
        fields["return_reason"] = p.get("reasons")
    fields = {k: v for k, v in fields.items() if doc.get(k) != v}
    if not fields:
        return
    reason = f"{procedures.STATUS_REASON_PREFIX}{KINDS[kind]}申报 {p['id']} 于 {day} 公告"
    old = {k: doc.get(k) for k in fields}
    _put(store, "household", fields, old, record_id=doc["id"], reason=reason, op="update")


# ---------------------------------------------------------------------- status history


@dataclass
class StatusEntry:
    when: str  # hlc
    operator: str
    old: str | None
    new: str | None
    reason: str | None
    proposal_id: str | None

    def as_dict(self) -> dict:
        return {"when": self.when, "operator": self.operator, "old": self.old, "new": self.new,
                "old_label": procedures.STATUS_LABELS.get(self.old, self.old or ""),
                "new_label": procedures.STATUS_LABELS.get(self.new, self.new or ""),
                "reason": self.reason, "proposal_id": self.proposal_id}


def status_history(store: Store, household_id: str) -> list[StatusEntry]:
    """Every change of the household's status, oldest first (from the change log)."""
    out = []
    for change in store.history(household_id):
        if "status" not in change.new:
            continue
        proposal_id = None
        reason = change.reason or ""
        if reason.startswith(procedures.STATUS_REASON_PREFIX):
            for word in reason.split():
                if len(word) >= 32:
                    proposal_id = word
        out.append(StatusEntry(change.hlc, change.operator, change.old.get("status"), change.new.get("status"),
                               change.reason, proposal_id))
    return out


# ---------------------------------------------------------------------- notices (for printing)


NOTICE_WAITING = {  # notice level -> the stage its households wait for
    "village": "notice",      # 村内公示: passed village review
    "township": "county",     # 乡级公示 (the second 公示): passed 乡级初核, waiting for 县级审定
    "county": "announce",     # 县级公告: passed 县级审定, waiting for 公告
}


def households_for_notice(store: Store, place_code: str, kind: str, level: str = "village") -> list[tuple[dict, dict]]:
    """(household document, proposal dict) pairs for a notice: kind "entry" (新识别 and 返贫纳入) or
    "exit" (脱贫退出). `level` "village": the households of a village whose proposal passed village
    review and waits at 村内公示; "township": those of a township (9-digit code) that passed 乡级初核
    (the township's own 公示); "county": those of a county (6-digit code) that passed 县级审定, for
    its 公告."""
    kinds = {"entry": ("entry", "return"), "exit": ("exit",), "monitor": ("monitor",), "eliminate": ("eliminate",)}.get(kind)
    if kinds is None:
        raise ProcedureError(f"公示类型应为 entry(识别纳入)、exit(脱贫退出)、monitor(监测识别)或 eliminate(风险消除),"
                             f"而不是“{kind}”")
    if kind in procedures.MONITORING_KINDS and level != "village":
        raise ProcedureError("监测识别和风险消除只在村内公示一次,没有乡级公示和县级公告")
    if level not in NOTICE_WAITING:
        raise ProcedureError(f"公示级别应为 village、township 或 county,而不是“{level}”")
    waiting = NOTICE_WAITING[level]
    out = []
    found = (proposals(store, village_code=place_code, waiting=waiting) if level == "village" else
             [p for p in proposals(store, waiting=waiting) if str(p.get("village_code") or "").startswith(place_code)])
    for p in found:
        if p.get("proposal_kind") not in kinds:
            continue
        doc = households.document(store, p["household_id"])
        if doc is not None:
            out.append((doc, p))
    out.sort(key=lambda pair: (str(pair[0].get("village_code", "")), str(pair[0].get("household_number", ""))))
    return out
