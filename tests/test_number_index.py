"""户编号 in the blind index (app/store/search.py, schema version 7): checking a number reads one row
of the database, keyed by an HMAC under the index key, instead of decrypting every household into
memory. A database from before it gets its rows at the first unlock; a fill cut off is done again at
the next unlock. Both backends (a county on PostgreSQL)."""

from __future__ import annotations

import pytest

from app.services import households
from app.store import Store, search
from app.store.migrations import SCHEMA_VERSION
from tests import factories
from tests.conftest import PASSPHRASE, fill_demo
from tests.sync_helpers import VILLAGE, make_county, make_device, up

BACKENDS = ("sqlite", "postgresql")
COUNTY_BACKENDS = ("sqlite", "postgresql")


def _numbers(store: Store) -> dict[str, str]:
    return {h.id: h.fields["household_number"] for h in store.records("household") if h.fields.get("household_number")}


def _as_before_version_7(store: Store) -> None:
    """What the code before schema version 7 left: no 户编号 rows in the blind index, no
    meta.number_index, schema version 6 (version 7 adds no table, only these rows)."""
    with store.transaction():
        store.conn.execute("DELETE FROM blind_index WHERE field = 'household_number'")
        store.conn.execute("DELETE FROM meta WHERE key = 'number_index'")
        store.conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")


def _reopen(store: Store) -> Store:
    place = getattr(store.path, "url", None) or store.path
    store.close()
    return Store.open(place)


def test_a_households_number_is_found_without_building_the_search_index(demo_store):
    numbers = _numbers(demo_store)
    assert len(numbers) == 12
    demo_store.lock()
    demo_store.unlock("admin", PASSPHRASE)
    for hid, number in numbers.items():
        assert demo_store.find_household_number(number) == [hid]
        assert demo_store.find_household_number(f"  {number} ") == [hid]  # typed with spaces around it
    assert demo_store.find_household_number("5226341012019999") == []
    assert demo_store.find_household_number(" ") == []
    assert demo_store._search is None  # nothing decrypted into memory for it
    rows = demo_store.conn.execute("SELECT digest FROM blind_index WHERE field = 'household_number'").fetchall()
    assert len(rows) == 12 and all(len(bytes(r[0])) == 16 for r in rows)  # HMACs, no number in plain text
    plain = {n.encode() for n in numbers.values()}
    assert not any(bytes(r[0]) in plain for r in rows)


def test_a_changed_deleted_or_restored_number_is_found_as_it_now_is(demo_store):
    hid, number = next(iter(_numbers(demo_store).items()))
    demo_store.put("household", {"household_number": number[:-4] + "0999"}, record_id=hid)
    assert demo_store.find_household_number(number) == []
    assert demo_store.find_household_number(number[:-4] + "0999") == [hid]
    demo_store.delete(hid)
    assert demo_store.find_household_number(number[:-4] + "0999") == []
    demo_store.put("household", {}, record_id=hid)  # restore
    assert demo_store.find_household_number(number[:-4] + "0999") == [hid]
    assert demo_store.duplicate_household_numbers() == set()
    other, taken = list(_numbers(demo_store).items())[1]
    demo_store.put("household", {"household_number": taken}, record_id=hid)  # as two offline laptops once did
    assert demo_store.find_household_number(taken) == sorted([hid, other])
    assert demo_store.duplicate_household_numbers() == {hid, other}


def test_a_number_typed_with_spaces_is_refused_as_a_duplicate(store):
    first = households.save(store, factories.household(seq=1)).household_id
    number = store.get(first).fields["household_number"]
    with pytest.raises(households.ValidationFailed, match=f"户编号 {number} 已用在户主“欧阳明远”的户上"):
        households.save(store, factories.household("东方不败", "西门吹雪", seq=3, household_number=f" {number}　"))
    assert store._search is None
    assert len(_numbers(store)) == 1


def test_the_search_box_still_finds_a_number_typed_with_full_width_digits(demo_store):
    hid, number = next(iter(_numbers(demo_store).items()))
    wide = number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    assert hid in demo_store.search(wide)
    assert hid in demo_store.search(number[-6:])
    # the exact lookup compares numbers as stored (validation refuses a 户编号 in full-width digits)
    assert demo_store.find_household_number(wide) == []


