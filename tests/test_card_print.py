"""Household cards as printed: the QR code on each card decodes to that card's check payload, cards
built a chunk of households at a time are the pages of one document, and the operators replayed for
repeated cells and labels are the ones drawing them writes."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import pypdfium2
import zxingcpp
from pypdf import PdfReader

from app.core import demo
from app.reports import card, cells
from app.reports.context import Context

VILLAGE = "522634101201"
TODAY = dt.date(2026, 12, 1)


def _items(n: int, ids: list[str] | None = None) -> tuple[list[tuple[dict, str, str]], Context]:
    docs = demo.households(per_village=n, villages=[VILLAGE], today=TODAY)
    ctx = Context(division_names={c: name for c, name, _, _ in demo.divisions()},
                  poverty_lines=dict(demo.POVERTY_LINES), today=TODAY)
    for i, doc in enumerate(docs):
        doc["id"] = ids[i] if ids else f"h{i:04d}"
    return [(doc, card.card_digest(doc, ctx), "2026-12-01 08:00") for doc in docs], ctx


def _monitored(doc: dict) -> dict:
    """The household as a 监测户 with two risks (the card's 防返贫监测 tables, one cell wrapping)."""
    doc.update(household_type="2", monitoring_type="3", risk_eliminated=False, risk_identified_date="2026-01-05")
    doc["risks"] = [{"risk_type": "05", "found_date": "2025-11-01"},
                    {"risk_type": "01", "found_date": "2025-12-01",
                     "note": "长期慢性病，需要持续跟踪治疗和医疗保障政策落实情况的说明"}]
    return doc


def _with_monitored(items, ctx):
    doc = _monitored(dict(items[1][0], id="monitored"))
    return items + [(doc, card.card_digest(doc, ctx), "v")]


def _pdf(items, ctx, **kw) -> bytes:
    out = io.BytesIO()
    card.build_cards(out, items, ctx, **kw)
    return out.getvalue()


def _images(pdf: bytes, scale: float = 2.0) -> list:
    doc = pypdfium2.PdfDocument(pdf)
    return [doc[i].render(scale=scale).to_pil() for i in range(len(doc))]


def test_each_printed_qr_code_decodes_to_its_cards_household_and_digest():
    # ids as the store makes them (uuid), short and long; the payload's size picks the QR version
    ids = [str(uuid.UUID(int=i * 7919 + 12345)) for i in range(8)] + ["h1", "x" * 40]
    items, ctx = _items(len(ids), ids)
    pages = _images(_pdf(items, ctx))
    found = []
    for image in pages:
        codes = zxingcpp.read_barcodes(image)
        found += [c.text for c in codes]
    expected = [card.qr_payload(doc["id"], digest) for doc, digest, _ in items]
    assert found == expected  # one code per card, on its first page, in order
    for text, (doc, digest, _) in zip(found, items):
        assert card.parse_qr(text) == (doc["id"], digest)


def test_cards_built_in_chunks_are_the_pages_of_one_document(monkeypatch):
    items, ctx = _items(9)
    whole = _pdf(items, ctx)
    seen = []
    monkeypatch.setattr(card, "CHUNK", 4)  # 4 + 4 + 1 households
    chunked = _pdf(iter(items), ctx, total=len(items), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (9, 9) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    one, joined = PdfReader(io.BytesIO(whole)), PdfReader(io.BytesIO(chunked))
    assert len(joined.pages) == len(one.pages) >= 18
    # the same text on every page (the footer's 本户第 n 页 included) and the same pixels
    assert [p.extract_text() for p in joined.pages] == [p.extract_text() for p in one.pages]
    assert [i.tobytes() for i in _images(chunked, 1.5)] == [i.tobytes() for i in _images(whole, 1.5)]
    assert joined.metadata.title == "户有卡"
    for page in joined.pages:
        assert page["/Parent"]["/Count"] == len(joined.pages)


def test_replayed_cells_and_labels_write_what_drawing_them_writes(monkeypatch):
    """Labels, headings and check boxes shared by every card, and one-line cells, are drawn once per
    document and their operators written again after: the pages' content must be byte for byte
    what drawing every one of them gives (SizedTable's cells written from their kept operators, its
    grid lines, the QR code's rectangles and the footers' kept rule and text included)."""
    items, ctx = _items(4)
    items = _with_monitored(items, ctx)
    fast = PdfReader(io.BytesIO(_pdf(items, ctx)))
    monkeypatch.setattr(cells, "REPLAY", False)
    slow = PdfReader(io.BytesIO(_pdf(items, ctx)))
    assert len(fast.pages) == len(slow.pages)
    for a, b in zip(fast.pages, slow.pages):
        assert a.get_contents().get_data() == b.get_contents().get_data()


def test_card_tables_given_their_row_heights_print_what_reportlab_measures(monkeypatch):
    """The card's tables are given the row heights reportlab would compute (cells.sized_table): the
    pages must be byte for byte those of tables that measure themselves, also for a household
    without members, helpers, plans, visits or income (rows spanning the table) or any code marked
    (a label with the 待完善 mark higher than its row)."""
    items, ctx = _items(5)
    bare = dict(items[0][0], id="bare", members=[], helpers=[], plans=[], measures=[], visits=[], incomes=[],
                identification_standard=None, attribute=None, main_cause=None, other_causes=[])
    items.append((bare, card.card_digest(bare, ctx), "v"))
    sized = PdfReader(io.BytesIO(_pdf(items, ctx)))

    def measured(rows, widths, pad_h, pad_v, col_spans=(), string_leading=12.0, row_span=None, **kw):
        return cells.Table(rows, colWidths=widths, **kw)

    monkeypatch.setattr(card, "sized_table", measured)
    plain = PdfReader(io.BytesIO(_pdf(items, ctx)))
    assert len(sized.pages) == len(plain.pages)
    for a, b in zip(sized.pages, plain.pages):
        assert a.get_contents().get_data() == b.get_contents().get_data()


def test_a_village_printed_a_batch_of_households_at_a_time_prints_the_same_cards(make_store, tmp_path, monkeypatch):
    """print cards --village reads, assembles and prints the households in batches (memory flat in
    the size of the village): the file must hold the cards one read of the village gives."""
    from app.services import demo as demo_service
    from app.services import households, printing

    store = make_store("v.db")
    demo_service.install_reference_data(store)
    with store.transaction():
        for doc in demo.households(per_village=11, villages=[VILLAGE], today=TODAY):
            households.save(store, doc, allow_errors=True)
    whole = printing.print_cards(store, tmp_path / "whole.pdf", village_code=VILLAGE, today=TODAY)
    monkeypatch.setattr(households, "DOCUMENT_BATCH", 3)
    monkeypatch.setattr(card, "CHUNK", 4)
    seen = []
    batched = printing.print_cards(store, tmp_path / "batched.pdf", village_code=VILLAGE, today=TODAY,
                                   progress=lambda d, t: seen.append((d, t)))
    assert batched.households == whole.households == 11 and batched.pages == whole.pages
    assert seen[-1] == (11, 11)
    one, joined = PdfReader(tmp_path / "whole.pdf"), PdfReader(tmp_path / "batched.pdf")
    assert [p.extract_text() for p in joined.pages] == [p.extract_text() for p in one.pages]
    assert [c.text for i in _images((tmp_path / "batched.pdf").read_bytes()) for c in zxingcpp.read_barcodes(i)] \
        == [c.text for i in _images((tmp_path / "whole.pdf").read_bytes()) for c in zxingcpp.read_barcodes(i)]


def test_sized_tables_draw_what_reportlab_tables_draw(monkeypatch):
    """SizedTable (one CellStyle shared while the commands cover every cell, cells written straight
    from their kept operators, grid lines of the same geometry written again) must write byte for
    byte what reportlab's Table writes for the same rows, heights and style: cards with members
    split over pages, spans, code lists, monitoring tables and a bare household."""
    from app.reports import monitoring_card

    items, ctx = _items(6)
    items = _with_monitored(items, ctx)
    bare = dict(items[0][0], id="bare", members=[], helpers=[], plans=[], measures=[], visits=[], incomes=[],
                identification_standard=None, attribute=None, main_cause=None, other_causes=[])
    items.append((bare, card.card_digest(bare, ctx), "v"))
    fast = PdfReader(io.BytesIO(_pdf(items, ctx)))
    monkeypatch.setattr(cells, "SizedTable", cells.Table)
    monkeypatch.setattr(monitoring_card, "SizedTable", cells.Table)
    plain = PdfReader(io.BytesIO(_pdf(items, ctx)))
    assert len(fast.pages) == len(plain.pages) > len(items)
    for a, b in zip(fast.pages, plain.pages):
        assert a.get_contents().get_data() == b.get_contents().get_data()


def test_a_sized_table_with_a_style_for_some_cells_gives_each_cell_its_own():
    from reportlab.platypus import TableStyle

    t = cells.SizedTable([["a", "b"], ["c", "d"]], colWidths=[50, 50])
    t.setStyle(TableStyle([("FONTSIZE", (0, 0), (-1, -1), 7), ("ALIGN", (1, 1), (1, 1), "RIGHT")]))
    styles = [s for row in t._cellStyles for s in row]
    assert [s.fontsize for s in styles] == [7, 7, 7, 7]
    assert [s.alignment for s in styles] == ["LEFT", "LEFT", "LEFT", "RIGHT"]


def test_the_card_qr_code_draws_the_rectangles_reportlabs_qr_flowable_draws():
    from reportlab.graphics.barcode.qr import QrCode
    from reportlab.pdfgen.canvas import Canvas

    for payload in ["JDCARD1|h1|0123456789abcdef", card.qr_payload(str(uuid.UUID(int=7)), "f" * 16),
                    card.qr_payload("x" * 40, "0" * 16)]:
        ours = card.qr_flowable(payload)
        canvases = []
        for draw in (QrCode.draw, type(ours).draw):
            canvas = Canvas(io.BytesIO())
            ours.canv = canvas
            draw(ours)
            canvases.append(canvas._code)
        assert canvases[0] == canvases[1] and len(canvases[0]) > 50


def test_the_lines_under_the_title_print_what_their_paragraphs_print(monkeypatch):
    """户主/户编号 and 住址 are drawn as Lines when their values are plain text: the same pixels and
    text as the paragraphs (a name with markup characters, a missing 户编号 with its 待完善 mark)."""
    items, ctx = _items(3)
    items[1][0]["head_name"] = "A&B <c>"
    items[2][0]["household_number"] = ""
    lines = _pdf(items, ctx)
    monkeypatch.setattr(card, "_plain_title", lambda text: False)
    paragraphs = _pdf(items, ctx)
    assert [i.tobytes() for i in _images(lines, 3)] == [i.tobytes() for i in _images(paragraphs, 3)]
    texts = [p.extract_text() for p in PdfReader(io.BytesIO(lines)).pages]
    assert "户主:A&B <c> 户编号:" in texts[2] and "待完善" in texts[4]


def _fonts(reader: PdfReader) -> dict[str, set[int]]:
    """BaseFont of every font the pages use -> the numbers of the objects holding it."""
    fonts: dict[str, set[int]] = {}
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            fonts.setdefault(str(ref.get_object()["/BaseFont"]), set()).add(ref.idnum)
    return fonts


def test_a_card_file_built_in_chunks_embeds_each_font_subset_once(monkeypatch):
    """The chunks share one numbering of the fonts' characters, and the joined file holds each
    subset once (the last chunk's, which holds every earlier chunk's characters): the same fonts as
    the file built as one document, and the same text and pixels on every page."""
    items, ctx = _items(7)
    whole = _pdf(items, ctx)
    monkeypatch.setattr(card, "CHUNK", 3)  # 3 + 3 + 1 households
    chunked = _pdf(items, ctx)
    one, joined = PdfReader(io.BytesIO(whole)), PdfReader(io.BytesIO(chunked))
    fonts = _fonts(joined)
    assert sorted(fonts) == sorted(_fonts(one)) and len(fonts) >= 2
    assert all(len(numbers) == 1 for numbers in fonts.values()), fonts
    assert [p.extract_text() for p in joined.pages] == [p.extract_text() for p in one.pages]
    assert [i.tobytes() for i in _images(chunked, 1.5)] == [i.tobytes() for i in _images(whole, 1.5)]
