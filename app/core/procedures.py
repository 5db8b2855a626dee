"""The register's procedures (有进有出): proposal stages, who may perform them, what an effective
proposal does to a household's status, and the exit criteria (收入 + 两不愁三保障).

Pure Python, no store: the rules here are used by the local services (app.services.proposals) and by
sync, which calls `authorize_change` for every incoming change.

A proposal (申报) is a record of kind "proposal" whose parent is the household. Its fields are flat so
that they merge per field like every other record:

- proposal-level fields written at nomination: ``proposal_kind``, ``reasons``, ``income_year``,
  ``food_secure``, ``clothing_secure``, ``justification`` and the assessment snapshot ``assessed_*``;
- for each stage S, fields named ``S_<attr>``: ``S_date``, ``S_operator``, ``S_site``, ``S_by``,
  ``S_outcome`` (pass | return), ``S_reason`` and stage-specific ones (``review_meeting_date``,
  ``review_attendance``, ``review_votes_*``, ``notice_start``, ``notice_end`` ...);
- ``stage``: the last stage done ("nominate" … "announce"), or "returned" when a stage returned it.

Household status changes only when the county records 公告 (stage "announce") with outcome pass; the
county then writes the status in the same transaction with a reason starting with
`STATUS_REASON_PREFIX` that names the proposal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from app.core import idnumber
from app.core.income import per_capita

STAGES = ("nominate", "review", "notice", "township", "county", "announce")
STAGE_LABELS = {
    "nominate": "村民小组提名",
    "review": "村级评议",
    "notice": "村内公示",
    "township": "乡级初核",
    "county": "县级审定",
    "announce": "公告生效",
}
RETURNED = "returned"
# Which database roles may perform a stage. A township has the village role for its villages.
STAGE_ROLES = {
    "nominate": ("village", "township"),
    "review": ("village", "township"),
    "notice": ("village", "township"),
    "township": ("township",),
    "county": ("county",),
    "announce": ("county",),
}
ROLE_LABELS = {"village": "村级", "township": "乡级", "county": "县级"}
OUTCOMES = {"pass": "通过", "return": "退回"}

KINDS = {
    "entry": "新识别",
    "return": "返贫纳入",
    "exit": "脱贫退出",
    "natural": "自然减少",
    "members": "成员增减",
    "monitor": "监测识别",
    "eliminate": "风险消除",
}
# The household status an effective proposal sets (None: no status change).
EFFECT = {"entry": "1", "return": "4", "exit": "2", "natural": "6", "members": None,
          "monitor": None, "eliminate": None}
# The statuses a household may have when a proposal of this kind is made (None: no status yet).
ALLOWED_FROM = {
    "entry": {None, "1", "6", "7"},
    "return": {"2", "3", "5"},
    "exit": {"1", "4", "5"},
    "natural": {"1", "2", "3", "4", "5"},
    "members": {"1", "2", "3", "4", "5"},
    "monitor": None,    # 监测识别 and 风险消除 look at the household type instead (MONITOR_ALLOWED_FROM)
    "eliminate": None,
}

# ---- 防返贫动态监测 (issue #20) ----
# The two monitoring procedures end at the county's decision (县级确定 / 县级审定): no 公告 stage.
MONITORING_KINDS = ("monitor", "eliminate")
KIND_STAGES = {"monitor": STAGES[:5], "eliminate": STAGES[:5]}
KIND_STAGE_LABELS = {
    "monitor": {"nominate": "申报排查", "notice": "村内公示", "township": "乡镇审核", "county": "县级确定"},
    "eliminate": {"nominate": "入户核实", "notice": "村内公示", "township": "乡镇审核", "county": "县级审定"},
}
HOUSEHOLD_TYPE_LABELS = {"1": "脱贫户", "2": "监测户", "3": "一般农户"}
MONITORED = "2"      # household_type 监测户
EXITED_TYPE = "1"    # household_type 脱贫户
ORDINARY = "3"       # household_type 一般农户
RISK_OPEN, RISK_ELIMINATED = "1", "2"
# Household fields only the county writes, when a monitoring procedure is decided.
MONITORING_FIELDS = ("household_type", "monitoring_type", "risk_eliminated", "risk_identified_date",
                     "risk_eliminated_date")
# Types a household may have when a monitoring proposal is made (None: no type recorded yet).
MONITOR_ALLOWED_FROM = {"monitor": {None, "1", "3"}, "eliminate": {"2"}}
MIGRATION_REASON = "数据迁移:户类型"  # app.services.monitoring.migrate
STATUS_LABELS = {"1": "未脱贫", "2": "已脱贫(享受政策)", "3": "已脱贫(不再享受政策)", "4": "返贫",
                 "5": "标注脱贫", "6": "自然减少", "7": "销号"}
STATUS_REASON_PREFIX = "程序生效:"
MIN_NOTICE_DAYS = 7  # 村内公示 of 识别 (entry) and 退出 (exit): at least 7 days (REFERENCE.md, "Leaving")
# 监测识别 is posted once, in the village, for at least 5 days (REFERENCE.md, "After 2020" › Identification:
# "民主评议 and 公示 in the village (once, in the village only, at least 5 days"). For 风险消除 no national
# minimum is given there; the county practice seen (平江县, 监测对象风险消除: "在村内群众集中地公示7天") is 7
# days, so it keeps the longer period. A longer notice is always allowed.
NOTICE_MIN_DAYS_BY_KIND = {"monitor": 5}


def min_notice_days(kind: str | None) -> int:
    """The shortest 村内公示 a proposal kind allows (entry, exit, eliminate: 7 days; monitor: 5)."""
    return NOTICE_MIN_DAYS_BY_KIND.get(kind or "", MIN_NOTICE_DAYS)

COMPULSORY_SCHOOL_AGES = (6, 15)  # 义务教育适龄: 6 to 15 years old (inclusive)
NOT_AT_SCHOOL = "00"
PRESCHOOL = "01"

# Fields written at nomination that are not stage-prefixed.
PROPOSAL_FIELDS = ("proposal_kind", "reasons", "income_year", "food_secure", "clothing_secure", "justification",
                   "assessed_per_capita", "assessed_line", "assessed_failures")
NOTICE_PLAN_FIELDS = ("notice_start", "notice_end")


def stages_of(kind: str | None) -> tuple[str, ...]:
    """The stages of a proposal kind, in order (the monitoring procedures end at the county)."""
    return KIND_STAGES.get(kind, STAGES)


def final_stage(kind: str | None) -> str:
    """The stage whose pass makes a proposal of this kind take effect."""
    return stages_of(kind)[-1]


def stage_label(stage: str | None, kind: str | None = None) -> str:
    if stage == RETURNED:
        return "已退回"
    if stage is None:
        return "办结"
    return KIND_STAGE_LABELS.get(kind, {}).get(stage) or STAGE_LABELS.get(stage, str(stage))


def next_stage(stage: str | None, kind: str | None = None) -> str | None:
    """The stage a proposal whose last done stage is `stage` waits for (None: finished or returned)."""
    stages = stages_of(kind)
    if stage is None:
        return stages[0]
    if stage == RETURNED or stage not in stages:
        return None
    i = stages.index(stage)
    return stages[i + 1] if i + 1 < len(stages) else None


def is_pending(fields: dict) -> bool:
    """True while a proposal is neither effective nor returned."""
    return next_stage(fields.get("stage"), fields.get("proposal_kind")) is not None


def concurrent_pending(proposals: list[dict]) -> list[dict]:
    """Of one household's proposals, the pending ones when there is more than one (laptops that were
    offline each started one; one database refuses a second), else []."""
    pending = [p for p in proposals if is_pending(p)]
    return pending if len(pending) > 1 else []


def stage_of_field(key: str) -> str:
    """The stage a proposal field belongs to (proposal-level fields belong to the nomination)."""
    prefix = key.split("_", 1)[0]
    return prefix if prefix in STAGES else "nominate"


ROLE_PLACES = {"village": "驻村工作队", "township": "乡镇扶贫站", "county": "县扶贫办"}


def role_may(role: str, stage: str) -> bool:
    return role in STAGE_ROLES.get(stage, ())


def role_refusal(role: str, stage: str, *, incoming: bool = False, kind: str | None = None) -> str:
    """Why `role` may not do `stage`: for this database, or (incoming) for a change from another site."""
    allowed = "或".join(ROLE_LABELS[r] for r in STAGE_ROLES[stage])
    who = f"这项更改来自{ROLE_LABELS.get(role, role)}站点" if incoming else f"本数据库是{ROLE_LABELS.get(role, role)}"
    text = f"“{stage_label(stage, kind)}”只能由{allowed}数据库办理,{who}"
    if not incoming:  # what to do: the stage is done where it belongs, and its result arrives with the sync
        places = "或".join(ROLE_PLACES.get(r, ROLE_LABELS[r]) for r in STAGE_ROLES[stage])
        text += f"。请在{places}的电脑上办理这一环节,结果会随同步带到本库"
    return text


def notice_days(start: str, end: str) -> int:
    """Length of a 公示 period in days, counting both the first and the last day."""
    return (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days + 1


# ---------------------------------------------------------------------- authorisation


def authorize_change(kind: str, new_fields: dict, old_fields: dict, role: str, *,
                     op: str | None = None, reason: str | None = None) -> str | None:
    """None if a site of `role` ("village" | "township" | "county") may make this change, else the
    reason for refusing (Chinese).

    `new_fields` are the fields the change writes; `old_fields` either the record's current fields or
    the change's old values of the fields it writes ({} for a new record). `op` is the change's op
    when known ("create" otherwise means `old_fields` is empty). `reason` is the change's reason when
    the caller has it: a county status change must then name the proposal that made it."""
    if not new_fields:
        return None
    creating = op == "create" if op else not old_fields
    if kind == "household":
        return _authorize_household(new_fields, old_fields, role, creating, reason)
    if kind == "proposal":
        return _authorize_proposal(new_fields, old_fields, role, creating)
    if kind == "risk":
        return _authorize_risk(new_fields, old_fields, role, creating, reason)
    return None


# What `authorize_change` looks at: the kinds it judges, and of a household the fields it judges.
JUDGED_KINDS = frozenset(("household", "proposal", "risk"))
JUDGED_HOUSEHOLD_FIELDS = frozenset(("status",) + MONITORING_FIELDS)


def always_authorized(kind: str, new_fields: dict) -> bool:
    """True when `authorize_change(kind, new_fields, ...)` returns None whatever the old fields, role,
    op and reason: a kind it does not judge, or a household change writing none of the fields it
    judges (status, 户类型 and the monitoring fields). False means: ask `authorize_change`. The
    county's merge skips the call for such changes (app/sync/county_merge.py); tests/test_proposals.py
    checks this against `authorize_change` itself."""
    if kind not in JUDGED_KINDS:
        return True
    return kind == "household" and JUDGED_HOUSEHOLD_FIELDS.isdisjoint(new_fields)


def _county_decision(role: str, reason: str | None, what: str) -> str | None:
    if role != "county":
        return (f"{what}只能通过监测识别、风险消除程序改变,由县级确定时写入;"
                f"{ROLE_LABELS.get(role, role)}站点不能直接修改。请在“识别与退出”中发起申报")
    if reason is not None and not str(reason).startswith(STATUS_REASON_PREFIX):
        return f"{what}不能直接修改:请办理监测识别或风险消除程序,县级确定时会自动改变"
    return None


def _authorize_monitoring(new: dict, old: dict, role: str, creating: bool, reason: str | None) -> str | None:
    """户类型 and the monitoring fields: written by the county's decision only (a household created
    with them is judged by `start_refusal`); a household that has no type yet may be given 脱贫户 by
    the data migration when it has left poverty."""
    changed = [k for k in MONITORING_FIELDS if k in new and new[k] != old.get(k)]
    if not changed:
        return None
    if (changed == ["household_type"] and new["household_type"] == EXITED_TYPE and old.get("household_type") is None
            and reason is not None and str(reason).startswith(MIGRATION_REASON)):
        return None
    return _county_decision(role, reason, "户类型和监测信息")


def _authorize_risk(new: dict, old: dict, role: str, creating: bool, reason: str | None) -> str | None:
    """A risk is recorded by the village (open); it is recorded as eliminated by the county's decision."""
    written = {k: new[k] for k in ("state", "eliminated_date") if k in new}
    if creating:
        if written.get("state") in (None, RISK_OPEN) and not written.get("eliminated_date"):
            return None
    elif all(written.get(k) == old.get(k) for k in written):
        return None
    return _county_decision(role, reason, "风险的消除状态")


