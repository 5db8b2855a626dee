"""The village register printed page by page: made from a generator of households it is the register
of the whole list, byte for byte; the pages held until the page count is known are compressed
without changing a byte; and print_register reading the village a batch at a time prints the same
register."""

from __future__ import annotations

import datetime as dt
import io
import re

from pypdf import PdfReader
from reportlab import rl_config

from app.core import demo
from app.reports import common, register
from app.reports.context import Context

VILLAGE = "522634101201"
TODAY = dt.date(2026, 12, 1)


def _docs(n: int) -> tuple[list[dict], Context]:
    docs = demo.households(per_village=n, villages=[VILLAGE], today=TODAY)
    docs[3]["members"] = []  # 待完善 in the 人口 column
    docs[4]["group"] = None  # 未分组
    docs[5]["head_name"] = "欧阳娜娜娜娜娜娜娜娜娜娜娜娜娜娜娜娜娜"  # wraps: a higher row
    ctx = Context(division_names={c: name for c, name, _, _ in demo.divisions()},
                  poverty_lines=dict(demo.POVERTY_LINES), today=TODAY)
    return docs, ctx


def test_a_register_made_page_by_page_from_a_generator_is_the_register_of_the_whole_list(monkeypatch):
    monkeypatch.setattr(rl_config, "invariant", 1)  # no dates or random file id: files compare
    docs, ctx = _docs(140)
    whole = io.BytesIO()
    story, summary = register.register_story(VILLAGE, docs, ctx)
    register._build(whole, register.register_title(VILLAGE, ctx), story, ctx)
    lazy = io.BytesIO()
    seen = []
    pages, lazy_summary = register.build_register(lazy, VILLAGE, iter(docs), ctx, lambda d, t: seen.append((d, t)))
    assert lazy.getvalue() == whole.getvalue()
    assert pages == len(PdfReader(lazy).pages) > 5
    assert lazy_summary == summary and summary.households == 140
    assert seen[-1] == (140, 140) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_pages_held_for_the_page_count_are_written_as_reportlab_writes_them(monkeypatch):
    monkeypatch.setattr(rl_config, "invariant", 1)
    docs, ctx = _docs(70)
    compact = io.BytesIO()
    register.build_register(compact, VILLAGE, docs, ctx)
    monkeypatch.setattr(common, "COMPACT_PAGES", False)
    plain = io.BytesIO()
    register.build_register(plain, VILLAGE, docs, ctx)
    assert compact.getvalue() == plain.getvalue()
    texts = [re.sub(r"\s+", "", p.extract_text()) for p in PdfReader(compact).pages]
    assert all(f"第{i}页共{len(texts)}页" in text for i, text in enumerate(texts, 1))


def test_a_register_printed_a_batch_of_households_at_a_time_is_the_same(make_store, tmp_path, monkeypatch):
    from app.services import demo as demo_service
    from app.services import households, printing

    store = make_store("v.db")
    demo_service.install_reference_data(store)
    with store.transaction():
        for doc in demo.households(per_village=11, villages=[VILLAGE], today=TODAY):
            households.save(store, doc, allow_errors=True)
    whole = printing.print_register(store, tmp_path / "whole.pdf", VILLAGE, today=TODAY)
    monkeypatch.setattr(households, "DOCUMENT_BATCH", 3)
    batched = printing.print_register(store, tmp_path / "batched.pdf", VILLAGE, today=TODAY)
    assert batched.households == whole.households == 11 and batched.pages == whole.pages
    one, parts = PdfReader(tmp_path / "whole.pdf"), PdfReader(tmp_path / "batched.pdf")
    assert [p.extract_text() for p in parts.pages] == [p.extract_text() for p in one.pages]
    assert "合计:11 户" in one.pages[0].extract_text()


def test_the_township_book_holds_one_batch_of_households_at_a_time(make_store, tmp_path, monkeypatch):
    """print_book reads the township village by village, a batch of households at a time, and keeps
    only each village's figures: never more households alive at once than one batch (it held every
    household of the township before issue #16: 25,000 households took 520 MB)."""
    import weakref

    from app.services import demo as demo_service
    from app.services import households, printing

    store = make_store("t.db")
    demo_service.install_reference_data(store)
    villages = [v for v in demo.village_codes() if v.startswith(VILLAGE[:9])]
    with store.transaction():
        for doc in demo.households(per_village=5, villages=villages, today=TODAY):
            households.save(store, doc, allow_errors=True)
    whole = printing.print_book(store, tmp_path / "whole.pdf", VILLAGE[:9], today=TODAY)

    class Doc(dict):  # a household document that can be watched (dict cannot be weakly referenced)
        pass

    alive, most = set(), [0]
    assemble = households.assemble

    def watched(*args, **kwargs):
        doc = Doc(assemble(*args, **kwargs))
        alive.add(id(doc))
        weakref.finalize(doc, alive.discard, id(doc))
        most[0] = max(most[0], len(alive))
        return doc

    monkeypatch.setattr(households, "assemble", watched)
    monkeypatch.setattr(households, "DOCUMENT_BATCH", 2)
    seen = []
    batched = printing.print_book(store, tmp_path / "batched.pdf", VILLAGE[:9], today=TODAY,
                                  progress=lambda d, t: seen.append((d, t)))
    assert batched.households == whole.households == 5 * len(villages) and len(villages) >= 3
    assert 1 <= most[0] <= 2  # one batch (all of them: 15 before)
    assert seen == [(i, len(villages)) for i in range(1, len(villages) + 1)]
    one, parts = PdfReader(tmp_path / "whole.pdf"), PdfReader(tmp_path / "batched.pdf")
    assert [p.extract_text() for p in parts.pages] == [p.extract_text() for p in one.pages]
    assert re.search(rf"合计\s*{whole.households}\s", one.pages[0].extract_text())
