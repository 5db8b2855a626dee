"""Photos on paper: the evidence pages of a household (佐证材料) and the photo block of the card.

Images come from a loader (content address -> JPEG bytes), called only when a photo is drawn: a village
of cards never holds all its photos in memory at once before the PDF is written. JPEG bytes go into
the PDF as they are (reportlab embeds JPEG without decoding it).

A photo is described by a dict: `digest`, `width`, `height` (pixels), `kind_label`, `caption`, `taken`,
`added_by`, `added_site`, `added_at`, `record_words`.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, KeepTogether, PageTemplate, Paragraph, Spacer, Table, TableStyle

from app.reports.common import CJK, FONT_CMD, GRID, HEAD_BG, draw_text, markup, register_fonts, styles, value_markup
from app.reports.context import Context

Loader = Callable[[str], bytes | None]
WIDTH = A4[0] - 30 * mm


class Photo(Flowable):
    """One photo scaled to fit a box (aspect kept), drawn from the loader when the page is drawn.
    A photo not (yet) on this computer is a grey box saying so."""

    def __init__(self, photo: dict, loader: Loader, max_width: float, max_height: float):
        super().__init__()
        self.photo, self.loader = photo, loader
        w, h = max(1, int(photo.get("width") or 4)), max(1, int(photo.get("height") or 3))
        scale = min(max_width / w, max_height / h)
        self.width, self.height = w * scale, h * scale
        self.box = (max_width, max_height)
        self.hAlign = "CENTER"

    def wrap(self, aw, ah):
        return self.width, self.height

    def draw(self):
        data = self.loader(self.photo.get("digest", ""))
        c = self.canv
        if not data:
            c.saveState()
            c.setFillColor(HEAD_BG)
            c.setStrokeColor(GRID)
            c.rect(0, 0, self.width, self.height, fill=1, stroke=1)
            c.setFillColorRGB(0.3, 0.3, 0.3)
            draw_text(c, self.width / 2, self.height / 2, "照片尚未同步到本机", 9, "center")
            c.restoreState()
            return
        c.drawImage(ImageReader(io.BytesIO(data)), 0, 0, self.width, self.height)
        c.setStrokeColor(GRID)
        c.setLineWidth(0.4)
        c.rect(0, 0, self.width, self.height, fill=0, stroke=1)


def caption_lines(photo: dict, with_record: bool = True) -> list[str]:
    """What is printed under a photo: kind, record, caption; date taken; who added it where and when."""
    first = " · ".join(x for x in (photo.get("kind_label"), photo.get("record_words") if with_record else None,
                                  photo.get("caption")) if x)
    when = f"拍摄时间 {photo['taken']}" if photo.get("taken") else "拍摄时间 未记录"
    who = photo.get("added_by") or ""
    if photo.get("added_site"):
        who += f"({photo['added_site']})"
    added = f"{who} 于 {photo.get('added_at') or ''} 添加".strip()
    return [first, f"{when} · {added}"]


def card_block(photos: list[dict], loader: Loader) -> list:
    """The card's photo row: 家庭合影 and 住房 side by side, each with its caption."""
    if not photos:
        return []
    st = styles()
    small = st["small"]
    cell_w = WIDTH / 2
    cells = []
    for p in photos[:2]:
        cells.append([Photo(p, loader, cell_w - 6 * mm, 58 * mm),
                      Paragraph(markup(f"{p.get('kind_label', '')}" + (f":{p['caption']}" if p.get("caption") else "")
                                       + (f"({p['taken'][:10]})" if p.get("taken") else "")), small)])
    cells += [""] * (2 - len(cells))
    table = Table([cells], colWidths=[cell_w, cell_w])
    table.setStyle(TableStyle([FONT_CMD, ("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER")]))
    return [table, Spacer(1, 2 * mm)]


class EvidenceDocument(BaseDocTemplate):
    def __init__(self, filename, ctx: Context, footer: str, **kw):
        super().__init__(filename, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                         bottomMargin=18 * mm, title="佐证材料", author=ctx.site_name or "jiandang", initialFontName=CJK, **kw)
        self.ctx, self.footer = ctx, footer
        frame = Frame(self.leftMargin, self.bottomMargin, self.width, self.height, id="evidence")
        self.addPageTemplates([PageTemplate(id="evidence", frames=[frame], onPageEnd=self._footer)])

    def _footer(self, canvas, doc):
        canvas.saveState()
        canvas.setStrokeColor(GRID)
        canvas.setLineWidth(0.4)
        canvas.line(15 * mm, 14 * mm, A4[0] - 15 * mm, 14 * mm)
        draw_text(canvas, 15 * mm, 10 * mm, f"打印日期 {self.ctx.today.isoformat()}", 7.5)
        draw_text(canvas, A4[0] - 15 * mm, 10 * mm, f"{self.footer} · 第 {doc.page} 页", 7.5, "right")
        canvas.restoreState()


def build_evidence(path, doc: dict, photos: list[dict], ctx: Context, loader: Loader) -> int:
    """A household's evidence pages: a title block, then every photo (two landscape photos a page)
    with its caption, date and who added it. Returns the number of pages."""
    register_fonts()
    st = styles()
    head, number = doc.get("head_name") or "", doc.get("household_number") or ""
    template = EvidenceDocument(path, ctx, f"户主 {head} · 户编号 {number}")
    story: list = [
        Paragraph(markup("建档立卡贫困户 佐证材料"), st["title"]),
        Paragraph(markup("户主:") + value_markup(head, True) + markup("  户编号:") + value_markup(number, True),
                  st["subtitle"]),
        Paragraph(markup("住址:") + value_markup(ctx.address(doc.get("village_code"), doc.get("group")), True),
                  st["subtitle"]),
        Paragraph(markup(f"共 {len(photos)} 张"), st["subtitle"]),
        Spacer(1, 4 * mm),
    ]
    caption = st["body"].clone("caption", fontSize=8.5, leading=11.5)
    for i, p in enumerate(photos, 1):
        lines = caption_lines(p)
        block = [Photo(p, loader, WIDTH, 98 * mm), Spacer(1, 1.5 * mm),
                 Paragraph(markup(f"{i}. {lines[0]}"), caption), Paragraph(markup(lines[1]), caption), Spacer(1, 5 * mm)]
        story.append(KeepTogether(block))
    template.build(story)
    return template.page