# The statuses a household may start in when a village or township device creates it: it enters the
# register through 识别 (the county's 审定 and 公告, then 录入) as 未脱贫. Any other status is reached
# only through a procedure (退出, 返贫纳入, 自然减少/销号), which the county writes when it takes effect;
# households already exited or gone come from the county's own ledger (it imports them itself).
DEVICE_START_STATUSES = ("1",)


def start_status_refusal(status, role: str) -> str | None:
    """Why a device of `role` may not create a household in this status (None: it may)."""
    if role == "county" or status in (None, "") or status in DEVICE_START_STATUSES:
        return None
    return (f"新建的贫困户只能以“未脱贫”登记,不能直接登记为状态代码 {status}:已脱贫、返贫、自然减少等状态"
            "只能通过识别、退出等程序由县级公告生效时写入。已脱贫的户由县里从台账导入后随同步包下发")


GENERAL_TYPE = "3"  # household_type 一般农户: what a household typed in on a device starts as


def start_refusal(fields: dict, role: str) -> str | None:
    """Why a device of `role` may not create a household with these fields (None: it may): it starts
    未脱贫 and 一般农户 with no monitoring data; the county imports its historical ledgers as they are."""
    refusal = start_status_refusal(fields.get("status"), role)
    if refusal or role == "county":
        return refusal
    typed = {k: fields.get(k) for k in MONITORING_FIELDS if fields.get(k) not in (None, "")}
    if typed and typed != {"household_type": GENERAL_TYPE}:
        return ("新建的户只能登记为“一般农户”:户类型和监测信息只能通过监测识别程序,由县级确定时写入。"
                "已是脱贫户或监测户的,由县里从台账导入后随同步包下发")
    return None


