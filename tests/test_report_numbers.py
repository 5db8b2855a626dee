"""Numbers on printed documents: amounts, dates, ID and account numbers never break inside the
number (a cell too narrow gets a smaller font for that number instead); chart percentages add up
to 100."""

from __future__ import annotations

import re

from pypdf import PdfReader

from app.core import demo as demo_core
from app.reports.common import number_para, styles
from app.services import households, printing

VILLAGE = "522634101201"


def lines_of(path) -> list[str]:
    return [line for page in PdfReader(str(path)).pages for line in page.extract_text().splitlines()]


def test_card_amounts_and_numbers_never_break_inside_the_number(store, tmp_path):
    doc = demo_core.households(per_village=1, villages=[VILLAGE])[0]
    doc["measures"][0]["amount"] = 123456.78
    doc["plans"][0]["project_funds"] = 1234567.5
    doc["incomes"][0]["wage_income"] = 4934567.89
    doc["bank_account"] = "6228876634400297875123"
    doc["members"][1]["id_number"] = "52263419930910108X"
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
    for text in ["2025-10-02", "522634********0151", "52263419930910108X", "-1,203.75"]:
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


def test_percentages_add_up_to_100_and_round_half_up():
    from fractions import Fraction

    from hypothesis import given
    from hypothesis import strategies as hs

    from app.reports.charts import percentages

    assert percentages([79, 32, 9]) == [66, 27, 7]  # 65.8 / 26.7 / 7.5: plain rounding gave 66+27+8 = 101
    assert percentages([9, 31]) == [23, 77]  # 22.5 / 77.5: 22.5 shows as 23 (was 22, round-half-to-even)
    assert percentages([1, 7]) == [13, 87]  # 12.5 / 87.5
    assert percentages([1, 39]) == [3, 97]  # 2.5 rounds up, as 四舍五入
    assert percentages([1, 1, 1]) == [34, 33, 33]
    assert percentages([5]) == [100]
    assert percentages([0, 3]) == [0, 100]
    assert percentages([]) == [] and percentages([0, 0]) == [0, 0]

    @given(hs.lists(hs.integers(min_value=0, max_value=10_000), min_size=1, max_size=14))
    def check(counts):
        shown = percentages(counts)
        total = sum(counts)
        if total == 0:
            assert shown == [0] * len(counts)
            return
        assert sum(shown) == 100
        for n, p in zip(counts, shown):
            exact = Fraction(n * 100, total)
            assert abs(p - exact) < 1  # each is its share rounded down or up
            if exact.denominator == 1:
                assert p == exact
            if n == 0:
                assert p == 0

    check()


def test_pie_chart_legend_percentages_add_up_to_100():
    from reportlab.graphics.shapes import String

    from app.reports.charts import pie_chart

    drawing = pie_chart("脱贫状态", [("已脱贫", 79), ("未脱贫", 32), ("返贫", 9)])
    text = "".join(item.text for item in drawing.contents if isinstance(item, String))
    assert "已脱贫 79 户(66%)" in text and "未脱贫 32 户(27%)" in text and "返贫 9 户(7%)" in text
    assert sum(int(p) for p in re.findall(r"\((\d+)%\)", text)) == 100
