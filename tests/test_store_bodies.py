"""Record bodies of format 3 (app/store/bodies.py): a database written before it, in format 1 (bodies
{"f", "c"}, village, parent and clock in plain columns only; before schema version 5) or format 2
(one object {"f", "c", "v", "p", "t"}), is converted at its first unlock, in one transaction, and
reads exactly as before; a conversion cut off leaves the old data as it was and is done again at the
next unlock."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from app.services import demo, integrity
from app.store import Store, StoreError, bodies
from app.store.base import _dumps
from app.store.crypto import DecryptionError
from app.store.migrations import SCHEMA_VERSION
from tests.conftest import PASSPHRASE
from tests.support.jiandang_test_hooks import subprocess_env


def _state(store: Store) -> dict:
    """Everything a caller reads from the records: every record, live or deleted, as loaded in bulk
    and one by one, the name search, the ID-number lookups and a record's history."""
    records = {r.id: (r.kind, r.village_code, r.parent_id, r.hlc, r.deleted, r.fields, r.clocks)
               for r in store.records(include_deleted=True)}
    singles = {rid: store.get(rid) for rid in records}
    members = [r for r in store.records("member") if r.fields.get("id_number")]
    return {
        "records": records,
        "get": {rid: (r.kind, r.village_code, r.parent_id, r.hlc, r.deleted, r.fields, r.clocks) for rid, r in singles.items()},
        "children": sorted(r.id for r in store.children_of([r.id for r in store.records("household")])),
        "village": sorted(r.id for r in store.records(village_code=store.village_codes()[0])),
        "search": {q: sorted(store.search(q)) for q in ("王", "李", "村")},
        "id_number": {m.id: store.find_id_number(m.fields["id_number"]) for m in members[:5]},
        "duplicates": store.duplicate_id_numbers(),
        "history": [(c.site_id, c.seq, c.op, c.new) for c in store.history(members[0].id)],
    }


def _as_format_1(path) -> dict[str, bytes]:
    """Turn the database at `path` into what the code before schema version 5 wrote: every record
    body sealed as that code's `_write_record` sealed it (`_dumps({"f": fields, "c": clocks})`, the
    same associated data), schema version 4 (so without the service tables of version 6), no record_body flag. Returns id -> old blob."""
    with Store.open(path) as s:
        s.unlock("admin", PASSPHRASE)
        sealer = s.sealer()
        old = {r.id: sealer.seal(r.kind, r.id, _dumps({"f": r.fields, "c": r.clocks}))
               for r in s.records(include_deleted=True)}
        with s.transaction():
            s.conn.executemany("UPDATE records SET blob = ? WHERE id = ?", [(b, rid) for rid, b in old.items()])
            s.conn.execute("DELETE FROM meta WHERE key = 'record_body'")
            s.conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
            for table in ("service_challenges", "service_rates"):  # schema version 6: not there yet
                s.conn.execute(f"DROP TABLE {table}")
    return old


def _as_format_2(path) -> dict[str, bytes]:
    """Turn the database at `path` into what the code of schema versions 5 and 6 wrote before body
    format 3: every record body sealed as one object {"f", "c", "v", "p", "t"} (`bodies.encode` of
    then), the same associated data; record_body "2". Returns id -> old blob."""
    with Store.open(path) as s:
        s.unlock("admin", PASSPHRASE)
        sealer = s.sealer()
        old = {r.id: sealer.seal(r.kind, r.id, _dumps({"f": r.fields, "c": r.clocks, "v": r.village_code,
                                                         "p": r.parent_id, "t": r.hlc}))
               for r in s.records(include_deleted=True)}
        with s.transaction():
            s.conn.executemany("UPDATE records SET blob = ? WHERE id = ?", [(b, rid) for rid, b in old.items()])
            bodies.set_format(s.conn, "2")
    return old


OLD_FORMATS = {"1": ("4", _as_format_1), "2": (str(SCHEMA_VERSION), _as_format_2)}  # body format: schema, maker


def _blobs(path) -> dict[str, bytes]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT id, blob FROM records").fetchall())
    finally:
        conn.close()


def _meta(path, key):
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


