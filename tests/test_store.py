import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.services import households
from app.store import Store, StoreError, TooManyAttempts, WrongPassphrase, crypto
from app.store.crypto import DecryptionError
from tests.conftest import PASSPHRASE
from tests.factories import household

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("sqlite", "postgresql")


def test_created_database_reopens_and_unlocks(make_store, where, backend):
    s = make_store()
    change = s.put("household", {"head_name": "王五"}, village_code="522634101201")
    s.close()
    s = Store.open(where("village.db"))
    assert not s.unlocked
    s.unlock("admin", PASSPHRASE)
    assert s.get(change.record_id).fields == {"head_name": "王五"}
    assert s.role == ("county" if backend == "postgresql" else "village")  # PostgreSQL holds a county only
    s.close()


def test_reading_a_locked_store_is_refused(make_store):
    s = make_store()
    s.lock()
    with pytest.raises(StoreError, match="锁定"):
        list(s.records())


def test_wrong_passphrase_is_refused_with_a_growing_delay(make_store, where):
    make_store().close()
    clock = [1000.0]
    s = Store.open(where("village.db"), wall=lambda: clock[0])
    with pytest.raises(WrongPassphrase, match="密码不正确") as first:
        s.unlock("admin", "not the passphrase")
    assert first.value.retry_after == 1
    with pytest.raises(TooManyAttempts):
        s.unlock("admin", PASSPHRASE)  # too soon, even with the right passphrase
    clock[0] += 0.6
    with pytest.raises(TooManyAttempts, match="请 1 秒后再输入密码"):  # 0.4 s left: never "0 秒"
        s.unlock("admin", PASSPHRASE)
    clock[0] += 0.9
    with pytest.raises(WrongPassphrase) as second:
        s.unlock("admin", "still wrong")
    assert second.value.retry_after == 2
    clock[0] += 2.5
    with pytest.raises(WrongPassphrase) as third:
        s.unlock("admin", "wrong again")
    assert third.value.retry_after == 4
    clock[0] += 5
    s.unlock("admin", PASSPHRASE)
    assert s.unlocked
    s.close()
    # the failure count survives a restart and is cleared by a success
    s = Store.open(where("village.db"), wall=lambda: clock[0])
    with pytest.raises(WrongPassphrase) as again:
        s.unlock("admin", "wrong")
    assert again.value.retry_after == 1
    s.close()
    # the machine's clock jumps back three years after a wrong passphrase: no wait of three years
    clock[0] -= 3 * 365 * 86400
    s = Store.open(where("village.db"), wall=lambda: clock[0])
    s.unlock("admin", PASSPHRASE)
    assert s.unlocked
    s.close()


def test_unknown_operator_lists_the_known_ones(make_store, where):
    make_store().close()
    with Store.open(where("village.db")) as s, pytest.raises(StoreError, match="admin"):
        s.unlock("nobody", PASSPHRASE)


def test_operators_can_be_added_and_change_their_passphrase(make_store, where):
    s = make_store()
    s.add_operator("李队员", "another passphrase")
    s.change_passphrase("李队员", "another passphrase", "a third passphrase")
    s.close()
    s = Store.open(where("village.db"))
    s.unlock("李队员", "a third passphrase")
    assert s.operator == "李队员"
    with pytest.raises(WrongPassphrase):  # the old passphrase no longer works
        s.change_passphrase("李队员", "another passphrase", "whatever123")
    s.close()


def test_short_passphrases_are_refused(make_store):
    s = make_store()
    with pytest.raises(StoreError, match="8 个字符"):
        s.add_operator("x", "short")


def test_recovery_key_opens_the_database_and_resets_a_passphrase(make_store, where, recovery_key):
    s = make_store()
    s.put("household", {"head_name": "赵六"}, village_code="522634101201")
    s.close()
    s = Store.open(where("village.db"))
    s.unlock_with_recovery(recovery_key)
    s.reset_passphrase("admin", "brand new passphrase")
    s.close()
    s = Store.open(where("village.db"))
    s.unlock("admin", "brand new passphrase")
    assert [r.fields["head_name"] for r in s.records("household")] == ["赵六"]
    s.close()


