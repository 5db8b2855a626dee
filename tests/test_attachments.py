"""Attachments in the store: add (resized, upright, EXIF dropped), dedupe, delete, bad files, and no
plain image anywhere on disk."""

from __future__ import annotations

import io
import os
import tempfile

import pytest
from PIL import Image

from app import settings as app_settings
from app.services import attachments
from app.store import Store, StoreError
from app.store import attachments as blobs
from tests import photos
from tests.conftest import PASSPHRASE

BACKENDS = ("sqlite", "postgresql")  # tests/pg.py: the store-level tests run on both

CONF = app_settings.Settings(photo_max_side=1600, photo_quality=80)


def _house(store):
    return next(iter(store.records("household")))


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _add(store, house, *paths, **kw):
    kw.setdefault("conf", CONF)
    return attachments.add_files(store, house, list(paths), **kw)


def test_add_resizes_reencodes_and_keeps_the_date(demo_store, tmp_path):
    house = _house(demo_store)
    src = _write(tmp_path, "IMG_0001 房屋.jpg", photos.photo(4000, 3000, gps=True))
    report = _add(demo_store, house, src, kind="住房", caption="危房改造前")
    assert len(report.added) == 1 and not report.refused
    rec = demo_store.get(report.added[0])
    assert rec.kind == "attachment" and rec.parent_id == house.id and rec.village_code == house.village_code
    f = rec.fields
    assert (f["kind"], f["caption"], f["record"], f["taken"]) == ("1", "危房改造前", house.id, "2025-03-01 10:20")
    assert (f["width"], f["height"]) == (1600, 1200)
    assert "gps" not in f  # the county did not choose to keep positions
    data = attachments.image(demo_store, rec)
    assert f["size"] == len(data) < os.path.getsize(src) / 3
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG" and img.size == (1600, 1200)
    exif = img.getexif()
    assert not exif.get_ifd(0x8825) and 0x010F not in exif  # no GPS, no phone make: no EXIF at all
    assert attachments.thumbnail(demo_store, rec)[:2] == b"\xff\xd8"


def test_exif_orientation_is_applied(demo_store, tmp_path):
    house = _house(demo_store)
    # a phone held upright stores a landscape picture and says "rotate 90°" (orientation 6)
    report = _add(demo_store, house, _write(tmp_path, "upright.jpg", photos.photo(1200, 900, orientation=6)))
    rec = demo_store.get(report.added[0])
    assert (rec.fields["width"], rec.fields["height"]) == (900, 1200)


def test_settings_choose_the_longest_side_and_quality(demo_store, tmp_path):
    house = _house(demo_store)
    src = _write(tmp_path, "a.jpg", photos.photo(3000, 4000))
    small = _add(demo_store, house, src, conf=app_settings.Settings(photo_max_side=800, photo_quality=60))
    rec = demo_store.get(small.added[0])
    assert (rec.fields["width"], rec.fields["height"]) == (600, 800)


def test_keep_gps_when_the_county_chooses(make_store, tmp_path):
    store = make_store("gps.db")
    store.put("household", {"household_number": "5226341012010001", "head_name": "欧阳明远"}, village_code="522634101201")
    attachments.set_keep_gps(store, True)
    report = _add(store, _house(store), _write(tmp_path, "gps.jpg", photos.photo(800, 600, gps=True)))
    gps = store.get(report.added[0]).fields["gps"]
    assert gps == {"lat": pytest.approx(26.57, abs=0.01), "lon": pytest.approx(107.975, abs=0.01)}


def test_same_photo_twice_is_stored_once(demo_store, tmp_path):
    houses = list(demo_store.records("household"))[:2]
    src = _write(tmp_path, "family.jpg", photos.photo(2000, 1500, seed=7))
    first = _add(demo_store, houses[0], src, kind="家庭合影")
    again = _add(demo_store, houses[0], src, kind="家庭合影")
    assert len(first.added) == 1 and not again.added and "已添加过" in again.same[0]
    copy = _write(tmp_path, "copy of family.jpg", src.read_bytes())
    other = _add(demo_store, houses[1], copy)  # the same photo for another household: a record, not a copy
    assert len(other.added) == 1
    assert demo_store.conn.execute("SELECT count(*) FROM attachment_blobs").fetchone()[0] == 1
    assert demo_store.count("attachment") == 2


def test_attach_to_a_member_and_list(demo_store, tmp_path):
    house = _house(demo_store)
    member = next(iter(demo_store.records("member", parent_id=house.id)))
    rec = attachments.resolve_record(demo_store, house, member.id[-8:])
    _add(demo_store, house, _write(tmp_path, "id.png", photos.png()), record=rec, kind="证件")
    rows = attachments.listing(demo_store, house.id)
    assert len(rows) == 1
    row = rows[0]
    assert row["record"] == member.id and row["kind_label"] == "证件" and member.fields["name"] in row["record_words"]
    assert row["present"] and row["household_number"] == house.fields["household_number"]
    assert attachments.counts(demo_store) == {house.id: 1}


