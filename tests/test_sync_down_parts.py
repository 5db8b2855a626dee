"""Downstream exports in parts: the county's bundle for a laptop that has more changes coming than one
bundle holds (exchange.CHANGES_PER_BUNDLE: a new laptop's first full copy of its village, a big day of
decisions) is written as several bundles, each continuing after the county number of the last change
of the one before, and the laptop takes them only in order, by USB and through the sync service (both
county backends). Bundles of older versions (one bundle, no `continues`) still go in."""

from __future__ import annotations

import pytest

from app.server import client
from app.server.app import Limits, SyncServer
from app.sync import exchange, identity, wire
from tests.sync_helpers import down, laptop_with_work, make_county, make_device, up

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

PER_BUNDLE = 7  # changes a bundle in these tests (a household with its members is 4-6 changes)


@pytest.fixture
def small_bundles(monkeypatch):
    monkeypatch.setattr(exchange, "CHANGES_PER_BUNDLE", PER_BUNDLE)


def _county_with_a_village(tmp_path, photo_count=0):
    """A county that holds a village's households (typed on laptop 甲队), and a new laptop 乙队 for the
    same village that has nothing yet: its first downstream export is the village's full copy."""
    county = make_county(tmp_path)
    first = laptop_with_work(tmp_path, county, "甲队", photo_count)
    while True:  # everything of 甲队 at the county (its own upload is in parts too)
        report = up(first, county)
        assert report.status == "accepted", report.line()
        down(county, first)
        if not report.more_changes:
            break
    second = make_device(tmp_path, county, "乙队")
    return county, first, second


def _village_changes(county, laptop) -> set:
    """(site, seq) of the changes the county holds for the laptop's village from other sites."""
    return {tuple(r) for r in county.conn.execute(
        "SELECT site_id, seq FROM changes WHERE village_code LIKE ? AND site_id != ?", ("522634101201%", laptop.site_id))}


def _held(store) -> set:
    return {tuple(r) for r in store.conn.execute("SELECT site_id, seq FROM changes")}


def _header(path):
    return wire.verify(path.read_bytes(), lambda raw: True)[0].header


def _fields(store) -> dict:
    return {r.id: r.fields for r in store.records()}


def _county_export(county, laptop, tmp_path, name="usb"):
    stick = tmp_path / name
    stick.mkdir()
    written = []
    for path in exchange.export_to(county, stick):
        if path.name.startswith(laptop.site_id):
            written.append(path)
        else:  # 甲队's bundle goes on its own stick
            path.unlink()
    return stick, written


