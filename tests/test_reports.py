"""Printed documents: text found in the PDFs, embedded fonts, masking, totals, missing fields, bad
output paths, card digests."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from pypdf import PdfReader

from app.core.dictionary import default as default_dictionary
from app.core import demo as demo_core
from app.core import idnumber
from app.core.income import per_capita
from app.reports.card import card_content, parse_qr
from app.reports.common import ReportError, write_pdf
from app.reports.notice import NoticeInfo
from app.services import households, printing

VILLAGE = "522634101201"
TOWNSHIP = "522634101"
STANDARD_14 = {"Courier", "Helvetica", "Times", "Symbol", "ZapfDingbats"}


def text_of(path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(str(path)).pages)


def compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def fonts_of(path) -> dict[str, dict]:
    """BaseFont name -> font dictionary of every font used on any page (including Form XObjects)."""
    found = {}

    def walk(resources):
        if not resources:
            return
        resources = resources.get_object()
        for font in (resources.get("/Font") or {}).values():
            font = font.get_object()
            found[str(font["/BaseFont"])] = font
        for xobj in (resources.get("/XObject") or {}).values():
            xobj = xobj.get_object()
            walk(xobj.get("/Resources"))

    for page in PdfReader(str(path)).pages:
        walk(page.get("/Resources"))
    return found


def embedded_file(font) -> object | None:
    if "/DescendantFonts" in font:
        font = font["/DescendantFonts"][0].get_object()
    descriptor = font.get("/FontDescriptor")
    return descriptor.get_object().get("/FontFile2") if descriptor else None


@pytest.fixture
def village_store(make_store):
    """A database with one demo village of 30 households (other villages empty)."""
    s = make_store("v.db")
    from app.services import demo

    demo.install_reference_data(s)
    with s.transaction():
        for doc in demo_core.households(per_village=30, villages=[VILLAGE]):
            households.save(s, doc, allow_errors=True)
    return s


def test_card_of_one_household_shows_its_data_masked_ids_and_embeds_fonts(demo_store, tmp_path):
    doc = households.documents(demo_store, VILLAGE)[0]
    out = tmp_path / "card.pdf"
    result = printing.print_cards(demo_store, out, household_id=doc["id"])
    text = compact(text_of(out))
    assert result.households == 1 and result.pages >= 1
    assert doc["head_name"] in text and doc["household_number"] in text
    for m in doc["members"]:
        assert m["name"] in text
        assert idnumber.mask(m["id_number"]) in text
        assert m["id_number"] not in text  # masked by default
        assert m["id_number"][6:14] not in text  # the birth date part is hidden too
    assert doc["bank_account"] not in text
    helper = doc["helpers"][0]
    assert helper["name"] in text and helper["unit"] in text and helper["phone"] in text
    income = doc["incomes"][0]
    pc = per_capita(income, doc["family_size"])
    assert f"{pc:,.2f}".rstrip("0").rstrip(".") in text or f"{int(pc):,}" in text
    assert "户主签字" in text and "帮扶责任人签字" in text
    fonts = fonts_of(out)
    assert fonts, "no fonts found"
    for name, font in fonts.items():
        assert embedded_file(font) is not None, f"{name} is not an embedded TrueType font"
        assert not any(std in name for std in STANDARD_14), f"standard-14 font {name} used"
    assert any("DroidSansFallback" in name for name in fonts)


def test_full_id_option_prints_whole_numbers(demo_store, tmp_path):
    doc = households.documents(demo_store, VILLAGE)[0]
    out = tmp_path / "card.pdf"
    printing.print_cards(demo_store, out, household_id=doc["id"], full_id=True)
    text = compact(text_of(out))
    for m in doc["members"]:
        assert m["id_number"] in text


def test_village_cards_in_one_pdf_with_progress(village_store, tmp_path):
    out = tmp_path / "cards.pdf"
    seen = []
    result = printing.print_cards(village_store, out, village_code=VILLAGE, progress=lambda d, t: seen.append((d, t)))
    docs = households.documents(village_store, VILLAGE)
    assert result.households == len(docs) == 30
    assert seen and seen[-1] == (30, 30)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    text = compact(text_of(out))
    for doc in docs:
        assert doc["head_name"] in text
    reader = PdfReader(str(out))
    assert len(reader.pages) == result.pages >= 30
    # every household starts on a new page: its number appears at the top of some page's text
    firsts = [compact(p.extract_text())[:200] for p in reader.pages]
    for doc in docs:
        assert any(doc["household_number"] in f and "扶贫手册" in f for f in firsts)
    # each page's footer names the household whose card is on that page
    current = None
    for page in reader.pages:
        text = compact(page.extract_text())
        top = re.search(r"户主:(\S+?)户编号:(\d+)", text)
        if top:
            current = top.group(2)
        footer = re.search(r"户编号(\d+)·本户第(\d+)页", text)
        assert footer and footer.group(1) == current
        assert (footer.group(2) == "1") == bool(top)


def test_register_totals_equal_database_counts(village_store, tmp_path):
    out = tmp_path / "register.pdf"
    result = printing.print_register(village_store, out, VILLAGE)
    households_count = village_store.count("household", village_code=VILLAGE)
    people = sum(1 for _ in village_store.records("member", village_code=VILLAGE))
    text = compact(text_of(out))
    assert result.households == households_count == 30
    assert f"合计:{households_count}户{people}人" in text
    # group subtotals add up to the totals
    subtotals = re.findall(r"小计:(\d+)户(\d+)人", text)
    assert sum(int(h) for h, _ in subtotals) == households_count
    assert sum(int(p) for _, p in subtotals) == people
    pages = len(PdfReader(str(out)).pages)
    assert result.pages == pages > 1
    for n in range(1, pages + 1):
        assert f"第{n}页共{pages}页" in text
    docs = households.documents(village_store, VILLAGE)
    for doc in docs:
        assert doc["head_name"] in text
        head = next(m for m in doc["members"] if m["relation"] == "01")
        assert idnumber.mask(head["id_number"]) in text
        assert head["id_number"] not in text
    # summary page: counts by status as stored
    unresolved = sum(1 for d in docs if d["status"] == "1")
    assert re.search(rf"未脱贫.*?{unresolved}", text)
    # the sixth wall chart: assistance measures by category, as recorded
    summary_text = compact(PdfReader(str(out)).pages[-1].extract_text())
    assert "帮扶措施类别(项)" in summary_text
    categories = {m["category"] for d in docs for m in d.get("measures", [])}
    labels = default_dictionary().codes["measure_category"]
    assert categories and all(compact(labels[c])[:2] in summary_text for c in categories)
    # the header row is repeated on every table page
    reader = PdfReader(str(out))
    for page in reader.pages[:-1]:
        assert "主要致贫原因" in compact(page.extract_text())


def test_book_has_one_row_per_village_and_totals(demo_store, tmp_path):
    out = tmp_path / "book.pdf"
    result = printing.print_book(demo_store, out, TOWNSHIP)
    text = compact(text_of(out))
    villages = [v for v in demo_core.village_codes() if v.startswith(TOWNSHIP)]
    expected = sum(demo_store.count("household", village_code=v) for v in villages)
    assert result.households == expected == 6
    for v in villages:
        assert demo_store.division_name(v) in text
    people = sum(1 for v in villages for _ in demo_store.records("member", village_code=v))
    assert re.search(rf"合计{expected}{people}", text)


def test_household_with_missing_fields_prints_marks_instead_of_crashing(store, tmp_path):
    doc = {"village_code": VILLAGE, "head_name": "缺资料户", "members": [{"name": "缺资料户", "relation": "01"}]}
    saved = households.save(store, doc, allow_errors=True)
    out = tmp_path / "card.pdf"
    printing.print_cards(store, out, household_id=saved.household_id)
    text = compact(text_of(out))
    assert "缺资料户" in text
    assert text.count("待完善") >= 5  # attribute, cause, first identified, ID number, helper, plan, income...
    out2 = tmp_path / "register.pdf"
    printing.print_register(store, out2, VILLAGE)
    assert "待完善" in compact(text_of(out2))


def test_long_names_wrap_inside_their_cells(store, tmp_path):
    long_name = "欧阳" + "长" * 26 + "名"
    long_unit = "省交通运输厅驻雷山县西江镇龙井村脱贫攻坚帮扶工作队第一分队" * 2
    doc = demo_core.households(per_village=1, villages=[VILLAGE])[0]
    doc["head_name"] = long_name
    doc["members"][0]["name"] = long_name
    doc["helpers"][0]["unit"] = long_unit[:60]
    doc["group"] = "第十二村民小组(原高坡组)"
    saved = households.save(store, doc, allow_errors=True)
    for kind, kw in (("card", {"household_id": saved.household_id}), ("register", {})):
        out = tmp_path / f"{kind}.pdf"
        if kind == "card":
            printing.print_cards(store, out, **kw)
        else:
            printing.print_register(store, out, VILLAGE)
        reader = PdfReader(str(out))
        width = float(reader.pages[0].mediabox.width)
        positions = []

        def visit(text, cm, tm, font_dict, font_size):
            if text.strip():
                positions.append((tm[4] * cm[0] + cm[4], text))

        for page in reader.pages:
            page.extract_text(visitor_text=visit)
        assert positions
        # nothing starts beyond the right margin (text overflowing a cell would run past it)
        assert max(x for x, _ in positions) < width - 20
        assert long_name in compact(text_of(out))


def test_unknown_village_or_household_leaves_no_file(demo_store, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "x.pdf"
    with pytest.raises(ReportError, match="没有村"):
        printing.print_cards(demo_store, out, village_code="522634101299")
    with pytest.raises(ReportError, match="找不到贫困户"):
        printing.print_cards(demo_store, out, household_id="no-such-id")
    with pytest.raises(ReportError, match="不是村代码"):
        printing.print_register(demo_store, out, "12")
    with pytest.raises(ReportError, match="乡"):
        printing.print_book(demo_store, out, "522634109")
    assert list(folder.iterdir()) == []


def test_unwritable_output_keeps_the_old_file_and_leaves_no_temp(demo_store, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "register.pdf"
    out.write_bytes(b"old report")
    calls = []

    def failing(path):
        calls.append(path)
        with open(path, "wb") as fh:
            fh.write(b"%PDF-1.4 half")
        raise OSError(28, "No space left on device")

    with pytest.raises(ReportError, match="无法写入"):
        write_pdf(out, failing)
    assert out.read_bytes() == b"old report"
    assert sorted(p.name for p in folder.iterdir()) == ["register.pdf"]
    with pytest.raises(ReportError, match="不存在"):
        printing.print_register(demo_store, tmp_path / "missing" / "r.pdf", VILLAGE)
    if os.name == "posix" and os.geteuid() != 0:  # a read-only folder by mode bits; root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        with pytest.raises(ReportError, match="无法写入"):
            printing.print_register(demo_store, locked / "r.pdf", VILLAGE)
        assert list(locked.iterdir()) == []


def test_card_digest_verifies_until_the_household_changes(demo_store, tmp_path):
    doc = households.documents(demo_store, VILLAGE)[0]
    out = tmp_path / "card.pdf"
    printing.print_cards(demo_store, out, household_id=doc["id"])
    text = compact(text_of(out))
    digest = printing.card_digest(demo_store, doc["id"])
    assert digest in text
    assert printing.verify_card(demo_store, doc["id"], digest)
    # printing with full ID numbers or on another day gives the same digest
    ctx_later = printing.context(demo_store, today=dt.date(2031, 1, 1))
    from app.reports.card import card_digest

    assert card_digest(households.document(demo_store, doc["id"]), ctx_later) == digest
    doc = households.document(demo_store, doc["id"])
    doc["phone"] = "13912345678"
    households.save(demo_store, doc, allow_errors=True)
    assert not printing.verify_card(demo_store, doc["id"], digest)


def test_qr_payload_round_trip():
    assert parse_qr("JDCARD1|abc-123|0123456789abcdef") == ("abc-123", "0123456789abcdef")
    assert parse_qr("something else") is None


def test_card_content_marks_main_and_other_causes(demo_store):
    doc = households.documents(demo_store, VILLAGE)[0]
    doc["main_cause"], doc["other_causes"] = "1", ["7", "9"]
    content = card_content(doc, printing.context(demo_store))
    assert content["causes"] == {"main": "1", "other": ["7", "9"]}


def _notice_info(days=7):
    start = dt.date(2026, 12, 1)
    return NoticeInfo(start=start, end=start + dt.timedelta(days=days - 1), place="龙井村村委会公示栏",
                      contact="村委会 王主任", phone="13800001111")


def test_notice_lists_households_period_place_and_contact(demo_store, tmp_path):
    docs = households.documents(demo_store, VILLAGE)
    items = [(docs[0], {"proposal_kind": "entry", "reasons": "家中主要劳动力患大病", "review_votes_for": 41}),
             (docs[1], {"proposal_kind": "return", "reasons": "因灾返贫"})]
    out = tmp_path / "notice.pdf"
    result = printing.print_notice(demo_store, out, VILLAGE, "entry", _notice_info(), items)
    text = compact(text_of(out))
    assert result.households == 2
    for doc, _ in items:
        assert doc["head_name"] in text
        for m in doc["members"]:
            assert m["id_number"] not in text and idnumber.mask(m["id_number"]) not in text
    assert "家中主要劳动力患大病" in text and "返贫纳入" in text and "评议赞成41票" in text
    assert "2026年12月1日至2026年12月7日(共7天)" in text
    assert "龙井村村委会公示栏" in text and "13800001111" in text
    assert "村委会主任(签字)" in text


def test_an_exit_notice_never_says_a_household_meets_the_standard_when_its_check_failed(demo_store, tmp_path):
    docs = households.documents(demo_store, VILLAGE)
    passed = {"proposal_kind": "exit", "reasons": "务工收入稳定"}
    failed = {"proposal_kind": "exit", "reasons": "产业增收", "assessed_failures": "年人均纯收入超过扶贫标准",
              "justification": "年底分红后可达标"}
    out = tmp_path / "exit.pdf"
    printing.print_notice(demo_store, out, VILLAGE, "exit", _notice_info(), [(docs[0], passed), (docs[1], failed)])
    text = compact(text_of(out))
    assert "以下2户年人均纯收入稳定超过扶贫标准" not in text
    assert "其中1户经核实尚有未达到退出标准的项目" in text and "以上农户均已签字认可" in text
    assert "未达标:年人均纯收入超过扶贫标准" in text and "书面说明:年底分红后可达标" in text
    printing.print_notice(demo_store, out, VILLAGE, "exit", _notice_info(), [(docs[0], passed)])
    text = compact(text_of(out))
    assert "以下1户年人均纯收入稳定超过扶贫标准" in text and "该户已签字认可" in text and "本户" not in text


def test_an_exit_notice_where_every_household_falls_short_says_no_other_zero_households(demo_store, tmp_path):
    """Proposals all short of a criterion printed “其中 3 户……;其余 0 户年人均纯收入稳定超过扶贫标准,
    实现“两不愁三保障”” (tools/print_samples.py): a sentence about nobody, saying what no one showed."""
    docs = households.documents(demo_store, VILLAGE)
    failed = {"proposal_kind": "exit", "reasons": "产业增收", "assessed_failures": "不愁吃", "justification": "已整改"}
    out = tmp_path / "exit.pdf"
    printing.print_notice(demo_store, out, VILLAGE, "exit", _notice_info(), [(d, failed) for d in docs[:2]])
    text = compact(text_of(out))
    assert "其余" not in text and "稳定超过扶贫标准" not in text
    assert "以下2户拟退出(脱贫)。2户经核实均尚有未达到退出标准的项目" in text and "以上农户均已签字认可" in text
    printing.print_notice(demo_store, out, VILLAGE, "exit", _notice_info(), [(docs[0], failed)])
    text = compact(text_of(out))
    assert "其余" not in text and "1户经核实尚有未达到退出标准的项目" in text and "该户已签字认可" in text


def test_a_notice_has_one_period_and_comes_after_the_village_review(demo_store, tmp_path):
    docs = households.documents(demo_store, VILLAGE)
    first = {"proposal_kind": "return", "notice_start": "2026-11-03", "notice_end": "2026-11-09"}
    second = {"proposal_kind": "return", "notice_start": "2026-11-20", "notice_end": "2026-11-26"}
    with pytest.raises(ReportError, match=r"不同的公示期.*2026年11月3日至2026年11月9日.*2026年11月20日至2026年11月26日"):
        printing.print_notice(demo_store, tmp_path / "n.pdf", VILLAGE, "entry", None, [(docs[0], first), (docs[1], second)])
    late = {"proposal_kind": "return", "review_meeting_date": "2026-12-03"}
    with pytest.raises(ReportError, match=rf"早于这些户的村级评议日期:{docs[0]['head_name']}\(评议 2026-12-03\)"):
        printing.print_notice(demo_store, tmp_path / "n.pdf", VILLAGE, "entry", _notice_info(), [(docs[0], late)])
    assert not (tmp_path / "n.pdf").exists()


def test_the_signatures_of_a_long_notice_stay_with_its_period_and_place(demo_store, tmp_path):
    doc = households.documents(demo_store, VILLAGE)[0]
    out = tmp_path / "long.pdf"
    for count in range(34, 46, 2):  # wherever the page break falls
        printing.print_notice(demo_store, out, VILLAGE, "entry", _notice_info(),
                              [(doc, {"proposal_kind": "return", "reasons": "因灾返贫"})] * count)
        last = compact(PdfReader(str(out)).pages[-1].extract_text())
        assert "村党组织书记(签字)" in last and "公示时间:" in last and "如有异议" in last, count


def test_notice_period_shorter_than_seven_days_is_refused(demo_store, tmp_path):
    docs = households.documents(demo_store, VILLAGE)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "notice.pdf"
    with pytest.raises(ReportError, match="至少 7 天"):
        printing.print_notice(demo_store, out, VILLAGE, "exit", _notice_info(days=6), [(docs[0], {})])
    assert not out.exists()
    with pytest.raises(ReportError, match="没有等待村内公示"):
        printing.print_notice(demo_store, out, VILLAGE, "exit", _notice_info(), [])
    assert list(folder.iterdir()) == []


def test_every_document_embeds_its_fonts_and_uses_no_standard_14_font(demo_store, tmp_path):
    docs = households.documents(demo_store, VILLAGE)
    outputs = {
        "cards": lambda p: printing.print_cards(demo_store, p, village_code=VILLAGE),
        "register": lambda p: printing.print_register(demo_store, p, VILLAGE),
        "book": lambda p: printing.print_book(demo_store, p, TOWNSHIP),
        "notice": lambda p: printing.print_notice(demo_store, p, VILLAGE, "exit", _notice_info(), [(docs[0], {})]),
    }
    for name, make in outputs.items():
        out = tmp_path / f"{name}.pdf"
        make(out)
        fonts = fonts_of(out)
        assert any("DroidSansFallback" in f for f in fonts), name
        for font_name, font in fonts.items():
            assert embedded_file(font) is not None, f"{name}: {font_name} not embedded"
            assert not any(std in font_name for std in STANDARD_14), f"{name}: {font_name}"


def test_a_village_is_not_printed_when_the_window_already_found_one_of_its_records_damaged(village_store, tmp_path):
    """The window lists every household first: a record it had to skip must still stop the register."""
    rid, blob = village_store.conn.execute(
        "SELECT id, blob FROM records WHERE kind = 'member' AND village_code = ? LIMIT 1", (VILLAGE,)).fetchone()
    village_store.conn.execute("UPDATE records SET blob = ? WHERE id = ?", (blob[:-1] + bytes([blob[-1] ^ 1]), rid))
    list(village_store.records())  # as the main window's load does
    assert rid in village_store.damaged
    out = tmp_path / "register.pdf"
    with pytest.raises(printing.PrintError, match="无法解密"):
        printing.print_register(village_store, out, VILLAGE)
    assert not out.exists()
