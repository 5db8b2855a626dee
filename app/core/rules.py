"""Named cross-field rules. forms/*.toml refer to them by name in a kind's `rules` list.

Each rule is called as ``rule(record, household)`` where `record` is the record of the kind that names
the rule (for household rules, the household document itself) and `household` is the whole household
document (household fields, `members`, `incomes`, ...). It yields (field, message, severity) tuples.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from app.core import idnumber

Problem = tuple[str, str, str]  # field, Chinese message, "error" | "warning"
RULES: dict[str, Callable[[dict, dict], Iterable[Problem]]] = {}


def rule(fn):
    RULES[fn.__name__] = fn
    return fn


@rule
def single_household_head(record: dict, household: dict):
    """Exactly one current member has the relation 户主/本人 (01)."""
    members = household.get("members", [])
    heads = [m for m in members if m.get("relation") == "01"]
    if members and not heads:
        yield "members", "家庭成员中没有户主(与户主关系为“户主/本人”的成员)", "error"
    elif len(heads) > 1:
        names = "、".join(str(m.get("name") or "?") for m in heads)
        yield "members", f"一户只能有一名户主,现有 {len(heads)} 名:{names}", "error"
    elif heads and record.get("head_name") and heads[0].get("name") and heads[0]["name"] != record["head_name"]:
        yield "head_name", f"户主姓名“{record['head_name']}”与成员中的户主“{heads[0]['name']}”不一致", "warning"


@rule
def family_size_matches_members(record: dict, household: dict):
    """家庭人口数 equals the number of current members."""
    size = record.get("family_size")
    count = len(household.get("members", []))
    if isinstance(size, int) and size != count:
        yield "family_size", f"家庭人口数为 {size},但现有成员 {count} 人", "error"


@rule
def other_causes_valid(record: dict, household: dict):
    """其他致贫原因: at most two, none equal to the main cause."""
    others = record.get("other_causes") or []
    if isinstance(others, list):
        if record.get("main_cause") and record["main_cause"] in others:
            yield "other_causes", "其他致贫原因不能与主要致贫原因相同", "error"
        if len(set(others)) != len(others):
            yield "other_causes", "其他致贫原因有重复", "error"


@rule
def helper_assigned(record: dict, household: dict):
    """Every registered household has a current helper pairing (帮扶责任人)."""
    if record.get("status") in ("6", "7"):
        return
    today = dt.date.today().isoformat()
    current = [h for h in household.get("helpers", []) if not h.get("end_date") or str(h["end_date"]) >= today]
    if not current:
        yield "helpers", "该户没有在帮的帮扶责任人", "warning"


@rule
def id_matches_birth_and_sex(record: dict, household: dict):
    """The birth date and sex encoded in the ID number agree with the member's fields."""
    number = record.get("id_number")
    if not number:
        return
    try:
        info = idnumber.parse(number)
    except idnumber.IdNumberError:
        return  # reported by the field check
    birth = record.get("birth_date")
    if birth and birth != info.birth_date.isoformat():
        yield "birth_date", f"出生日期 {birth} 与身份证号码中的 {info.birth_date.isoformat()} 不一致", "error"
    sex = record.get("sex")
    if sex in ("1", "2") and sex != info.sex:
        wanted = "男" if info.sex == "1" else "女"
        yield "sex", f"性别与身份证号码不一致:号码第17位表示{wanted}", "error"


@rule
def health_exclusive(record: dict, household: dict):
    """健康 excludes 长期慢性病, 患有大病 and 残疾."""
    health = record.get("health") or []
    if isinstance(health, list) and "1" in health and len(health) > 1:
        yield "health", "健康状况选了“健康”就不能再选其他项", "error"


@rule
def income_arithmetic(record: dict, household: dict):
    """资产收益分红 is part of 财产性收入; expenses beyond income are flagged for a second look."""
    from app.core.income import net_income

    prop = record.get("property_income")
    div = record.get("dividend_income")
    if isinstance(div, (int, float)) and div > (prop if isinstance(prop, (int, float)) else 0):
        yield "dividend_income", "资产收益分红是财产性收入的一部分,不能大于财产性收入", "error"
    if net_income(record) < 0:
        yield "business_expense", "生产经营性支出大于全部收入,纯收入为负数,请核实", "warning"


@rule
def dates_ordered(record: dict, household: dict):
    start, end = record.get("start_date"), record.get("end_date")
    if start and end and str(end) < str(start):
        yield "end_date", "结对结束日期早于开始日期", "error"
