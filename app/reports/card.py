"""The household card / booklet (户有卡): A4 portrait pages following the 扶贫手册 sections.

`card_content(doc, ctx)` turns a household document into the text that is printed (section by
section); `card_digest` hashes that content (with full ID numbers and birth dates instead of ages, so
it does not change with the masking choice or the calendar); `card_story` lays it out. The QR code
on the card carries ``JDCARD1|<household id>|<digest>`` so a card can be checked against the
database later (app.services.printing.verify_card).
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
from collections.abc import Iterable
from contextlib import ExitStack
from itertools import chain, groupby, islice

import qrcode
from reportlab.graphics.barcode.qr import QrCode
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.rl_accel import fp_str
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import FILL_EVEN_ODD, FILL_NON_ZERO
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Frame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from app.core import idnumber
from app.core.income import TRANSFER_FIELDS, net_income, per_capita, transfer_income
from app.reports import cells
from app.reports.cells import CachedParagraph, number_cell, shared_head, shared_paragraph
from app.reports.cells import forget as forget_measured_texts
from app.reports.cells import _plain as _plain_title
from app.reports.cells import sized_table
from app.reports.cells import cell as text_cell
from app.reports.common import CJK, FONT_CMD, LATIN, GRID, HEAD_BG, MISSING, draw_text, label_markup, markup, missing_mark, register_fonts, styles, value_markup
from app.reports.context import Context, Progress, age_on, money
from app.reports.evidence import Loader, card_block
from app.reports.pdfjoin import PdfJoiner, SharedSubsets

QR_PREFIX = "JDCARD1"
DIGEST_CHARS = 16
WIDTH = A4[0] - 30 * mm

MEMBER_COLUMNS = [  # (key, heading, width mm)
    ("name", "姓名", 17), ("relation", "与户主关系", 17), ("sex", "性别", 8), ("age", "年龄", 8),
    ("id_number", "公民身份号码", 33), ("education", "文化程度", 15), ("school_status", "在校生状况", 17),
    ("labour_skill", "劳动技能", 18), ("health", "健康状况", 19), ("work", "务工状况", 28),
]
FULL_ID_NOTE = "证件号码和银行账号已部分隐藏,完整号码请向村委会或驻村工作队查询。"
INCOME_ROWS = ["wage_income", "business_income", "property_income", "dividend_income"]


def _id(value, full: bool) -> str:
    if not value:
        return ""
    return idnumber.normalise(value) if full else idnumber.mask(value)


def _bank(value, full: bool) -> str:
    if not value:
        return ""
    text = str(value)
    return text if full or len(text) <= 4 else "*" * (len(text) - 4) + text[-4:]


def latest_income(doc: dict) -> dict | None:
    incomes = [i for i in doc.get("incomes", []) if isinstance(i.get("year"), int)]
    return max(incomes, key=lambda i: i["year"]) if incomes else None


def card_content(doc: dict, ctx: Context, full_id: bool = False, for_digest: bool = False) -> dict:
    """Everything the card prints, as text, in order. Missing required values are ""."""
    d = ctx.dictionary
    show = ctx.show
    basic = []
    for key in ["household_number", "head_name", "phone", "group", "bank_name", "bank_account",
                "identification_standard", "attribute", "status", "first_identified", "planned_exit_year",
                "exit_year", "return_reason", "family_size", "military_family", "only_child", "two_daughters"]:
        value = doc.get(key)
        if key == "bank_account":
            text = _bank(value, full_id or for_digest)
        else:
            text = show("household", key, value)
        basic.append((key, ctx.label("household", key), text))
    causes = {"main": str(doc.get("main_cause") or ""), "other": [str(c) for c in doc.get("other_causes") or []]}
    members = []
    for m in doc.get("members", []):
        row = {}
        for key, _, _ in MEMBER_COLUMNS:
            if key == "age":
                age = age_on(m.get("birth_date"), ctx.today)
                if age is None and m.get("id_number") and idnumber.is_valid(m["id_number"]):
                    age = age_on(idnumber.parse(m["id_number"]).birth_date.isoformat(), ctx.today)
                row[key] = (m.get("birth_date") or "") if for_digest else ("" if age is None else str(age))
            elif key == "id_number":
                row[key] = _id(m.get("id_number"), full_id or for_digest)
            elif key == "work":
                text = show("member", "work_status", m.get("work_status"))
                if m.get("work_months") and text:
                    text += f" {m['work_months']}个月"
                if m.get("work_area") and text:
                    text += f"({m['work_area']})"
                row[key] = text
            else:
                row[key] = show("member", key, m.get(key))
        members.append(row)
    living = [(f.key, f.label, show("household", f.key, doc.get(f.key)))
              for s in d.kinds["household"].sections if s.key == "living" for f in s.fields]
    income = latest_income(doc)
    income_block = None
    if income:
        size = doc.get("family_size") if isinstance(doc.get("family_size"), int) else len(doc.get("members", []))
        pc = per_capita(income, size)
        line, line_year = ctx.line_for(income["year"])
        income_block = {
            "year": str(income["year"]),
            "rows": [(k, ctx.label("income", k), money(income.get(k))) for k in INCOME_ROWS]
            + [("transfer", "转移性收入", money(transfer_income(income)))]
            + [(k, ctx.label("income", k), money(income.get(k))) for k in TRANSFER_FIELDS]
            + [("business_expense", ctx.label("income", "business_expense"), money(income.get("business_expense")))],
            "net": money(net_income(income)),
            "size": str(size),
            "per_capita": money(pc),
            "line": money(line),
            "line_year": str(line_year or ""),
            "compare": "" if pc is None or line is None else (f"高于标准 {money(round(pc - line, 2))} 元" if pc >= line
                                                             else f"低于标准 {money(round(line - pc, 2))} 元"),
        }
    helpers = [[h.get("name") or "", h.get("unit") or "", show("helper", "unit_level", h.get("unit_level")),
                h.get("position") or "", h.get("phone") or "",
                "至".join(x for x in [h.get("start_date") or "", h.get("end_date") or ""] if x)]
               for h in doc.get("helpers", [])]
    plans = [[str(p.get("year") or ""), p.get("targets") or "", p.get("planned_measures") or "",
              p.get("project_name") or "", p.get("project_scale") or "", money(p.get("project_funds")),
              p.get("deadline") or ""] for p in sorted(doc.get("plans", []), key=lambda p: str(p.get("year") or ""))]
    measures = [[str(m.get("year") or ""), show("measure", "category", m.get("category")), m.get("content") or "",
                 m.get("unit") or "", money(m.get("amount")), m.get("date") or "", m.get("result") or "",
                 "已确认" if m.get("household_signed") else ""]
                for m in sorted(doc.get("measures", []), key=lambda m: str(m.get("date") or m.get("year") or ""))]
    visits = [[v.get("date") or "", v.get("visitor") or "", v.get("content") or "", v.get("household_words") or "",
               v.get("follow_up") or ""] for v in sorted(doc.get("visits", []), key=lambda v: str(v.get("date") or ""))]
    return {
        "id": doc.get("id") or "",
        "dictionary": d.version,
        "address": ctx.address(doc.get("village_code"), doc.get("group")),
        "basic": basic, "causes": causes, "members": members, "living": living, "income": income_block,
        "helpers": helpers, "plans": plans, "measures": measures, "visits": visits,
        "monitoring": _monitoring_content(doc, ctx),  # 防返贫动态监测 (issue #20)
        # the photos printed (by content address): only when there are any, so the digest of a card
        # without photos is what it always was
        **({"photos": [p.get("digest") for p in doc["photos"]]} if doc.get("photos") else {}),
    }


def _monitoring_content(doc: dict, ctx: Context) -> dict:
    from app.reports import monitoring_card

    return monitoring_card.content(doc, ctx)


def card_digest(doc: dict, ctx: Context) -> str:
    """A short SHA-256 digest of what a card of this household prints (independent of the print
    date and of ID masking)."""
    content = card_content(doc, ctx, for_digest=True)
    data = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


def qr_payload(household_id: str, digest: str) -> str:
    return f"{QR_PREFIX}|{household_id}|{digest}"


def parse_qr(text: str) -> tuple[str, str] | None:
    parts = str(text).strip().split("|")
    if len(parts) == 3 and parts[0] == QR_PREFIX:
        return parts[1], parts[2]
    return None


QR_MASK = 0  # every card's QR code uses mask pattern 0 (see _Matrix)


class _Matrix:
    """The QR matrix of a card's payload, for reportlab's QrCode flowable to draw (in place of its own
    encoder): level M, one 8-bit segment, the smallest version that holds it, as reportlab's encoder
    makes it, but with a fixed mask pattern, made by the qrcode package. A reader decodes every mask
    (the pattern is written in the code's format bits); reportlab's search for the mask with the
    fewest reader-unfriendly patterns made all eight matrices and scored each in pure Python, 7 ms a
    card, a fifth of a card's printing time. tests/test_card_print.py decodes the printed codes.
    The version (the smallest that holds the payload) depends only on the payload's length in bytes:
    found once per length (qrcode's best fit encodes the data a second time to count its bits)."""

    _versions: dict[int, int] = {}

    def __init__(self, payload: str):
        size = len(payload.encode("utf-8"))
        version = self._versions.get(size)
        code = qrcode.QRCode(version=version, error_correction=qrcode.constants.ERROR_CORRECT_M,
                             mask_pattern=QR_MASK, border=0)
        code.add_data(payload, optimize=0)
        code.make(fit=version is None)
        self._versions[size] = code.version
        self.modules = code.modules

    def make(self):
        pass

    def getModuleCount(self) -> int:
        return len(self.modules)


class _CardQr(QrCode):
    """reportlab's QrCode flowable drawing `_Matrix`: each run of dark modules in a row one filled
    rectangle, as `QrCode.draw` draws it (the same operators, written without a canvas call each)."""

    def draw(self):
        modules = self.qr.modules
        count = len(modules)
        border = self.qrBorder
        xsize = self.width / (count + border * 2.0)
        ysize = self.height / (count + border * 2.0)
        height = self.height
        fill = {FILL_EVEN_ODD: "f*", FILL_NON_ZERO: "f"}[self.canv._fillMode]
        code = self.canv._code
        for r, row in enumerate(modules):
            c = 0
            for dark, run in groupby(map(bool, row)):
                n = len(list(run))
                if dark:  # QrCode.draw's arithmetic, canvas.rect's operator
                    code.append("n %s re " % fp_str((c + border) * xsize, height - (r + border + 1) * ysize,
                                                    n * xsize, ysize * 1.05) + fill)
                c += n


def qr_flowable(payload: str, size: float = 24 * mm) -> QrCode:
    """The QR code as a flowable drawn straight on the canvas (much faster than a Drawing)."""
    flowable = _CardQr("", width=size, height=size, qrLevel="M", qrBorder=2)
    flowable.value = payload
    flowable.qr = _Matrix(payload)
    return flowable


PAD = 3  # left and right padding of every card table cell, points


def _grid(extra=()):
    return TableStyle([FONT_CMD, 
        ("GRID", (0, 0), (-1, -1), 0.5, GRID),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), PAD), ("RIGHTPADDING", (0, 0), (-1, -1), PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        *extra,
    ])


def _table(rows: list[list], widths: list[float], col_spans=(), row_span=None, **kw) -> Table:
    """A table of `_grid` cells, its row heights measured once (cells.sized_table)."""
    return sized_table(rows, widths, PAD, 2, tuple(col_spans), row_span=row_span, **kw)


def _title_line(parts: list, style):
    """A line under the card's title: labels and values, a missing value shown by the 待完善 mark. The
    paragraph of that markup; drawn as the `Line` of its text when every value is there and plain
    text (the labels' runs of spaces, which the paragraph collapses, made one)."""
    labels, values = parts[0::2], [None if v is None else str(v) for v in parts[1::2]]
    if all(v and _plain_title(v) for v in values):
        text = "".join(label.replace("  ", " ") + value for label, value in zip(labels, values))
        if _plain_title(text):
            return text_cell(text, style)
    return CachedParagraph("".join(markup(label) + value_markup(value, True) for label, value in zip(labels, values)),
                           style)


REQUIRED_BASIC = {"household_number", "head_name", "identification_standard", "attribute", "status",
                  "first_identified", "family_size"}


_card_styles: dict | None = None


def _styles() -> dict:
    """The paragraph styles of a card (common.styles and two of the card's own), made once: nothing
    changes a style after it is made, and every card used to make its own dozen."""
    global _card_styles
    if _card_styles is None:
        st = styles()
        st["tiny"] = st["small"].clone("tiny", fontSize=6.5, leading=8, alignment=1)
        st["sign"] = st["body"].clone("sign", leading=22)
        _card_styles = st
    return _card_styles


def card_story(doc: dict, ctx: Context, full_id: bool = False, digest: str | None = None,
               images: Loader | None = None) -> list:
    """The flowables of one household's card (with its 家庭合影 and 住房 photos, `doc["photos"]`, drawn
    through `images` when given)."""
    st = _styles()
    c = card_content(doc, ctx, full_id)
    digest = digest or card_digest(doc, ctx)
    story: list = []
    cell, cell_c, head = st["cell"], st["cell_c"], st["head"]

    title = [text_cell("扶贫手册", st["title"]),
             text_cell("建档立卡贫困户 户有卡", st["subtitle"]),
             Spacer(1, 3 * mm),
             _title_line(["户主:", doc.get("head_name"), "  户编号:", doc.get("household_number")], st["subtitle"]),
             _title_line(["住址:", c["address"]], st["subtitle"])]
    tiny = st["tiny"]
    qr = [qr_flowable(qr_payload(c["id"], digest)), text_cell("扫码核对", tiny), text_cell(digest, tiny)]
    top = Table([[title, qr]], colWidths=[WIDTH - 34 * mm, 34 * mm])
    top.setStyle(TableStyle([FONT_CMD, ("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (1, 0), (1, 0), "CENTER")]))
    story += [top, Spacer(1, 2 * mm)]
    if images is not None:
        story += card_block(doc.get("photos") or [], images)

    # 一、家庭基本情况
    story.append(text_cell("一、家庭基本情况", st["h2"]))
    basic = {key: (label, text) for key, label, text in c["basic"]}
    pairs = [k for k in basic if k not in ("identification_standard", "attribute")]
    rows = []
    w = WIDTH / 6
    for i in range(0, len(pairs), 3):
        row = []
        for key in pairs[i:i + 3]:
            label, text = basic[key]
            row += [shared_head(label, cell, w * 0.95 - 2 * PAD), number_cell(text, cell, w * 1.05 - 2 * PAD, key in REQUIRED_BASIC)]
        row += [""] * (6 - len(row))
        rows.append(row)
    rows.append([text_cell("家庭住址", cell), text_cell(c["address"], cell, True), "", "", "", ""])
    t = _table(rows, [w * 0.95, w * 1.05] * 3, [(len(rows) - 1, 1, 5)])
    t.setStyle(_grid([("BACKGROUND", (0, 0), (0, -1), HEAD_BG), ("BACKGROUND", (2, 0), (2, -2), HEAD_BG),
                      ("BACKGROUND", (4, 0), (4, -2), HEAD_BG), ("SPAN", (1, len(rows) - 1), (5, len(rows) - 1))]))
    story.append(t)

    d = ctx.dictionary

    def options(field_key: str, marked: dict[str, str], per_row: int, label: str, required: bool) -> Table:
        codes = d.codes[d.kinds["household"].fields[field_key].codes]
        cells = []
        for code, text in codes.items():
            note = marked.get(code)
            mark = f'<font name="JDLatin">[{"√" if note else "  "}]</font> ' + label_markup(text)
            if note:
                mark = f"<b>{mark}</b>" + label_markup(f"({note})")
            # the same box on many cards (each code unmarked, or marked 选定, 主要 or 其他): one
            # paragraph for the whole document
            cells.append(shared_paragraph(mark, cell))
        body = [cells[i:i + per_row] for i in range(0, len(cells), per_row)]
        for r in body:
            r += [""] * (per_row - len(r))
        first = shared_paragraph(label_markup(label) + ("<br/>" + missing_mark() if required and not marked else ""), cell)
        data = [[first if i == 0 else ""] + r for i, r in enumerate(body)]
        tw = (WIDTH - 25 * mm) / per_row
        widths = [25 * mm] + [tw] * per_row
        table = _table(data, widths, row_span=(0, 0, len(data) - 1))  # the label spans the rows
        table.setStyle(_grid([("SPAN", (0, 0), (0, len(data) - 1)), ("BACKGROUND", (0, 0), (0, -1), HEAD_BG)]))
        return table

    story.append(options("identification_standard", {str(doc.get("identification_standard")): "选定"}
                         if doc.get("identification_standard") else {}, 3, "识别标准", True))
    story.append(options("attribute", {str(doc.get("attribute")): "选定"} if doc.get("attribute") else {}, 3,
                         "贫困户属性", True))
    marked = {c["causes"]["main"]: "主要"} if c["causes"]["main"] else {}
    for code in c["causes"]["other"]:
        marked.setdefault(code, "其他")
    story.append(options("main_cause", marked, 5, "致贫原因", True))

    # 二、家庭成员
    story.append(text_cell(f"二、家庭成员({len(c['members'])} 人)", st["h2"]))
    required_member = {"name", "relation", "sex", "id_number"}
    scale = WIDTH / (sum(wd for _, _, wd in MEMBER_COLUMNS) * mm)
    head_row = [shared_head(h, head, wd * mm * scale - 2 * PAD) for _, h, wd in MEMBER_COLUMNS]
    rows = [head_row]
    for m in c["members"]:
        rows.append([number_cell(m[key], cell_c if key in ("sex", "age") else cell, wd * mm * scale - 2 * PAD,
                                 key in required_member)
                     for key, _, wd in MEMBER_COLUMNS])
    if not c["members"]:
        rows.append([Paragraph(missing_mark() + markup(":未登记家庭成员"), cell)] + [""] * (len(MEMBER_COLUMNS) - 1))
    t = _table(rows, [wd * mm * scale for _, _, wd in MEMBER_COLUMNS],
               [] if c["members"] else [(1, 0, len(MEMBER_COLUMNS) - 1)], repeatRows=1)
    extra = [("BACKGROUND", (0, 0), (-1, 0), HEAD_BG)]
    if not c["members"]:
        extra.append(("SPAN", (0, 1), (-1, 1)))
    t.setStyle(_grid(extra))
    story.append(t)
    if not full_id:
        story.append(text_cell(FULL_ID_NOTE, st["small"]))

    # 三、生产生活条件
    story.append(CondPageBreak(50 * mm))
    story.append(text_cell("三、生产生活条件", st["h2"]))
    rows = []
    items = c["living"]
    for i in range(0, len(items), 3):
        row = []
        for _, label, text in items[i:i + 3]:
            row += [shared_head(label, cell, w * 1.2 - 2 * PAD), text_cell(text, cell)]
        row += [""] * (6 - len(row))
        rows.append(row)
    t = _table(rows, [w * 1.2, w * 0.8] * 3)
    t.setStyle(_grid([("BACKGROUND", (0, 0), (0, -1), HEAD_BG), ("BACKGROUND", (2, 0), (2, -1), HEAD_BG),
                      ("BACKGROUND", (4, 0), (4, -1), HEAD_BG)]))
    story.append(t)

    # 四、家庭收入
    inc = c["income"]
    block = [text_cell("四、家庭收入" + (f"({inc['year']} 年度,单位:元)" if inc else ""), st["h2"])]
    if inc:
        rows = []
        items = inc["rows"]
        iw = WIDTH / 8
        figure_width = iw * 0.85 - 2 * PAD

        def figure(text, bold=False):
            return number_cell(text, st["cell_r"], figure_width, bold=bold)

        for i in range(0, len(items), 4):
            row = []
            for _, label, text in items[i:i + 4]:
                row += [shared_head(label, cell, iw * 1.15 - 2 * PAD), figure(text)]
            row += [""] * (8 - len(row))
            rows.append(row)
        line_note = inc["line"] + (f"({inc['line_year']} 年标准)" if inc["line_year"] and inc["line_year"] != inc["year"] else "")
        rows.append([text_cell("家庭纯收入", cell), figure(inc["net"]),
                     text_cell("家庭人口数", cell), figure(inc["size"]),
                     text_cell("年人均纯收入", cell), figure(inc["per_capita"], bold=True),
                     text_cell("扶贫标准", cell),
                     figure(line_note) if inc["line"] else text_cell("未设定", st["cell_r"])])
        rows.append([text_cell("对照扶贫标准", cell),
                     Paragraph("<b>" + markup(inc["compare"]) + "</b>" if inc["compare"] else missing_mark(), cell),
                     "", "", "", "", "", ""])
        n = len(rows)
        t = _table(rows, [iw * 1.15, iw * 0.85] * 4, [(n - 1, 1, 7)])
        t.setStyle(_grid([("BACKGROUND", (0, 0), (0, -1), HEAD_BG), ("BACKGROUND", (2, 0), (2, -2), HEAD_BG),
                          ("BACKGROUND", (4, 0), (4, -2), HEAD_BG), ("BACKGROUND", (6, 0), (6, -2), HEAD_BG),
                          ("SPAN", (1, n - 1), (7, n - 1))]))
        block.append(t)
    else:
        block.append(Paragraph(missing_mark() + markup(":未登记家庭收入"), cell))
    story.append(KeepTogether(block))

    def listing(title: str, headings: list[str], widths: list[float], data: list[list[str]], empty: str,
                required: bool = False):
        k = WIDTH / sum(widths)
        st_rows = [[shared_head(h, head, wd * k - 2 * PAD) for h, wd in zip(headings, widths)]]
        for r in data:
            st_rows.append([number_cell(v, cell, wd * k - 2 * PAD) for v, wd in zip(r, widths)])
        extra = [("BACKGROUND", (0, 0), (-1, 0), HEAD_BG)]
        if not data:
            st_rows.append([Paragraph((missing_mark() + markup(":" + empty)) if required else markup(empty), cell)]
                           + [""] * (len(headings) - 1))
            extra.append(("SPAN", (0, 1), (-1, 1)))
        t = _table(st_rows, [x * k for x in widths], [] if data else [(1, 0, len(headings) - 1)], repeatRows=1)
        t.setStyle(_grid(extra))
        story.append(CondPageBreak(30 * mm))
        story.append(text_cell(title, st["h2"]))
        story.append(t)

    listing("五、帮扶责任人", ["姓名", "单位名称", "单位隶属", "职务", "联系电话", "结对时间"],
            [16, 40, 14, 18, 22, 30], c["helpers"], "未落实帮扶责任人", required=True)
    listing("六、脱贫计划", ["年度", "脱贫目标", "计划措施", "项目名称", "规模", "资金(元)", "完成时限"],
            [10, 39, 34, 22, 14, 18, 18], c["plans"], "未制定脱贫计划", required=True)
    listing("七、帮扶措施及成效", ["年度", "类别", "帮扶内容", "帮扶单位", "金额(元)", "日期", "成效", "户主签字"],
            [10, 18, 34, 24, 18, 18, 20, 16], c["measures"], "暂无帮扶措施")
    listing("八、工作台账(走访记录)", ["日期", "走访人", "工作内容", "农户意见", "后续跟进"],
            [18, 14, 50, 40, 36], c["visits"], "暂无走访记录")

    from app.reports import monitoring_card  # 九、防返贫监测 (issue #20)

    story += monitoring_card.story(c["monitoring"], WIDTH, _grid)

    signers = ["户主签字", "帮扶责任人签字", "驻村工作队(村委会)盖章"]
    sign_style = st["sign"]
    sign = Table([[shared_paragraph(markup(f"{who}:") + "<br/>" + markup("_" * 22) + "<br/>"
                             + markup("日期:____年____月____日"), sign_style) for who in signers]],
                 colWidths=[WIDTH / 3] * 3)
    sign.setStyle(TableStyle([FONT_CMD, ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [Spacer(1, 4 * mm), KeepTogether([text_cell("以上信息经核实无误。", st["body"]), sign])]
    return story


class CardDocument(BaseDocTemplate):
    """A4 portrait pages; the footer names the household on the page, the print date and the data
    version; a new household always starts on a new page."""

    def __init__(self, filename, ctx: Context, **kw):
        super().__init__(filename, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                         bottomMargin=18 * mm, title="户有卡", author=ctx.site_name or "jiandang", initialFontName=CJK, **kw)
        self.ctx = ctx
        self.current = {"name": "", "number": "", "version": "", "page": 0}
        frame = Frame(self.leftMargin, self.bottomMargin, self.width, self.height, id="card")
        self.addPageTemplates([PageTemplate(id="card", frames=[frame], onPageEnd=self._footer)])
        self.progress: Progress | None = None
        self.households = 0
        self.done = 0
        self.subsets: SharedSubsets | None = None  # the font subsets shared with the other chunks

    def beforeDocument(self):
        if self.subsets is not None:
            self.subsets.install(self.canv)

    def filterFlowables(self, flowables):
        while flowables and isinstance(flowables[0], _Household):
            flowables[0:1] = flowables[0].make()

    def afterFlowable(self, flowable):
        if isinstance(flowable, _SetHousehold):
            self.done += 1
            if self.progress:
                self.progress(self.done, self.households)

    def _footer(self, canvas, doc):
        canvas.saveState()
        cur = self.current
        cur["page"] += 1
        left = f"打印日期 {self.ctx.today.isoformat()} · 数据版本 {cur['version']}"
        # the rule and the left text are the same on every page of a data version: their operators
        # kept per canvas (font subset codes belong to one document) and written again; what follows
        # sets its own font, and the canvas state is restored after
        kept = canvas.__dict__.setdefault("_jd_footer", {})
        ops = kept.get(left) if cells.REPLAY else None
        if ops is not None:
            canvas._code.extend(ops)
        else:
            start = len(canvas._code)
            canvas.setStrokeColor(GRID)
            canvas.setLineWidth(0.4)
            canvas.line(15 * mm, 14 * mm, A4[0] - 15 * mm, 14 * mm)
            draw_text(canvas, 15 * mm, 10 * mm, left, 7.5)
            if len(kept) > 100:
                kept.clear()
            kept[left] = canvas._code[start:]
        name = cur["name"] if len(cur["name"]) <= 12 else cur["name"][:11] + "..."
        right = f"户主 {name or MISSING} · 户编号 {cur['number'] or MISSING} · 本户第 {cur['page']} 页"
        draw_text(canvas, A4[0] - 15 * mm, 10 * mm, right, 7.5, "right")
        canvas.restoreState()


class _SetHousehold(Spacer):
    """A zero-size flowable that tells the footer which household the following pages belong to."""

    def __init__(self, doc_template: CardDocument, name: str, number: str, version: str):
        super().__init__(0, 0)
        self.info = (doc_template, name, number, version)

    def draw(self):
        pass

    def wrap(self, aw, ah):
        doc_template, name, number, version = self.info
        doc_template.current.update(name=name, number=number, version=version, page=0)
        return 0, 0


class _Household(Spacer):
    """Stands for one household's card in the story until it reaches the front, where the document
    puts the card's flowables in its place (`CardDocument.filterFlowables`): the story holds one card
    at a time, and reportlab's removal of each flowable from the front of the list stays cheap."""

    def __init__(self, make):
        super().__init__(0, 0)
        self.make = make


CHUNK = 100  # households whose cards are built in memory at a time (about 75 KB a card in reportlab)


def build_cards(path, items: Iterable[tuple[dict, str, str]], ctx: Context, full_id: bool = False,
                progress: Progress | None = None, images: Loader | None = None, total: int | None = None) -> int:
    """Write the cards of (document, digest, data version) items into one PDF (`path`: a file name or
    a binary file); returns pages. `items` may be a generator (give `total` for the progress): the
    cards are built CHUNK households at a time and each chunk's pages copied into the output when it
    is done (app.reports.pdfjoin), so memory stays flat in the number of households; the pages are
    the same as one document's."""
    register_fonts()
    if total is None:
        total = len(items)  # type: ignore[arg-type]
    items = iter(items)
    first = list(islice(items, CHUNK))
    following = next(items, None)
    if following is None:  # one chunk: reportlab writes the file itself
        return _build_chunk(path, first, ctx, full_id, progress, images, 0, total)
    rest = chain([following], items)
    with ExitStack() as stack:
        out = path if hasattr(path, "write") else stack.enter_context(open(path, "wb"))
        joiner = PdfJoiner(out, shared_fonts=True)
        subsets = SharedSubsets([CJK, LATIN])
        chunk, done = first, 0
        # a built document is a web of reference cycles (canvas, pages, flowables, fonts' state): each
        # chunk's is freed as soon as it is joined, not when the collector next looks at the oldest
        # objects, some chunks later; the objects alive before the cards (the caller's households)
        # are left out of those collections (gc.freeze) and given back to the collector at the end
        gc.freeze()
        stack.callback(gc.unfreeze)
        while chunk:
            buffer = io.BytesIO()
            _build_chunk(buffer, chunk, ctx, full_id, progress, images, done, total, subsets)
            done += len(chunk)
            joiner.add(buffer.getvalue())
            buffer = None
            gc.collect()
            chunk = list(islice(rest, CHUNK))
        return joiner.finish()


def _build_chunk(path, items: list[tuple[dict, str, str]], ctx: Context, full_id: bool,
                 progress: Progress | None, images: Loader | None, done: int, total: int,
                 subsets: SharedSubsets | None = None) -> int:
    forget_measured_texts()
    doc_template = CardDocument(path, ctx)
    doc_template.subsets = subsets

    def card(i: int, doc: dict, digest: str, version: str):
        def make() -> list:
            story = [PageBreak()] if i > 1 else []
            story.append(_SetHousehold(doc_template, str(doc.get("head_name") or ""),
                                       str(doc.get("household_number") or ""), version))
            return story + card_story(doc, ctx, full_id, digest, images)
        return _Household(make)

    story = [card(i, doc, digest, version) for i, (doc, digest, version) in enumerate(items, 1)]
    doc_template.progress = progress
    doc_template.households = total
    doc_template.done = done
    doc_template.build(story)
    return doc_template.page
