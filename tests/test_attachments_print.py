"""Photos on paper: the card carries the family and house photos, `print evidence` prints every photo
with its caption, date and who added it."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from app import settings as app_settings
from app.cli.main import main
from app.reports.common import ReportError
from app.services import attachments, printing
from tests import photos
from tests.conftest import PASSPHRASE

CONF = app_settings.Settings(photo_max_side=1200, photo_quality=80)


def _images(pdf_path) -> list[tuple[int, int]]:
    """(width, height) of every image embedded in the PDF, page by page."""
    out = []
    for page in PdfReader(str(pdf_path)).pages:
        out += [(img.image.width, img.image.height) for img in page.images]
    return out


def _text(pdf_path) -> str:
    return "".join(page.extract_text() for page in PdfReader(str(pdf_path)).pages)


def _add(store, house, tmp_path, name, data, **kw):
    path = tmp_path / name
    path.write_bytes(data)
    return attachments.add_files(store, house, [path], conf=CONF, **kw).added[0]


def test_card_carries_the_latest_family_and_house_photos(demo_store, tmp_path):
    house = next(iter(demo_store.records("household")))
    plain = tmp_path / "plain.pdf"
    printing.print_cards(demo_store, plain, household_id=house.id)
    assert _images(plain) == []
    digest_before = printing.card_digest(demo_store, house.id)
    _add(demo_store, house, tmp_path, "old house.jpg", photos.photo(1600, 1200, seed=1, taken="2019:05:01 10:00:00"),
         kind="住房", caption="改造前")
    _add(demo_store, house, tmp_path, "new house.jpg", photos.photo(1600, 1200, seed=2, taken="2025:05:01 10:00:00"),
         kind="住房", caption="改造后")
    _add(demo_store, house, tmp_path, "family.jpg", photos.photo(1200, 1600, seed=3), kind="家庭合影", caption="全家福")
    _add(demo_store, house, tmp_path, "visit.jpg", photos.photo(800, 600, seed=4), kind="走访")
    card = tmp_path / "card.pdf"
    printing.print_cards(demo_store, card, household_id=house.id)
    assert sorted(_images(card)) == [(900, 1200), (1200, 900)]  # the family photo and the newer house photo
    text = _text(card)
    assert "全家福" in text and "改造后" in text and "改造前" not in text
    # the card's check digest covers the photos it prints
    assert printing.card_digest(demo_store, house.id) != digest_before
    # a village's cards: only the household with photos has them
    village = tmp_path / "village.pdf"
    printing.print_cards(demo_store, village, village_code=house.village_code)
    assert len(_images(village)) == 2


def test_print_evidence_lists_every_photo_with_caption_date_and_who(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    db = tmp_path / "v.db"
    assert main(["demo", str(db), "--per-village", "1"]) == 0
    from app.store import Store

    store = Store.open(db)
    store.unlock(store.operators()[0], PASSPHRASE)
    house = next(iter(store.records("household")))
    number = house.fields["household_number"]
    store.close()
    for i, kind in enumerate(["住房", "走访", "签字材料"]):
        (tmp_path / f"p{i}.jpg").write_bytes(photos.photo(1600, 1200, seed=i))
        assert main(["attach", str(db), "--household", number, str(tmp_path / f"p{i}.jpg"), "--kind", kind,
                     "--caption", f"说明{i}"]) == 0
    out = tmp_path / "佐证 材料.pdf"
    capsys.readouterr()
    assert main(["print", "evidence", str(db), "--household", number, "--out", str(out)]) == 0
    assert "佐证材料 3 张" in capsys.readouterr().out
    assert len(_images(out)) == 3 and len(PdfReader(str(out)).pages) == 2  # two photos a page
    text = _text(out)
    for i in range(3):
        assert f"说明{i}" in text
    assert "拍摄时间 2025-03-01 10:20" in text and "演示" in text and "添加" in text
    only = tmp_path / "house.pdf"
    assert main(["print", "evidence", str(db), "--household", number, "--kind", "住房", "--out", str(only)]) == 0
    assert len(_images(only)) == 1
    assert main(["print", "evidence", str(db), "--household", number, "--kind", "证件", "--out", str(only)]) == 1
    assert "没有类别为“证件”的照片" in capsys.readouterr().err


def test_a_photo_not_yet_synced_prints_as_a_marked_box(demo_store, tmp_path):
    house = next(iter(demo_store.records("household")))
    _add(demo_store, house, tmp_path, "a.jpg", photos.photo(800, 600), kind="走访")
    demo_store.conn.execute("DELETE FROM attachment_blobs")  # only the metadata has arrived
    path, pages, count = attachments.print_evidence(demo_store, tmp_path / "e.pdf", house)
    assert count == 1 and _images(path) == [] and "照片尚未同步到本机" in _text(path)
    with pytest.raises(ReportError):
        attachments.print_evidence(demo_store, tmp_path / "x.pdf", house, kind="证件")
