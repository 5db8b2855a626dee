"""Household income arithmetic (纯收入, 年人均纯收入)."""

from __future__ import annotations

TRANSFER_FIELDS = (
    "family_planning_subsidy",
    "dibao_subsidy",
    "tekun_subsidy",
    "pension_income",
    "eco_compensation",
    "other_transfer",
)


def _n(income: dict, key: str) -> float:
    value = income.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def transfer_income(income: dict) -> float:
    """转移性收入 = 计划生育金 + 低保金 + 特困供养金 + 养老保险金 + 生态补偿金 + 其他转移性收入."""
    return round(sum(_n(income, k) for k in TRANSFER_FIELDS), 2)


def net_income(income: dict) -> float:
    """纯收入 = 工资性 + 生产经营性 + 财产性 + 转移性 − 生产经营性支出."""
    total = (
        _n(income, "wage_income")
        + _n(income, "business_income")
        + _n(income, "property_income")
        + transfer_income(income)
        - _n(income, "business_expense")
    )
    return round(total, 2)


def per_capita(income: dict, family_size) -> float | None:
    """年人均纯收入 = 纯收入 / 家庭人口数; None when the household size is unknown or zero."""
    if not isinstance(family_size, int) or family_size <= 0:
        return None
    return round(net_income(income) / family_size, 2)