def _authorize_household(new: dict, old: dict, role: str, creating: bool, reason: str | None) -> str | None:
    if creating:
        return start_refusal(new, role)
    refusal = _authorize_monitoring(new, old, role, creating, reason)
    if refusal:
        return refusal
    if "status" not in new:
        return None
    if new["status"] == old.get("status", object()):
        return None
    if role != "county":
        return ("贫困户的脱贫状态只能通过识别、退出等程序改变,由县级在公告生效时写入;"
                f"{ROLE_LABELS.get(role, role)}站点不能直接修改。请在“识别与退出”中发起申报")
    if reason is not None and not str(reason).startswith(STATUS_REASON_PREFIX):
        return "脱贫状态不能直接修改:请办理识别或退出程序,公告生效时状态会自动改变"
    return None


def _authorize_proposal(new: dict, old: dict, role: str, creating: bool) -> str | None:
    stages = {stage_of_field(k) for k in new if k != "stage"}
    for stage in stages:
        if not role_may(role, stage):
            return role_refusal(role, stage, incoming=True)
    if "stage" not in new:
        if creating:
            return "新的申报必须从“村民小组提名”开始"
        if set(new) <= set(NOTICE_PLAN_FIELDS):
            return None  # the notice period is planned before its outcome is recorded
        return "已记录的程序环节不能修改;如有错误,请在下一环节退回并重新申报"
    target = new["stage"]
    before = None if creating else old.get("stage")
    pkind = new.get("proposal_kind") if creating else old.get("proposal_kind")
    if target == RETURNED:
        returning = [s for s in STAGES if new.get(f"{s}_outcome") == "return"]
        if len(returning) != 1:
            return "退回申报时必须写明在哪个环节退回"
        stage = returning[0]
    elif target in STAGES:
        stage = target
    else:
        return f"未知的程序环节“{target}”"
    if not role_may(role, stage):
        return role_refusal(role, stage, incoming=True, kind=pkind)
    if target == RETURNED and not str(new.get(f"{stage}_reason") or "").strip():
        return f"在“{STAGE_LABELS[stage]}”退回申报必须写明原因"
    if target != RETURNED and new.get(f"{stage}_outcome") != "pass":
        return f"办理“{STAGE_LABELS[stage]}”必须记录结果(通过或退回)"
    if stages - {stage}:
        other = sorted(stages - {stage})
        return f"一次只能办理一个环节,这次修改还写了“{'、'.join(stage_label(s) for s in other)}”"
    expected = next_stage(before, pkind)
    if creating and stage != "nominate":
        return "新的申报必须从“村民小组提名”开始"
    if creating and new.get("proposal_kind") not in KINDS:
        # without its kind a proposal could never take effect (the status it sets is unknown)
        return (f"新的申报没有写明类型(proposal_kind 为“{new.get('proposal_kind') or ''}”),"
                f"应为:{'、'.join(f'{k}({v})' for k, v in KINDS.items())}")
    if stage != expected:
        if expected is None:
            return f"申报已{stage_label(before) if before == RETURNED else '办结'},不能再办理“{STAGE_LABELS[stage]}”"
        return f"申报正等待“{STAGE_LABELS[expected]}”,不能越过它办理“{STAGE_LABELS[stage]}”"
    if stage == "nominate" and target == RETURNED:
        return "提名环节不能退回"
    return None