def test_an_old_database_gets_its_numbers_at_the_first_unlock(demo_store):
    numbers = _numbers(demo_store)
    _as_before_version_7(demo_store)
    store = _reopen(demo_store)
    try:
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert store.upgrade_pending()  # the window shows its progress while the unlock writes them
        seen = []
        store.unlock("admin", PASSPHRASE, progress=lambda done, total: seen.append((done, total)))
        assert not store.upgrade_pending() and seen[-1] == (12, 12)
        for hid, number in numbers.items():
            assert store.find_household_number(number) == [hid]
        count = store.conn.execute("SELECT count(*) FROM blind_index WHERE field = 'household_number'").fetchone()[0]
        assert count == 12
    finally:
        store.close()


def test_a_fill_cut_off_midway_is_done_at_the_next_unlock(demo_store, monkeypatch):
    numbers = _numbers(demo_store)
    _as_before_version_7(demo_store)
    store = _reopen(demo_store)
    monkeypatch.setattr(search, "_FILL_BATCH", 5)
    written = []
    real = search.SearchIndex._blind_row

    def power_cut(self, record):
        written.append(record.id)
        if len(written) == 8:  # in the second batch: the first batch's rows are already inserted
            raise KeyboardInterrupt
        return real(self, record)

    monkeypatch.setattr(search.SearchIndex, "_blind_row", power_cut)
    with pytest.raises(KeyboardInterrupt):
        store.unlock("admin", PASSPHRASE)
    assert not store.unlocked
    count = store.conn.execute("SELECT count(*) FROM blind_index WHERE field = 'household_number'").fetchone()[0]
    assert count == 0 and store.upgrade_pending()  # rolled back: none written, still to do
    monkeypatch.setattr(search.SearchIndex, "_blind_row", real)
    store = _reopen(store)
    try:
        store.unlock("admin", PASSPHRASE)
        assert not store.upgrade_pending()
        for hid, number in numbers.items():
            assert store.find_household_number(number) == [hid]
    finally:
        store.close()


@pytest.mark.sqlite_only
def test_a_reader_finds_numbers_before_the_writer_has_written_them(make_store):
    store = make_store("old.db")
    fill_demo(store, per_village=1)
    numbers = _numbers(store)
    _as_before_version_7(store)
    path = store.path
    store.close()
    with Store.open(path) as writer:  # the window, opened and still at its unlock dialog
        with Store.open(path, read_only=True) as reader:
            reader.unlock("admin", PASSPHRASE)
            assert reader.upgrade_pending()  # the writer fills them at its own unlock
            for hid, number in numbers.items():
                assert reader.find_household_number(number) == [hid]
        writer.unlock("admin", PASSPHRASE)
        assert not writer.upgrade_pending()


def test_households_merged_at_the_county_are_found_by_number(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    ids = [households.save(laptop, factories.household(head, seq=i + 1)).household_id
           for i, head in enumerate(["欧阳明远", "诸葛长青", "上官玉梅"])]
    numbers = {hid: laptop.get(hid).fields["household_number"] for hid in ids}
    up(laptop, county)
    for hid, number in numbers.items():
        assert number.startswith(VILLAGE)
        assert county.find_household_number(number) == [hid]
    assert county._search is None
    # a number the county already holds is refused there too
    with pytest.raises(households.ValidationFailed, match="已用在"):
        households.save(county, factories.household("东方不败", "西门吹雪", seq=9, household_number=numbers[ids[0]]))


@pytest.mark.sqlite_only
def test_validate_finds_a_shared_number_before_and_after_the_rows_are_written(make_store):
    store = make_store("old.db")
    fill_demo(store, per_village=1)
    first, *_, last = list(store.records("household"))
    store.put("household", {"household_number": first.fields["household_number"]}, record_id=last.id)
    assert store.duplicate_household_numbers() == {first.id, last.id}
    _as_before_version_7(store)
    path = store.path
    store.close()

    def shared(s: Store) -> set[str]:
        return {f.record_id for f in households.validate_all(s) if f.rule == "duplicate_household_number"}

    with Store.open(path) as writer:
        with Store.open(path, read_only=True) as reader:
            reader.unlock("admin", PASSPHRASE)
            assert reader.duplicate_household_numbers() is None  # not written yet: read while validating
            assert shared(reader) == {first.id, last.id}
        writer.unlock("admin", PASSPHRASE)
        assert writer.duplicate_household_numbers() == {first.id, last.id}
        assert shared(writer) == {first.id, last.id}
