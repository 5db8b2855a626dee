"""The village register (村有册) and the township book (乡有簿): landscape A4 tables with the header
repeated on every page, "第 n 页 共 m 页", group subtotals and totals, and a summary page with the
wall charts."""

from __future__ import annotations

import re
from collections import defaultdict, namedtuple
from collections.abc import Iterable, Iterator

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.core import idnumber
from app.core.income import per_capita
from app.reports.card import latest_income
from app.reports.cells import Line, cached, cell, iter_page_tables, replayed, row_height
from app.reports.charts import Summary, summarize, wall_charts
from app.reports.common import CJK, FONT_CMD, GRID, HEAD_BG, draw_text, head_para, markup, missing_mark, numbered_canvas, para, register_fonts, styles
from app.reports.context import Context, Progress, money

PAGE = landscape(A4)
MARGIN = 12 * mm
WIDTH = PAGE[0] - 2 * MARGIN
COLUMNS = [  # heading, width mm
    ("序号", 10), ("户编号", 31), ("户主", 20), ("证件号码", 36), ("人口", 10), ("属性", 24),
    ("主要致贫原因", 22), ("帮扶责任人", 36), ("状态", 30), ("年人均纯收入(元)", 22), ("计划脱贫年度", 16),
    ("实际脱贫年度", 16),
]
SUBTOTAL_BG = "#f4f4f4"
CELL_PAD = 2.5  # left and right padding of register and book cells, points


def heading_row(columns: list[tuple[str, float]], k: float, style) -> list:
    """The heading cells of a table of (heading, width mm) columns scaled by k: each breaks only
    between words and fits its column."""
    return [head_para(h, style, w * mm * k - 2 * CELL_PAD) for h, w in columns]


def _group_key(group: str) -> tuple:
    m = re.match(r"(\d+)", group or "")
    return (0 if m else 1 if group else 2, int(m.group(1)) if m else 0, group or "")


def head_of(doc: dict) -> dict | None:
    for m in doc.get("members", []):
        if m.get("relation") == "01":
            return m
    return None


def register_row(doc: dict, ctx: Context) -> dict:
    """The values of one register row (ID number always masked)."""
    head = head_of(doc)
    income = latest_income(doc)
    size = doc.get("family_size") if isinstance(doc.get("family_size"), int) else len(doc.get("members", []))
    pc = per_capita(income, size) if income else None
    helper = next(iter(doc.get("helpers", [])), None)
    helper_text = ""
    if helper and helper.get("name"):
        helper_text = helper["name"] + (f"({helper['unit']})" if helper.get("unit") else "")
    return {
        "household_number": doc.get("household_number") or "",
        "head_name": doc.get("head_name") or "",
        "id_number": idnumber.mask(head["id_number"]) if head and head.get("id_number") else "",
        "people": len(doc.get("members", [])),
        "attribute": ctx.show("household", "attribute", doc.get("attribute")),
        "main_cause": ctx.show("household", "main_cause", doc.get("main_cause")),
        "helper": helper_text,
        "status": ctx.show("household", "status", doc.get("status")),
        "per_capita": money(pc, 2),
        "planned_exit_year": str(doc.get("planned_exit_year") or ""),
        "exit_year": str(doc.get("exit_year") or ""),
        "group": str(doc.get("group") or ""),
    }


_Row = namedtuple("_Row", ["household_number", "head_name", "id_number", "people", "attribute", "main_cause",
                           "helper", "status", "per_capita", "planned_exit_year", "exit_year", "group"])


def _table_style(n_rows: int, subtotal_rows: list[int]) -> TableStyle:
    cmds = [
        FONT_CMD,
        ("GRID", (0, 0), (-1, -1), 0.5, GRID),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD), ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    for r in subtotal_rows:
        cmds += [("SPAN", (0, r), (3, r)), ("BACKGROUND", (0, r), (-1, r), SUBTOTAL_BG)]
    return TableStyle(cmds)


PAD_H, PAD_V = 2.5, 1.5
STRING_LEADING = 12  # an empty string cell: reportlab's default cell leading (1.2 x 10 points)
SUBTOTAL_SPAN = 4  # a subtotal's words run over the first four columns, which draw no lines between them
FRAME_HEIGHT = PAGE[1] - 15 * mm - 13 * mm - 12  # the page's frame less its 6-point paddings (see _build)


