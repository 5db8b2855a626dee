"""防返贫动态监测 notices (issue #20): the village's 公示 of households proposed as 监测对象 (监测识别)
and of households whose risk is proposed as eliminated (风险消除).

Kept apart from app/reports/notice.py (the poverty register's notices) and reusing its NoticeInfo and
styles. A monitoring notice is posted once, in the village. By the rules for these notices it shows no
ID number, phone, bank account or health detail: the proposal's free-text reasons (which often name an
illness) are left out; the risk categories (因病, 因学 …) are shown, as the national forms do.
"""

from __future__ import annotations

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.core.income import per_capita
from app.reports.card import latest_income
from app.reports.common import CJK, FONT_CMD, GRID, HEAD_BG, ReportError, head_para, markup, numbered_canvas, para, register_fonts, styles
from app.reports.context import Context, money
from app.reports.notice import WIDTH, NoticeInfo, _date, village_signatures

CELL_PAD = 3  # left and right padding of the table's cells, points (as app/reports/notice.py)
KINDS = {"monitor": "拟纳入防返贫监测对象", "eliminate": "监测对象拟风险消除"}


def _risks(doc: dict, ctx: Context, open_only: bool) -> str:
    names = []
    for r in doc.get("risks", []):
        if open_only and (r.get("state") or "1") != "1":
            continue
        label = ctx.show("risk", "risk_type", r.get("risk_type"))
        if label and label not in names:
            names.append(label)
    return "、".join(names)


def _votes(p: dict) -> str:
    votes = p.get("review_votes_for")
    if votes is None:
        return ""
    against = p.get("review_votes_against")
    return f"评议赞成 {votes} 票" + (f"、反对 {against} 票" if against is not None else "")


def rows(kind: str, items: list[tuple[dict, dict]], ctx: Context) -> tuple[list[str], list[float], list[list[str]]]:
    if kind == "monitor":
        headings = ["序号", "村民小组", "户主姓名", "人口", "户类型", "监测对象类型", "风险类型", "发现方式", "备注"]
        widths = [9, 15, 18, 10, 16, 24, 28, 22, 29]
    else:
        headings = ["序号", "村民小组", "户主姓名", "人口", "监测对象类型", "风险识别时间", "年人均纯收入(元)",
                    "监测收入标准(元)", "备注"]
        widths = [9, 15, 18, 10, 26, 22, 24, 24, 24]
    out = []
    for i, (doc, p) in enumerate(items, 1):
        people = str(len(doc.get("members", [])) or doc.get("family_size") or "")
        row = [str(i), str(doc.get("group") or ""), str(doc.get("head_name") or ""), people]
        if kind == "monitor":
            row += [ctx.show("household", "household_type", doc.get("household_type")) or "一般农户",
                    ctx.show("proposal", "monitoring_type", p.get("monitoring_type")),
                    _risks(doc, ctx, open_only=True),
                    ctx.show("proposal", "risk_source", p.get("risk_source")), _votes(p)]
        else:
            income = latest_income(doc)
            size = doc.get("family_size") if isinstance(doc.get("family_size"), int) else len(doc.get("members", []))
            pc = p.get("assessed_per_capita")
            if pc is None and income:
                pc = per_capita(income, size)
            note = [f"未达标:{p['assessed_failures']}"] if p.get("assessed_failures") else []
            note += [s for s in (_votes(p),) if s]
            row += [ctx.show("household", "monitoring_type", doc.get("monitoring_type")),
                    str(doc.get("risk_identified_date") or ""), money(pc, 2), money(p.get("assessed_line")),
                    ";".join(note)]
        out.append(row)
    return headings, widths, out


def _body(kind: str, n: int) -> str:
    if kind == "monitor":
        return (f"根据防止返贫动态监测和帮扶工作要求,经农户自主申报、干部走访排查或部门筛查预警,入户核实并经农户授权承诺,"
                f"村级民主评议,拟将以下 {n} 户纳入防返贫监测对象,现予以公示。")
    return (f"根据防止返贫动态监测和帮扶工作要求,经入户核实、村级民主评议,以下 {n} 户监测对象收入持续稳定,"
            "“两不愁三保障”及饮水安全有保障,返贫致贫风险已经稳定消除或自然消除,经农户签字认可,拟标注风险消除,现予以公示。")


def story(place_code: str, kind: str, items: list[tuple[dict, dict]], info: NoticeInfo, ctx: Context) -> list:
    if kind not in KINDS:
        raise ReportError(f"监测公示类型应为 monitor(监测识别)或 eliminate(风险消除),而不是“{kind}”")
    info.check("village", kind)
    st = styles()
    place = ctx.division(place_code)
    title = f"{place}{info.start.year}年{KINDS[kind]}公示"
    out = [Paragraph(markup(title), st["title"]), Spacer(1, 4 * mm), Paragraph(markup(_body(kind, len(items))), st["notice"]),
           Spacer(1, 3 * mm)]
    headings, widths, data_rows = rows(kind, items, ctx)
    k = WIDTH / (sum(widths) * mm)
    # headings break only between words (年人均纯收入(元), not 年人均纯收入( / 元))
    data = [[head_para(h, st["head"], w * mm * k - 2 * CELL_PAD) for h, w in zip(headings, widths)]]
    name_at = headings.index("户主姓名")
    for r in data_rows:
        data.append([Paragraph(markup(v), st["cell_c"]) if c in (0, 3) else para(v, st["cell"], c == name_at)
                     for c, v in enumerate(r)])
    table = Table(data, colWidths=[w * mm * k for w in widths], repeatRows=1)
    table.setStyle(TableStyle([FONT_CMD, ("GRID", (0, 0), (-1, -1), 0.5, GRID), ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
                               ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD), ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD)]))
    out.append(table)
    right = styles()["body"].clone("right", alignment=2, fontSize=11, leading=18)
    contact = info.contact + (f",联系电话 {info.phone}" if info.phone else "")
    issuer = info.issuer or f"{place}村民委员会"
    sign = village_signatures(st)
    out.append(KeepTogether([
        Spacer(1, 5 * mm),
        Paragraph(markup(f"公示时间:{_date(info.start)}至{_date(info.end)}(共 {info.days} 天)。"), st["notice"]),
        Paragraph(markup(f"公示地点:{info.place}。"), st["notice"]),
        Paragraph(markup(f"公示期间,如有异议,请以书面或口头形式向{contact}反映。反映情况要实事求是,提倡署名反映。"), st["notice"]),
        Spacer(1, 6 * mm), sign, Spacer(1, 8 * mm),
        Paragraph(markup(f"{issuer}(盖章)"), right), Paragraph(markup(_date(info.start)), right)]))
    return out


def build(path: str, place_code: str, kind: str, items: list[tuple[dict, dict]], info: NoticeInfo, ctx: Context) -> int:
    register_fonts()
    doc = SimpleDocTemplate(path, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                            bottomMargin=16 * mm, title="公示", author=ctx.site_name or "jiandang", initialFontName=CJK)
    doc.build(story(place_code, kind, items, info, ctx), canvasmaker=numbered_canvas())
    return doc.page
