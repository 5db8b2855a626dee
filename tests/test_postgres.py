"""A county database on PostgreSQL (app/store/postgres.py), on a real server (tests/pg.py): bad
addresses and databases refused in words with nothing written, nothing personal in plain text in a
pg_dump, several programs writing one county at once without losing, doubling or reordering a change."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core import demo as demo_data
from app.services import attachments, demo, households
from app.store import Store, StoreError
from app.store.locations import PgLocation, location, mask
from tests import pg
from tests.conftest import PASSPHRASE
from tests.photos import photo

ROOT = Path(__file__).resolve().parent.parent
VILLAGE = "522634101201"


def county(url, recovery_key, **kw) -> Store:
    return Store.create(url, role="county", site_name="雷山县扶贫办", operator="admin", passphrase=PASSPHRASE,
                        recovery_public_key=recovery_key.public_key(), **kw)


def tables(url: str) -> list[str]:
    return [r[0] for r in pg.psql(url, "SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = current_schema() ORDER BY 1")]


def with_password(url: str, password: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", rf"//\1:{password}@", url)


# ---------------------------------------------------------------------------------- addresses


def test_location_tells_a_url_from_a_path_and_masks_the_password():
    where = location("postgresql://county:s3cret@db.example:5432/jiandang")
    assert isinstance(where, PgLocation) and where.database == "jiandang"
    assert str(where) == where.name == "postgresql://county:***@db.example:5432/jiandang"
    assert "s3cret" not in repr(where)
    assert mask("postgres://u:p@h/d?sslmode=require&password=x") == "postgres://u:***@h/d?sslmode=require&password=***"
    assert location("县级.db") == Path("县级.db")
    assert location(r"C:\建档\postgresql.db") == Path(r"C:\建档\postgresql.db")


@pytest.mark.parametrize("url, words", [
    ("postgresql://county:s3cret@127.0.0.1:port/jiandang", "端口应为数字"),
    ("postgresql://county:s3cret@127.0.0.1:5432/", "缺少数据库名"),
    ("postgresql://county:s3cret@/jiandang", "缺少服务器名"),
])
def test_a_malformed_url_is_refused_before_connecting(url, words, recovery_key):
    for attempt in (lambda: Store.open(url), lambda: county(url, recovery_key)):
        with pytest.raises(StoreError) as refused:
            attempt()
        text = str(refused.value)
        assert words in text and "postgresql://county:***@" in text and "s3cret" not in text
        assert "postgresql://用户名:密码@服务器:5432/数据库名" in text


def test_a_server_that_is_down_is_named_with_what_to_do(recovery_key):
    pg.server()  # the test server answers; port 1 on this machine does not
    url = "postgresql://county:s3cret@127.0.0.1:1/jiandang"
    with pytest.raises(StoreError) as refused:
        Store.open(url)
    text = str(refused.value)
    assert "无法连接 PostgreSQL 服务器 postgresql://county:***@127.0.0.1:1/jiandang" in text
    assert "PostgreSQL 已启动" in text and "s3cret" not in text


def test_a_wrong_password_is_said_and_nothing_is_written(pg_url, recovery_key):
    wrong = with_password(pg_url, "not-the-password")
    for attempt in (lambda: Store.open(wrong), lambda: county(wrong, recovery_key)):
        with pytest.raises(StoreError, match="用户名或密码不正确") as refused:
            attempt()
        assert "not-the-password" not in str(refused.value) and ":***@" in str(refused.value)
    assert tables(pg_url) == []


def test_a_missing_password_is_said_as_missing_with_where_to_put_it(pg_url, tmp_path, monkeypatch):
    """An address without a password and no password file entry for it (a .pgpass naming 127.0.0.1
    when the address says localhost, say): libpq sends none, and the message says that none was
    found and where one goes, instead of calling it wrong."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(pg_url)
    bare = urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port or 5432}"))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-such-pgpass"))
    with pytest.raises(StoreError) as refused:
        Store.open(bare)
    text = str(refused.value)
    assert "没有找到密码" in text and ".pgpass" in text and "PGPASSWORD" in text
    assert "不正确" not in text


