"""What every printed document shares: embedded fonts, paragraph styles, the "待完善" mark, page
numbering "第 n 页 共 m 页" and the atomic write of the finished PDF.

Fonts: the bundled CJK font (app.paths.font_path(), DroidSansFallbackFull) has no Latin letters or
digits, so runs of characters it lacks are set in Bitstream Vera (shipped inside reportlab). Both are
TrueType and embedded as subsets: no PDF relies on a font installed on the printing machine, and no
standard-14 font is used anywhere.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfdoc, pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import Paragraph

from app import fileio, paths

CJK = "JDCJK"
LATIN = "JDLatin"
MISSING = "待完善"
MISSING_COLOR = "#c00000"
GRID = colors.HexColor("#555555")
HEAD_BG = colors.HexColor("#e8e8e8")
FONT_CMD = ("FONTNAME", (0, 0), (-1, -1), CJK)  # tables otherwise select Helvetica for every cell


class ReportError(Exception):
    """A document cannot be made for a reason the user can act on (Chinese message)."""


_cjk_chars: set[int] | None = None
_latin_chars: set[int] = set()


def register_fonts() -> None:
    """Register the two embedded fonts once per process."""
    global _cjk_chars, _latin_chars
    if _cjk_chars is not None:
        return
    font = paths.font_path()
    if not font.exists():
        raise ReportError(f"找不到打印字体 {font}:请重新安装本程序")
    cjk = TTFont(CJK, str(font))
    latin = TTFont(LATIN, latin_font_path())
    pdfmetrics.registerFont(cjk)
    pdfmetrics.registerFont(latin)
    _latin_chars = set(latin.face.charToGlyph)
    _cjk_chars = set(cjk.face.charToGlyph)


def font_chars() -> dict[str, set[int]]:
    """The code points each embedded font has a glyph for (font name -> set)."""
    register_fonts()
    return {CJK: _cjk_chars, LATIN: _latin_chars}


def latin_font_path() -> str:
    return str(paths.latin_font_path())


def _font_of(ch: str) -> tuple[str, str]:
    """(font, text) for one character: the CJK font where it has the glyph (ASCII always Latin),
    else the Latin font where it has it, else the character's compatibility form (full-width
    letters, ligatures …) where a font has that; a character in neither font stays in the CJK font."""
    code = ord(ch)
    if code > 0x7F and code in _cjk_chars:
        return CJK, ch
    if code in _latin_chars or ch == "\n":
        return LATIN, ch
    plain = unicodedata.normalize("NFKC", ch)
    if plain != ch and plain and all(ord(c) in _latin_chars for c in plain):
        return LATIN, plain
    if plain != ch and plain and all(ord(c) in _cjk_chars and ord(c) > 0x7F for c in plain):
        return CJK, plain
    return CJK, ch


def runs(text: str) -> list[tuple[str, str]]:
    """Split text into (font name, chunk) runs, choosing the font per character (`_font_of`):
    every printed string goes through here, so no character is set in a font without its glyph."""
    register_fonts()
    out: list[tuple[str, str]] = []
    for ch in text:
        font, ch = _font_of(ch)
        if out and out[-1][0] == font:
            out[-1] = (font, out[-1][1] + ch)
        else:
            out.append((font, ch))
    return out


def markup(text) -> str:
    """Paragraph markup for plain text: escaped, with Latin runs in the Latin font."""
    if text is None:
        return ""
    text = str(text)
    parts = []
    for font, chunk in runs(text):
        chunk = escape(chunk).replace("\n", "<br/>")
        parts.append(chunk if font == CJK else f'<font name="{LATIN}">{chunk}</font>')
    return "".join(parts)


@functools.lru_cache(maxsize=4096)
def label_markup(text: str) -> str:
    """`markup` of a label or code text that many pages repeat (worked out once)."""
    return markup(text)


def missing_mark() -> str:
    return f'<font color="{MISSING_COLOR}"><u>{MISSING}</u></font>'


def value_markup(text, required: bool = False) -> str:
    """A value as markup; an empty required value shows the visible 待完善 mark."""
    if text is None or text == "" or text == []:
        return missing_mark() if required else ""
    return markup(text)


def string_width(text: str, size: float) -> float:
    return sum(pdfmetrics.stringWidth(chunk, font, size) for font, chunk in runs(text))


def draw_text(c, x: float, y: float, text: str, size: float, align: str = "left") -> None:
    """Draw one line of mixed text on a canvas (headers, footers)."""
    parts = runs(text)  # split and measured once (a footer on every page)
    widths = [pdfmetrics.stringWidth(chunk, font, size) for font, chunk in parts]
    width = sum(widths)
    if align == "right":
        x -= width
    elif align == "center":
        x -= width / 2
    for (font, chunk), w in zip(parts, widths):
        c.setFont(font, size)
        c.drawString(x, y, chunk)
        x += w


def styles() -> dict[str, ParagraphStyle]:
    register_fonts()
    base = ParagraphStyle("body", fontName=CJK, fontSize=9, leading=12.5, wordWrap="CJK")
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7.5, leading=10),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10.5),
        "cell_c": ParagraphStyle("cell_c", parent=base, fontSize=8, leading=10.5, alignment=TA_CENTER),
        "cell_r": ParagraphStyle("cell_r", parent=base, fontSize=8, leading=10.5, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", parent=base, fontSize=8, leading=10.5, alignment=TA_CENTER),
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=24, alignment=TA_CENTER, spaceAfter=4),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=10, leading=14, alignment=TA_CENTER),
        "h2": ParagraphStyle("h2", parent=base, fontSize=11, leading=15, spaceBefore=7, spaceAfter=3, alignment=TA_LEFT),
        "notice": ParagraphStyle("notice", parent=base, fontSize=11, leading=18, firstLineIndent=22),
    }


def para(text, style, required: bool = False) -> Paragraph:
    return Paragraph(value_markup(text, required), style)


NUMBER = re.compile(r"[-+]?[0-9*][0-9*,.:/%Xx-]*")  # amounts, dates, ID/account numbers (masked too)
MIN_NUMBER_SIZE = 5.0
_number_styles: dict[tuple, ParagraphStyle] = {}


def number_para(text, style: ParagraphStyle, width: float, required: bool = False, bold: bool = False) -> Paragraph:
    """A table cell `width` points wide (inside its padding). A number (an amount like 123,456.78, a
    date, an ID or account number) is never broken across lines: it stays on one line, in a smaller
    font when the cell is too narrow for it at the style's size. Any other text wraps as `para`."""
    text = "" if text is None else str(text)
    if not NUMBER.fullmatch(text):
        return Paragraph(f"<b>{value_markup(text, required)}</b>" if bold and text else value_markup(text, required), style)
    return Paragraph(f"<b>{markup(text)}</b>" if bold else markup(text), number_style(text, style, width))


