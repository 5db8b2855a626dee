"""Small, valid household documents for tests (the `add --json` shape)."""

from __future__ import annotations

import copy
import datetime as dt

from app.core import idnumber

VILLAGE = "522634101201"


def member(name: str, sex: str, birth: dt.date, relation: str, seq: int = 1, **extra) -> dict:
    return {
        "name": name,
        "sex": sex,
        "id_number": idnumber.make("522634", birth, seq, sex),
        "birth_date": birth.isoformat(),
        "relation": relation,
        "health": ["1"],
        "basic_medical": True,
        **extra,
    }


def household(head: str = "欧阳明远", spouse: str = "司马秀兰", seq: int = 1, **extra) -> dict:
    """A complete, valid household of two with income, a helper, a measure, a plan and a visit."""
    doc = {
        "village_code": VILLAGE,
        "head_name": head,
        "phone": "13912345678",
        "identification_standard": "1",
        "attribute": "1",
        "status": "1",
        "main_cause": "1",
        "other_causes": ["7"],
        "first_identified": "2014-06-01",
        "family_size": 2,
        "members": [
            member(head, "1", dt.date(1970, 5, 6), "01", seq * 2),
            member(spouse, "2", dt.date(1972, 8, 9), "02", seq * 2 + 1),
        ],
        "incomes": [{"year": 2025, "wage_income": 6000, "business_income": 2500, "dibao_subsidy": 1200,
                     "business_expense": 700}],
        "helpers": [{"name": "帮扶干部", "unit": "县农业农村局", "unit_level": "3", "start_date": "2015-01-01"}],
        "measures": [{"year": 2025, "category": "01", "content": "发放鸡苗", "amount": 800}],
        "plans": [{"year": 2026, "targets": "稳定增收"}],
        "visits": [{"date": "2025-10-01", "visitor": "驻村队员", "content": "入户走访"}],
    }
    doc.update(extra)
    return copy.deepcopy(doc)
