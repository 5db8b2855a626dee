"""Numbers on printed documents: amounts, dates, ID and account numbers never break inside the
number (a cell too narrow gets a smaller font for that number instead); chart percentages add up
to 100."""

from __future__ import annotations

import re

from pypdf import PdfReader

from app.core import demo as demo_core
from app.reports.common import number_para, styles
from app.services import households, printing

VILLAGE = "522699101201"


def lines_of(path) -> list[str]:
    return [line for page in PdfReader(str(path)).pages for line in page.extract_text().splitlines()]


def test_card_amounts_and_numbers_never_break_inside_the_number(store, tmp_path):
    doc = demo_core.households(per_village=1, villages=[VILLAGE])[0]
    doc["measures"][0]["amount"] = 123456.78
    doc["plans"][0]["project_funds"] = 1234567.5
    doc["incomes"][0]["wage_income"] = 4934567.89
    doc["bank_account"] = "6228876634400297875123"
    doc["members"][1]["id_number"] = "52269919930910019X"
    saved = households.save(store, doc, allow_errors=True)
    out = tmp_path / "card.pdf"
    printing.print_cards(store, out, household_id=saved.household_id, full_id=True)
    lines = lines_of(out)
    text = "\n".join(lines)
    for number in ["123,456.78", "4,934,567.89", "1,234,567.50", "6228876634400297875123", "2025-10-02",
                   *(m["id_number"] for m in doc["members"])]:
        # each appears whole on one line (a broken number is split across two lines)
        assert any(number in line.replace(" ", "") for line in lines), (number, text)
    assert not any(re.fullmatch(r"\s*(78|89|50)\s*", line) for line in lines)


def test_number_para_keeps_a_number_on_one_line_and_wraps_other_text():
    st = styles()
    cell = st["cell"]
    width = 40  # points: too narrow for "123,456.78" at 8 pt
    p = number_para("123,456.78", cell, width)
    p.wrap(width, 1000)
    assert len(p.blPara.lines) == 1
    assert p.style.fontSize < cell.fontSize
    for text in ["2025-10-02", "522699********0151", "52269919930910019X", "-1,203.75"]:
        p = number_para(text, cell, width)
        p.wrap(width, 1000)
        assert len(p.blPara.lines) == 1, text
    # a number that fits keeps the cell's font size
    assert number_para("1,500", cell, width).style.fontSize == cell.fontSize
    # words still wrap inside their cells as before
    p = number_para("推荐到县工业园区务工", cell, width)
    p.wrap(width, 1000)
    assert len(p.blPara.lines) > 1
    # an empty required value keeps the 待完善 mark
    assert "待完善" in number_para("", cell, width, required=True).text
