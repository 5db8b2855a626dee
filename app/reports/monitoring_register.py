"""监测对象名册 (issue #20): the 监测户 of a village or of a township, one row each, landscape A4, the
header repeated on every page, with a count of those whose risk is not yet eliminated. The book of a
township is the same table with the village column. ID numbers are never printed."""

from __future__ import annotations

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.core.income import per_capita
from app.reports.card import latest_income
from app.reports.common import (CJK, FONT_CMD, GRID, HEAD_BG, head_para, kept_para, markup, number_para,
                                numbered_canvas, para, register_fonts, styles)
from app.reports.context import Context, money

PAGE = landscape(A4)
CELL_PAD = 3  # left and right padding of the table's cells, points (as app/reports/notice.py)
MARGIN = 12 * mm
WIDTH = PAGE[0] - 2 * MARGIN
COLUMNS = [("序号", 8), ("户编号", 31), ("户主", 18), ("人口", 9), ("监测对象类型", 26), ("风险(发现日期,状态)", 54),
           ("风险是否消除", 18), ("风险识别时间", 20), ("风险消除时间", 20), ("年人均纯收入(元)", 26), ("帮扶措施", 13),
           ("最近走访", 20)]  # millimetres before scaling to the page; a risk takes a line of its own


def row_of(doc: dict, ctx: Context) -> list[str | list[list[str]]]:
    """The cells of a household's row after 序号: text, or (风险, 年人均纯收入) lines of pieces that
    must not be broken (`kept_para`): one line a risk, its type, (发现日期, and 状态)."""
    income = latest_income(doc)
    size = doc.get("family_size") if isinstance(doc.get("family_size"), int) else len(doc.get("members", []))
    pc = per_capita(income, size) if income else None
    risks = doc.get("risks", [])
    risk_lines = [[ctx.show("risk", "risk_type", r.get("risk_type")), f"({r.get('found_date') or ''},",
                   ctx.show("risk", "state", r.get("state") or "1") + (")" if i == len(risks) - 1 else ");")]
                  for i, r in enumerate(risks)]
    visits = [str(v["date"]) for v in doc.get("visits", []) if v.get("date")]
    return [doc.get("household_number") or "", doc.get("head_name") or "", str(len(doc.get("members", [])) or size or ""),
            ctx.show("household", "monitoring_type", doc.get("monitoring_type")), risk_lines,
            ctx.show("household", "risk_eliminated", doc.get("risk_eliminated")),
            str(doc.get("risk_identified_date") or ""), str(doc.get("risk_eliminated_date") or ""),
            [[money(pc, 2), f"({income['year']})"]] if income and pc is not None else "",
            f"{len(doc.get('measures', []))} 项", max(visits) if visits else "未走访"]


def build(path: str, place_code: str, docs: list[dict], ctx: Context) -> int:
    register_fonts()
    st = styles()
    township = len(place_code) == 9
    columns = list(COLUMNS)
    if township:
        columns.insert(1, ("村", 18))
    open_count = sum(1 for d in docs if d.get("risk_eliminated") is not True)
    story = [Paragraph(markup(f"{ctx.division(place_code)}防返贫监测对象{'簿' if township else '名册'}"), st["title"]),
             Paragraph(markup(f"监测户 {len(docs)} 户,其中风险未消除 {open_count} 户,已消除 {len(docs) - open_count} 户。"
                              f"制表日期 {ctx.today.isoformat()}"), st["body"]), Spacer(1, 3 * mm)]
    k = WIDTH / (sum(w for _, w in columns) * mm)
    data = [[head_para(h, st["head"], w * mm * k - 2 * CELL_PAD) for h, w in columns]]  # broken only between words
    for i, doc in enumerate(docs, 1):
        values = [str(i), *row_of(doc, ctx)]
        if township:
            values.insert(1, ctx.division(doc.get("village_code")))
        data.append([kept_para(v, st["cell"], w * mm * k - 2 * CELL_PAD) if isinstance(v, list)
                     else number_para(v, st["cell"], w * mm * k - 2 * CELL_PAD)  # a date never broken
                     for v, (_, w) in zip(values, columns)])
    if not docs:
        data.append([para("(没有监测户)", st["cell"])] + [""] * (len(columns) - 1))
    table = Table(data, colWidths=[w * mm * k for _, w in columns], repeatRows=1)
    cmds = [FONT_CMD, ("GRID", (0, 0), (-1, -1), 0.5, GRID), ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD), ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD)]
    if not docs:
        cmds.append(("SPAN", (0, 1), (-1, 1)))
    table.setStyle(TableStyle(cmds))
    story.append(table)
    doc = SimpleDocTemplate(path, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=14 * mm, title="防返贫监测对象名册", author=ctx.site_name or "jiandang",
                            initialFontName=CJK)
    doc.build(story, canvasmaker=numbered_canvas())
    return doc.page
