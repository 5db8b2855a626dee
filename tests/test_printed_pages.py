"""What a reader sees on every printed document: every character set in an embedded font that has
its glyph, headings and labels broken only between words, charts that keep their labels' punctuation,
no crowd of 0 labels, single-slice pies that say what they show, and a card footnote that names the
option in the window's and the command line's words."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from reportlab.graphics.shapes import Group, String
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate

from app import paths
from app.reports import card, charts, monitoring_notice, monitoring_register, notice, register
from app.reports.common import HeaderParagraph, header_words, latin_font_path, register_fonts
from app.reports.notice import NoticeInfo
from app.services import households, printing

VILLAGE = "522634101201"
TOWNSHIP = "522634101"
COUNTY = "522634"
LONG = "欧阳" + "长" * 24 + "名"
# the card's list headings (五 to 八), the register's summary row and other fixed headings
CARD_LIST_HEADINGS = ["单位名称", "单位隶属", "联系电话", "结对时间", "脱贫目标", "计划措施", "项目名称", "资金(元)",
                      "完成时限", "帮扶内容", "帮扶单位", "金额(元)", "户主签字", "工作内容", "农户意见", "后续跟进"]


def known_headings() -> set[str]:
    found = {h for _, h, _ in card.MEMBER_COLUMNS} | {h for h, _ in register.COLUMNS}
    found |= {h for h, _ in register.BOOK_COLUMNS} | set(CARD_LIST_HEADINGS)
    for kind in notice.KINDS:
        for level in notice.LEVELS:
            found |= set(notice.notice_rows(kind, [], None, level)[0])
    for kind in monitoring_notice.KINDS:  # 防返贫监测 (issue #20)
        found |= set(monitoring_notice.rows(kind, [], None)[0])
    return found | {h for h, _ in monitoring_register.COLUMNS}


def _font_cmaps() -> dict[str, set[int]]:
    """BaseFont name (without the subset prefix) -> code points the embedded font file has."""
    register_fonts()
    cjk = TTFont("probe-cjk", str(paths.font_path()))
    latin = TTFont("probe-latin", latin_font_path())
    return {cjk.face.name.decode() if isinstance(cjk.face.name, bytes) else cjk.face.name: set(cjk.face.charToGlyph),
            latin.face.name.decode() if isinstance(latin.face.name, bytes) else latin.face.name: set(latin.face.charToGlyph)}


def glyph_faults(path: Path) -> list[str]:
    """Every character of the PDF whose font does not hold its glyph (or that is set in a font that
    is not one of the two embedded ones), with its page."""
    cmaps = _font_cmaps()
    faults = []
    for number, page in enumerate(PdfReader(str(path)).pages, 1):
        def visit(text, cm, tm, font_dict, size):
            if not text.strip():
                return
            base = str((font_dict or {}).get("/BaseFont", "?")).lstrip("/").split("+")[-1]
            chars = cmaps.get(base)
            for ch in text:
                if ch in "\n\r":
                    continue
                # reportlab maps a character its font lacks to U+0000 in the PDF's ToUnicode table
                if chars is None or ch == "\x00" or ord(ch) not in chars:
                    faults.append(f"{path.name} 第{number}页: {ch!r} (U+{ord(ch):04X}) 在 {base} 中没有字形,见 {text!r}")
        page.extract_text(visitor_text=visit)
    return faults


def paragraph_lines(p: Paragraph) -> list[tuple[str, float]]:
    """(text, extra space) of each line of a wrapped paragraph, as reportlab laid it out."""
    bl = p.blPara
    out = []
    for line in bl.lines:
        if bl.kind == 0:
            extra, words = line
            out.append(("".join(words), extra))
        else:
            out.append(("".join(getattr(w, "text", "") for w in line.words), line.extraSpace))
    return out


@pytest.fixture
def drawn(monkeypatch):
    """Every Paragraph drawn while the fixture is active, with the width it was wrapped to."""
    seen: list[Paragraph] = []
    original = Paragraph.drawOn

    def record(self, canvas, x, y, _sW=0):
        seen.append(self)
        return original(self, canvas, x, y, _sW)

    monkeypatch.setattr(Paragraph, "drawOn", record)
    return seen


def broken_headings(paragraphs: list[Paragraph]) -> list[str]:
    """Headings and labels broken inside a word, or wider than their cell."""
    known = known_headings()
    faults = []
    for p in paragraphs:
        text = p.getPlainText()
        if not (isinstance(p, HeaderParagraph) or text in known):
            continue
        lines = paragraph_lines(p)
        plain = text.replace(" ", "").replace("\n", "")
        ends, at = set(), 0
        for word in header_words(text):
            at += len(word.replace(" ", ""))
            ends.add(at)
        at = 0
        for line, extra in lines:
            at += len(line.replace(" ", ""))
            if at not in ends:
                faults.append(f"“{text}” 断在词中:{[ln for ln, _ in lines]}")
                break
            if extra < -0.5:
                faults.append(f"“{text}” 比所在格宽 {-extra:.1f} pt:{line}")
        if at != len(plain):
            faults.append(f"“{text}” 的行与原文不符:{[ln for ln, _ in lines]}")
    return faults


@pytest.fixture
def printed_store(demo_store):
    """The demo database plus a household with missing fields and very long names, and measures of
    every category (教育(雨露计划), 就业/转移就业 …) so the charts show every label."""
    d = printing.context(demo_store).dictionary
    measures = [{"year": 2025, "category": code, "content": "帮扶", "date": "2025-03-01"} for code in d.codes["measure_category"]]
    doc = {"village_code": VILLAGE, "head_name": LONG, "group": "第十二村民小组(原高坡、河坝两组合并)",
           "main_cause": "1", "other_causes": list(d.codes["poverty_cause"])[1:],
           "members": [{"name": LONG, "relation": "01", "sex": "1"}, {"name": "司马" + "慧" * 14, "relation": "02"}],
           "helpers": [{"name": "诸葛" + "明" * 10, "unit": "省交通运输厅驻雷山县西江镇龙井村脱贫攻坚帮扶工作队第一分队",
                        "phone": "13800001111"}],
           "measures": measures}
    households.save(demo_store, doc, allow_errors=True, reason="打印检查")
    return demo_store


def every_document(store, folder: Path) -> list[Path]:
    """Card (masked, full ID, a whole village), register, book, the notices of both kinds at each
    level, the 防返贫监测 notices and register, and a page of charts with one-slice pies and a register from 2014 to 2026."""
    ctx = printing.context(store)
    docs = households.documents(store, VILLAGE)
    made = []

    def out(name):
        made.append(folder / name)
        return folder / name

    printing.print_cards(store, out("cards.pdf"), village_code=VILLAGE)
    printing.print_cards(store, out("card_full.pdf"), household_id=docs[0]["id"], full_id=True)
    printing.print_register(store, out("register.pdf"), VILLAGE)
    printing.print_book(store, out("book.pdf"), TOWNSHIP)
    start = dt.date(2026, 12, 1)
    info = NoticeInfo(start=start, end=start + dt.timedelta(days=6), place="龙井村村委会公示栏(二组路口)",
                      contact="村委会 王主任", phone="13800001111")
    proposal = {"proposal_kind": "return", "reasons": "因灾返贫/房屋受损", "review_votes_for": 36,
                "review_votes_against": 1, "assessed_failures": "年人均纯收入(元)未达标", "justification": "分红后可达标"}
    for kind in notice.KINDS:
        for level, place in (("village", VILLAGE), ("township", TOWNSHIP), ("county", COUNTY)):
            notice.build_notice(str(out(f"notice_{kind}_{level}.pdf")), place, kind,
                                [(doc, proposal) for doc in docs[:4]], info, ctx, level)
    for kind in monitoring_notice.KINDS:  # 监测识别 and 风险消除 公示, the 监测对象名册 and 监测对象簿
        monitoring_notice.build(str(out(f"monitoring_notice_{kind}.pdf")), VILLAGE, kind,
                                [(doc, proposal) for doc in docs[:4]], info, ctx)
    monitoring_register.build(str(out("monitoring_register.pdf")), VILLAGE, docs, ctx)
    monitoring_register.build(str(out("monitoring_book.pdf")), TOWNSHIP, docs, ctx)
    one = charts.Summary(households=13, people=40)
    one.by_attribute["1"] = 13
    one.by_status["1"] = 13
    one.entered.update({2014: 9, 2020: 1, 2026: 3})
    one.exited.update({2016: 2, 2019: 5})
    one.by_measure.update({code: 1 for code in ctx.dictionary.codes["measure_category"]})
    one.by_cause.update({code: 2 for code in ctx.dictionary.codes["poverty_cause"]})
    doc = SimpleDocTemplate(str(out("charts.pdf")))
    doc.build(register.summary_page("单一属性的村", one, ctx))
    return made


def test_every_printed_document_sets_each_character_in_a_font_with_its_glyph_and_breaks_headings_between_words(
        printed_store, tmp_path, drawn):
    made = every_document(printed_store, tmp_path)
    faults = [f for path in made for f in glyph_faults(path)]
    assert not faults, "\n".join(faults[:20])
    assert len({p.getPlainText() for p in drawn if isinstance(p, HeaderParagraph)}) > 60
    faults = broken_headings(drawn)
    assert not faults, "\n".join(faults[:20])


def test_a_character_outside_both_fonts_is_found_by_the_glyph_check(tmp_path):
    """The check itself: a string drawn straight in the Latin font with a CJK character is a fault."""
    from reportlab.pdfgen.canvas import Canvas

    from app.reports.common import LATIN

    register_fonts()
    path = tmp_path / "bad.pdf"
    c = Canvas(str(path))
    c.setFont(LATIN, 10)
    c.drawString(50, 700, "(雨露计划)")
    c.save()
    faults = glyph_faults(path)
    assert len(faults) == 4  # one per character of 雨露计划


def _strings(node) -> list[String]:
    """Every String a drawing paints, widgets (axes, bar labels) expanded as the renderer does."""
    out = []
    for item in getattr(node, "contents", []):
        if hasattr(item, "provideNode"):
            item = item.provideNode()
        if isinstance(item, String):
            out.append(item)
        elif isinstance(item, Group):
            out += _strings(item)
    return out


def _texts(drawing) -> str:
    return "".join(s.text for s in _strings(drawing))


def test_chart_labels_keep_ascii_punctuation_in_the_latin_font():
    register_fonts()
    items = [("就业/转移就业", 3), ("教育(雨露计划)", 2), ("健康", 1)]
    d = charts.bar_chart("帮扶措施类别(项)", items)
    strings = _strings(d)
    text = "".join(s.text for s in strings)
    assert "就业/转移就业" in text and "教育(雨露计划)" in text
    for s in strings:
        if any(ch in s.text for ch in "()/"):
            assert s.fontName == "JDLatin", s.text


def test_the_movement_chart_from_2014_to_2026_labels_only_years_with_households():
    from app.core.dictionary import default as default_dictionary
    from app.reports.context import Context

    register_fonts()
    s = charts.Summary(households=10, people=30)
    s.entered.update({2014: 9, 2026: 1})
    s.exited[2019] = 4
    ctx = Context(dictionary=default_dictionary(), today=dt.date(2026, 12, 1))
    movement = charts.wall_charts(s, ctx)[3]
    labels = [x.text for x in _strings(movement)]
    assert all(str(y) in labels for y in range(2014, 2027))
    bar_labels = [t for t in labels if t.isdigit() and len(t) < 4]
    # the value axis has its own 0; bars are labelled only where households entered or left
    assert sorted(bar_labels).count("0") <= 1 and {"9", "1", "4"} <= set(bar_labels)


def test_a_single_slice_pie_says_it_is_everyone():
    register_fonts()
    d = charts.pie_chart("贫困户属性", [("一般贫困户", 13)])
    assert "全部" in _texts(d) and "13 户" in _texts(d)


def test_the_card_footnote_says_numbers_are_masked_without_instructions_for_the_software(printed_store, tmp_path):
    """The card is kept by the household: its footnote says that numbers are partly hidden and whom to
    ask, not which box to tick or which command-line flag to add (it said both)."""
    from tests.test_reports import compact, text_of

    out = tmp_path / "card.pdf"
    doc = households.documents(printed_store, VILLAGE)[0]
    printing.print_cards(printed_store, out, household_id=doc["id"])
    text = compact(text_of(out))
    assert "已部分隐藏" in text and "村委会" in text
    assert "--full-id" not in text and "打印窗口" not in text and "命令行" not in text


def test_the_monitoring_register_never_breaks_a_date_or_an_amount(printed_store, tmp_path, drawn):
    """A 监测户 with three risks of long names (因务工就业不稳 …) in the township's book, whose village
    column makes every column narrower: each date and amount stays on one line (2026-0 / 3-15 was a
    defect), and each risk starts a line of its own."""
    ctx = printing.context(printed_store)
    doc = households.documents(printed_store, VILLAGE)[0]
    doc["risks"] = [{"risk_type": t, "found_date": f"2026-0{3 + i}-15", "state": "2" if i == 0 else "1"}
                    for i, t in enumerate(["07", "06", "05"])]
    doc["risk_identified_date"] = "2026-03-15"
    for place in (TOWNSHIP, VILLAGE):
        drawn.clear()
        monitoring_register.build(str(tmp_path / "m.pdf"), place, [doc], ctx)
        cells = [paragraph_lines(p) for p in drawn if "因务工就业不稳" in p.getPlainText()]
        assert len(cells) == 1
        lines = [line for line, _ in cells[0]]
        starts = [line for line in lines if line.startswith("因")]
        assert [s[:5] for s in starts] == ["因务工就业", "因产业项目", "因自然灾害"], lines
        assert all(any(f"(2026-0{3 + i}-15," in line for line in lines) for i in range(3)), lines
        amounts = [lines for p in drawn for lines in [[t for t, _ in paragraph_lines(p)]]
                   if re.search(r"\d{4}-\d{2}-\d{2}|\d,\d{3}\.\d{2}", p.getPlainText())]
        for cell in amounts:
            for number in re.findall(r"\d{4}-\d{2}-\d{2}|[\d,]+\.\d{2}", "".join(cell)):
                assert any(number in line for line in cell), (number, cell)
