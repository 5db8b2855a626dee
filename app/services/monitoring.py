"""防返贫动态监测 (issue #20): the monitoring procedures' own checks and effects, the 风险消除
criteria, the data migration of households entered before household types existed, and the
monitoring work lists.

The procedures run on the proposal machinery of app.services.proposals (stages, roles, sync
authorisation); this module only supplies what differs:

- 监测识别 (kind "monitor"): 申报排查 (农户自主申报 / 干部走访排查 / 部门筛查预警, with the household's
  signed authorisation) → 村级评议 → 村内公示 → 乡镇审核 → 县级确定. The county's decision makes the
  household a 监测户 of the proposed 监测对象类型, with 风险识别时间 the decision's date.
- 风险消除 (kind "eliminate"): 入户核实 → 村级评议 → 村内公示 → 乡镇审核 → 县级审定, against the county's
  monitoring criteria for the income year (`Store.monitoring_criteria`). The county's decision marks
  the household's risk eliminated (风险是否消除 是, 风险消除时间) and every open risk 已消除. The household
  stays 监测户: its record stays and is kept up to date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from app.core import procedures, values
from app.core.dictionary import default
from app.core.procedures import ExitAssessment
from app.services import households
from app.store import Store

EXITED_STATUSES = ("2", "3", "5")  # 已脱贫(享受政策), 已脱贫(不再享受政策), 标注脱贫
DATA_VERSION_KEY = "monitoring_migrated"


def type_label(code) -> str:
    return procedures.HOUSEHOLD_TYPE_LABELS.get(code, "未分类") if code else "未分类"


def code_of(list_name: str, text, what: str, error=ValueError) -> str | None:
    """A code from its code or label (risk types, sources, monitoring types); None for empty."""
    if text in (None, ""):
        return None
    codes = default().codes[list_name]
    text = str(text).strip()
    if text in codes:
        return text
    for code, label in codes.items():
        if text == label:
            return code
    raise error(f"未知的{what}“{text}”,应为:{'、'.join(codes.values())}")


def type_label_of(risk_code: str) -> str:
    return default().code_label("risk_type", risk_code)


def found_date(text, day: str, what: str, error=ValueError) -> str:
    """A risk's 发现日期 (any date spelling the forms accept), `day` (the proposal's date) when not
    given; refused when it is no date or later than the proposal: a risk is found before it is reported."""
    if text in (None, ""):
        return day
    d = default()
    value, problem = values.coerce(d.kinds["risk"].fields["found_date"], text, d)
    if problem:
        raise error(f"{what}的发现日期“{text}”不是有效日期:请写成 2025-03-01 这样的年-月-日")
    if value > day:
        raise error(f"{what}的发现日期 {value} 晚于申报日期 {day}:风险应在申报前发现,请核对日期")
    return value


def open_risks(doc: dict) -> list[dict]:
    return [r for r in doc.get("risks", []) if r.get("state", procedures.RISK_OPEN) == procedures.RISK_OPEN]


def open_risk_types(doc: dict) -> str:
    """The types of the household's open risks in words, each once: 因病、因学 ("" when none)."""
    return "、".join(dict.fromkeys(type_label_of(r["risk_type"]) for r in open_risks(doc) if r.get("risk_type")))


def risks_remark(doc: dict) -> str:
    """What a 监测识别 is about, in a list's remark column (the window's 标准与风险, `jiandang proposals`'
    备注): 风险:因病、因学, or 未登记风险 when the household has no open risk."""
    risks = open_risk_types(doc)
    return f"风险:{risks}" if risks else "未登记风险"


# ---------------------------------------------------------------------- proposals