def check_stage(fields: dict, stage: str, role: str) -> str | None:
    """Whether a proposal (its current fields) may have `stage` done now by `role` (order, role)."""
    kind = fields.get("proposal_kind")
    stages = stages_of(kind)
    if stage not in stages:
        return f"未知的程序环节“{stage}”,应为:{'、'.join(f'{s}({stage_label(s, kind)})' for s in stages)}"
    expected = next_stage(fields.get("stage"), kind)
    if expected is None:
        state = "已退回" if fields.get("stage") == RETURNED else ("已办结" if kind in MONITORING_KINDS else "已公告生效")
        return f"这份申报{state},不能再办理“{stage_label(stage, kind)}”"
    if stage != expected:
        return (f"申报正等待“{stage_label(expected, kind)}”,不能办理“{stage_label(stage, kind)}”"
                "(环节顺序不对)")
    if not role_may(role, stage):
        return role_refusal(role, stage, kind=kind)
    return None


# ---------------------------------------------------------------------- exit criteria


@dataclass
class Criterion:
    key: str
    label: str
    ok: bool
    detail: str


@dataclass
class ExitAssessment:
    year: int | None
    per_capita: float | None
    line: float | None
    criteria: list[Criterion] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.criteria)

    @property
    def failures(self) -> list[Criterion]:
        return [c for c in self.criteria if not c.ok]

    def summary(self) -> str:
        if self.passed:
            return "达到退出标准"
        return ";".join(f"{c.label}:{c.detail}" for c in self.failures)

    def as_dict(self) -> dict:
        return {"year": self.year, "per_capita": self.per_capita, "line": self.line, "passed": self.passed,
                "criteria": [c.__dict__ for c in self.criteria]}