def test_another_recovery_key_is_refused(make_store, where):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    make_store().close()
    with Store.open(where("village.db")) as s, pytest.raises(DecryptionError):
        s.unlock_with_recovery(X25519PrivateKey.generate())


def test_default_kdf_profile_is_strong_and_stored_with_the_wrap(tmp_path, recovery_key):
    s = Store.create(tmp_path / "strong.db", role="county", site_name="县", operator="admin",
                     passphrase=PASSPHRASE, recovery_public_key=recovery_key.public_key(), kdf=crypto.DEFAULT_KDF)
    stored = s.conn.execute("SELECT kdf FROM operators").fetchone()[0]
    assert crypto.KdfParams.from_json(stored) == crypto.DEFAULT_KDF
    assert crypto.DEFAULT_KDF.memory_kib >= 65536 and crypto.DEFAULT_KDF.iterations >= 3
    s.close()


def _new_village(path, recovery_key) -> Store:
    return Store.create(path, role="village", site_name="村", operator="admin", passphrase=PASSPHRASE,
                        recovery_public_key=recovery_key.public_key())


def _page_size(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()


def test_a_new_database_has_large_pages_so_a_load_reads_few_of_them(tmp_path, recovery_key):
    from app.store.db import PAGE_SIZE

    s = _new_village(tmp_path / "new.db", recovery_key)
    members = [{"name": f"成员{i}", "work_area": "本乡镇"} for i in range(300)]
    s.create_many([("member", m, "522634101201", None) for m in members])
    s.close()
    assert PAGE_SIZE == 16384 and _page_size(tmp_path / "new.db") == PAGE_SIZE
    s = Store.open(tmp_path / "new.db")
    s.unlock("admin", PASSPHRASE)
    assert [r.fields for r in s.records("member")] == members
    s.close()


def test_a_database_made_with_small_pages_still_opens_loads_and_takes_edits(tmp_path, recovery_key, monkeypatch):
    from app.store import db

    monkeypatch.setattr(db, "PAGE_SIZE", 4096)  # as every database was made before 16 KiB pages
    s = _new_village(tmp_path / "old.db", recovery_key)
    first = s.put("household", {"head_name": "王五"}, village_code="522634101201").record_id
    s.close()
    monkeypatch.undo()
    s = Store.open(tmp_path / "old.db")
    s.unlock("admin", PASSPHRASE)
    assert [r.fields for r in s.records()] == [{"head_name": "王五"}]
    second = s.put("household", {"head_name": "李四"}, village_code="522634101201").record_id
    s.close()
    assert _page_size(tmp_path / "old.db") == 4096  # kept: never rewritten behind the user's back
    s = Store.open(tmp_path / "old.db")
    s.unlock("admin", PASSPHRASE)
    assert [s.get(first).fields, s.get(second).fields] == [{"head_name": "王五"}, {"head_name": "李四"}]
    s.close()


def test_a_file_that_is_not_ours_is_refused(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="不是建档数据库"):
        Store.open(other)
    text = tmp_path / "notes.db"
    text.write_text("hello", encoding="utf-8")
    with pytest.raises(StoreError, match="不是建档数据库"):
        Store.open(text)
    with pytest.raises(StoreError, match="找不到"):
        Store.open(tmp_path / "missing.db")


@pytest.mark.sqlite_only
def test_a_truncated_database_is_refused_clearly(demo_store, tmp_path):
    demo_store.close()
    data = (tmp_path / "demo.db").read_bytes()
    cut = tmp_path / "cut.db"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreError, match="截断|损坏"):
        s = Store.open(cut)
        s.unlock("admin", PASSPHRASE)
        list(s.records())