def test_a_new_laptops_first_copy_comes_in_parts_by_usb_and_goes_in_completely(tmp_path, small_bundles):
    county, first, laptop = _county_with_a_village(tmp_path, photo_count=2)
    wanted = _village_changes(county, laptop)
    assert len(wanted) > 3 * PER_BUNDLE
    stick, written = _county_export(county, laptop, tmp_path)
    headers = [_header(p) for p in written]
    assert len(written) == -(-len(wanted) // PER_BUNDLE)  # one export, named in order
    assert [p.name for p in written] == sorted(p.name for p in written)
    assert all(h["counts"]["changes"] <= PER_BUNDLE for h in headers)
    # each bundle continues after the county number of the last change of the one before
    assert "continues" not in headers[0]
    # a laptop program that knows no parts reads the first bundle and refuses the others (format 2):
    # it would otherwise import past a missing part and acknowledge beyond the gap
    assert [h["format"] for h in headers] == [1] + [2] * (len(headers) - 1)
    for before, after in zip(headers, headers[1:]):
        assert after["counts"]["after"] == before["counts"]["rowid"] and after["continues"] == headers[0]["seq"]
        assert after["seq"] == before["seq"] + 1
    # the images ride after the records they belong to: only in the bundle with the last change
    assert [h["counts"].get("attachments", 0) for h in headers] == [0] * (len(headers) - 1) + [2]
    reports = exchange.import_paths(laptop, [stick])
    assert [r.status for r in reports] == ["accepted"] * len(written), [r.line() for r in reports]
    assert all(r.more_changes for r in reports[:-1]) and not reports[-1].more_changes
    assert "其余更改在同一次导出的后续同步包中" in reports[0].line()
    assert _held(laptop) >= wanted
    assert _fields(laptop) == {r.id: r.fields for r in county.records(village_code="522634101201")}
    assert {r[0] for r in laptop.conn.execute("SELECT digest FROM attachment_blobs")} == \
        {r[0] for r in county.conn.execute("SELECT digest FROM attachment_blobs")}
    # the laptop acknowledges the whole copy: the county's next export for it carries nothing
    assert up(laptop, county).status == "accepted"
    again = exchange.export_downstream(county, laptop.site_id)
    assert _header_of(again)["counts"]["changes"] == 0 and not again.more
    for s in (first, laptop, county):
        s.close()


def _header_of(exported):
    return wire.verify(exported[1], lambda raw: True)[0].header


def test_a_missing_or_tampered_part_is_refused_naming_it_and_the_laptop_keeps_its_data(tmp_path, small_bundles):
    county, first, laptop = _county_with_a_village(tmp_path)
    stick, written = _county_export(county, laptop, tmp_path)
    assert len(written) >= 4
    aside = tmp_path / "aside"
    aside.mkdir()
    missing = written[1]
    missing.rename(aside / missing.name)
    reports = exchange.import_paths(laptop, [stick])
    assert reports[0].status == "accepted"
    assert all(r.status == "refused" for r in reports[1:]), [r.line() for r in reports]
    # each refused bundle names the one that is missing, in Chinese, also those after the first refused
    assert all(missing.name in r.message and "请先导入" in r.message and "本机" in r.message for r in reports[1:])
    assert f"第 3 号到第 {len(written) - 1} 号包也因此未导入" in reports[-1].message
    assert "Traceback" not in "".join(r.line() for r in reports)
    # nothing after the gap went in out of order: the laptop holds the first part only
    first_part = _header(written[0])["counts"]["changes"]
    assert len(_held(laptop) - {(laptop.site_id, n) for n in range(10_000)}) == first_part
    kept = exchange.store_digest(laptop)
    # a part changed on the way is refused and changes nothing
    tampered = bytearray((aside / missing.name).read_bytes())
    tampered[len(tampered) // 2] ^= 1
    report = exchange.import_bundle(laptop, bytes(tampered), missing.name)
    assert report.status == "refused"
    assert exchange.store_digest(laptop) == kept
    # the missing part found again: the folder imported again takes everything, the first as a duplicate
    (aside / missing.name).rename(missing)
    reports = exchange.import_paths(laptop, [stick])
    assert [r.status for r in reports] == ["duplicate"] + ["accepted"] * (len(written) - 1), [r.line() for r in reports]
    assert _held(laptop) >= _village_changes(county, laptop)
    assert _fields(laptop) == {r.id: r.fields for r in county.records(village_code="522634101201")}
    # a part replayed is a duplicate that changes nothing
    digest = exchange.store_digest(laptop)
    assert exchange.import_bundle(laptop, written[2].read_bytes(), written[2].name).status == "duplicate"
    assert exchange.store_digest(laptop) == digest
    for s in (first, laptop, county):
        s.close()


def test_a_part_of_an_older_export_after_a_newer_one_is_refused_as_older(tmp_path, small_bundles):
    county, first, laptop = _county_with_a_village(tmp_path)
    _, old = _county_export(county, laptop, tmp_path, "usb1")
    stick, new = _county_export(county, laptop, tmp_path, "usb2")  # no answer from the laptop: everything again
    assert "continues" not in _header(new[0]) and len(new) == len(old)
    assert all(r.status == "accepted" for r in exchange.import_paths(laptop, [stick]))
    kept = exchange.store_digest(laptop)
    late = exchange.import_bundle(laptop, old[1].read_bytes(), old[1].name)
    assert late.status == "refused" and "较旧的县级包" in late.message
    assert exchange.store_digest(laptop) == kept
    for s in (first, laptop, county):
        s.close()


def _as_an_older_version_wrote_it(county, laptop, data: bytes) -> bytes:
    """The same bundle as a county of an older version wrote it: the header without `after`, signed
    and sealed again with the county's keys."""
    verified, _ = wire.verify(data, lambda raw: True)
    payload = wire.inflate_payload(wire.decrypt_body(verified, identity.device_encryption_key(laptop)))
    header = dict(verified.header)
    header["counts"] = {k: v for k, v in header["counts"].items() if k != "after"}
    assert "continues" not in header and "more_changes" not in payload
    cert, _ = identity.certificate_of(county, laptop.site_id)
    body = wire.seal_payload(payload, cert.enc_public, header)
    return wire.pack(identity.county_signing_key(county), header, body)


def test_a_single_bundle_of_an_older_county_version_still_goes_in(tmp_path):
    county, first, laptop = _county_with_a_village(tmp_path)
    name, data = exchange.export_downstream(county, laptop.site_id)
    old = _as_an_older_version_wrote_it(county, laptop, data)
    assert "after" not in wire.verify(old, lambda raw: True)[0].header["counts"]
    report = exchange.import_bundle(laptop, old, name)
    assert report.status == "accepted" and not report.more_changes, report.line()
    assert _held(laptop) >= _village_changes(county, laptop)
    assert _fields(laptop) == {r.id: r.fields for r in county.records(village_code="522634101201")}
    for s in (first, laptop, county):
        s.close()


def test_a_new_laptop_fetches_its_first_copy_in_parts_through_the_service(tmp_path, small_bundles, monkeypatch):
    monkeypatch.setattr(client, "MAX_ROUNDS", 2)  # bundles that continue with changes are not limited by it
    county, first, laptop = _county_with_a_village(tmp_path)
    wanted = _village_changes(county, laptop)
    server = SyncServer(county, "127.0.0.1", 0, access_log=False,
                        limits=Limits(uploads_per_minute=0, fetches_per_minute=0)).start()
    try:
        result = client.sync_now(laptop, server.url, retries=0)
        downs = [r for r in result.reports if "-down-" in r.name]
        assert len(downs) == -(-len(wanted) // PER_BUNDLE) > client.MAX_ROUNDS
        assert all(r.status == "accepted" for r in result.reports), [r.line() for r in result.reports]
        assert sum(r.changes for r in downs) == len(wanted)  # each change fetched once
        assert _held(laptop) >= wanted
        assert _fields(laptop) == {r.id: r.fields for r in county.records(village_code="522634101201")}
        # the next sync acknowledges them: one empty downstream bundle
        again = client.sync_now(laptop, server.url, retries=0)
        assert [r.changes for r in again.reports if "-down-" in r.name] == [0]
    finally:
        server.stop()
        for s in (first, laptop, county):
            s.close()