def _page_style(n_rows: int, subtotal_rows: list[int]) -> TableStyle:
    """The look of `_table_style` (grid, header and subtotal shading) without SPAN: the subtotal rows
    leave out the lines between their first four columns, where their words run. A spanning cell
    made reportlab re-measure the spans of the remaining rows at every page."""
    last = len(COLUMNS) - 1
    cmds = [
        FONT_CMD,
        ("BOX", (0, 0), (-1, -1), 0.5, GRID),
        ("LINEBELOW", (0, 0), (-1, -2), 0.5, GRID),
        ("LINEAFTER", (SUBTOTAL_SPAN - 1, 0), (last - 1, -1), 0.5, GRID),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD_H), ("RIGHTPADDING", (0, 0), (-1, -1), PAD_H),
        ("TOPPADDING", (0, 0), (-1, -1), PAD_V), ("BOTTOMPADDING", (0, 0), (-1, -1), PAD_V),
    ]
    start = 0
    for r in [*subtotal_rows, n_rows]:  # vertical lines of the first columns, between subtotal rows
        if r > start:
            cmds.append(("LINEAFTER", (0, start), (SUBTOTAL_SPAN - 2, r - 1), 0.5, GRID))
        start = r + 1
    for r in subtotal_rows:
        cmds.append(("BACKGROUND", (0, r), (-1, r), SUBTOTAL_BG))
    return TableStyle(cmds)


def _subtotal_row(text: str, people, style) -> list:
    return [Line(text, style, overflow=True), "", "", "", Line(str(people), styles()["cell_c"])] + [""] * (len(COLUMNS) - 5)


def register_pages(village_code: str, docs: Iterable[dict], ctx: Context, progress: Progress | None = None,
                   total: int | None = None) -> tuple[Iterator[Table], Summary]:
    """The register's page tables, made as they are taken, and the village's summary. `docs` is read
    once, now (it may be a generator reading the store a batch at a time): each household leaves only
    its register row's values (sorted into groups) and its figures in the summary, so memory holds
    one page of flowables whatever the size of the village. `progress(n, total)` as rows are made."""
    groups: dict[str, list[dict]] = defaultdict(list)
    summary = Summary()
    for doc in docs:
        r = register_row(doc, ctx)
        groups[r["group"]].append(_Row(**r))  # (a tuple: a fifth of the dict's memory)
        summarize((doc,), ctx, into=summary)
    total = summary.households if total is None else total
    st = styles()
    cs, cs_c, cs_r, head = st["cell"], st["cell_c"], st["cell_r"], st["head"]
    k = WIDTH / (sum(w for _, w in COLUMNS) * mm)
    header = [replayed(cached(h)) for h in heading_row(COLUMNS, k, head)]  # on every page: wrapped and drawn once
    widths = [w * mm * k for _, w in COLUMNS]
    header_height = row_height(header, widths, PAD_H, PAD_V, STRING_LEADING)
    subtotals: set[int] = set()  # row numbers of the subtotal rows (a few: one per group)

    def rows() -> Iterator[tuple[list, float]]:
        n = 0
        index = 0
        for group in sorted(groups, key=_group_key):
            members = sorted(groups.pop(group), key=lambda r: str(r.household_number))
            people = 0
            for r in members:
                n += 1
                people += r.people
                row = [
                    Line(str(n), cs_c), cell(r.household_number, cs, True), cell(r.head_name, cs, True),
                    cell(r.id_number, cs, True), Line(str(r.people), cs_c) if r.people else
                    Paragraph(missing_mark(), cs_c), cell(r.attribute, cs, True), cell(r.main_cause, cs, True),
                    cell(r.helper, cs, True), cell(r.status, cs, True), cell(r.per_capita, cs_r),
                    cell(r.planned_exit_year, cs_c), cell(r.exit_year, cs_c),
                ]
                yield row, row_height(row, widths, PAD_H, PAD_V, STRING_LEADING)
                index += 1
                if progress and n % 50 == 0:
                    progress(n, total)
            row = _subtotal_row(f"{group or '未分组'} 小计:{len(members)} 户 {people} 人", people, cs)
            subtotals.add(index)
            yield row, row_height(row, widths, PAD_H, PAD_V, STRING_LEADING)
            index += 1
        row = _subtotal_row(f"合计:{summary.households} 户 {summary.people} 人", summary.people, cs)
        subtotals.add(index)
        yield row, row_height(row, widths, PAD_H, PAD_V, STRING_LEADING)
        if progress:
            progress(total, total)

    def style_for(first: int, last: int) -> TableStyle:
        return _page_style(last - first + 1, [r - first + 1 for r in range(first, last) if r in subtotals])

    return iter_page_tables(header, rows(), header_height, FRAME_HEIGHT, widths, style_for), summary