def age_on(member: dict, on: dt.date) -> int | None:
    """A member's age in whole years on a date, from the birth date or else the ID number."""
    birth = None
    if member.get("birth_date"):
        try:
            birth = dt.date.fromisoformat(str(member["birth_date"]))
        except ValueError:
            birth = None
    if birth is None and member.get("id_number"):
        try:
            birth = idnumber.parse(member["id_number"]).birth_date
        except idnumber.IdNumberError:
            birth = None
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def income_of(doc: dict, year: int) -> dict | None:
    for income in doc.get("incomes", []):
        if income.get("year") == year:
            return income
    return None


def latest_income_year(doc: dict) -> int | None:
    years = [i["year"] for i in doc.get("incomes", []) if isinstance(i.get("year"), int)]
    return max(years) if years else None


def _name(member: dict) -> str:
    return str(member.get("name") or "?")


def _yuan(amount) -> str:
    """An amount of yuan as printed documents show it: thousands separators, decimals only when there are any."""
    return f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"


def assess_exit(doc: dict, *, year: int | None, line: float | None, food_secure: bool | None,
                clothing_secure: bool | None, on: dt.date) -> ExitAssessment:
    """The exit criteria of a household document: the year's per-capita net income against the line,
    and 两不愁三保障 (food and clothing from the proposal's checklist; schooling, medical insurance and
    housing from the stored file)."""
    result = ExitAssessment(year, None, line)
    income = income_of(doc, year) if year is not None else None
    if income is None:
        detail = f"没有 {year} 年的收入记录" if year is not None else "没有任何年度的收入记录"
        result.criteria.append(Criterion("income", "年人均纯收入", False, detail + ",请先录入家庭收入"))
    else:
        pc = per_capita(income, doc.get("family_size"))
        result.per_capita = pc
        if pc is None:
            result.criteria.append(Criterion("income", "年人均纯收入", False, "家庭人口数未填写,无法计算人均"))
        elif line is None:
            result.criteria.append(Criterion("income", "年人均纯收入", False,
                                             f"人均 {pc:,.2f} 元;县里尚未设定 {year} 年的贫困线"))
        else:
            ok = pc > line
            result.criteria.append(Criterion("income", "年人均纯收入", ok,
                                             f"{year} 年人均 {pc:,.2f} 元,{'高于' if ok else '未超过'}贫困线 {_yuan(line)} 元"))
    for key, label, answer in (("food", "不愁吃", food_secure), ("clothing", "不愁穿", clothing_secure)):
        if answer is None:
            result.criteria.append(Criterion(key, label, False, "申报中未回答"))
        else:
            result.criteria.append(Criterion(key, label, bool(answer), "是" if answer else "否"))
    members = doc.get("members", [])
    low, high = COMPULSORY_SCHOOL_AGES
    problems = []
    for m in members:
        age = age_on(m, on)
        if age is None:
            problems.append(f"{_name(m)}无出生日期,无法判断")
            continue
        if not low <= age <= high:
            continue
        status = m.get("school_status")
        if status in (None, "", NOT_AT_SCHOOL) or (status == PRESCHOOL and age >= 7):
            problems.append(f"{_name(m)}({age}岁)未在校")
    result.criteria.append(Criterion("schooling", "义务教育有保障", not problems,
                                     ";".join(problems) if problems else "适龄成员均在校"))
    uninsured = [_name(m) for m in members if m.get("basic_medical") is not True]
    result.criteria.append(Criterion("medical", "基本医疗有保障", not uninsured and bool(members),
                                     ("未参加基本医疗保险:" + "、".join(uninsured)) if uninsured
                                     else ("全部成员已参保" if members else "没有家庭成员")))
    level = doc.get("dilapidated")
    if level in ("C", "D"):
        result.criteria.append(Criterion("housing", "住房安全有保障", False, f"住房为{level}级危房"))
    elif level is None:
        result.criteria.append(Criterion("housing", "住房安全有保障", False, "未填写“是否危房”"))
    else:
        result.criteria.append(Criterion("housing", "住房安全有保障", True, "非危房"))
    return result