@pytest.mark.sqlite_only
def test_a_second_program_cannot_open_the_same_database(make_store, tmp_path):
    make_store()  # stays open in this process
    code = (
        "import sys; from app.store import Store, StoreError\n"
        "try:\n    Store.open(sys.argv[1])\nexcept StoreError as e:\n    print(e); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "village.db")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 3
    assert "另一个正在运行的建档程序" in result.stdout


def test_every_edit_has_a_change_row_with_old_new_and_operator(store):
    result = households.save(store, household())
    hid = result.household_id
    doc = households.document(store, hid)
    doc["phone"] = "13800000000"
    doc["members"][0]["education"] = "3"
    households.save(store, doc, reason="电话变更")
    history = store.history(hid)
    assert [c.op for c in history] == ["create", "update"]
    assert history[1].old == {"phone": "13912345678"} and history[1].new == {"phone": "13800000000"}
    assert history[1].operator == "admin" and history[1].reason == "电话变更"
    member_history = store.history(doc["members"][0]["id"])
    assert member_history[-1].new == {"education": "3"} and member_history[-1].old == {"education": None}
    # every record has at least one change and the log replays to the record
    for record in store.records(include_deleted=True):
        replay = {}
        for c in store.history(record.id):
            for key, value in c.new.items():
                if value is None:
                    replay.pop(key, None)
                else:
                    replay[key] = value
        assert replay == record.fields


def test_deletion_is_a_tombstone_with_its_reason(store):
    result = households.save(store, household())
    spouse = result.child_ids["members"][1]
    households.remove_child(store, spouse, "22")
    assert store.get(spouse).deleted
    assert spouse not in [m["id"] for m in households.document(store, result.household_id)["members"]]
    last = store.history(spouse)[-1]
    assert last.op == "delete" and last.reason == "22"


def test_unchanged_save_writes_no_change(store):
    result = households.save(store, household())
    before = store.change_count()
    households.save(store, households.document(store, result.household_id))
    assert store.change_count() == before


def test_ciphertext_swapped_between_two_records_fails_to_decrypt(store):
    a = store.put("household", {"head_name": "甲"}, village_code="522634101201").record_id
    b = store.put("household", {"head_name": "乙"}, village_code="522634101201").record_id
    blob_a = store.conn.execute("SELECT blob FROM records WHERE id = ?", (a,)).fetchone()[0]
    store.conn.execute("UPDATE records SET blob = ? WHERE id = ?", (blob_a, b))
    with pytest.raises(DecryptionError, match=b):
        store.get(b)
    # and a change payload moved onto another change row
    p1 = store.conn.execute("SELECT payload FROM changes WHERE seq = 1").fetchone()[0]
    store.conn.execute("UPDATE changes SET payload = ? WHERE seq = 2", (p1,))
    with pytest.raises(DecryptionError):
        store.history(b)


def test_sealing_many_at_once_binds_each_like_sealing_one(store):
    """What a merge seals in one pass (Sealer.seal_many) opens only as the record or change it was
    sealed for, each with its own nonce."""
    sealer = store.sealer()
    items = [("household", f"id-{i}", f"正文{i}".encode()) for i in range(50)] + [("change", "site:1", b"payload")]
    blobs = sealer.seal_many(items)
    assert [sealer.open(kind, rid, blob) for (kind, rid, _), blob in zip(items, blobs)] == [plain for *_, plain in items]
    assert len({bytes(blob[:12]) for blob in blobs}) == len(blobs)  # bytearrays (bound without an adapter lookup)
    with pytest.raises(DecryptionError):
        sealer.open("household", "id-1", blobs[0])
    with pytest.raises(DecryptionError):
        sealer.open("member", "id-0", blobs[0])



def test_bulk_writes_of_a_merge_keep_parents_and_payloads(store):
    """A merge writes change rows and records in bulk: a batch without any parent (households only:
    the statement leaves parent_id out) and a mixed one read back as written, payloads included,
    and a record rewritten without its parent in the batch keeps the parent it had."""
    from app.store import Change, Record
    v = "522634101201"
    hh = [Change("s1", i + 1, f"h{i}", "household", v, None, f"17648000000{i:02d}.0001", "create",
                 {"head_name": f"户主{i}"}, {}, {}, "县甲", None) for i in range(3)]
    mixed = [Change("s1", 4, "m0", "member", v, "h0", "1764800000100.0001", "create", {"name": "成员"}, {}, {}, "县甲", "补录"),
             Change("s1", 5, "h1", "household", v, None, "1764800000101.0001", "update", {"phone": "13900000000"},
                    {"phone": None}, {"phone": "0"}, "县甲", None)]
    with store.transaction():
        store.write_changes_raw(hh)
        store.write_changes_raw(mixed)
        store.write_records_raw([Record(c.record_id, c.kind, c.village_code, c.parent_id, c.hlc, False, dict(c.new),
                                        {"*": c.hlc}) for c in hh])
        store.write_records_raw([Record("m0", "member", v, "h0", "1764800000100.0001", False, {"name": "成员"},
                                        {"*": "1764800000100.0001"})])
        store.write_records_raw([Record("m0", "member", v, None, "1764800000102.0001", False, {"name": "成员乙"},
                                        {"*": "1764800000102.0001"})])
    assert [store.history(c.record_id)[0] for c in hh] == hh
    assert store.history("m0") == [mixed[0]] and store.history("h1")[-1] == mixed[1]
    rows = dict(store.conn.execute("SELECT id, parent_id FROM records").fetchall())
    assert rows == {"h0": None, "h1": None, "h2": None, "m0": "h0"}
    assert store.get("m0").fields == {"name": "成员乙"} and store.get("h2").fields == {"head_name": "户主2"}


def test_change_rows_written_in_bulk_open_only_as_their_own_change(store):
    """The merge's change rows (write_changes_raw seals each in its own loop, `Sealer.change_sealer`)
    open as `seal("change", "site:seq", …)` would, each with its own nonce; a payload moved onto
    another change row fails to open; a value only the standard library writes exactly stays exact."""
    from app.store import Change
    v = "522634101201"
    changes = [Change("s1", i + 1, f"h{i}", "household", v, None, f"17648000000{i:02d}.0001", "update",
                      {"note": 10 ** 30 + i if i == 2 else f"备注{i}"}, {"note": None}, {"note": "0"}, "县甲", None)
               for i in range(3)]
    with store.transaction():
        store.write_changes_raw(changes)
    rows = store.conn.execute("SELECT seq, payload FROM changes WHERE site_id = 's1' ORDER BY seq").fetchall()
    sealer = store.sealer()
    assert [sealer.open("change", f"s1:{seq}", payload)[:1] for seq, payload in rows] == [b"{", b"{", b" "]
    assert len({bytes(payload[:12]) for _, payload in rows}) == 3
    assert [store.history(c.record_id) for c in changes] == [[c] for c in changes]
    store.conn.execute("UPDATE changes SET payload = ? WHERE site_id = 's1' AND seq = 2", (rows[0][1],))
    with pytest.raises(DecryptionError):
        store.history("h1")


NAME, PHONE = "独孤求败", "13987654321"


def _all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in folder.rglob("*") if p.is_file()]


