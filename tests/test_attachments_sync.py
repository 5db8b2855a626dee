"""Attachments through sync: by USB and through the service, split over several bundles by a size
budget, resumed after a cut without sending twice; the county keeps everything, laptops get only
their own villages'."""

from __future__ import annotations

import pytest

from app import settings as app_settings
from app.server import client
from app.server.app import Limits, SyncServer
from app.services import attachments, households
from app.store import attachments as blobs
from app.sync import attachments as attachment_sync
from app.sync import exchange, status
from tests import factories, photos
from tests.sync_helpers import FAR_VILLAGE, make_county, make_device

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

CONF = app_settings.Settings(photo_max_side=640, photo_quality=75)
BUDGET = 70_000  # bytes of images per bundle: 640x480 test photos are about 32 kB, so 2 per bundle


def _household(store, village=None, seq=1, head="欧阳明远"):
    doc = factories.household(head, seq=seq)
    if village:
        doc["village_code"] = village
    households.save(store, doc)
    return next(r for r in store.records("household") if r.fields.get("head_name") == head)


def _photos(store, house, tmp_path, count, seed=0, kind="走访"):
    folder = tmp_path / f"photos-{store.site_id}-{seed}"
    folder.mkdir()
    for i in range(count):
        (folder / f"IMG_{i:04d}.jpg").write_bytes(photos.photo(1280, 960, seed=seed + i))
    report = attachments.add_files(store, house, [folder], kind=kind, conf=CONF)
    assert len(report.added) == count, report.lines()
    return report.added


def _images(store) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT digest FROM attachment_blobs")}