def register_story(village_code: str, docs: Iterable[dict], ctx: Context,
                   progress: Progress | None = None) -> tuple[list, Summary]:
    """The whole register as one story: each page's table and a page break, then the summary page."""
    pages, summary = register_pages(village_code, docs, ctx, progress)
    story = []
    for table in pages:
        story += [table, PageBreak()]
    story += summary_page(f"{ctx.division(village_code)} 汇总", summary, ctx)
    return story, summary


def summary_table(s: Summary, ctx: Context) -> Table:
    st = styles()
    d = ctx.dictionary
    status = d.codes["household_status"]
    cells = [("贫困户(户)", s.households), ("人口(人)", s.people)]
    cells += [(label, s.by_status.get(code, 0)) for code, label in status.items() if s.by_status.get(code)]
    cells += [("低于扶贫标准(户)", s.below_line)]
    row1 = [head_para(label, st["head"], WIDTH / len(cells) - 12) for label, _ in cells]
    row2 = [Paragraph(markup(value), st["cell_c"]) for _, value in cells]
    t = Table([row1, row2], colWidths=[WIDTH / len(cells)] * len(cells))
    t.setStyle(TableStyle([FONT_CMD, ("GRID", (0, 0), (-1, -1), 0.5, GRID), ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
                           ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return t


def summary_page(title: str, s: Summary, ctx: Context) -> list:
    st = styles()
    charts = wall_charts(s, ctx, width=WIDTH / 3 - 6, height=175)
    grid = Table([charts[:3], charts[3:]], colWidths=[WIDTH / 3] * 3)
    grid.setStyle(TableStyle([FONT_CMD, ("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOX", (0, 0), (-1, -1), 0.3, GRID),
                              ("INNERGRID", (0, 0), (-1, -1), 0.3, GRID)]))
    years = sorted(s.income_years)
    lines = [f"{y} 年 {money(ctx.line_for(y)[0])} 元" + ("" if ctx.line_for(y)[1] == y else f"(参照 {ctx.line_for(y)[1]} 年标准)")
             for y in years]
    note = "扶贫标准:" + ("、".join(lines) if lines else "未设定") + "。收入为最近一年登记的家庭收入。"
    return [Paragraph(markup(title), st["h2"]), summary_table(s, ctx), Spacer(1, 3 * mm), grid,
            Paragraph(markup(note), st["small"])]


def _header(title: str, ctx: Context):
    def draw(canvas, page):
        canvas.saveState()
        draw_text(canvas, PAGE[0] / 2, PAGE[1] - 9 * mm, title, 13, "center")
        draw_text(canvas, PAGE[0] - MARGIN, PAGE[1] - 9 * mm, f"打印日期 {ctx.today.isoformat()}", 7.5, "right")
        canvas.restoreState()
    return draw


class _Pages(Spacer):
    """Stands for the register's pages not yet made, at the end of the story: when it reaches the
    front, the document puts the next page's table and a page break before it, and the summary page
    in its place after the last (`_Document.filterFlowables`): the story holds one page at a time."""

    def __init__(self, pages: Iterator[Table], after):
        super().__init__(0, 0)
        self.pages = pages
        self.after = after

    def make(self) -> list:
        table = next(self.pages, None)
        return self.after() if table is None else [table, PageBreak(), self]


class _Document(SimpleDocTemplate):
    def filterFlowables(self, flowables):
        while flowables and isinstance(flowables[0], _Pages):
            flowables[0:1] = flowables[0].make()


def _build(path: str, title: str, story: list, ctx: Context) -> int:
    doc = _Document(path, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=15 * mm,
                            bottomMargin=13 * mm, title=title, author=ctx.site_name or "jiandang", initialFontName=CJK)
    doc.build(story, canvasmaker=numbered_canvas(_header(title, ctx), footer_left=f"数据字典 {ctx.dictionary.version}"))
    return doc.page


def register_title(village_code: str, ctx: Context) -> str:
    return f"{ctx.address(village_code)} 建档立卡贫困户花名册(村有册)"


def build_register(path: str, village_code: str, docs: Iterable[dict], ctx: Context,
                   progress: Progress | None = None, total: int | None = None) -> tuple[int, Summary]:
    """The register of the households `docs` (read once; a generator reading the store a batch at a
    time keeps memory flat in the size of the village: `register_pages`); returns pages and summary."""
    register_fonts()
    pages, summary = register_pages(village_code, docs, ctx, progress, total)
    story = [_Pages(pages, lambda: summary_page(f"{ctx.division(village_code)} 汇总", summary, ctx))]
    return _build(path, register_title(village_code, ctx), story, ctx), summary


BOOK_COLUMNS = [("序号", 10), ("村", 30), ("贫困户(户)", 18), ("人口(人)", 18), ("未脱贫(户)", 18),
                ("已脱贫(户)", 20), ("返贫(户)", 16), ("一般贫困户", 18), ("低保贫困户", 18), ("特困供养贫困户", 22),
                ("低于扶贫标准(户)", 28), ("主要致贫原因(前三)", 51)]


def book_row(name: str, s: Summary, ctx: Context) -> list:
    causes = ctx.dictionary.codes["poverty_cause"]
    top = [f"{causes.get(c, c or '未填写')} {n}" for c, n in s.by_cause.most_common(3)]
    return [name, s.households, s.people, s.by_status.get("1", 0),
            s.by_status.get("2", 0) + s.by_status.get("3", 0) + s.by_status.get("5", 0), s.by_status.get("4", 0),
            s.by_attribute.get("1", 0), s.by_attribute.get("2", 0), s.by_attribute.get("3", 0), s.below_line,
            "、".join(top)]


def build_book(path: str, township_code: str, villages: list[tuple[str, Iterable[dict]]], ctx: Context,
               progress: Progress | None = None) -> tuple[int, Summary]:
    """One row per village plus totals, then the aggregated charts; returns pages and the township's
    summary. Each village's households are read once, in turn, into its figures (a generator reading
    the store a batch at a time keeps memory flat in the size of the township)."""
    register_fonts()
    st = styles()
    k = WIDTH / (sum(w for _, w in BOOK_COLUMNS) * mm)
    rows = [heading_row(BOOK_COLUMNS, k, st["head"])]
    total = Summary()
    for i, (code, docs) in enumerate(villages, 1):
        s = summarize(docs, ctx)
        total.add(s)
        values = book_row(ctx.division(code), s, ctx)
        rows.append([Paragraph(markup(i), st["cell_c"]), para(values[0], st["cell"])]
                    + [Paragraph(markup(v), st["cell_c"]) for v in values[1:-1]] + [para(values[-1], st["cell"])])
        if progress:
            progress(i, len(villages))
    values = book_row("合计", total, ctx)
    rows.append([Paragraph("<b>" + markup("合计") + "</b>", st["cell"]), ""]
                + [Paragraph("<b>" + markup(v) + "</b>", st["cell_c"]) for v in values[1:-1]] + [para(values[-1], st["cell"])])
    table = Table(rows, colWidths=[w * mm * k for _, w in BOOK_COLUMNS], repeatRows=1)
    table.setStyle(_table_style(len(rows), []))
    table.setStyle(TableStyle([FONT_CMD, ("SPAN", (0, len(rows) - 1), (1, len(rows) - 1)),
                               ("BACKGROUND", (0, len(rows) - 1), (-1, len(rows) - 1), SUBTOTAL_BG)]))
    title = f"{ctx.division(township_code[:6])} {ctx.division(township_code)} 建档立卡贫困户台账(乡有簿)"
    story = [Paragraph(markup(f"共 {len(villages)} 个村"), st["body"]), Spacer(1, 2 * mm), table, PageBreak()]
    story += summary_page(f"{ctx.division(township_code)} 汇总", total, ctx)
    return _build(path, title, story, ctx), total