# ---------------------------------------------------------------------- 风险消除 criteria (issue #20)


def months_between(start: str | None, on: dt.date) -> int | None:
    """Whole months from an ISO date to `on` (None without a start date)."""
    if not start:
        return None
    try:
        begin = dt.date.fromisoformat(str(start))
    except ValueError:
        return None
    return (on.year - begin.year) * 12 + on.month - begin.month - (on.day < begin.day)


def assess_elimination(doc: dict, *, year: int | None, criteria: dict | None, food_secure: bool | None,
                       clothing_secure: bool | None, water_secure: bool | None, on: dt.date) -> ExitAssessment:
    """The 风险消除 criteria: the exit check's computation (income, 两不愁三保障) with the county's
    monitoring income line instead of the poverty line, plus safe drinking water and the minimum time
    under monitoring the county set for the year (`criteria`: Store.monitoring_criteria)."""
    line = criteria["line"] if criteria else None
    result = assess_exit(doc, year=year, line=line, food_secure=food_secure, clothing_secure=clothing_secure, on=on)
    income = result.criteria[0]
    if income.key == "income":
        income.label = "年人均纯收入高于监测收入标准"
        if line is None and result.per_capita is not None:
            income.detail = f"人均 {result.per_capita:,.2f} 元;县里尚未设定 {year} 年的监测收入标准"
        elif line is not None and result.per_capita is not None:
            income.detail = income.detail.replace("贫困线", "监测收入标准")
    water = water_secure if water_secure is not None else (
        None if doc.get("water_safe") is None else bool(doc.get("water_safe")))
    if water is None:
        result.criteria.append(Criterion("water", "饮水安全有保障", False, "申报中未回答,户档也未填写“饮水是否安全”"))
    else:
        result.criteria.append(Criterion("water", "饮水安全有保障", water, "是" if water else "否"))
    months = months_between(doc.get("risk_identified_date"), on)
    need = criteria["min_months"] if criteria else None
    if months is None:
        result.criteria.append(Criterion("monitored", "监测时间", False, "没有风险识别时间"))
    elif need is None:
        result.criteria.append(Criterion("monitored", "监测时间", False, f"已监测 {months} 个月;县里尚未设定最短监测时间"))
    else:
        result.criteria.append(Criterion("monitored", "监测时间", months >= need,
                                         f"已监测 {months} 个月,{'达到' if months >= need else '不足'}县定的 {need} 个月"))
    return result


def default_place_and_contact(level: str, place_name: str = "乡(镇)") -> tuple[str, str]:
    """Where a notice is posted and who takes objections, when the user gives neither: the one
    table the CLI, the print dialog and app.services.printing use. A county 公告 has neither."""
    if level == "village":
        return "村委会公示栏", "村民委员会"
    if level == "township":
        return f"{place_name}人民政府公示栏", f"{place_name}扶贫工作站"
    return "", ""
