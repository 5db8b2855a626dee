"""A group of uploads merged with its writes streamed (app/sync/overlapping.py, issue #23): on a
PostgreSQL county, when the group's bundles come from different devices and touch no record in
common, their first reads are made for the whole group, their writes go to the server without
waiting, and the group waits for the server a few times in all instead of about three times per
bundle. What the county holds and what every report says are the same as when the group is merged a
bundle at a time; a streamed write that fails makes the whole group go again a bundle at a time."""

from __future__ import annotations

from types import SimpleNamespace

from app.services import households
from app.store import Store
from app.sync import exchange, overlapping
from tests import factories
from tests.sync_helpers import make_county, make_device

COUNTY_BACKENDS = ("postgresql",)


def _laptops(tmp_path, county: Store, n: int, *, same_person: bool = False) -> list[Store]:
    """n laptops with a household each; `same_person`: the last two register the same people (the
    same ID numbers: a duplicate the county reports)."""
    out = []
    for i in range(n):
        laptop = make_device(tmp_path, county, f"队{i}")
        seq = 40 if same_person and i == n - 1 else 30 + 2 * i
        if same_person and i == n - 2:
            seq = 40
        households.save(laptop, factories.household(f"户主{i}", f"配偶{i}", seq=seq))
        out.append(laptop)
    return out


def _group(laptops) -> list[tuple]:
    return [(data, name, None) for name, data in (exchange.export_upstream(laptop) for laptop in laptops)]


def _waits(conn, counted: list):
    """Count the times the worker waits for the server: a statement sent alone, or everything
    streamed so far."""
    run, settle = conn._run, conn._settle

    def counting_run(query, params):
        counted.append(query)
        return run(query, params)

    def counting_settle(quiet=False):
        if conn._pipe is not None:
            counted.append("(streamed)")
        return settle(quiet)

    conn._run, conn._settle = counting_run, counting_settle


def _held(county: Store, laptops) -> list:
    """What the county holds of the laptops: every record's kind and fields, every change row."""
    sites = [laptop.site_id for laptop in laptops]
    marks = ",".join("?" * len(sites))
    ids = [r[0] for r in county.conn.execute(f"SELECT DISTINCT record_id FROM changes WHERE site_id IN ({marks})", sites)]
    records = county.get_many(ids)
    changes = county.conn.execute(f"SELECT site_id, seq, record_id FROM changes WHERE site_id IN ({marks}) "
                                  "ORDER BY site_id, seq", sites).fetchall()
    return [sorted((r.id, r.kind, sorted(r.fields.items(), key=str)) for r in records.values()), [tuple(c) for c in changes]]


def test_a_group_from_different_devices_waits_a_few_times_not_per_bundle(tmp_path):
    county = make_county(tmp_path)
    laptops = _laptops(tmp_path, county, 6)
    group = _group(laptops)
    waits: list = []
    _waits(county.conn, waits)
    reports = exchange.import_bundles(county, group)
    assert [r.status for r in reports] == ["accepted"] * 6
    locked = waits[next(i for i, q in enumerate(waits) if q.startswith("BEGIN")):]  # from taking the write lock
    # BEGIN and the lock, the group's first reads, its records, the streamed rows with the duplicate
    # checks, the clock and COMMIT: a handful for the group (merged a bundle at a time: 3 per bundle)
    assert len(locked) <= 6, locked
    for laptop in laptops:
        assert county.conn.execute("SELECT count(*) FROM changes WHERE site_id = ?",
                                   (laptop.site_id,)).fetchone()[0] == laptop.change_count()
    # the six duplicate checks (the same text) were planned at every bundle, never prepared on the
    # server (psycopg prepares a text after five runs) with a plan made while the blind index was small
    prepared = [r[0] for r in county.conn.raw.execute("SELECT statement FROM pg_prepared_statements")]
    assert not any("FROM blind_index WHERE digest" in statement for statement in prepared), prepared
    for s in laptops + [county]:
        s.close()


