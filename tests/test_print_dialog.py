"""The print dialog: generation off the GUI thread with a paged preview that shows whole pages, save as, errors."""

from __future__ import annotations

import re

from pypdf import PdfReader

from app.services import households
from app.ui.print_dialog import PrintDialog, render_first_page

VILLAGE = "522634101201"


def test_generate_preview_and_save(qtbot, demo_store, tmp_path):
    doc = households.documents(demo_store, VILLAGE)[0]
    dialog = PrintDialog(demo_store, household_id=doc["id"])
    qtbot.addWidget(dialog)
    keys = [dialog.document.itemData(i) for i in range(dialog.document.count())]
    assert keys == ["card_household", "card_village", "register", "book", "notice_entry", "notice_exit",
                    "notice_monitor", "notice_eliminate",  # 防返贫监测公示 of the village too
                    "monitoring_register", "monitoring_book"]  # and the 监测对象名册 / 监测对象簿
    dialog.select("register")
    dialog.generate()
    assert dialog.wait_until_done()
    assert dialog.pdf and dialog.pdf.startswith(b"%PDF")
    assert f"共 {dialog.pages} 页" in dialog.status.text()
    pixmap = dialog.preview.pixmap()
    assert pixmap is not None and not pixmap.isNull() and pixmap.width() > 100
    # the preview is not blank: it has dark (text) pixels
    image = pixmap.toImage()
    dark = sum(1 for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)
               if image.pixelColor(x, y).lightness() < 100)
    assert dark > 10  # a blank page has none
    assert dialog.save_button.isEnabled() and dialog.open_button.isEnabled()
    out = tmp_path / "saved.pdf"
    dialog.save_to(out)
    reader = PdfReader(str(out))
    assert len(reader.pages) == dialog.pages
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in reader.pages))
    assert doc["head_name"] in text


def test_failure_is_shown_without_output(qtbot, demo_store):
    dialog = PrintDialog(demo_store, village_code=VILLAGE)
    qtbot.addWidget(dialog)
    assert dialog.document.findData("card_household") == -1
    dialog.select("notice_exit")
    dialog.generate()
    assert dialog.wait_until_done()
    assert dialog.pdf is None
    assert "没有等待村内公示" in dialog.status.text()
    assert not dialog.save_button.isEnabled()
    assert dialog.generate_button.isEnabled()


def test_first_page_renders_to_an_image(demo_store, tmp_path, qtbot):
    from app.services import printing

    out = tmp_path / "card.pdf"
    printing.print_cards(demo_store, out, village_code=VILLAGE)
    image = render_first_page(out.read_bytes(), 300)
    assert image is not None and image.width() == 300 and image.height() > 400


def test_notice_uses_the_period_set_on_the_proposals(qtbot, demo_store):
    from app.services import proposals

    doc = next(d for d in households.documents(demo_store, VILLAGE) if d.get("status") in ("2", "3", "5"))
    p = proposals.propose(demo_store, doc["id"], "return", reasons="因灾返贫", date="2026-11-01")
    proposals.advance(demo_store, p["id"], "review", "pass", date="2026-11-03", meeting_date="2026-11-03",
                      attendance=30, votes_for=25)
    proposals.plan_notice(demo_store, p["id"], "2026-11-04", "2026-11-12")
    dialog = PrintDialog(demo_store, village_code=VILLAGE)
    qtbot.addWidget(dialog)
    dialog.select("notice_entry")
    dialog.place.setText("龙井村公示栏")
    dialog.generate()
    assert dialog.wait_until_done()
    import io

    text = re.sub(r"\s+", "", "".join(pg.extract_text() for pg in PdfReader(io.BytesIO(dialog.pdf)).pages))
    assert doc["head_name"] in text and "龙井村公示栏" in text
    assert "2026年11月4日至2026年11月12日(共9天)" in text


def _shown_whole(dialog) -> bool:
    """The page pixmap fits inside the visible part of the preview (nothing cut off)."""
    view = dialog.page_view
    size = dialog.preview.pixmap().deviceIndependentSize()
    viewport = view.viewport().size()
    return (size.width() <= viewport.width() and size.height() <= viewport.height()
            and view.verticalScrollBar().maximum() == 0 and view.horizontalScrollBar().maximum() == 0)


