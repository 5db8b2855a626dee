"""The cheap table cells and page-by-page tables of app.reports.cells: they must print exactly what
reportlab's Paragraph and its own table splitting print (compared as rendered pixels and page text)."""

from __future__ import annotations

import datetime as dt
import io
import re

import pypdfium2
from pypdf import PdfReader
from reportlab.lib.pagesizes import A4
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

from app.core import demo
from app.reports import register
from app.reports.cells import Line, cell, page_tables, row_height
from app.reports.common import CJK, FONT_CMD, GRID, markup, para, register_fonts, styles
from app.reports.context import Context

TEXTS = ["张三", "5226341012010002", "522634********0298", "4,242.33", "一般贫困户", "1组 小计:80 户 300 人",
         "周俊(西江镇人民政府)", "", "A&B <c>", "自愿发展能力不足而长期无法摆脱贫困的家庭情况说明"]


def _pixels(pdf: bytes) -> list[bytes]:
    doc = pypdfium2.PdfDocument(pdf)
    return [doc[i].render(scale=3).to_pil().tobytes() for i in range(len(doc))]


def _table_pdf(make) -> bytes:
    register_fonts()
    st = styles()
    rows = [[make(text, st[name]) for name in ("cell", "cell_c", "cell_r")] for text in TEXTS]
    table = Table(rows, colWidths=[40 * 2.8346] * 3)
    table.setStyle(TableStyle([FONT_CMD, ("GRID", (0, 0), (-1, -1), 0.5, GRID), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    out = io.BytesIO()
    SimpleDocTemplate(out, pagesize=A4, initialFontName=CJK).build([table])
    return out.getvalue()


def test_a_line_cell_prints_exactly_what_its_paragraph_prints():
    # aligned left, centred and right; CJK, digits, masked numbers, mixed runs, markup characters,
    # an empty value and a text too long for one line (which wraps as the paragraph does)
    fast = _table_pdf(lambda text, style: cell(text, style))
    slow = _table_pdf(lambda text, style: para(text, style))
    assert _pixels(fast) == _pixels(slow)
    assert "A&B <c>" in PdfReader(io.BytesIO(fast)).pages[0].extract_text()


def test_a_line_too_wide_for_its_cell_wraps_like_a_paragraph():
    register_fonts()
    style = styles()["cell"]
    text = TEXTS[-1]
    line, paragraph = Line(text, style), Paragraph(markup(text), style)
    assert line.wrap(60, 1000) == paragraph.wrap(60, 1000)
    assert line.wrap(60, 1000)[1] > style.leading  # more than one line
    assert line.wrap(1000, 1000) == (1000, style.leading)


def _register_docs(n: int) -> tuple[list[dict], Context]:
    docs = demo.households(per_village=n, villages=["522634101201"], today=dt.date(2026, 12, 1))
    for i, doc in enumerate(docs):
        doc["id"] = f"h{i:04d}"
    ctx = Context(division_names={c: name for c, name, _, _ in demo.divisions()},
                  poverty_lines=dict(demo.POVERTY_LINES), today=dt.date(2026, 12, 1))
    return docs, ctx


def test_the_register_is_cut_into_pages_where_reportlab_would_split_it(tmp_path):
    """One table per page, subtotal rows without SPAN, must print the pages that one long table with
    spanning subtotal cells (the register as it was) printed when reportlab split it."""
    docs, ctx = _register_docs(130)
    story, _ = register.register_story("522634101201", docs, ctx)
    pages = [f for f in story if isinstance(f, Table) and len(f._cellvalues[0]) == len(register.COLUMNS)]
    assert len(pages) > 3
    header = pages[0]._cellvalues[0]
    rows, subtotals = [], []
    for r in (r for t in pages for r in t._cellvalues[1:]):
        if isinstance(r[0], Line) and r[0].overflow:  # as it was: a paragraph spanning the first four cells
            subtotals.append(len(rows) + 1)
            r = [Paragraph(markup(r[0].text), styles()["cell"])] + r[1:4] + [Paragraph(markup(r[4].text), styles()["cell_c"])] + r[5:]
        rows.append(r)
    one = Table([header] + rows, colWidths=pages[0]._argW, repeatRows=1)
    one.setStyle(register._table_style(len(rows) + 1, subtotals))
    whole = [one] + story[story.index(pages[-1]) + 1:]
    out_pages, out_whole = tmp_path / "pages.pdf", tmp_path / "whole.pdf"
    register._build(str(out_pages), "册", story, ctx)
    register._build(str(out_whole), "册", whole, ctx)
    by_page = [re.sub(r"\s+", "", p.extract_text()) for p in PdfReader(str(out_pages)).pages]
    by_split = [re.sub(r"\s+", "", p.extract_text()) for p in PdfReader(str(out_whole)).pages]
    assert by_page == by_split  # (text extraction guesses spaces from how text is positioned: ignored)
    assert any("小计" in text for text in by_page)
    differing = [sum(1 for x, y in zip(a, b) if x != y) for a, b in zip(_pixels(out_pages.read_bytes()),
                                                                       _pixels(out_whole.read_bytes()))]
    assert max(differing) <= 300  # of 13.5 million: the antialiased edge where the box meets the split (none in the text)


def test_page_tables_repeat_the_header_and_keep_every_row_once():
    register_fonts()
    st = styles()
    header = [Line("标题", st["head"])]
    rows = [[Line(f"第{i}行", st["cell"])] for i in range(100)]
    heights = [row_height(r, [100], 2.5, 1.5, 12) for r in rows]
    tables = page_tables(header, rows, heights, 13.5, 200, [100], lambda a, b: TableStyle([FONT_CMD]))
    assert [t._cellvalues[0][0] for t in tables] == [header[0]] * len(tables)
    assert [r[0].text for t in tables for r in t._cellvalues[1:]] == [f"第{i}行" for i in range(100)]
    assert all(sum(t._argH) <= 200 for t in tables)
    assert len(tables) == -(-100 // int((200 - 13.5) // 13.5))
    story = []
    for t in tables:
        story += [t, PageBreak()]
    assert story
