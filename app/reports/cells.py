"""Table cells that cost little: most cells of a register or a card hold one short line of plain
text, and a reportlab Paragraph for each (markup parsed, wrapped three times: for the row heights,
at each page split and when drawn) was most of the printing time.

`Line(text, style)` is a drop-in for `Paragraph(markup(text), style)` in a table cell: when the text
fits on one line of the cell it is drawn exactly where the Paragraph would draw it (same fonts per
run, same baseline, same alignment), without parsing markup; otherwise it becomes that Paragraph.
Wraps are cached per width. `cell()` picks a Line where one can stand for the paragraph.

`page_tables()` cuts a long table into one table per page (with the header row on each) where
reportlab itself would split it, so that a long register costs the same per row as a short one:
reportlab's own split re-measures every remaining row at each page.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator

from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab import rl_config
from reportlab.lib.rl_accel import fp_str
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, Table
from reportlab.platypus.tables import _SPECIALROWS, LINECOMMANDS, CellStyle, _setCellStyle

from app.reports.common import MIN_NUMBER_SIZE, NUMBER, markup, number_para, number_style, runs, value_markup

FIT_MARGIN = 0.01  # points: a text this close to the cell's width is left to Paragraph's own line breaking
REPLAY = True  # write kept operators again (`_Replay`, `Line.drawOn`); tests turn it off to compare


class _WrapCache:
    """Wraps once per available width (a table wraps each cell again and again)."""

    _wrapped: tuple | None = None

    def wrap(self, availWidth, availHeight):
        # the table measures a cell at w - padding and draws it at a width computed another way,
        # which may differ in the last bit
        if self._wrapped is not None and abs(self._wrapped[0] - availWidth) < 1e-6:
            return self._wrapped[1]
        size = super().wrap(availWidth, availHeight)
        self._wrapped = (availWidth, size)
        return size


class CachedParagraph(_WrapCache, Paragraph):
    """A Paragraph that wraps once per available width."""


_cached_classes: dict[type, type] = {}


def cached(flowable: Paragraph) -> Paragraph:
    """The same paragraph, its wraps cached (its class becomes a subclass with `_WrapCache`)."""
    cls = type(flowable)
    if not issubclass(cls, _WrapCache):
        sub = _cached_classes.get(cls)
        if sub is None:
            sub = _cached_classes[cls] = type(f"Cached{cls.__name__}", (_WrapCache, cls), {})
        flowable.__class__ = sub
    return flowable


class _Replay:
    """Drawn once per document, replayed after: a paragraph shared by every card of a document (a
    heading, a label, an unmarked check box) writes the same operators wherever it is drawn, only
    translated. The operators its first draws wrote on a canvas are kept (on the canvas: font subset
    codes belong to one document) and written again, between the same save, translation and restore
    reportlab's own `drawOn` writes: the page content is byte for byte what drawing it would give.
    Kept only once two draws at different places wrote the same operators."""

    def drawOn(self, canvas, x, y, _sW=0):
        kept = canvas.__dict__.setdefault("_jd_replay", {})
        entry = kept.get(id(self))
        if REPLAY and entry is not None and entry[0] is self and entry[2]:
            canvas.saveState()
            canvas.translate(self._hAlignAdjust(x, _sW), y)
            canvas._code.extend(entry[1])
            canvas.restoreState()
            return
        start = len(canvas._code)
        super().drawOn(canvas, x, y, _sW)
        code = canvas._code[start:]
        body = code[2:-1] if len(code) >= 3 and code[0] == "q" and code[1].endswith(" cm") and code[-1] == "Q" else None
        if entry is None or entry[0] is not self:
            kept[id(self)] = (self, body, False)
        else:
            kept[id(self)] = (self, body, body is not None and body == entry[1])


_replayed_classes: dict[type, type] = {}


def replayed(flowable: Flowable) -> Flowable:
    """The same flowable, its drawing replayed after the first draws on a canvas (see `_Replay`): for a
    flowable object that a document draws many times."""
    cls = type(flowable)
    if not issubclass(cls, _Replay):
        sub = _replayed_classes.get(cls)
        if sub is None:
            sub = _replayed_classes[cls] = type(f"Replayed{cls.__name__}", (_Replay, cls), {})
        flowable.__class__ = sub
    return flowable


def _plain(text: str) -> bool:
    """Text a Paragraph would draw as it is: no line breaks, no runs of spaces to collapse."""
    return bool(text) and "\n" not in text and "  " not in text and text == text.strip() and "\t" not in text


_measured: dict[tuple[str, float], tuple[list, float]] = {}


def _measure(text: str, size: float) -> tuple[list, float]:
    """(font runs, width) of a text at a size; cached (a register repeats its statuses, causes, years)."""
    key = (text, size)
    found = _measured.get(key)
    if found is None:
        parts = runs(text)
        found = (parts, sum(stringWidth(chunk, font, size) for font, chunk in parts))
        if len(_measured) > 50_000:
            _measured.clear()
        _measured[key] = found
    return found


_canvases_keeping_lines: weakref.WeakSet = weakref.WeakSet()


def _kept_lines(canvas) -> dict:
    """The text operators of one-line cells kept on a canvas (see `Line.drawOn`)."""
    kept = canvas.__dict__.get("_jd_lines")
    if kept is None:
        kept = canvas.__dict__["_jd_lines"] = {}
        _canvases_keeping_lines.add(canvas)
    return kept


def forget() -> None:
    """Drop the measured texts and the text operators kept on canvases (between chunks of a long
    document, every few hundred rows of a register: kept, the names and numbers of every household
    printed so far would hold memory that printing page by page is there to give back)."""
    _measured.clear()
    for canvas in list(_canvases_keeping_lines):
        canvas.__dict__.get("_jd_lines", {}).clear()


class Line(Flowable):
    """One line of plain text, drawn like a one-line Paragraph of `style`; a Paragraph when it does not
    fit (see the module doc)."""

    def __init__(self, text: str, style: ParagraphStyle, overflow: bool = False):
        super().__init__()
        self.text = text
        self.style = style
        self.overflow = overflow  # draw past the cell's right edge instead of wrapping (subtotal rows)
        self._runs, self.text_width = _measure(text, style.fontSize)
        self._para: Paragraph | None = None
        self._wrapped_as_paragraph = False

    def _paragraph(self) -> Paragraph:
        if self._para is None:
            self._para = CachedParagraph(markup(self.text), self.style)
        return self._para

    def wrap(self, availWidth, availHeight):
        self._wrapped_as_paragraph = not self.overflow and self.text_width > availWidth - FIT_MARGIN
        if self._wrapped_as_paragraph:
            return self._paragraph().wrap(availWidth, availHeight)
        self.width, self.height = availWidth, self.style.leading
        return availWidth, self.height

    def split(self, availWidth, availHeight):
        return []

    def getSpaceBefore(self):
        return self.style.spaceBefore

    def getSpaceAfter(self):
        return self.style.spaceAfter

    def drawOn(self, canvas, x, y, _sW=0):
        """Drawn straight at (x, y): no save, translate and restore of the canvas per cell."""
        if self._wrapped_as_paragraph:
            self._para.drawOn(canvas, x, y, _sW)
            return
        st = self.style
        if st.alignment == TA_CENTER:
            x += (self.width - self.text_width) / 2
        elif st.alignment == TA_RIGHT:
            x += self.width - self.text_width
        x += st.leftIndent
        y += self.height - st.fontSize
        # the text object's operators after its origin are the same wherever the text is drawn: kept
        # per canvas (font subset codes belong to one document), written again with the new origin
        kept = canvas.__dict__.get("_jd_lines") or _kept_lines(canvas)
        key = (self.text, st.fontSize, st.leading, st.textColor)
        ops = kept.get(key)
        if REPLAY and ops is not None and canvas.bottomup:
            canvas._code.append(f"BT 1 0 0 1 {fp_str(x, y)} Tm {ops} ET")
            return
        tx = canvas.beginText(x, y)
        tx.setFillColor(st.textColor)
        for font, chunk in self._runs:
            tx.setFont(font, st.fontSize, st.leading)
            tx.textOut(chunk)
        code = tx.getCode()
        canvas._code.append(code)  # what canvas.drawText(tx) writes
        head = f"BT 1 0 0 1 {fp_str(x, y)} Tm "
        if canvas.bottomup and code.startswith(head) and code.endswith(" ET"):
            if len(kept) > 20_000:
                kept.clear()
            kept[key] = code[len(head):-3]

    def draw(self):
        self.drawOn(self.canv, 0, 0)


class _Empty(Flowable):
    """What Paragraph("") is in a cell: nothing, zero high."""

    def wrap(self, availWidth, availHeight):
        return availWidth, 0

    def draw(self):
        pass


def cell(text, style: ParagraphStyle, required: bool = False) -> Flowable:
    """`para(text, style, required)` made cheap: a Line for plain text, else the Paragraph (the red
    待完善 mark of an empty required value, text with line breaks)."""
    text = "" if text is None else str(text)
    if _plain(text):
        return Line(text, style)
    if not text and not required:
        return _Empty()
    return CachedParagraph(value_markup(text, required), style)


def row_height(row: list, widths: list[float], pad_h: float, pad_v: float, string_leading: float) -> float:
    """The height reportlab's Table gives a row of these cells (flowables wrapped at the column width
    less the padding; a string cell is `string_leading` per line), paddings included."""
    h = 0.0
    for value, w in zip(row, widths):
        if isinstance(value, Flowable):
            t = value.wrap(w - 2 * pad_h, 1e9)[1]
        else:
            t = string_leading * len(str(value or "").split("\n"))
        h = max(h, t + 2 * pad_v)
    return h


def page_tables(header: list, rows: list[list], heights: list[float], header_height: float, avail: float,
                widths: list[float], style_for) -> list[Table]:
    """One Table per page: the header, then as many rows as fit in `avail` points, cut where
    reportlab's Table.split would cut (a row goes to the next page when it would pass `avail`).
    `style_for(first, last)` gives the TableStyle commands of a page holding rows[first:last] (row
    indices in the page's table are 1-based: the header is row 0). Heights are given to each table,
    so no cell is measured twice."""
    return list(iter_page_tables(header, zip(rows, heights), header_height, avail, widths, style_for))


def iter_page_tables(header: list, rows: Iterable[tuple[list, float]], header_height: float, avail: float,
                     widths: list[float], style_for) -> Iterator[Table]:
    """`page_tables` of (row, height) pairs as they come: each page's table as soon as its rows are
    known, holding no more than one page of rows (a register printed page by page)."""
    page: list[list] = []
    heights: list[float] = []
    start = 0
    h = header_height
    for row, height in rows:
        if page and h + height > avail:
            yield _page_table(header, page, heights, header_height, widths, style_for(start, start + len(page)))
            start += len(page)
            page, heights, h = [], [], header_height
        page.append(row)
        heights.append(height)
        h += height
    if page:
        yield _page_table(header, page, heights, header_height, widths, style_for(start, start + len(page)))


def _page_table(header, rows, heights, header_height, widths, style) -> Table:
    t = Table([header] + rows, colWidths=widths, rowHeights=[header_height] + heights, repeatRows=1)
    t.setStyle(style)
    return t


def number_cell(text, style: ParagraphStyle, width: float, required: bool = False, bold: bool = False) -> Flowable:
    """`common.number_para` made cheap (the same look): a number stays on one line, in a smaller font
    when the cell is too narrow for it; any other text is a `cell`."""
    text = "" if text is None else str(text)
    if bold or not NUMBER.fullmatch(text):
        return number_para(text, style, width, required, bold) if bold else cell(text, style, required)
    size = style.fontSize  # common.number_style's search, the widths measured once (`_measure`)
    while size > MIN_NUMBER_SIZE and _measure(text, size)[1] > width:
        size -= 0.25
    return Line(text, number_style(text, style, width, size))


_shared: dict[tuple, Flowable] = {}


def shared_paragraph(text: str, style: ParagraphStyle) -> Flowable:
    """One Paragraph of this markup and style for the whole document (the same unmarked check box of a
    code list appears on every card): built and wrapped once."""
    key = (text, style.name, style.fontName, style.fontSize, style.leading, style.alignment)
    found = _shared.get(key)
    if found is None:
        if len(_shared) > 5000:
            _shared.clear()
        found = _shared[key] = replayed(CachedParagraph(text, style))
    return found


def shared_head(text, style: ParagraphStyle, width: float) -> Flowable:
    """`common.head_para` (a heading or label that breaks only between words) made once per document
    for each text, style and width: every card repeats the same labels and column headings."""
    from app.reports.common import head_para

    key = ("head", str(text), style.name, style.fontName, style.fontSize, style.leading, style.alignment, round(width, 4))
    found = _shared.get(key)
    if found is None:
        if len(_shared) > 5000:
            _shared.clear()
        found = _shared[key] = replayed(cached(head_para(text, style, width)))
    return found


def sized_table(rows: list[list], widths: list[float], pad_h: float, pad_v: float,
                col_spans: tuple[tuple[int, int, int], ...] = (), string_leading: float = 12.0,
                row_span: tuple[int, int, int] | None = None, **kw) -> Table:
    """`Table(rows, colWidths=widths, **kw)` given the row heights reportlab would compute (cells with
    `pad_h` left and right, `pad_v` top and bottom padding; a string cell is `string_leading` a line,
    as a TableStyle without LEADING has it), so the table does not measure every cell again when
    it is laid out. `col_spans` are the (row, first column, last column) of cells spanning columns:
    measured at the spanned width, the cells they cover not at all. `row_span` is one (column, first
    row, last row) cell spanning rows: when the rows are high enough for it they keep their heights
    (reportlab's spanFixDim leaves them), else the table is left to reportlab to share the height out."""
    positions = [0]
    width = 0
    for w in widths:  # as Table._calc_width sums them
        width = width + w
        positions.append(width)
    spans = {(row, first): last for row, first, last in col_spans}
    covered = {(row, c) for row, first, last in col_spans for c in range(first + 1, last + 1)}
    under_row_span = set()
    if row_span is not None:
        col, first, last = row_span
        under_row_span = {(r, col) for r in range(first, last + 1)}
    heights = []
    for r, row in enumerate(rows):
        h = 0
        for c, value in enumerate(row):
            if (r, c) in under_row_span:
                continue
            w = widths[c]
            last = spans.get((r, c))
            if last is not None:
                w = max(positions[last + 1] - positions[c], w)
            if isinstance(value, Flowable):  # as Table._listCellGeom measures one flowable
                if (r, c) in covered:  # (a string under a span still counts, as in Table._calc_height)
                    continue
                aw = w - pad_h - pad_h
                if type(value) is Line and (value.overflow or value.text_width <= aw - FIT_MARGIN):
                    st = value.style  # what Line.wrap does for a line that fits
                    value._wrapped_as_paragraph = False
                    value.width, value.height = aw, st.leading
                    before, after = st.spaceBefore, st.spaceAfter
                    t = st.leading + after + before
                else:
                    before, after = value.getSpaceBefore(), value.getSpaceAfter()
                    t = value.wrap(aw, 72000 - pad_v - pad_v)[1] + after + before
                t = t - before - after
            else:
                t = string_leading * len((value is not None and str(value) or "").split("\n"))
            t += pad_v + pad_v
            h = max(h, t)
        heights.append(h)
    if row_span is not None:
        col, first, last = row_span
        value = rows[first][col]
        if isinstance(value, Flowable):
            needed = value.wrap(widths[col] - pad_h - pad_h, 72000 - pad_v - pad_v)[1] + pad_v + pad_v
        else:
            needed = string_leading * len((value is not None and str(value) or "").split("\n")) + pad_v + pad_v
        if sum(heights[first:last + 1]) < needed - rl_config._FUZZ:
            return Table(rows, colWidths=widths, **kw)
    return SizedTable(rows, colWidths=widths, rowHeights=heights, **kw)


_NOT_CELL_COMMANDS = frozenset(("BACKGROUND", "ROWBACKGROUNDS", "COLBACKGROUNDS", "SPAN", "NOSPLIT",
                                "ROUNDEDCORNERS", *LINECOMMANDS))


class SizedTable(Table):
    """A Table that draws what reportlab's Table draws, for less:

    - its cells share one CellStyle while the style commands cover every cell (reportlab makes one per
      cell and sets each command on each: the card's tables have 230 cells and 7 such commands);
    - one-flowable cells are placed without building lists for them: the same positions
      `Table._drawCell` computes (valign, alignment, paddings), the same canvas calls;
    - a one-line `Line` cell whose operators the canvas keeps, and a `_Replay` cell drawn before, are
      written straight into the page from the cell's position (`_draw_kept`);
    - the grid lines of a table of the same geometry and line commands as one drawn before on the
      canvas are the operators that one wrote (`_drawLines`).
    Each writes byte for byte what reportlab writes (tests compare the content streams with `REPLAY`
    off and with reportlab's Table)."""

    def __init__(self, data, *args, cellStyles=None, **kw):
        self._shared_style = None
        if cellStyles is None and data:
            self._shared_style = CellStyle("shared")
            ncols = max(len(row) for row in data)
            cellStyles = [[self._shared_style] * ncols for _ in data]
        super().__init__(data, *args, cellStyles=cellStyles, **kw)

    def _addCommand(self, cmd):
        shared = self._shared_style
        if shared is not None and cmd[0] not in _NOT_CELL_COMMANDS:
            (op, (sc, sr), (ec, er)), values = cmd[:3], cmd[3:]
            if sr not in _SPECIALROWS:
                if self.normCellRange(sc, ec, sr, er) == (0, self._ncols - 1, 0, self._nrows - 1):
                    _setCellStyle([[shared]], 0, 0, op, values)  # what reportlab sets on every cell
                    return
                # a command for some cells: each cell its own copy from now on
                self._cellStyles = [[CellStyle(repr((i, j)), shared) for j in range(self._ncols)]
                                    for i in range(self._nrows)]
                self._shared_style = None
        super()._addCommand(cmd)

    def draw(self):
        if not REPLAY or self._renderCB or self._shadow or getattr(self, "_cornerRadii", None):
            return super().draw()
        c = self.canv
        c.saveState()
        self._curweight = self._curcolor = self._curcellstyle = None
        self._roundingRectDef = None  # (what _makeRoundedCornersClip sets without corner radii)
        self._drawBkgrnd()
        draw_kept, draw_cell = self._draw_kept, self._drawCell
        kept_lines = _kept_lines(c)
        kept_replays = c.__dict__.setdefault("_jd_replay", {})
        bottomup = c.bottomup
        if not self._spanCmds:
            colpositions, widths = self._colpositions[:-1], self._colWidths
            for row, rowstyle, rowpos, rowheight in zip(self._cellvalues, self._cellStyles, self._rowpositions[1:],
                                                        self._rowHeights):
                for cellval, cellstyle, colpos, colwidth in zip(row, rowstyle, colpositions, widths):
                    if not (bottomup and draw_kept(cellval, cellstyle, colpos, rowpos, colwidth, rowheight,
                                                   kept_lines, kept_replays)):
                        draw_cell(cellval, cellstyle, (colpos, rowpos), (colwidth, rowheight))
        else:
            rects, values, styles = self._spanRects, self._cellvalues, self._cellStyles
            for rowNo in range(self._nrows):
                for colNo in range(self._ncols):
                    rect = rects[colNo, rowNo]
                    if rect is not None:
                        x, y, width, height = rect
                        cellval, cellstyle = values[rowNo][colNo], styles[rowNo][colNo]
                        if not (bottomup and draw_kept(cellval, cellstyle, x, y, width, height,
                                                       kept_lines, kept_replays)):
                            draw_cell(cellval, cellstyle, (x, y), (width, height))
        self._drawLines()
        c.restoreState()

    def _use_style(self, cellstyle):
        """What `Table._drawCell` does first: the cell style's colour and font set when they change."""
        if self._curcellstyle is not cellstyle:
            canv = self.canv
            cur = self._curcellstyle
            if cur is None or cellstyle.color != cur.color:
                canv.setFillColor(cellstyle.color)
            if (cur is None or cellstyle.leading != cur.leading or cellstyle.fontname != cur.fontname
                    or cellstyle.fontsize != cur.fontsize):
                canv.setFont(cellstyle.fontname, cellstyle.fontsize, cellstyle.leading)
            self._curcellstyle = cellstyle

    def _draw_kept(self, cellval, s, colpos, rowpos, colwidth, rowheight, kept_lines, kept_replays) -> bool:
        """Write a cell whose operators the canvas keeps (a `Line` that fits, a `_Replay` drawn before)
        at the place `_drawCell` would put it; False (nothing written) for any other cell."""
        cls = type(cellval)
        if cls is Line:
            st = cellval.style
            ops = kept_lines.get((cellval.text, st.fontSize, st.leading, st.textColor))
            if ops is None or cellval.overflow:
                return False
            aw = colwidth - s.leftPadding - s.rightPadding
            if cellval.text_width > aw - FIT_MARGIN:
                return False
            self._use_style(s)
            cellval.width = aw  # what Line.wrap sets
            cellval.height = vh = st.leading
            cellval._wrapped_as_paragraph = False
            before, after = st.spaceBefore, st.spaceAfter
            vw = aw
        elif issubclass(cls, _Replay):
            entry = kept_replays.get(id(cellval))
            if entry is None or entry[0] is not cellval or not entry[2]:
                return False
            wrapped = getattr(cellval, "_wrapped", None)
            aw = colwidth - s.leftPadding - s.rightPadding
            if wrapped is None or abs(wrapped[0] - aw) >= 1e-6:
                return False
            self._use_style(s)
            vw, vh = wrapped[1]
            before, after = cellval.getSpaceBefore(), cellval.getSpaceAfter()
        else:
            return False
        origin = _cell_origin(s, colpos, rowpos, colwidth, rowheight, vw, vh, before, after)
        if origin is None:
            return False
        x, y = origin
        code = self.canv._code
        if cls is Line:  # Line.drawOn with its kept operators
            if st.alignment == TA_CENTER:
                x += (cellval.width - cellval.text_width) / 2
            elif st.alignment == TA_RIGHT:
                x += cellval.width - cellval.text_width
            x += st.leftIndent
            y += vh - st.fontSize
            code.append(f"BT 1 0 0 1 {fp_str(x, y)} Tm {ops} ET")
        else:  # _Replay.drawOn: saveState, translate, the kept body, restoreState
            code.append("q")
            code.append(f"{fp_str(1, 0, 0, 1, x, y)} cm")
            code.extend(entry[1])
            code.append("Q")
        return True

    def _drawLines(self):
        """reportlab's grid lines; the operators of a table of the same geometry and line commands
        drawn before on this canvas written again (they are drawn between save and restore, in the
        table's own coordinates)."""
        c = self.canv
        if not REPLAY or self._roundingRectDef:
            return super()._drawLines()
        key = (tuple(self._colpositions), tuple(self._rowpositions), tuple(self._linecmds), tuple(self._spanCmds),
               self._curweight, self._curcolor, tuple(c._extgstate._d.items()))
        kept = c.__dict__.setdefault("_jd_table_lines", {})
        found = kept.get(key)
        if found is not None:
            c._code.extend(found[0])
            self._curweight = found[1]
            self._curcolor = None
            return
        start = len(c._code)
        super()._drawLines()
        if len(kept) > 5000:
            kept.clear()
        kept[key] = (c._code[start:], self._curweight)


    def _drawCell(self, cellval, cellstyle, pos, size):
        if not isinstance(cellval, Flowable):
            return super()._drawCell(cellval, cellstyle, pos, size)
        canv = self.canv
        self._use_style(cellstyle)
        colpos, rowpos = pos
        colwidth, rowheight = size
        s = cellstyle
        vw, vh = cellval.wrapOn(canv, colwidth - s.leftPadding - s.rightPadding,
                               rowheight - s.topPadding - s.bottomPadding)
        before, after = cellval.getSpaceBefore(), cellval.getSpaceAfter()
        origin = _cell_origin(s, colpos, rowpos, colwidth, rowheight, vw, vh, before, after)
        if origin is None:
            return super()._drawCell(cellval, cellstyle, pos, size)
        x, y = origin
        cellval.drawOn(canv, x, y)


def _cell_origin(s, colpos, rowpos, colwidth, rowheight, vw, vh, before, after):
    """Where a one-flowable cell's content is drawn: the arithmetic of reportlab's Table._drawCell
    (sizes summed as Table._listCellGeom sums one flowable), or None for an alignment it leaves to
    reportlab (e.g. DECIMAL)."""
    w, h = max(0, vw), vh + after + before - before - after
    valign, just = s.valign, s.alignment
    if valign == "TOP":
        y = rowpos + rowheight - s.topPadding
    elif valign == "BOTTOM":
        y = rowpos + s.bottomPadding + h
    else:
        y = rowpos + (rowheight + s.bottomPadding - s.topPadding + h) / 2.0
    if just == "LEFT":
        x = colpos + s.leftPadding
    elif just == "RIGHT":
        x = colpos + colwidth - s.rightPadding - w
    elif just in ("CENTRE", "CENTER"):
        x = colpos + (colwidth + s.leftPadding - s.rightPadding - w) / 2.0
    else:
        return None
    y += before  # added and taken off again as reportlab does, so that the figures round alike
    y -= before
    return x, y - vh