def test_streamed_and_a_bundle_at_a_time_hold_and_say_the_same(tmp_path, monkeypatch):
    """The same group into two counties, streamed and a bundle at a time: the same records, change rows
    and reports, with edits of households the county holds (one of them against the county's own edit:
    a conflict) and a duplicate ID number between two bundles of the group (named by the later bundle
    only, as when they are merged one after the other)."""
    reports, held = {}, {}
    for way in ("streamed", "one at a time"):
        folder = tmp_path / way.replace(" ", "_")
        folder.mkdir()
        county = make_county(folder)
        laptops = _laptops(folder, county, 4, same_person=True)
        for laptop in laptops[:2]:  # the county already holds these two; their next bundles are edits
            exchange.import_bundles(county, _group([laptop]))
            household = next(iter(laptop.records("household")))
            laptop.put("household", {"phone": "13800000000"}, record_id=household.id)
        # the county changed the first one's phone meanwhile: its edit is a conflict the county records
        county.put("household", {"phone": "13700000000"}, record_id=next(iter(laptops[0].records("household"))).id)
        group = _group(laptops)
        used = []
        with monkeypatch.context() as patch:
            if way == "one at a time":
                patch.setattr(overlapping, "possible", lambda store, bundles: False)
            real = exchange._merged_overlapping
            patch.setattr(exchange, "_merged_overlapping", lambda *a: used.append(1) or real(*a))
            reports[way] = exchange.import_bundles(county, group)
        assert bool(used) == (way == "streamed")
        for laptop in laptops:
            assert county.conn.execute("SELECT count(*) FROM changes WHERE site_id = ?",
                                       (laptop.site_id,)).fetchone()[0] == laptop.change_count()
        records, changes = _held(county, laptops)
        # the two runs have different devices and record ids: compare kinds, fields and counts
        held[way] = (sorted((kind, repr(fields)) for _, kind, fields in records), len(changes))
        for s in laptops + [county]:
            s.close()
    streamed, alone = reports["streamed"], reports["one at a time"]
    assert [r.status for r in streamed] == ["accepted"] * 4
    assert streamed[3].duplicates and not streamed[2].duplicates  # the later one names it, as merged in order
    assert sum(r.applied for r in streamed) > 0 and streamed[0].conflicts == 1

    def shape(rs):
        return [(r.status, r.applied, r.conflicts, len(r.duplicates), sorted(r.household_labels.values()),
                 r.warnings) for r in rs]
    assert shape(streamed) == shape(alone)
    assert held["streamed"] == held["one at a time"]


def test_a_streamed_write_that_fails_makes_the_group_go_again_a_bundle_at_a_time(tmp_path, monkeypatch):
    """A write the server refuses (here: a second receipt for the same bundle, a primary-key clash)
    cannot be undone alone once streamed: the whole group is rolled back and merged again a bundle at
    a time, where it refuses that bundle only. Nothing is kept twice or lost."""
    county = make_county(tmp_path)
    laptops = _laptops(tmp_path, county, 3)
    group = _group(laptops)
    failing = laptops[1].site_id
    real = exchange._import_attachments
    tries = []

    def clashing(store, sender, *args, **kw):
        real(store, sender, *args, **kw)
        if sender == failing:
            tries.append(store.conn._streaming)
            store.conn.execute("INSERT INTO peers(site_id) VALUES (?)", (sender,))  # already there: refused by the server

    monkeypatch.setattr(exchange, "_import_attachments", clashing)
    reports = exchange.import_bundles(county, group)
    assert tries == [True, False]  # streamed first, then again a bundle at a time
    assert [r.status for r in reports] == ["accepted", "refused", "accepted"]
    assert county.conn.execute("SELECT count(*) FROM changes WHERE site_id = ?", (failing,)).fetchone()[0] == 0
    for laptop in (laptops[0], laptops[2]):
        assert county.conn.execute("SELECT count(*) FROM changes WHERE site_id = ?",
                                   (laptop.site_id,)).fetchone()[0] == laptop.change_count()
        assert county.conn.execute("SELECT count(*) FROM receipts WHERE sender = ?", (laptop.site_id,)).fetchone()[0] == 1
    # the connection is usable after: the refused bundle goes in whole later
    monkeypatch.setattr(exchange, "_import_attachments", real)
    again = exchange.import_bundles(county, group)
    assert [r.status for r in again] == ["duplicate", "accepted", "duplicate"]
    for s in laptops + [county]:
        s.close()


def _bundle(sender: str, *changes: tuple) -> SimpleNamespace:
    return SimpleNamespace(kind="up", report=SimpleNamespace(sender=sender),
                           changes=[SimpleNamespace(record_id=r, parent_id=p) for r, p in changes])


def test_only_groups_that_touch_nothing_twice_are_streamed(tmp_path):
    county = make_county(tmp_path)
    apart = [_bundle("a", ("h1", None), ("m1", "h1")), _bundle("b", ("h2", None))]
    assert overlapping.possible(county, apart)
    assert not overlapping.possible(county, apart[:1])  # one bundle: nothing to overlap
    assert not overlapping.possible(county, apart + [_bundle("a", ("h9", None))])  # one device twice
    assert not overlapping.possible(county, apart + [_bundle("c", ("m7", "h2"))])  # a member under b's household
    assert not overlapping.possible(county, apart + [_bundle("c", ("h1", None))])  # a's household edited too
    county.close()