@pytest.mark.sqlite_only
def test_no_plain_text_personal_data_on_disk(store, tmp_path):
    doc = household(head=NAME, phone=PHONE)
    id_number = doc["members"][0]["id_number"]
    households.save(store, doc)
    store.search(NAME)  # the in-memory search index must not reach disk either
    needles = [NAME, PHONE, id_number, doc["members"][1]["name"]]
    # while open (WAL and shm present) and after closing
    for phase in ("open", "closed"):
        files = _all_bytes(tmp_path)
        assert any(p.name.endswith("-wal") for p, _ in files) or phase == "closed"
        for path, data in files:
            for needle in needles:
                for encoding in ("utf-8", "utf-16-le", "utf-16-be", "gb18030"):
                    assert needle.encode(encoding) not in data, f"{needle} ({encoding}) found in {path.name} ({phase})"
        store.close()


KILL_SCRIPT = """
import sys
from app.store import Store
s = Store.open(sys.argv[1]); s.unlock("admin", sys.argv[2])
print("ready", flush=True)
i = 0
while True:
    with s.transaction():
        for j in range(20):
            c = s.put("household", {"head_name": f"户{i}-{j}", "family_size": j}, village_code="522634101201")
            s.put("member", {"name": f"成员{i}-{j}"}, village_code="522634101201", parent_id=c.record_id)
    i += 1
"""