@pytest.fixture(params=sorted(OLD_FORMATS))
def old_database(make_store, request):
    """A filled database (12 households, one deleted member, a value only the standard library's JSON
    holds exactly) turned into an older body format (1: before schema version 5; 2: before body
    format 3); with its state as read then."""
    s = make_store("old.db")
    demo.fill(s, per_village=2)
    member = next(s.records("member"))
    s.delete(member.id, reason="测试")
    house = next(s.records("household"))
    s.put("household", {"note": 2 ** 70}, record_id=house.id)  # beyond 64 bits: the standard library's JSON
    path = s.path
    before = _state(s)
    s.close()
    schema, make = OLD_FORMATS[request.param]
    old = make(path)
    assert _meta(path, "record_body") == (None if request.param == "1" else request.param)
    assert _meta(path, "schema_version") == schema
    return path, before, old


def test_an_old_database_converts_at_unlock_and_reads_identically(old_database):
    path, before, old = old_database
    with Store.open(path) as s:
        assert bodies.pending(s.conn)  # the schema moved on at open; the bodies wait for the key
        s.unlock("admin", PASSPHRASE)
        assert not bodies.pending(s.conn)
        assert int(s.meta("schema_version")) == SCHEMA_VERSION
        assert _state(s) == before
        assert integrity.check(s).ok
    blobs = _blobs(path)
    assert blobs.keys() == old.keys() and all(blobs[rid] != old[rid] for rid in old)  # every body re-sealed
    with Store.open(path) as s:  # the next unlock has nothing to convert
        s.unlock("admin", PASSPHRASE)
        assert _state(s) == before
    assert _blobs(path) == blobs


def test_an_old_database_opened_with_the_recovery_key_converts_too(old_database, recovery_key):
    path, before, _ = old_database
    with Store.open(path) as s:
        s.unlock_with_recovery(recovery_key)
        assert _state(s) == before


def test_a_damaged_record_stays_damaged_and_the_rest_converts(old_database):
    path, before, old = old_database
    victim = next(rid for rid, rec in before["records"].items() if rec[0] == "household")
    conn = sqlite3.connect(path)
    damaged = old[victim][:-1] + bytes([old[victim][-1] ^ 1])  # always a different last byte (b"\x00" was not, 1 in 256)
    conn.execute("UPDATE records SET blob = ? WHERE id = ?", (damaged, victim))
    conn.commit()
    conn.close()
    with Store.open(path) as s:
        s.unlock("admin", PASSPHRASE)
        loaded = {r.id for r in s.records(include_deleted=True)}
        assert loaded == set(before["records"]) - {victim}
        assert s.damaged == {victim: "household"}
        with pytest.raises(DecryptionError):
            s.get(victim)
        assert integrity.check(s).damaged_ids() == {victim}
    assert _blobs(path)[victim] == damaged  # left as it was found


def test_a_reader_beside_an_unconverted_database_is_told_what_to_do(old_database):
    path, before, _ = old_database
    Store.open(path).close()  # a writer opened it (schema moved on) but never unlocked
    reader = Store.open(path, read_only=True)
    try:
        with pytest.raises(StoreError, match="需要升级数据格式"):
            reader.unlock("admin", PASSPHRASE)
        assert not reader.unlocked
    finally:
        reader.close()
    with Store.open(path) as s:
        s.unlock("admin", PASSPHRASE)
        assert _state(s) == before