def proposal_fields(store: Store, doc: dict, kind: str, *, day: str, reasons: str, by, monitoring_type, risk_source,
                    risks, household_authorised, income_year, food_secure, clothing_secure, water_secure,
                    justification, on, error) -> tuple[dict, list[dict]]:
    """The fields of a new 监测识别 / 风险消除 proposal and the risks to record with it; raises `error`."""
    title = f"户主“{doc.get('head_name', '?')}”(户编号 {doc.get('household_number', '?')})"
    htype = doc.get("household_type")
    if htype not in procedures.MONITOR_ALLOWED_FROM[kind]:
        if kind == "monitor":
            raise error(f"{title}已是监测户,不能再次申报监测识别(新的风险请在户档“返贫致贫风险”中登记)")
        raise error(f"{title}目前是“{type_label(htype)}”,只有监测户才能申报风险消除")
    fields = {"proposal_kind": kind, "reasons": reasons.strip(), "stage": "nominate", "nominate_date": day,
              "nominate_by": by or None, "nominate_operator": store.operator, "nominate_site": store.site_name,
              "nominate_outcome": "pass", "justification": (justification or "").strip() or None}
    new_risks: list[dict] = []
    if kind == "monitor":
        mtype = code_of("monitoring_type", monitoring_type, "监测对象类型", error)
        if mtype is None:
            raise error(f"{title}:请写明监测对象类型(--monitoring-type 脱贫不稳定户|边缘易致贫户|突发严重困难户)")
        if mtype == "1" and htype != procedures.EXITED_TYPE:
            raise error(f"{title}是“{type_label(htype)}”,不是脱贫户,不能识别为脱贫不稳定户(可为边缘易致贫户或突发严重困难户)")
        if mtype == "2" and htype == procedures.EXITED_TYPE:
            raise error(f"{title}是脱贫户,应识别为脱贫不稳定户或突发严重困难户,而不是边缘易致贫户")
        source = code_of("risk_source", risk_source, "发现方式", error)
        if source is None:
            raise error(f"{title}:请写明发现方式(--source 农户自主申报|干部走访排查|部门筛查预警)")
        if household_authorised is not True:
            raise error(f"{title}:监测识别须有农户签署的授权承诺书(--household-authorised)")
        for risk in risks or []:
            risk_type, found = (list(risk) + [None])[:2] if isinstance(risk, (list, tuple)) else (risk, None)
            risk_code = code_of("risk_type", risk_type, "风险类型", error)
            new_risks.append({"risk_type": risk_code, "source": source, "state": procedures.RISK_OPEN,
                              "found_date": found_date(found, day, f"{title}的风险“{type_label_of(risk_code)}”", error)})
        if not open_risks(doc) and not new_risks:
            raise error(f"{title}没有未消除的风险:请写明风险类型(--risk 因病 等),或先在户档中登记风险")
        fields.update(monitoring_type=mtype, risk_source=source, household_authorised=True)
    else:
        criteria_year = income_year if income_year is not None else procedures.latest_income_year(doc)
        if criteria_year is None:
            raise error(f"{title}没有任何年度的收入记录:请先录入家庭收入,再申报风险消除")
        if procedures.income_of(doc, criteria_year) is None:
            raise error(f"{title}没有 {criteria_year} 年的收入记录:请先录入 {criteria_year} 年家庭收入,再申报风险消除")
        if store.monitoring_criteria(criteria_year) is None:
            raise error(f"县里尚未设定 {criteria_year} 年的监测收入标准,无法判断{title}的风险能否消除:"
                        "请县扶贫办用 jiandang reference monitoring 设定后再申报")
        assessment = assess(store, doc, year=criteria_year, food_secure=food_secure, clothing_secure=clothing_secure,
                            water_secure=water_secure, on=on)
        if not assessment.passed and not fields["justification"]:
            raise error(f"{title}未达到风险消除标准({assessment.summary()})。如确需申报,请写明书面说明(--justification)")
        months = procedures.months_between(doc.get("risk_identified_date"), on or dt.date.today())
        fields.update(income_year=criteria_year, food_secure=food_secure, clothing_secure=clothing_secure,
                      water_secure=water_secure, assessed_per_capita=assessment.per_capita,
                      assessed_line=assessment.line, assessed_months=months,
                      assessed_failures="、".join(c.label for c in assessment.failures) or None)
    return {k: v for k, v in fields.items() if v is not None}, new_risks


