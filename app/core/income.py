"""Household income arithmetic (纯收入, 年人均纯收入)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

TRANSFER_FIELDS = (
    "family_planning_subsidy",
    "dibao_subsidy",
    "tekun_subsidy",
    "pension_income",
    "eco_compensation",
    "other_transfer",
)


def _fen(amount) -> float:
    """Yuan rounded to the fen (分) the way accounts are kept, half up (四舍五入): 3,775.125 is 3,775.13
    (Python's round() would give 3,775.12, half to even, which matters right at the poverty line)."""
    exact = amount if isinstance(amount, Decimal) else Decimal(repr(float(amount)))
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _n(income: dict, key: str) -> float:
    value = income.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def transfer_income(income: dict) -> float:
    """转移性收入 = 计划生育金 + 低保金 + 特困供养金 + 养老保险金 + 生态补偿金 + 其他转移性收入."""
    return _fen(sum(Decimal(repr(_n(income, k))) for k in TRANSFER_FIELDS))


def net_income(income: dict) -> float:
    """纯收入 = 工资性 + 生产经营性 + 财产性 + 转移性 − 生产经营性支出."""
    total = (  # in decimals: 0.1 + 0.2 is 0.3 here
        Decimal(repr(_n(income, "wage_income")))
        + Decimal(repr(_n(income, "business_income")))
        + Decimal(repr(_n(income, "property_income")))
        + Decimal(repr(transfer_income(income)))
        - Decimal(repr(_n(income, "business_expense")))
    )
    return _fen(total)


def per_capita(income: dict, family_size) -> float | None:
    """年人均纯收入 = 纯收入 / 家庭人口数; None when the household size is unknown or zero."""
    if not isinstance(family_size, int) or family_size <= 0:
        return None
    return _fen(Decimal(repr(net_income(income))) / family_size)