def number_style(text: str, style, width: float, size: float | None = None):
    """`style` at the largest size (not below MIN_NUMBER_SIZE) at which `text` fits `width` on one line,
    never wrapped (cached per size); `size` when the caller has found it so."""
    if size is None:
        size = style.fontSize
        while size > MIN_NUMBER_SIZE and string_width(text, size) > width:
            size -= 0.25
    key = (style.name, style.fontSize, style.leading, style.alignment, size)
    fitted = _number_styles.get(key)
    if fitted is None:
        fitted = _number_styles[key] = style.clone(f"{style.name}-number-{size}", fontSize=size,
                                                   wordWrap=None, splitLongWords=0)
    return fitted


HEAD_BREAK = re.compile(r"(?<=[/、 ])|(?=[((])")  # a heading may break after / 、 space, before a bracket
MIN_HEAD_SIZE = 6.0
_head_styles: dict[tuple, ParagraphStyle] = {}


def header_words(text: str) -> list[str]:
    """The words of a column heading or field label, the only places it may break between:
    年人均纯收入(元) is 年人均纯收入 + (元), 就业/转移就业 is 就业/ + 转移就业, 与户主关系 is one word."""
    return [w for w in HEAD_BREAK.split(str(text)) if w.strip()]


class HeaderParagraph(Paragraph):
    """A heading or label laid out by `head_para`; `words` are the pieces it may break between."""

    words: list[str]


def head_para(text, style: ParagraphStyle, width: float) -> HeaderParagraph:
    """A column heading or field label in a cell `width` points wide (inside its padding). It breaks
    only between words (`header_words`), never inside one (与户主关/系 was a defect): the lines are
    laid out here, and the font shrinks (down to 6 pt) until the longest word fits the cell."""
    text = "" if text is None else str(text)
    words = header_words(text) or [text]
    body, fitted = _lay_out([words], style, width, "head")
    p = HeaderParagraph(body, fitted)
    p.words = words
    return p


def kept_para(lines: list[list[str]], style: ParagraphStyle, width: float) -> Paragraph:
    """A table cell `width` points wide (inside its padding) whose text is given as lines of pieces
    that must not be broken (a date, an amount, a code's label): each line starts on a line of its
    own, a line longer than the cell breaks only between its pieces, and the font shrinks (down to
    6 pt) until the longest piece fits. 因务工就业不稳(2026-0 / 3-15,已消除) was a defect."""
    lines = [[w for w in line if w.strip()] for line in lines]
    lines = [line for line in lines if line]
    if not lines:
        return Paragraph("", style)
    body, fitted = _lay_out(lines, style, width, "kept")
    return Paragraph(body, fitted)