def test_a_killed_writer_leaves_the_database_consistent(make_store, where):
    make_store().close()
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(where("village.db")), PASSPHRASE],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
    proc.wait()
    s = Store.open(where("village.db"))
    s.unlock("admin", PASSPHRASE)
    assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    records = list(s.records(include_deleted=True))
    assert records, "the writer should have committed some transactions before it was killed"
    # whole transactions only: 20 households and 20 members each, every record with its change row
    assert s.count("household") % 20 == 0 and s.count("household") == s.count("member")
    logged = {r[0] for r in s.conn.execute("SELECT record_id FROM changes")}
    assert logged == {r.id for r in records}
    seqs = [r[0] for r in s.conn.execute("SELECT seq FROM changes ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    # and the database takes new writes with the next sequence number
    c = s.put("household", {"head_name": "之后"}, village_code="522634101201")
    assert c.seq == len(seqs) + 1
    s.close()


def test_search_finds_households_by_name_id_number_and_household_number(store):
    doc = household(head="上官婉儿", spouse="慕容复")
    hid = households.save(store, doc).household_id
    other = households.save(store, household(head="令狐冲", spouse="任盈盈", seq=5)).household_id
    number = households.document(store, hid)["household_number"]
    assert store.search("婉儿") == [hid]
    assert store.search("慕容") == [hid]  # a member's name
    assert store.search(doc["members"][1]["id_number"][-8:].lower()) == [hid]
    assert store.search(number) == [hid]
    assert set(store.search("")) == {hid, other}
    # the index follows edits
    d = households.document(store, other)
    d["members"][1]["name"] = "任我行"
    households.save(store, d)
    assert store.search("任我行") == [other] and store.search("任盈盈") == []


def test_schema_version_is_recorded(make_store):
    from app.store.migrations import SCHEMA_VERSION

    s = make_store()
    assert int(s.meta("schema_version")) == SCHEMA_VERSION


def test_record_fields_unknown_to_the_dictionary_are_kept(store):
    hid = households.save(store, household()).household_id
    store.put("household", {"future_field": "来自新版字典"}, record_id=hid)
    doc = households.document(store, hid)
    doc.pop("future_field")
    doc["phone"] = "13811112222"
    households.save(store, doc)
    assert store.get(hid).fields["future_field"] == "来自新版字典"
    assert json.dumps(households.document(store, hid), ensure_ascii=False).count("来自新版字典") == 1


def test_bulk_creation_writes_the_same_records_changes_and_index_as_put(store):
    hid = "7b0e8a4e-0000-4000-8000-000000000001"
    doc = household(head="长孙无忌")
    house = {k: v for k, v in doc.items() if k not in ("members", "incomes", "helpers", "measures", "plans", "visits", "village_code")}
    changes = store.create_many([("household", house, doc["village_code"], None, hid)]
                                + [("member", m, doc["village_code"], hid) for m in doc["members"]], reason="批量导入")
    assert [c.seq for c in changes] == [1, 2, 3]
    assert store.get(hid).fields == house
    members = list(store.records("member", parent_id=hid))
    assert [m.fields["name"] for m in members] == ["长孙无忌", "司马秀兰"]
    assert store.find_id_number(doc["members"][1]["id_number"]) == [members[1].id]
    assert store.search("长孙") == [hid]
    entry = store.history(members[0].id)[0]
    assert entry.op == "create" and entry.new == doc["members"][0] and entry.reason == "批量导入" and entry.operator == "admin"
    # and later puts continue the same sequence
    assert store.put("household", {"phone": "13700000000"}, record_id=hid).seq == 4


def test_any_json_value_round_trips_through_the_store_and_the_change_log(make_store, where):
    """Values the fast JSON codec refuses (integers beyond 64 bits) still store exactly."""
    store = make_store()
    fields = {"head_name": "欧阳", "big": 2**70 + 1, "neg": -(2**65) - 3, "float": 0.1, "list": ["甲", 1, None],
              "nested": {"a": [1.5, "乙", 10**30 + 7]}, "note": "账号:12345678901234567890"}
    rid = store.put("household", fields, village_code="522634101201").record_id
    store.close()
    again = Store.open(where("village.db"))
    again.unlock("admin", PASSPHRASE)
    assert again.get(rid).fields == fields and type(again.get(rid).fields["big"]) is int
    assert [r.fields for r in again.records()] == [fields]
    assert again.history(rid)[0].new == fields
    again.close()


def test_new_record_ids_are_unique_uuids_in_creation_order():
    import uuid

    from app.store.db import new_record_id

    ids = [new_record_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(i) for i in ids[:50]]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 and str(u) == i for u, i in zip(parsed, ids))
    time.sleep(0.002)
    later = new_record_id()
    assert later > max(ids)  # time-ordered: new records land at the end of the id index


def test_an_edit_for_a_record_that_is_not_here_is_refused(make_store):
    """Such a record would have no village, and no bundle could ever carry it to the county."""
    store = make_store()
    before = store.conn.execute("SELECT count(*) FROM changes").fetchone()[0]
    with pytest.raises(StoreError, match="找不到记录 0190f000-0000-7000-8000-000000000001"):
        store.put("household", {"phone": "13800000000"}, record_id="0190f000-0000-7000-8000-000000000001")
    assert store.conn.execute("SELECT count(*) FROM changes").fetchone()[0] == before
    assert store.count() == 0


def test_big_integers_round_trip_through_bulk_creation_too(make_store, where):
    store = make_store()
    fields = {"head_name": "欧阳", "big": 2**70 + 1}
    [change] = store.create_many([("household", fields, "522634101201", None)])
    store.close()
    again = Store.open(where("village.db"))
    again.unlock("admin", PASSPHRASE)
    assert type(again.get(change.record_id).fields["big"]) is int and again.get(change.record_id).fields == fields
    assert again.history(change.record_id)[0].new == fields
    again.close()


def test_loading_everything_gives_each_record_as_get_does_and_skips_a_damaged_one(make_store):
    store = make_store()
    village = "522634101201"
    kept = [store.put("household", {"head_name": f"户主{i}", "family_size": i}, village_code=village).record_id
            for i in range(3)]
    big = store.put("household", {"head_name": "欧阳", "big": 2**70 + 1}, village_code=village).record_id  # stdlib body
    gone = store.put("household", {"head_name": "已删"}, village_code=village).record_id
    store.delete(gone, reason="测试")
    damaged = store.put("household", {"head_name": "坏"}, village_code=village).record_id
    store.conn.execute("UPDATE records SET blob = ? WHERE id = ?",
                       (store.conn.execute("SELECT blob FROM records WHERE id = ?", (kept[0],)).fetchone()[0], damaged))

    loaded = {r.id: r for r in store.records(include_deleted=True)}

    assert set(loaded) == {*kept, big, gone}
    for rid in [*kept, big, gone]:
        assert loaded[rid] == store.get(rid)
    assert loaded[gone].deleted and not loaded[kept[1]].deleted
    assert loaded[big].fields["big"] == 2**70 + 1
    assert store.damaged == {damaged: "household"}
    assert gone not in {r.id for r in store.records()}


@pytest.mark.sqlite_only
def test_loading_everything_leaves_the_garbage_collector_as_it_found_it(store):
    import gc

    for i in range(5):
        store.put("household", {"head_name": f"户主{i}"}, village_code="522634101201")
    walk = store.records()
    next(walk)  # abandoned after the first record: the collector must run again meanwhile
    assert gc.isenabled() and gc.get_freeze_count() == 0
    walk.close()
    assert len(list(store.records())) == 5 and gc.isenabled() and gc.get_freeze_count() == 0

    gc.freeze()  # a program that froze its own objects on purpose keeps them frozen
    try:
        frozen = gc.get_freeze_count()
        assert len(list(store.records())) == 5
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


@pytest.mark.sqlite_only
def test_a_new_database_is_not_made_beside_the_log_another_one_left(make_store, tmp_path, recovery_key):
    """A program killed while its database was open leaves DB-wal; the database file itself then
    deleted by hand, a new database of that name would have SQLite replay the old log into it (the
    unlock then failed with “index_key 解密失败”). Now the creation is refused, naming the file, and
    the log is left as it was."""
    old = make_store("村.db")
    old.put("household", {"head_name": "王五"}, village_code="522634101201")
    log = (tmp_path / "村.db-wal").read_bytes()  # still open: its last writes are in the log
    old.close()
    for leftover in tmp_path.glob("村.db*"):
        leftover.unlink()
    (tmp_path / "村.db-wal").write_bytes(log)
    with pytest.raises(StoreError, match=r"村\.db-wal 存在.*请换一个文件名"):
        Store.create(tmp_path / "村.db", role="village", site_name="新", operator="admin", passphrase=PASSPHRASE,
                     recovery_public_key=recovery_key.public_key())
    assert (tmp_path / "村.db-wal").read_bytes() == log
    assert not (tmp_path / "村.db").exists()
    fresh = make_store("新村.db")  # another name works
    assert fresh.unlocked
