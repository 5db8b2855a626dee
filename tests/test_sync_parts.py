"""Upstream exports in parts: a laptop with more changes than one bundle holds (exchange.CHANGES_PER_BUNDLE)
writes several bundles, each continuing after the last change of the one before, and the county takes
them only in order, by USB and through the sync service (both county backends)."""

from __future__ import annotations

import pytest

from app.server import client
from app.server.app import Limits, SyncServer
from app.sync import exchange, wire
from tests.sync_helpers import change_ids, down, laptop_with_work, make_county

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

PER_BUNDLE = 7  # changes a bundle in these tests (a household with its members is 4-6 changes)


@pytest.fixture
def small_bundles(monkeypatch):
    monkeypatch.setattr(exchange, "CHANGES_PER_BUNDLE", PER_BUNDLE)


def _own(store, site_id) -> set:
    return {c for c in change_ids(store) if c[0] == site_id}


def _header(path):
    return wire.verify(path.read_bytes(), lambda raw: True)[0].header


def test_a_laptop_with_more_changes_than_one_bundle_syncs_completely_by_usb(tmp_path, small_bundles):
    county = make_county(tmp_path)
    laptop = laptop_with_work(tmp_path, county, photo_count=2)
    total = laptop.count_changes(laptop.site_id)
    assert total > 3 * PER_BUNDLE
    stick = tmp_path / "usb"
    stick.mkdir()
    written = exchange.export_to(laptop, stick)
    headers = [_header(p) for p in written]
    assert len(written) == -(-total // PER_BUNDLE)  # one export, named in order
    assert [p.name for p in written] == sorted(p.name for p in written)
    assert [h["seq"] for h in headers] == list(range(1, len(written) + 1))
    assert all(h["counts"]["changes"] <= PER_BUNDLE for h in headers)
    # each bundle continues right after the last change of the one before, and says it continues
    assert headers[0]["counts"]["first"] == 1 and "continues" not in headers[0]
    # a program that knows no parts reads the first bundle and refuses the others (format 2)
    assert [h["format"] for h in headers] == [1] + [2] * (len(headers) - 1)
    for before, after in zip(headers, headers[1:]):
        assert after["counts"]["first"] == before["counts"]["last"] + 1 and after["continues"] == 1
    assert headers[-1]["counts"]["last"] == total
    # the images ride after the records they belong to: only in the bundle with the last change
    assert [h["counts"].get("attachments", 0) for h in headers] == [0] * (len(headers) - 1) + [2]
    reports = exchange.import_paths(county, [stick])
    assert [r.status for r in reports] == ["accepted"] * len(written), [r.line() for r in reports]
    assert sum(r.applied for r in reports) == total
    assert all(r.more_changes for r in reports[:-1]) and not reports[-1].more_changes
    assert "其余更改在同一次导出的后续同步包中" in reports[0].line() and "照片" not in reports[0].line()
    assert _own(county, laptop.site_id) == _own(laptop, laptop.site_id)
    assert {r[0] for r in county.conn.execute("SELECT digest FROM attachment_blobs")} == \
        {r[0] for r in laptop.conn.execute("SELECT digest FROM attachment_blobs")}
    # the county's answer acknowledges everything: the next export carries nothing
    down(county, laptop)
    again = tmp_path / "usb2"
    again.mkdir()
    [one] = exchange.export_to(laptop, again)
    assert _header(one)["counts"]["changes"] == 0
    for s in (laptop, county):
        s.close()


def test_a_missing_middle_bundle_is_refused_naming_it_and_nothing_after_it_goes_in(tmp_path, small_bundles):
    county = make_county(tmp_path)
    laptop = laptop_with_work(tmp_path, county)
    stick = tmp_path / "usb"
    stick.mkdir()
    written = exchange.export_to(laptop, stick)
    assert len(written) >= 4
    aside = tmp_path / "aside"
    aside.mkdir()
    missing = written[1]
    missing.rename(aside / missing.name)
    before = _header(written[0])["counts"]["last"]
    reports = exchange.import_paths(county, [stick])
    assert reports[0].status == "accepted"
    assert all(r.status == "refused" for r in reports[1:])
    # each refused bundle names the one that is missing, also those after the first refused
    assert all(missing.name in r.message and "请先导入" in r.message for r in reports[1:]), [r.line() for r in reports]
    assert "第 3 号到" not in reports[1].message and f"第 3 号到第 {len(written) - 1} 号包也因此未导入" in reports[-1].message
    # nothing after the gap went in out of order
    assert max(n for s, n in _own(county, laptop.site_id)) == before
    assert len(_own(county, laptop.site_id)) == before
    # the missing bundle found again: the folder imported again takes everything, the first as a duplicate
    (aside / missing.name).rename(missing)
    reports = exchange.import_paths(county, [stick])
    assert [r.status for r in reports] == ["duplicate"] + ["accepted"] * (len(written) - 1)
    assert _own(county, laptop.site_id) == _own(laptop, laptop.site_id)
    # a bundle of the export replayed is a duplicate that changes nothing
    digest = exchange.store_digest(county)
    replay = exchange.import_bundle(county, written[2].read_bytes(), written[2].name)
    assert replay.status == "duplicate"
    assert exchange.store_digest(county) == digest
    for s in (laptop, county):
        s.close()


def test_a_fresh_export_after_an_unacknowledged_one_starts_again_from_the_acknowledgement(tmp_path, small_bundles):
    county = make_county(tmp_path)
    laptop = laptop_with_work(tmp_path, county)
    first, second = tmp_path / "usb1", tmp_path / "usb2"
    first.mkdir()
    second.mkdir()
    old = exchange.export_to(laptop, first)
    new = exchange.export_to(laptop, second)  # no answer from the county in between: everything again
    assert _header(new[0])["counts"]["first"] == 1 and "continues" not in _header(new[0])
    assert len(new) == len(old)
    # the county takes the newer export alone; the older one, brought later, is nothing new
    assert all(r.status == "accepted" for r in exchange.import_paths(county, [second]))
    assert _own(county, laptop.site_id) == _own(laptop, laptop.site_id)
    late = exchange.import_paths(county, [first])
    assert all(r.status == "accepted" and r.applied == 0 for r in late), [r.line() for r in late]
    for s in (laptop, county):
        s.close()


def test_a_laptop_with_more_changes_than_one_bundle_syncs_completely_through_the_service(tmp_path, small_bundles,
                                                                                         monkeypatch):
    monkeypatch.setattr(client, "MAX_ROUNDS", 2)  # bundles that continue with changes are not limited by it
    county = make_county(tmp_path)
    laptop = laptop_with_work(tmp_path, county)
    total = laptop.count_changes(laptop.site_id)
    server = SyncServer(county, "127.0.0.1", 0, access_log=False,
                        limits=Limits(uploads_per_minute=0, fetches_per_minute=0)).start()
    try:
        result = client.sync_now(laptop, server.url, retries=0)
        ups = [r for r in result.reports if "-up-" in r.name]
        assert len(ups) == -(-total // PER_BUNDLE) > client.MAX_ROUNDS
        assert all(r.status == "accepted" for r in result.reports), [r.line() for r in result.reports]
        assert sum(r.applied for r in ups) == total
        assert _own(county, laptop.site_id) == _own(laptop, laptop.site_id)
        # the downstream bundle acknowledged them all: the next sync sends one empty bundle
        assert int(laptop.meta("sync_acked_seq")) == total
        again = client.sync_now(laptop, server.url, retries=0)
        assert [r.changes for r in again.reports if "-up-" in r.name] == [0]
    finally:
        server.stop()
        for s in (laptop, county):
            s.close()