def _lay_out(groups: list[list[str]], style: ParagraphStyle, width: float, kind: str) -> tuple[str, ParagraphStyle]:
    """The markup of `groups` (each a list of unbreakable words starting a new line) laid out in
    `width`, and the style at the size at which the longest word fits (cached per size)."""
    size = style.fontSize
    longest = max(string_width(w, size) for words in groups for w in words)
    while size > MIN_HEAD_SIZE and longest > width:
        size -= 0.25
        longest = max(string_width(w, size) for words in groups for w in words)
    lines: list[str] = []
    for words in groups:
        start = len(lines)
        for word in words:
            if len(lines) > start and string_width(lines[-1] + word, size) <= width:
                lines[-1] += word
            else:
                lines.append(word)
    key = (kind, style.name, style.fontSize, style.leading, style.alignment, size)
    fitted = _head_styles.get(key)
    if fitted is None:
        leading = style.leading * size / style.fontSize
        fitted = _head_styles[key] = style.clone(f"{style.name}-{kind}-{size}", fontSize=size, leading=leading,
                                                 wordWrap=None, splitLongWords=0)
    return "<br/>".join(markup(line.strip()) for line in lines), fitted


COMPACT_PAGES = True  # pages held for the page count compressed (tests turn it off to compare)


def numbered_canvas(header: Callable | None = None, footer_left: str = ""):
    """A canvas class that writes "第 n 页 共 m 页" (and an optional header) on every page once
    the page count is known."""

    class NumberedCanvas(rl_canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._saved_pages = []

        def showPage(self):
            # the page is held until the page count is known: its operators compressed (a register
            # page's took 40 KB; thousands of households make hundreds of pages)
            state = dict(self.__dict__)
            if COMPACT_PAGES:
                state["_code"] = zlib.compress("\n".join(self._code).encode("utf-8"), 1) if self._code else None
            self._saved_pages.append(state)
            self._startPage()

        def save(self):
            total = len(self._saved_pages)
            for i, state in enumerate(self._saved_pages):
                self._saved_pages[i] = None  # each page freed as it is written
                self.__dict__.update(state)
                if COMPACT_PAGES:
                    self._code = [zlib.decompress(state["_code"]).decode("utf-8")] if state["_code"] else []
                width, _ = self._pagesize
                self.setFillColor(colors.black)
                draw_text(self, width / 2, 8 * 2.8346, f"第 {self._pageNumber} 页 共 {total} 页", 8.5, "center")
                if footer_left:
                    draw_text(self, 12 * 2.8346, 8 * 2.8346, footer_left, 7.5)
                if header:
                    header(self, self._pageNumber)
                super().showPage()
                if COMPACT_PAGES:
                    _compress_page(self._doc)
            super().save()

    return NumberedCanvas


def _compress_page(doc) -> None:
    """The content stream of the page just added to `doc` filtered now (compressed, as reportlab
    would filter it when it writes the file): reportlab keeps each page's operators as text until
    then. The same stream object, bytes and dictionary as `PDFPage.check_format` and
    `PDFStream.format` make."""
    page = doc.Pages.pages[-1]
    if page.Override_default_compilation or page.Contents or not page.stream or not page.compression:
        return
    filters = rl_config.useA85 and [pdfdoc.PDFBase85Encode, pdfdoc.PDFZCompress] or [pdfdoc.PDFZCompress]
    content = page.stream
    for f in reversed(filters):
        content = f.encode(content)
    stream = pdfdoc.PDFStream(content=content)
    stream.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName(f.pdfname) for f in filters])
    stream.__Comment__ = "page stream"
    page.Contents = stream
    page.stream = None


def write_pdf(out, build: Callable[[str], None]) -> Path | None:
    """Build a PDF into a temporary file beside `out`, then move it into place: a failure (or a
    killed process) never leaves a half-written file under the requested name. `out` may also be a
    binary file object (io.BytesIO for a preview kept in memory): the PDF is built straight into it."""
    if hasattr(out, "write"):
        build(out)
        return None
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    if out.suffix.lower() != ".pdf":
        raise ReportError(f"输出文件 {out} 应以 .pdf 结尾")
    if not folder.is_dir():
        raise ReportError(f"无法写入 {out}:文件夹 {folder} 不存在,请先创建或换一个位置")
    if out.is_dir():
        raise ReportError(f"无法写入 {out}:这是一个文件夹,请给出文件名")
    try:  # owner-only, the temporary file removed in every path (app.fileio)
        fileio.write_atomic(out, build=lambda tmp: build(str(tmp)))
    except OSError as exc:
        raise ReportError(f"无法写入 {out}:{exc.strerror or exc}。请换一个有写入权限的位置") from None
    return out