def test_delete_is_a_tombstone_and_removes_the_image(demo_store, tmp_path):
    houses = list(demo_store.records("household"))[:2]
    src = _write(tmp_path, "a.jpg", photos.photo(1000, 800))
    a = _add(demo_store, houses[0], src).added[0]
    b = _add(demo_store, houses[1], src).added[0]
    attachments.delete(demo_store, a)
    assert demo_store.get(a).deleted and demo_store.history(a)[-1].op == "delete"
    assert blobs.has_blob(demo_store, demo_store.get(b).fields["digest"])  # still used by b
    attachments.delete(demo_store, b[-8:])
    assert demo_store.conn.execute("SELECT count(*) FROM attachment_blobs").fetchone()[0] == 0
    with pytest.raises(StoreError, match="找不到"):
        attachments.delete(demo_store, a)


@pytest.mark.parametrize("name, data, words", [
    ("notes.txt", "这不是照片".encode(), "不是可识别的图片"),
    ("cut.jpg", photos.photo(1200, 900)[:20000], "不完整"),
    ("huge.png", photos.huge_png(), "图片过大"),
    ("IMG_1234.HEIC", photos.heic(), "HEIC"),
    ("empty.jpg", b"", "空的"),
])
def test_bad_files_are_refused_by_name_and_nothing_is_stored(demo_store, tmp_path, name, data, words):
    house = _house(demo_store)
    before = (demo_store.change_count(), demo_store.conn.execute("SELECT count(*) FROM attachment_blobs").fetchone()[0])
    good = _write(tmp_path, "good.jpg", photos.photo(800, 600))
    report = _add(demo_store, house, _write(tmp_path, name, data), good)
    assert len(report.refused) == 1 and report.refused[0].startswith(name) and words in report.refused[0]
    assert "Traceback" not in report.refused[0]
    assert len(report.added) == 1  # the good file of the same batch is still added
    after = (demo_store.change_count(), demo_store.conn.execute("SELECT count(*) FROM attachment_blobs").fetchone()[0])
    assert after == (before[0] + 1, before[1] + 1)


def test_pdf_scan_becomes_one_image_per_page(demo_store, tmp_path):
    house = _house(demo_store)
    report = _add(demo_store, house, _write(tmp_path, "公示签字.pdf", photos.pdf(2)), kind="签字材料")
    recs = [demo_store.get(i) for i in report.added]
    assert [r.fields["page"] for r in recs] == [1, 2]
    assert recs[0].fields["caption"] == "公示签字 第 1 页"
    assert Image.open(io.BytesIO(attachments.image(demo_store, recs[1]))).format == "JPEG"


def test_folder_of_phone_photos(demo_store, tmp_path):
    folder = tmp_path / "DCIM 相册"
    folder.mkdir()
    for i in range(3):
        _write(folder, f"IMG_{i}.jpg", photos.photo(900, 600, seed=i))
    _write(folder, "Thumbs.db", b"x")
    report = _add(demo_store, _house(demo_store), folder, kind="走访")
    assert len(report.added) == 3 and [p.name for p in report.left_out] == ["Thumbs.db"]


def test_a_blob_moved_under_another_address_fails_to_open(demo_store, tmp_path):
    house = _house(demo_store)
    ids = _add(demo_store, house, _write(tmp_path, "a.jpg", photos.photo(600, 400, seed=1)),
               _write(tmp_path, "b.jpg", photos.photo(600, 400, seed=2))).added
    a, b = (demo_store.get(i).fields["digest"] for i in ids)
    blob_b = demo_store.conn.execute("SELECT blob FROM attachment_blobs WHERE digest = ?", (b,)).fetchone()[0]
    demo_store.conn.execute("UPDATE attachment_blobs SET blob = ? WHERE digest = ?", (blob_b, a))
    from app.services import integrity
    from app.store.crypto import DecryptionError

    with pytest.raises(DecryptionError):
        blobs.get_blob(demo_store, a)
    report = integrity.check(demo_store)  # jiandang check names it
    assert [p.message.split(" ")[:2] for p in report.problems] == [["照片", a[:12]]]


@pytest.mark.sqlite_only  # the file itself; on PostgreSQL: test_postgres.py scans a pg_dump
def test_no_plain_image_in_the_database_wal_or_temp_files(make_store, tmp_path, monkeypatch):
    from app.services import demo

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMP", str(temp))
    monkeypatch.setenv("TEMP", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    store = make_store("scan.db")
    demo.fill(store, per_village=1)
    house = _house(store)
    files = [_write(tmp_path, f"p{i}.jpg", photos.photo(1500, 1000, seed=i)) for i in range(3)]
    files.append(_write(tmp_path, "scan.png", photos.png()))
    files.append(_write(tmp_path, "paper.pdf", photos.pdf(1)))
    assert len(_add(store, house, *files).added) == 5
    path = store.path
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # the images went through the WAL
    assert photos.find_magic(wal) == []
    assert photos.find_magic(path) == []
    store.close()
    assert photos.find_magic(path) == []
    for leftover in temp.rglob("*"):
        assert leftover.is_dir() or photos.find_magic(leftover) == [], leftover
    # the check itself finds a plain image
    assert photos.find_magic(files[0]) and photos.find_magic(files[3])
    reopened = Store.open(path)
    reopened.unlock("admin", PASSPHRASE)
    rec = next(iter(reopened.records("attachment")))
    assert attachments.image(reopened, rec)[:2] == b"\xff\xd8"
    reopened.close()