def test_usb_day_splits_images_over_bundles_changes_first(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    house = _household(laptop)
    ids = _photos(laptop, house, tmp_path, 7)
    assert status.sync_status(laptop).unacknowledged > 0
    assert attachment_sync.pending(laptop, county.site_id)[0] == 7
    stick = tmp_path / "usb"
    stick.mkdir()
    written = exchange.export_to(laptop, stick, budget=BUDGET)
    assert len(written) >= 3  # 7 photos of 32 kB at 70 kB a bundle
    headers = [exchange.wire.verify(p.read_bytes(), lambda raw: True)[0].header for p in written]
    assert headers[0]["counts"]["changes"] > 0 and all(h["counts"]["changes"] == 0 for h in headers[1:])
    assert sum(h["counts"].get("attachments", 0) for h in headers) == 7  # each image once
    for path in written:  # sealed to the county: no JPEG or PNG in plain form on the stick
        assert photos.find_magic(path) == []
    assert attachment_sync.pending(laptop, county.site_id) == (0, 0)
    reports = exchange.import_paths(county, [stick])
    assert [r.status for r in reports] == ["accepted"] * len(written)
    assert reports[0].changes > 0 and reports[0].more and not reports[-1].more
    assert sum(r.attachments for r in reports) == 7
    assert _images(county) == _images(laptop)
    for rid in ids:  # the county reads every photo
        assert attachments.image(county, county.get(rid))[:2] == b"\xff\xd8"
    # a new USB day: nothing is sent again
    again = tmp_path / "usb2"
    again.mkdir()
    written = exchange.export_to(laptop, again)
    assert len(written) == 1
    assert "attachments" not in exchange.wire.verify(written[0].read_bytes(), lambda raw: True)[0].header["counts"]


def test_laptops_get_only_their_villages_images_and_the_county_keeps_all(tmp_path):
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")  # the same village
    far = make_device(tmp_path, county, "远队", villages=(FAR_VILLAGE,))
    _photos(a, _household(a), tmp_path, 3, seed=10)
    _photos(far, _household(far, village=FAR_VILLAGE, seq=5, head="诸葛长青"), tmp_path, 2, seed=20)
    usb = tmp_path / "usb"
    usb.mkdir()
    for laptop in (a, far):
        exchange.export_to(laptop, usb, budget=BUDGET)
    assert all(r.status == "accepted" for r in exchange.import_paths(county, [usb]))
    assert len(_images(county)) == 5
    down = tmp_path / "down"
    down.mkdir()
    exchange.export_to(county, down, budget=BUDGET)
    for laptop in (a, b, far):
        reports = exchange.import_paths(laptop, [down])
        assert reports and all(r.status in ("accepted", "skipped") for r in reports), [r.line() for r in reports]
    assert _images(b) == _images(a) and len(_images(b)) == 3  # b got a's photos of their village
    assert len(_images(far)) == 2 and not (_images(far) & _images(a))  # far got none of theirs
    assert len(_images(a)) == 3  # a's own photos are not sent back to it
    house_b = next(iter(b.records("household")))
    assert len(attachments.listing(b, house_b.id)) == 3 and all(r["present"] for r in attachments.listing(b, house_b.id))


def test_a_lost_stick_is_resent_and_a_cut_export_resumes_without_sending_twice(tmp_path, monkeypatch):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    house = _household(laptop)
    _photos(laptop, house, tmp_path, 6)
    first = tmp_path / "first"
    first.mkdir()
    # the stick is pulled while the third bundle is written: two bundles are whole
    real = exchange.wire.write_atomic
    calls = []

    def cut(path, data):
        calls.append(path)
        if len(calls) == 3:  # half the file is on the stick under its temporary name
            path.with_name(path.name + ".part").write_bytes(data[: len(data) // 2])
            raise OSError(5, "Input/output error")
        real(path, data)

    monkeypatch.setattr(exchange.wire, "write_atomic", cut)
    with pytest.raises(exchange.ExportInterrupted, match="已写好的 2 个包完整可用") as cut_short:
        exchange.export_to(laptop, first, budget=BUDGET)
    monkeypatch.setattr(exchange.wire, "write_atomic", real)
    whole = sorted(first.glob("*.jdb"))
    assert whole == sorted(cut_short.value.written) and len(whole) == 2
    assert not list(first.glob("*.part"))
    sent_first = sum(exchange.wire.verify(p.read_bytes(), lambda raw: True)[0].header["counts"].get("attachments", 0)
                     for p in whole)
    left, _ = attachment_sync.pending(laptop, county.site_id)
    assert left == 6 - sent_first > 0  # the cut bundle's images are still to send
    # the next export carries only the rest
    second = tmp_path / "second"
    second.mkdir()
    more = exchange.export_to(laptop, second, budget=BUDGET)
    sent_second = sum(exchange.wire.verify(p.read_bytes(), lambda raw: True)[0].header["counts"].get("attachments", 0)
                      for p in more)
    assert sent_second == left
    # the first stick is lost on the way: the county gets only the second one
    reports = exchange.import_paths(county, [second])
    assert all(r.status == "accepted" for r in reports), [r.line() for r in reports]
    assert len(_images(county)) == left
    # the county's answer says which images it lacks; the laptop sends exactly those again
    down = tmp_path / "down"
    down.mkdir()
    exchange.export_to(county, down)
    exchange.import_paths(laptop, [down])
    assert attachment_sync.pending(laptop, county.site_id)[0] == sent_first
    third = tmp_path / "third"
    third.mkdir()
    exchange.export_to(laptop, third, budget=BUDGET)
    exchange.import_paths(county, [third])
    assert _images(county) == _images(laptop) and len(_images(county)) == 6


def test_images_of_an_attachment_deleted_before_it_was_sent_are_not_sent(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    house = _household(laptop)
    ids = _photos(laptop, house, tmp_path, 2)
    attachments.delete(laptop, ids[0])
    usb = tmp_path / "usb"
    usb.mkdir()
    exchange.export_to(laptop, usb)
    exchange.import_paths(county, [usb])
    assert county.get(ids[0]).deleted and len(_images(county)) == 1


def test_a_county_delete_removes_the_image_on_the_laptop(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    ids = _photos(laptop, _household(laptop), tmp_path, 1)
    usb = tmp_path / "usb"
    usb.mkdir()
    exchange.export_to(laptop, usb)
    exchange.import_paths(county, [usb])
    attachments.delete(county, ids[0], reason="照片拍错了户")
    down = tmp_path / "down"
    down.mkdir()
    exchange.export_to(county, down)
    exchange.import_paths(laptop, [down])
    assert laptop.get(ids[0]).deleted and not _images(laptop) and not _images(county)


def test_an_image_for_another_village_is_refused_at_the_county(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    far = make_device(tmp_path, county, "远队", villages=(FAR_VILLAGE,))
    ids = _photos(far, _household(far, village=FAR_VILLAGE, head="诸葛长青"), tmp_path, 1)
    usb = tmp_path / "usb"
    usb.mkdir()
    exchange.export_to(far, usb)
    exchange.import_paths(county, [usb])
    # a laptop of another village slips the far village's image (same county index key) into its bundle
    digest = far.get(ids[0]).fields["digest"]
    blobs.put_blob(laptop, digest, blobs.get_blob(far, digest))
    monkey = attachment_sync.outgoing
    try:
        attachment_sync.outgoing = lambda store, peer, villages, budget: (
            [{"d": digest, "x": __import__("base64").b64encode(blobs.get_blob(laptop, digest)).decode()}], [digest], False)
        name, data = exchange.export_upstream(laptop)
    finally:
        attachment_sync.outgoing = monkey
    before = exchange.store_digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.status == "refused" and "未授权的照片" in report.message
    assert exchange.store_digest(county) == before


def test_service_sync_splits_images_and_resumes_after_a_cut_upload(tmp_path, monkeypatch):
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    _photos(a, _household(a), tmp_path, 7)
    server = SyncServer(county, "127.0.0.1", 0, access_log=False,
                        limits=Limits(attachment_budget=BUDGET, uploads_per_minute=0, fetches_per_minute=0)).start()
    try:
        # the connection drops during the second upload: the first bundle's images are in, the rest wait
        real_upload = client.Client.upload
        uploads = []

        def flaky(self, name, data):
            uploads.append(name)
            if len(uploads) == 2:
                raise client.Unreachable("上传同步包失败:连接中断")
            return real_upload(self, name, data)

        monkeypatch.setattr(client.Client, "upload", flaky)
        try:
            client.sync_now(a, server.url, retries=0, budget=BUDGET)
        except client.Unreachable:
            pass
        monkeypatch.setattr(client.Client, "upload", real_upload)
        got = len(_images(county))
        assert 0 < got < 7
        assert attachment_sync.pending(a, county.site_id)[0] == 7 - got
        result = client.sync_now(a, server.url, retries=0, budget=BUDGET)
        ups = [r for r in result.reports if r.name.endswith(".jdb") and "-up-" in r.name]
        assert len(ups) >= 2 and all(r.status == "accepted" for r in ups)
        assert sum(r.attachments for r in ups) == 7 - got  # none sent twice
        assert _images(county) == _images(a)
        # the other laptop of the village fetches them over several downstream bundles
        result = client.sync_now(b, server.url, retries=0, budget=BUDGET)
        downs = [r for r in result.reports if "-down-" in r.name]
        assert len(downs) >= 3 and all(r.status == "accepted" for r in downs)
        assert sum(r.attachments for r in downs) == 7 and _images(b) == _images(a)
    finally:
        server.stop()
        for s in (a, b, county):
            s.close()


def test_the_countys_choice_to_keep_photo_positions_reaches_the_laptop(tmp_path):
    from app.store import StoreError

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    house = _household(laptop)
    with pytest.raises(StoreError, match="由县扶贫办统一设定"):
        attachments.set_keep_gps(laptop, True)
    (tmp_path / "before.jpg").write_bytes(photos.photo(800, 600, seed=1, gps=True))
    first = attachments.add_files(laptop, house, [tmp_path / "before.jpg"], conf=CONF).added[0]
    assert "gps" not in laptop.get(first).fields  # by default positions are dropped
    attachments.set_keep_gps(county, True)
    down = tmp_path / "down"
    down.mkdir()
    exchange.export_to(county, down)
    exchange.import_paths(laptop, [down])
    (tmp_path / "after.jpg").write_bytes(photos.photo(800, 600, seed=2, gps=True))
    second = attachments.add_files(laptop, house, [tmp_path / "after.jpg"], conf=CONF).added[0]
    assert laptop.get(second).fields["gps"]["lat"] > 26