def test_a_conversion_killed_midway_leaves_the_old_data_and_runs_again(old_database, tmp_path):
    path, before, old = old_database
    flag = _meta(path, "record_body") or "1"  # format 1 had no flag: the schema step sets "1" at open
    marker = tmp_path / "holding"
    script = ("import sys; from app.store import Store; s = Store.open(sys.argv[1]); "
              "s.unlock('admin', sys.argv[2])")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path), PASSPHRASE],
                            env=subprocess_env(JIANDANG_TEST_HOLD_CONVERSION=str(marker)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert marker.exists(), proc.stderr.read().decode(errors="replace") if proc.poll() is not None else "no marker"
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    # killed inside the conversion's transaction, every record re-sealed but not committed
    assert _blobs(path) == old
    assert _meta(path, "record_body") == flag != bodies.FORMAT
    with Store.open(path) as s:
        s.unlock("admin", PASSPHRASE)
        assert not bodies.pending(s.conn)
        assert _state(s) == before
        assert integrity.check(s).ok


def test_new_records_are_sealed_with_their_village_parent_and_clock(store):
    """What a read returns as village, parent and clock is the sealed copy, whatever the plain
    routing columns say (they are what queries choose records by, nothing more)."""
    house = store.put("household", {"head_name": "王一"}, village_code="522634101201")
    member = store.put("member", {"name": "王一"}, village_code="522634101201", parent_id=house.record_id)
    many = store.create_many([("member", {"name": "王二"}, "522634101201", house.record_id)])
    body = bodies.decode(store.sealer().open("member", member.record_id, store.conn.execute(
        "SELECT blob FROM records WHERE id = ?", (member.record_id,)).fetchone()[0]), member.record_id, "member", 0)
    assert (body.village_code, body.parent_id, body.hlc) == ("522634101201", house.record_id, member.hlc)
    store.conn.execute("UPDATE records SET parent_id = ?, hlc = '0' WHERE id IN (?, ?)",
                       (house.record_id + "x", member.record_id, many[0].record_id))
    for got in (store.get(member.record_id), store.get(many[0].record_id)):
        assert got.parent_id == house.record_id and got.hlc != "0"


def test_the_first_reading_command_after_the_upgrade_converts_and_lists_the_same(old_database, monkeypatch, capsys):
    """`list` opens to read only; a database of the older schema and bodies is upgraded by it (nothing
    else has it open), and what it prints is what the old database held."""
    from app.cli.main import main

    path, before, _ = old_database
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)
    capsys.readouterr()
    assert main(["list", str(path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    households = {rid for rid, rec in before["records"].items() if rec[0] == "household" and not rec[4]}
    assert {d["id"] for d in listed} == households
    assert _meta(path, "record_body") == bodies.FORMAT and _meta(path, "schema_version") == str(SCHEMA_VERSION)
    with Store.open(path) as s:
        s.unlock("admin", PASSPHRASE)
        assert _state(s) == before


def test_an_older_county_database_on_postgresql_converts_at_unlock(pg_url, recovery_key):
    """The conversion's SQL runs on PostgreSQL too (a county may keep its database there)."""
    from app.services import households
    from tests.factories import household

    s = Store.create(pg_url, role="county", site_name="雷山县扶贫办", operator="admin", passphrase=PASSPHRASE,
                     recovery_public_key=recovery_key.public_key())
    demo.install_reference_data(s)
    for seq, head in enumerate(("王大山", "李小河"), start=1):
        households.save(s, household(head=head, spouse=head + "妻", seq=seq))
    gone = next(s.records("member"))
    s.delete(gone.id, reason="测试")
    before = _state(s)
    s.close()
    _as_format_1(pg_url)
    with Store.open(pg_url) as s:
        assert bodies.pending(s.conn)
        s.unlock("admin", PASSPHRASE)
        assert not bodies.pending(s.conn) and int(s.meta("schema_version")) == SCHEMA_VERSION
        assert _state(s) == before
        assert integrity.check(s).ok


def test_bulk_created_records_read_back_exactly_with_their_clocks(store):
    """`create_many` writes the body text itself (bodies.encode_new): what it wrote reads back as
    `put` would have written it, a value only the standard library's JSON holds exactly included,
    and the field clocks decoded when first used are the record's."""
    house = store.put("household", {"head_name": "王一"}, village_code="522634101201")
    changes = store.create_many([("member", {"name": "王二", "note": 2 ** 70}, "522634101201", house.record_id),
                                 ("member", {"name": "王三", "health": ["1", "2"]}, "522634101201", house.record_id)])
    loaded = {r.id: r for r in store.records("member")}
    for change, fields in zip(changes, ({"name": "王二", "note": 2 ** 70}, {"name": "王三", "health": ["1", "2"]})):
        got = loaded[change.record_id]
        assert (got.fields, got.village_code, got.parent_id, got.hlc) == (fields, "522634101201", house.record_id, change.hlc)
        assert type(got.fields["name"]) is str and got.clocks == {"*": change.hlc} == store.get(change.record_id).clocks
    assert loaded[changes[0].record_id].fields["note"] == 2 ** 70 and type(loaded[changes[0].record_id].fields["note"]) is int


def test_a_sealed_body_of_another_shape_is_reported_damaged_and_the_rest_load(store):
    """A body that opens (authentic) but is not of the current format, e.g. one left in format 2
    while the database says 3, is skipped and named like a damaged one, not read wrongly."""
    a = store.put("household", {"head_name": "王一"}, village_code="522634101201")
    b = store.put("household", {"head_name": "李二"}, village_code="522634101201")
    sealer = store.sealer()
    odd = sealer.seal("household", a.record_id, _dumps({"f": {"head_name": "王一"}, "c": {"*": a.hlc},
                                                         "v": "522634101201", "p": None, "t": a.hlc}))
    store.conn.execute("UPDATE records SET blob = ? WHERE id = ?", (odd, a.record_id))
    assert [r.id for r in store.records("household")] == [b.record_id]
    assert store.damaged == {a.record_id: "household"}
    with pytest.raises(DecryptionError):
        store.get(a.record_id)