def test_an_empty_database_is_opened_with_a_pointer_to_init(pg_url):
    with pytest.raises(StoreError) as refused:
        Store.open(pg_url)
    assert "是空的" in str(refused.value) and f"jiandang init {mask(pg_url)} --role county" in str(refused.value)
    assert tables(pg_url) == []


def test_a_database_of_another_program_is_left_alone(pg_url, recovery_key):
    pg.psql(pg_url, "CREATE TABLE orders (id int PRIMARY KEY, customer text)")
    pg.psql(pg_url, "INSERT INTO orders VALUES (1, '客户')")
    with pytest.raises(StoreError, match="不是建档数据库"):
        Store.open(pg_url)
    with pytest.raises(StoreError, match="已有数据表:不会覆盖"):
        county(pg_url, recovery_key)
    assert tables(pg_url) == ["orders"] and pg.psql(pg_url, "SELECT * FROM orders") == [(1, "客户")]


def test_a_county_database_of_a_newer_program_is_refused_unchanged(pg_url, recovery_key):
    county(pg_url, recovery_key).close()
    pg.psql(pg_url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    before = pg.psql(pg_url, "SELECT key, value FROM meta ORDER BY key")
    with pytest.raises(StoreError) as refused:
        Store.open(pg_url)
    assert "更新版本" in str(refused.value) and "结构版本 99" in str(refused.value) and mask(pg_url) in str(refused.value)
    assert pg.psql(pg_url, "SELECT key, value FROM meta ORDER BY key") == before


def test_only_a_county_lives_on_postgresql(pg_url, recovery_key):
    for role in ("village", "township"):
        with pytest.raises(StoreError, match="只能作县级数据库"):
            Store.create(pg_url, role=role, site_name="某村", operator="admin", passphrase=PASSPHRASE,
                         recovery_public_key=recovery_key.public_key())
    assert tables(pg_url) == []


def test_a_second_init_into_the_same_database_is_refused(pg_url, recovery_key):
    first = county(pg_url, recovery_key)
    first.put("household", {"head_name": "王五"}, village_code=VILLAGE)
    with pytest.raises(StoreError, match="已有数据表"):
        county(pg_url, recovery_key)
    assert first.count("household") == 1
    first.close()


# ---------------------------------------------------------------------------------- nothing in plain text


def test_a_dump_of_a_filled_county_holds_no_name_id_number_or_image(pg_url, recovery_key, tmp_path):
    store = county(pg_url, recovery_key)
    demo.install_reference_data(store)
    docs = list(demo_data.iter_households(2, 2026, monitoring=True))[:12]
    for doc in docs:
        demo._save(store, doc)  # the demo generator's households (demo.fill refuses a county)
    home = next(store.records("household"))
    (tmp_path / "户口本.jpg").write_bytes(photo(640, 480))
    assert len(attachments.add_files(store, home, [tmp_path / "户口本.jpg"]).added) == 1
    [attached] = attachments.of_household(store, home.id)
    image = attachments.image(store, attached)
    names = {m["name"] for d in docs for m in d["members"]} | {d["head_name"] for d in docs if d.get("head_name")}
    numbers = {m["id_number"] for d in docs for m in d["members"] if m.get("id_number")}
    assert len(names) > 20 and len(numbers) > 20 and image[:3] == b"\xff\xd8\xff"
    store.close()

    dump = subprocess.run(["pg_dump", "--no-owner", "--dbname", pg_url], capture_output=True, check=True).stdout
    text = dump.decode("utf-8")
    assert "COPY public.records" in text and "COPY public.changes" in text  # the data is in it, sealed
    for name in names:
        assert name not in text and name.encode().hex() not in text, name
    for number in numbers:
        assert number not in text and number.encode().hex() not in text, number
    assert image[:48].hex() not in text and not re.search(r"\\\\xffd8ff", text)


# ---------------------------------------------------------------------------------- several programs


def test_a_second_program_sees_the_first_ones_writes_in_order(pg_url, recovery_key):
    """Two programs on one county (the service and a staff window): each write goes after what the
    other committed, in sequence number, clock and search index."""
    first = county(pg_url, recovery_key)
    behind = time.time() - 3600  # the second machine's clock is an hour slow
    second = Store.open(pg_url, wall=lambda: behind)
    second.unlock("admin", PASSPHRASE)
    doc = households.document(second, households.save(second, _household("欧阳明远")).household_id)
    assert second.search("欧阳") == [doc["id"]]
    made = households.save(first, _household("司马秀兰", seq=2)).household_id
    assert second.search("司马") == [made]  # the reader's index caught up with the other program
    theirs = list(first.changes(site_id=first.site_id))
    mine = second.put("household", {"phone": "13800000000"}, record_id=doc["id"])
    assert made in {c.record_id for c in theirs}
    assert mine.seq == theirs[-1].seq + 1 and mine.hlc > max(c.hlc for c in theirs)
    assert [c.seq for c in first.changes(site_id=first.site_id)] == list(range(1, mine.seq + 1))
    first.close()
    second.close()


def _household(head: str, seq: int = 1) -> dict:
    from tests.factories import household

    return household(head=head, spouse=head + "妻", seq=seq)


def test_a_reader_snapshot_holds_still_and_refuses_to_write(pg_url, recovery_key):
    writer = county(pg_url, recovery_key)
    writer.put("household", {"head_name": "一"}, village_code=VILLAGE)
    reader = Store.open(pg_url, read_only=True)
    reader.unlock("admin", PASSPHRASE)
    reader.snapshot()
    writer.put("household", {"head_name": "二"}, village_code=VILLAGE)
    assert reader.count("household") == 1 and writer.count("household") == 2
    with pytest.raises(StoreError, match="只读"):
        reader.put("household", {"head_name": "三"}, village_code=VILLAGE)
    reader.close()
    writer.close()


WRITER = r"""
import sys
from app.store import Store
url, name, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = Store.open(url)
store.unlock("admin", sys.argv[4])
for i in range(rounds):
    if i % 5 == 4:
        store.create_many([("household", {"head_name": f"{name}{i}-{j}"}, "522634101201", None) for j in range(3)])
    else:
        with store.transaction():
            c = store.put("household", {"head_name": f"{name}{i}"}, village_code="522634101201")
            store.put("member", {"name": f"{name}{i}子"}, village_code="522634101201", parent_id=c.record_id)
store.close()
print("done")
"""


def test_several_programs_write_one_county_at_once_and_a_reader_never_skips_a_change(pg_url, recovery_key):
    store = county(pg_url, recovery_key)
    rounds, writers = 25, ("甲", "乙", "丙")
    seen: list[tuple] = []
    stop = threading.Event()

    def follow():  # as a downstream bundle does: the log after a cursor, up to the top read first
        reader = Store.open(pg_url, read_only=True)
        cursor = 0
        while True:
            last = stop.is_set()
            top = reader.change_mark()
            rows = reader.conn.execute("SELECT rowid, site_id, seq, record_id FROM changes WHERE rowid > ? "
                                       "AND rowid <= ? ORDER BY rowid", (cursor, top)).fetchall()
            seen.extend(rows)
            cursor = top
            if last:
                break
            time.sleep(0.01)
        reader.close()

    follower = threading.Thread(target=follow)
    follower.start()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, pg_url, name, str(rounds), PASSPHRASE], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in writers]
    for _ in range(rounds):  # this program writes too, between the others
        store.put("household", {"head_name": "县里"}, village_code=VILLAGE)
    outputs = [p.communicate(timeout=300) for p in procs]
    stop.set()
    follower.join(timeout=60)
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]

    per_writer = (rounds - rounds // 5) * 2 + (rounds // 5) * 3
    everything = store.conn.execute("SELECT rowid, site_id, seq, record_id FROM changes ORDER BY rowid").fetchall()
    assert len(everything) == per_writer * len(writers) + rounds
    seqs = sorted(r[2] for r in everything)
    assert seqs == list(range(1, len(everything) + 1))  # one site: contiguous, each exactly once
    assert [r[2] for r in everything] == seqs  # and the log's order is the sequence order
    assert seen == everything  # the reader's cursor met every change once, none later behind it
    heads = [r.fields["head_name"] for r in store.records("household")]
    assert len(heads) == len(set(heads) - {"县里"}) + rounds
    for name in writers:
        assert {h for h in heads if h.startswith(name)} == (
            {f"{name}{i}" for i in range(rounds) if i % 5 != 4}
            | {f"{name}{i}-{j}" for i in range(rounds) if i % 5 == 4 for j in range(3)})
    assert len({r[3] for r in everything}) == len(everything)  # every record created once
    store.close()


def test_one_bundle_imported_by_two_programs_at_once_is_applied_once(tmp_path, pg_url, monkeypatch):
    """The service and a USB import may both be handed the same bundle: the second finds, under the
    write lock, that the first has taken it, and says duplicate (nothing applied twice, no error)."""
    from app.sync import exchange, wire
    from tests import sync_helpers

    monkeypatch.setattr(sync_helpers, "county_location", lambda tmp, name: pg_url)
    first = sync_helpers.make_county(tmp_path)
    laptop = sync_helpers.make_device(tmp_path, first, "甲")
    households.save(laptop, _household("欧阳明远"))
    name, data = exchange.export_upstream(laptop)
    second = Store.open(pg_url)
    second.unlock("admin", PASSPHRASE)
    real = wire.decrypt_body
    overtaken = []

    def meanwhile(*args, **kw):  # while the second program decrypts, the first imports the same bundle
        if not overtaken:
            overtaken.append(None)
            monkeypatch.setattr(wire, "decrypt_body", real)
            overtaken[0] = exchange.import_bundle(first, data, name)
        return real(*args, **kw)

    monkeypatch.setattr(wire, "decrypt_body", meanwhile)
    late = exchange.import_bundle(second, data, name)
    assert overtaken[0].status == "accepted" and overtaken[0].applied > 0
    assert late.status == "duplicate", late.message
    assert second.count("household") == 1
    assert second.conn.execute("SELECT count(*) FROM receipts").fetchone()[0] == 1
    for s in (first, second, laptop):
        s.close()


def test_the_windows_search_index_built_in_parts_follows_another_programs_writes(pg_url, recovery_key):
    """The window fills its index in parts (start_search_index, add_search_entries) from records it
    decrypted; on a shared county it still learns of households another program saved later."""
    from app.store.search import SearchEntries

    service = county(pg_url, recovery_key)
    households.save(service, _household("欧阳明远"))
    window = Store.open(pg_url)
    window.unlock("admin", PASSPHRASE)
    window.start_search_index()
    window.add_search_entries(SearchEntries(list(window.records("household")) + list(window.records("member"))))
    assert len(window.search("欧阳")) == 1
    made = households.save(service, _household("司马秀兰", seq=2)).household_id
    assert window.search("司马") == [made]
    service.close()
    window.close()


def test_an_older_county_database_is_brought_up_to_the_current_schema_on_open(pg_url, recovery_key):
    """The migration steps of app/store/migrations.py run on PostgreSQL too (said in its dialect)."""
    from app.store.migrations import SCHEMA_VERSION

    county(pg_url, recovery_key).close()
    # as a database made before schema version 4: without the tables of versions 4 (monitoring) and 6
    # (the sync service's challenges and rate limits)
    pg.psql(pg_url, "DROP TABLE monitoring_criteria, service_challenges, service_rates")
    pg.psql(pg_url, "UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="需要升级数据结构"):
        Store.open(pg_url, read_only=True)  # a reader leaves the upgrade to a writer
    store = Store.open(pg_url)
    store.unlock("admin", PASSPHRASE)
    assert int(store.meta("schema_version")) == SCHEMA_VERSION
    store.set_monitoring_criteria(2025, 7800.0, source="县级设定")
    assert store.monitoring_criteria(2025)["line"] == 7800.0
    store.close()


def test_a_device_named_with_quotes_and_backslashes_is_enrolled_and_its_certificate_reads_back(pg_url, recovery_key):
    # The certificate is JSON in a BYTEA column: a backslash (JSON escapes every '"' with one) must reach
    # PostgreSQL as bytes, not as text that the server would read in bytea's escape format.
    from app.sync import identity

    with county(pg_url, recovery_key) as store:
        identity.setup_county(store)
        result = identity.enroll(store, site_name='龙井村"一队"\\备用机', role="village", villages=[VILLAGE])
        cert, revoked = identity.certificate_of(store, result.site_id)
    assert cert.body["site_name"] == '龙井村"一队"\\备用机' and revoked is None


def test_many_rows_go_in_as_one_statement_in_order_and_a_repeated_key_keeps_the_last(pg_url, monkeypatch):
    """executemany of an INSERT sends multi-row statements (a merge's rows in one round trip each):
    the rows keep their order in `pos` (the change log's order), an upsert whose batch names a key
    twice ends with the last row as row-by-row would, and batches are cut under the parameter limit."""
    from app.store import postgres

    conn = postgres.connect(location(pg_url))
    try:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")  # gets its `pos` column
        sent = []

        class Recording(conn._raw_cursor):  # every statement with parameters, sent alone or queued
            def execute(self, query, params=None, **options):
                sent.append(query)
                return super().execute(query, params, **options)

        monkeypatch.setattr(conn, "_raw_cursor", Recording)
        monkeypatch.setattr(postgres, "MAX_PARAMETERS", 20)  # 10 rows of 2 per statement
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t(k, v) VALUES (?, ?)", [(f"r{i:02d}", i) for i in range(25)])
        conn.execute("COMMIT")
        assert len([q for q in sent if q.startswith("INSERT")]) == 3  # 10 + 10 + 5 rows
        assert [r[0] for r in conn.execute("SELECT k FROM t ORDER BY pos")] == [f"r{i:02d}" for i in range(25)]
        before = conn.total_changes
        conn.executemany("INSERT OR REPLACE INTO t(k, v) VALUES (?, ?)", [("r01", 100), ("new", 7), ("r01", 101)])
        conn.executemany("INSERT OR IGNORE INTO t(k, v) VALUES (?, ?)", [("r02", 200), ("new2", 8), ("new2", 9)])
        assert dict(conn.execute("SELECT k, v FROM t WHERE k IN ('r01', 'r02', 'new', 'new2')").fetchall()) == \
            {"r01": 101, "r02": 2, "new": 7, "new2": 8}
        assert conn.total_changes - before == 4  # 3 upserted rows (r01 twice) and the one new2 that went in
    finally:
        conn.close()


def test_a_part_whose_queued_rows_fail_is_undone_alone_and_the_others_commit(pg_url, recovery_key):
    """A merge's multi-row INSERTs are sent with the next statement (write-behind, one round trip):
    an error in them is still raised inside the savepoint of the part that wrote them, which undoes
    that part only; a part refused before it sent anything keeps its queued savepoint; the rest of
    the transaction commits."""
    import psycopg

    store = county(pg_url, recovery_key)
    conn = store.conn
    conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    conn.executemany("INSERT INTO t(k, v) VALUES (?, ?)", [("held", 0), ("held2", 0)])  # outside a transaction
    row = "INSERT INTO t(k, v) VALUES (?, ?)"
    with store.transaction():
        with store.savepoint():
            conn.executemany(row, [("a1", 1), ("a2", 2)])
        with pytest.raises(psycopg.errors.UniqueViolation):
            with store.savepoint():
                conn.executemany(row, [("b1", 1), ("held", 2)])  # queued; fails when sent
                assert conn._queued  # not sent yet: the part's end sends it
        with pytest.raises(ValueError):
            with store.savepoint():  # refused before any statement went to the server
                raise ValueError("refused")
        with pytest.raises(ValueError):
            with store.savepoint():
                conn.executemany(row, [("c1", 1), ("c2", 2)])
                raise ValueError("refused after writing")  # its queued rows are never sent
        with store.savepoint():
            conn.executemany(row, [("d1", 1), ("d2", 2)])
            assert conn.execute("SELECT count(*) FROM t WHERE k LIKE 'd%'").fetchone()[0] == 2  # read after write
    assert not conn._queued
    assert [r[0] for r in conn.execute("SELECT k FROM t ORDER BY pos")] == ["held", "held2", "a1", "a2", "d1", "d2"]
    before = conn.total_changes
    with store.transaction():
        conn.executemany(row, [("e1", 1), ("e2", 2)])
        assert conn.total_changes - before == 2  # counted when asked (the rows are sent first)
    store.close()


def test_a_join_is_planned_for_its_values_each_time_and_single_table_reads_are_prepared(pg_url):
    """psycopg prepares a statement on the server after five runs, and the server then keeps ONE plan
    for all values, made without knowing them: for a join (the merge's duplicate ID-number check) a
    hash join reading the whole blind index at every run. A SELECT that joins tables is planned for
    its values at every run instead; a single-table one is still prepared (no planning per run)."""
    from app.store import postgres

    conn = postgres.connect(location(pg_url))
    try:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, d TEXT)")
        conn.execute("CREATE INDEX t_d ON t(d)")
        conn.executemany("INSERT INTO t(k, d) VALUES (?, ?)", [(f"k{i}", f"d{i % 3}") for i in range(9)])
        join = "SELECT a.k, b.k FROM t a JOIN t b ON b.d = a.d WHERE a.k IN (?, ?)"
        single = "SELECT k, d FROM t WHERE k IN (?, ?)"
        for _ in range(8):
            assert sorted(conn.execute(join, ("k0", "k1")).fetchall())[:2] == [("k0", "k0"), ("k0", "k3")]
            assert len(conn.execute(single, ("k0", "k1")).fetchall()) == 2
        prepared = [r[0] for r in conn.raw.execute("SELECT statement FROM pg_prepared_statements").fetchall()]
        assert any("FROM t WHERE k IN" in s for s in prepared)
        assert not any("JOIN" in s for s in prepared), prepared
    finally:
        conn.close()


def test_the_county_duplicate_check_is_planned_for_the_blind_index_as_it_is_at_every_bundle(pg_url):
    """The duplicate ID-number check reads the blind index by digest for every bundle. Prepared on the
    server while the index was small (a new county), its one plan read the whole table at every
    bundle however large it grew: it is planned for the table as it is at every call, while a read
    asked for in the same way without `planned_each_time` is prepared after five runs."""
    from app.store import postgres

    conn = postgres.connect(location(pg_url))
    try:
        conn.execute("CREATE TABLE blind_index (record_id TEXT, field TEXT, digest BYTEA)")
        conn.executemany("INSERT INTO blind_index(record_id, field, digest) VALUES (?, ?, ?)",
                         [(f"m{i}", "id_number", bytes([i])) for i in range(9)])
        check = "SELECT digest, record_id FROM blind_index WHERE digest IN (?, ?)"
        other = "SELECT record_id FROM blind_index WHERE digest IN (?, ?)"
        for _ in range(8):
            assert sorted(conn.execute_deferred(check, (b"\x01", b"\x02"), planned_each_time=True).fetchall()) == [
                (b"\x01", "m1"), (b"\x02", "m2")]
            assert len(conn.execute_deferred(other, (b"\x01", b"\x02")).fetchall()) == 2
        prepared = [r[0] for r in conn.raw.execute("SELECT statement FROM pg_prepared_statements").fetchall()]
        assert any("SELECT record_id FROM blind_index" in s for s in prepared), prepared
        assert not any("SELECT digest, record_id" in s for s in prepared), prepared
    finally:
        conn.close()