def test_preview_shows_every_part_of_every_page(qtbot, demo_store):
    doc = households.documents(demo_store, VILLAGE)[0]
    dialog = PrintDialog(demo_store, household_id=doc["id"])
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.select("card_household")
    dialog.generate()
    assert dialog.wait_until_done()
    assert dialog.pages >= 2
    # 整页 (the default): the whole first page is scaled into the visible area, aspect ratio kept
    assert dialog.zoom.currentData() == "page"
    assert _shown_whole(dialog)
    pixmap = dialog.preview.pixmap()
    assert abs(pixmap.height() / pixmap.width() - 297 / 210) < 0.02
    assert dialog.page_label.text() == f"第 1 页 共 {dialog.pages} 页"
    assert not dialog.previous_button.isEnabled() and dialog.next_button.isEnabled()
    first = pixmap.toImage()
    # the page follows the window when it is resized
    dialog.resize(dialog.width(), dialog.height() - 200)
    qtbot.waitUntil(lambda: _shown_whole(dialog))
    assert dialog.preview.pixmap().height() < first.height()
    dialog.resize(dialog.width(), dialog.height() + 200)
    # every page can be reached, each shown whole
    for index in range(1, dialog.pages):
        dialog.next_button.click()
        assert dialog.page_label.text() == f"第 {index + 1} 页 共 {dialog.pages} 页"
        assert _shown_whole(dialog)
    assert not dialog.next_button.isEnabled()
    assert dialog.preview.pixmap().toImage() != first
    dialog.previous_button.click()
    assert dialog.page_index == dialog.pages - 2
    # 页宽: the page fills the width and scrolls down to its very bottom
    dialog.zoom.setCurrentIndex(dialog.zoom.findData("width"))
    view = dialog.page_view
    qtbot.waitUntil(lambda: view.verticalScrollBar().maximum() > 0)
    size = dialog.preview.pixmap().deviceIndependentSize()
    assert size.width() <= view.viewport().width() and size.width() > 0.9 * view.viewport().width() - 20
    assert view.horizontalScrollBar().maximum() == 0
    assert view.verticalScrollBar().maximum() + view.viewport().height() >= size.height()


def test_notice_preview_shows_title_and_footer(qtbot, demo_store):
    from app.services import proposals

    doc = next(d for d in households.documents(demo_store, VILLAGE) if d.get("status") in ("2", "3", "5"))
    p = proposals.propose(demo_store, doc["id"], "return", reasons="因灾返贫", date="2026-11-01")
    proposals.advance(demo_store, p["id"], "review", "pass", date="2026-11-03", meeting_date="2026-11-03",
                      attendance=30, votes_for=25)
    dialog = PrintDialog(demo_store, village_code=VILLAGE)
    qtbot.addWidget(dialog)
    dialog.resize(640, 820)  # the size the dialog opens with
    dialog.show()
    dialog.select("notice_entry")
    dialog.generate()
    assert dialog.wait_until_done()
    assert _shown_whole(dialog)
    # the page's top (title) and bottom (issuer and date) rows hold text, so neither is cut off
    image = dialog.preview.pixmap().toImage()

    def dark_rows(rows):
        return [y for y in rows if any(image.pixelColor(x, y).lightness() < 100 for x in range(image.width()))]

    height = image.height()
    assert dark_rows(range(0, height // 8))  # the title
    assert dark_rows(range(height // 2, height))  # the table, period, signatures below it


def test_the_township_and_the_county_get_their_own_notices(qtbot, make_store):
    from app.services import demo

    for role, expected in (("township", ["notice_township_entry", "notice_township_exit"]),
                           ("county", ["notice_township_entry", "notice_township_exit", "announce_entry", "announce_exit"])):
        store = make_store(f"{role}.db", role=role)
        demo.install_reference_data(store)
        dialog = PrintDialog(store, village_code=VILLAGE)
        qtbot.addWidget(dialog)
        keys = [dialog.document.itemData(i) for i in range(dialog.document.count())]
        assert [k for k in keys if k.startswith(("notice_township", "announce"))] == expected
        dialog.select("notice_township_entry")
        assert dialog.place.text() == "西江镇人民政府公示栏" and dialog.contact.text() == "西江镇扶贫工作站"
        assert dialog.end.isVisibleTo(dialog) and not dialog.use_proposal_period.isVisibleTo(dialog)
        dialog.generate()
        assert dialog.wait_until_done()
        assert dialog.pdf is None and "没有通过乡级初核、等待县级审定的拟纳入" in dialog.status.text()
        if role == "county":
            dialog.select("announce_exit")
            assert not dialog.end.isVisibleTo(dialog) and not dialog.place.isVisibleTo(dialog)
            assert dialog.notice_box.layout().labelForField(dialog.start).text() == "公告日期"
            dialog.generate()
            assert dialog.wait_until_done()
            assert "没有通过县级审定、等待公告的拟退出" in dialog.status.text()
        dialog.select("notice_entry")  # back to the village's notice: its own defaults again
        assert dialog.place.text() == "村委会公示栏" and dialog.use_proposal_period.isVisibleTo(dialog)


def test_preview_files_for_the_viewer_are_deleted_and_leftovers_of_a_crashed_run_at_start_up(qtbot, demo_store, tmp_path, monkeypatch):
    import os
    import tempfile
    import time

    from app.ui import print_dialog

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(print_dialog.QDesktopServices, "openUrl", lambda url: True)
    dialog = PrintDialog(demo_store, village_code=VILLAGE)
    qtbot.addWidget(dialog)
    dialog.select("register")
    dialog.generate()
    assert dialog.wait_until_done()
    dialog.open_in_viewer()
    [folder] = list(tmp_path.glob("jiandang-print-*"))
    assert list(folder.glob("*.pdf"))
    dialog.done(0)
    assert not folder.exists()
    # a run that crashed left one behind an hour ago; another window's fresh one is left alone
    old, fresh = tmp_path / "jiandang-print-old", tmp_path / "jiandang-print-fresh"
    for f in (old, fresh):
        f.mkdir()
        (f / "户有卡.pdf").write_bytes(b"%PDF-1.4")
    an_hour_ago = time.time() - 3700
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert print_dialog.remove_leftover_previews() == 1
    assert not old.exists() and fresh.exists()