def assess(store: Store, doc: dict, *, year: int | None = None, food_secure=None, clothing_secure=None,
           water_secure=None, on: dt.date | None = None) -> ExitAssessment:
    """The 风险消除 criteria of a household against the county's monitoring criteria of `year`
    (default: the latest year with an income record)."""
    year = year if year is not None else procedures.latest_income_year(doc)
    criteria = store.monitoring_criteria(year) if year is not None else None
    return procedures.assess_elimination(doc, year=year, criteria=criteria, food_secure=food_secure,
                                         clothing_secure=clothing_secure, water_secure=water_secure,
                                         on=on or dt.date.today())


def assessment_of(store: Store, p: dict, doc: dict | None = None, on: dt.date | None = None) -> ExitAssessment | None:
    """The live 风险消除 assessment of an eliminate proposal (None for other kinds)."""
    if p.get("proposal_kind") != "eliminate":
        return None
    doc = doc or households.document(store, p["household_id"])
    if doc is None:
        return None
    return assess(store, doc, year=p.get("income_year"), food_secure=p.get("food_secure"),
                  clothing_secure=p.get("clothing_secure"), water_secure=p.get("water_secure"), on=on)


def effect(p: dict, doc: dict, day: str) -> list[tuple[str, str, dict, dict]]:
    """What the county's decision writes: (kind, record id, fields, old fields) per record."""
    out = []
    if p["proposal_kind"] == "monitor":
        fields = {"household_type": procedures.MONITORED, "monitoring_type": p.get("monitoring_type"),
                  "risk_eliminated": False, "risk_identified_date": day, "risk_eliminated_date": None}
    else:
        fields = {"risk_eliminated": True, "risk_eliminated_date": day}
        for risk in open_risks(doc):
            out.append(("risk", risk["id"], {"state": procedures.RISK_ELIMINATED, "eliminated_date": day},
                        {"state": risk.get("state"), "eliminated_date": risk.get("eliminated_date")}))
    fields = {k: v for k, v in fields.items() if doc.get(k) != v}
    if fields:
        out.insert(0, ("household", doc["id"], fields, {k: doc.get(k) for k in fields}))
    return out


# ---------------------------------------------------------------------- data migration


def migrate(store: Store, progress: Callable[[int, int], None] | None = None) -> int:
    """Give households entered before household types existed their 户类型: 脱贫户 when their status
    says they left poverty (已脱贫 or 标注脱贫); the others stay as they are (no type: 未脱贫 and 返贫
    households are still on the poverty register, 自然减少 and 销号 left it). Idempotent; one
    transaction, so a failure leaves the stored data as it was. Returns how many households changed.
    Runs after unlocking (records are sealed under the data key), see `ensure_migrated`."""
    changed = 0
    records = [r for r in store.records("household") if "household_type" not in r.fields]
    with store.transaction():
        for i, record in enumerate(records, 1):
            if record.fields.get("status") in EXITED_STATUSES:
                refusal = procedures.authorize_change("household", {"household_type": procedures.EXITED_TYPE}, {},
                                                      store.role, op="update", reason=procedures.MIGRATION_REASON)
                if refusal:  # cannot happen: the rule allows exactly this
                    raise ValueError(refusal)
                if store.put("household", {"household_type": procedures.EXITED_TYPE}, record_id=record.id,
                             reason=procedures.MIGRATION_REASON) is not None:
                    changed += 1
            if progress:
                progress(i, len(records))
        store.set_meta(DATA_VERSION_KEY, default().version)
    return changed


def migration_pending(store: Store) -> bool:
    """True while `ensure_migrated` still has to run (readable before unlocking)."""
    return store.meta(DATA_VERSION_KEY) != default().version


def ensure_migrated(store: Store) -> int:
    """Run `migrate` once per dictionary version (an unlocked store); 0 when already done."""
    if not migration_pending(store):
        return 0
    return migrate(store)


# ---------------------------------------------------------------------- lists


def monitored(doc: dict) -> bool:
    return doc.get("household_type") == procedures.MONITORED


def risk_summary(doc: dict) -> str:
    """The household's risks in words: 因病(2025-03-01 发现,未消除);因学(…,已消除)."""
    d = default()
    parts = []
    for r in doc.get("risks", []):
        state = d.code_label("risk_state", r.get("state") or procedures.RISK_OPEN)
        parts.append(f"{d.code_label('risk_type', r.get('risk_type'))}({r.get('found_date', '')} 发现,{state})")
    return ";".join(parts)
