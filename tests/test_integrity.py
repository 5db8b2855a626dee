"""The integrity check (app.services.integrity, `jiandang check`) and the shutdown marker, on a
SQLite file and on a county database on PostgreSQL (a tampered row there is found and named too)."""

import json
import sqlite3

import pytest

from app.cli.main import main
from app.services import integrity
from app.store import Store, bodies
from app.store.base import Record
from app.store.locations import PgLocation
from tests import pg
from tests.conftest import PASSPHRASE

BACKENDS = ("sqlite", "postgresql")


def _arg(path) -> str:
    """A database as given on the command line (a URL with its password)."""
    return path.url if isinstance(path, PgLocation) else str(path)


def _raw(path, sql: str, params=()) -> list:
    """Run SQL on the database behind the program's back (as a disk fault or someone tampering)."""
    if isinstance(path, PgLocation):
        import psycopg

        with psycopg.connect(path.url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cur.fetchall()] \
                if cur.description else []
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def _reopen(path):
    s = Store.open(path)
    s.unlock("admin", PASSPHRASE)
    return s


def test_a_healthy_database_passes(demo_store):
    demo_store.put("household", {"phone": None}, record_id=next(demo_store.records("household")).id)
    member = next(demo_store.records("member"))
    demo_store.delete(member.id, reason="2")
    report = integrity.check(demo_store)
    assert report.ok, [p.line() for p in report.problems]
    assert report.records == demo_store.conn.execute("SELECT count(*) FROM records").fetchone()[0]
    assert report.changes == demo_store.change_count()
    assert report.sqlite == "ok"


def test_a_flipped_byte_in_a_record_is_reported_by_id(demo_store):
    path = demo_store.path
    demo_store.close()
    rows = _raw(path, "SELECT id, blob FROM records WHERE kind = 'member' ORDER BY id LIMIT 2")
    rid, blob = rows[0]
    damaged = bytearray(blob)
    damaged[-5] ^= 0x80
    _raw(path, "UPDATE records SET blob = ? WHERE id = ?", (bytes(damaged), rid))
    with _reopen(path) as s:
        report = integrity.check(s)
    assert not report.ok
    assert report.damaged_ids() == {rid}
    assert rows[1][0] not in report.damaged_ids()
    assert "无法解密" in report.problems[0].message


def test_a_damaged_change_row_is_reported(demo_store):
    path = demo_store.path
    rid = next(demo_store.records("income")).id
    demo_store.close()
    [(site, seq, payload)] = _raw(path, "SELECT site_id, seq, payload FROM changes WHERE record_id = ?", (rid,))
    _raw(path, "UPDATE changes SET payload = ? WHERE site_id = ? AND seq = ?", (payload[:-1] + bytes([payload[-1] ^ 1]), site, seq))
    with _reopen(path) as s:
        report = integrity.check(s)
    assert report.damaged_ids() == {rid}
    assert f"第 {seq} 条" in report.problems[0].message


def test_a_record_that_disagrees_with_its_change_log_is_reported(demo_store):
    """A record rewritten behind the change log's back (validly sealed, so it decrypts) is caught."""
    house = next(demo_store.records("household"))
    sealer = demo_store._require()
    fields = dict(house.fields, head_name="冒名顶替")
    forged = Record(house.id, "household", house.village_code, house.parent_id, house.hlc, False, fields, house.clocks)
    blob = sealer.seal("household", house.id, bodies.encode(forged))
    demo_store.conn.execute("UPDATE records SET blob = ? WHERE id = ?", (blob, house.id))
    report = integrity.check(demo_store)
    assert report.damaged_ids() == {house.id}
    assert "head_name" in report.problems[0].message and "不一致" in report.problems[0].message


def test_a_plain_village_column_changed_outside_the_program_is_reported(demo_store):
    """Queries choose records by their plain village column; the sealed body names the village too.
    Moving a household to another village by editing the file is caught, and reading the record still
    gives the village it was saved with."""
    house = next(demo_store.records("household"))
    other = next(v for v in demo_store.village_codes() if v != house.village_code)
    demo_store.conn.execute("UPDATE records SET village_code = ? WHERE id = ?", (other, house.id))
    report = integrity.check(demo_store)
    assert house.id in report.damaged_ids()
    assert any("明文列" in p.message for p in report.problems if p.record_id == house.id)
    assert demo_store.get(house.id).village_code == house.village_code


def test_a_deleted_flag_flipped_outside_the_log_is_reported(demo_store):
    member = next(demo_store.records("member"))
    demo_store.conn.execute("UPDATE records SET deleted = 1 WHERE id = ?", (member.id,))
    report = integrity.check(demo_store)
    assert report.damaged_ids() == {member.id}
    assert "删除状态" in report.problems[0].message


def test_a_record_without_changes_is_reported(demo_store):
    rid = next(demo_store.records("visit")).id
    demo_store.conn.execute("DELETE FROM changes WHERE record_id = ?", (rid,))
    report = integrity.check(demo_store)
    assert report.damaged_ids() == {rid}


def test_a_stale_duplicate_index_entry_is_reported(demo_store):
    member = next(m for m in demo_store.records("member") if m.fields.get("id_number"))
    demo_store.conn.execute("UPDATE blind_index SET digest = ? WHERE record_id = ?", (b"\x00" * 16, member.id))
    report = integrity.check(demo_store)
    assert report.damaged_ids() == {member.id}
    assert "查重索引" in report.problems[0].message


def test_a_missing_or_stale_household_number_index_entry_is_reported(demo_store):
    first, second = list(demo_store.records("household"))[:2]
    demo_store.conn.execute("DELETE FROM blind_index WHERE record_id = ?", (first.id,))
    demo_store.conn.execute("UPDATE blind_index SET digest = ? WHERE record_id = ?", (b"\x00" * 16, second.id))
    report = integrity.check(demo_store)
    assert report.damaged_ids() == {first.id, second.id}
    assert all("户编号索引" in p.message for p in report.problems)


def test_check_cli_names_the_damaged_record_and_exits_1(demo_store, monkeypatch, capsys):
    path = demo_store.path
    demo_store.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["check", _arg(path)]) == 0
    assert "数据库完好" in capsys.readouterr().out
    [(rid, blob)] = _raw(path, "SELECT id, blob FROM records WHERE kind = 'household' LIMIT 1")
    _raw(path, "UPDATE records SET blob = ? WHERE id = ?", (blob[:20] + bytes([blob[20] ^ 1]) + blob[21:], rid))
    assert main(["check", _arg(path)]) == 1
    out = capsys.readouterr().out
    assert rid in out and "发现 1 处问题" in out


@pytest.mark.sqlite_only
def test_check_reports_a_file_sqlite_finds_corrupt(demo_store, monkeypatch, capsys):
    path = demo_store.path
    demo_store.close()
    raw = bytearray(path.read_bytes())
    page = 4096
    assert len(raw) > 4 * page
    for i in range(2 * page, 3 * page):  # overwrite a whole b-tree page with garbage
        raw[i] = 0xA5
    path.write_bytes(bytes(raw))
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["check", _arg(path)]) == 1
    assert "损坏" in capsys.readouterr().out


def test_check_cli_wrong_passphrase_is_a_clear_error(demo_store, monkeypatch, capsys):
    path = demo_store.path
    demo_store.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "not the passphrase")
    assert main(["check", _arg(path)]) == 1
    assert "密码不正确" in capsys.readouterr().err


@pytest.mark.sqlite_only  # a county on PostgreSQL has several sessions at once and keeps no marker
def test_unclean_shutdown_marker(make_store):
    s = make_store()
    path = s.path
    assert not integrity.previous_session_unclean(s)
    integrity.mark_session_open(s)
    s.close()  # closed without mark_session_closed: as after a crash or power cut
    s = Store.open(path)
    assert integrity.previous_session_unclean(s)
    integrity.mark_session_open(s)
    integrity.mark_session_closed(s)
    s.close()
    with Store.open(path) as s:
        assert not integrity.previous_session_unclean(s)


@pytest.mark.sqlite_only  # no marker on PostgreSQL (above)
def test_session_marker_holds_no_personal_data(make_store):
    s = make_store()
    integrity.mark_session_open(s)
    marker = json.loads(s.meta(integrity.SESSION_KEY))
    assert set(marker) == {"since", "pid"}


def test_check_does_not_change_the_database(demo_store):
    before = demo_store.conn.execute("SELECT count(*), sum(length(blob)) FROM records").fetchone()
    changes = demo_store.change_count()
    integrity.check(demo_store)
    assert demo_store.conn.execute("SELECT count(*), sum(length(blob)) FROM records").fetchone() == before
    assert demo_store.change_count() == changes


def test_databases_after_sync_with_conflicts_pass(tmp_path, recovery_key):
    """Merged changes (from other sites, with conflicts and a delete concurrent with an edit) are in the
    log as they were made; the replay in (hlc, site id) order must agree with the merged records."""
    from app.core import demo as demo_data
    from app.services import demo, households
    from app.sync import exchange, identity, merge

    doc = demo_data.households(1, seed=3)[0]
    # a laptop creates a household as 未脱贫 and numbers it from its own block (the county refuses
    # anything else): the demo generator's status and 户编号 are the county's ledger
    doc["status"] = "1"
    doc.pop("household_number", None)
    county = Store.create(tmp_path / "county.db", role="county", site_name="县", operator="admin",
                          passphrase=PASSPHRASE, recovery_public_key=recovery_key.public_key())
    demo.install_reference_data(county)
    identity.setup_county(county)

    def laptop(n):
        e = identity.enroll(county, site_name=f"队{n}", role="village", villages=[doc["village_code"]])
        return identity.create_from_enrollment(tmp_path / f"v{n}.db", identity.open_enrollment(e.package, e.code),
                                               operator="admin", passphrase=PASSPHRASE)

    def ship(src, dst):
        usb = tmp_path / f"usb{ship.n}"
        ship.n += 1
        usb.mkdir()
        exchange.export_to(src, usb)
        # the other laptop's downstream bundle on the stick is left out (and named as skipped)
        assert all(r.status == "accepted" for r in exchange.import_paths(dst, [usb]) if r.status != "skipped")
    ship.n = 0

    a, b = laptop(1), laptop(2)
    hid = households.save(a, doc, allow_errors=True).household_id
    ship(a, county)
    ship(county, b)
    a.put("household", {"phone": "13900000001"}, record_id=hid)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    member = next(b.records("member", parent_id=hid))
    b.delete(member.id, reason="2")
    a.put("member", {"name": "改名"}, record_id=member.id)
    ship(a, county)
    ship(b, county)
    ship(county, a)
    ship(county, b)
    assert merge.conflicts(county)
    for store in (county, a, b):
        report = integrity.check(store)
        assert report.ok, [p.line() for p in report.problems]
        store.close()


def test_postgresql_check_names_a_missing_or_invalid_index_and_a_missing_column(pg_url, recovery_key, monkeypatch,
                                                                                capsys):
    """PostgreSQL has no integrity_check: the check looks for every table, column, primary key and
    index the migrations make, and for indexes the server holds as invalid."""
    from tests.conftest import fill_demo

    s = Store.create(pg_url, role="county", site_name="县", operator="admin", passphrase=PASSPHRASE,
                     recovery_public_key=recovery_key.public_key())
    fill_demo(s, per_village=1)
    path = s.path
    s.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["check", pg_url]) == 0
    out = capsys.readouterr().out
    assert "数据库完好" in out and "PostgreSQL 数据表和索引齐全" in out
    _raw(path, "DROP INDEX blind_index_digest")
    _raw(path, "ALTER TABLE conflicts DROP COLUMN resolved_by")
    # an index build cut short (here: a unique build over duplicate rows) leaves an invalid index
    _raw(path, "DROP INDEX records_kind_village")
    with pytest.raises(Exception, match="duplicate|重复|could not create unique index"):
        _raw(path, "CREATE UNIQUE INDEX CONCURRENTLY records_kind_village ON records(kind, village_code)")
    assert main(["check", pg_url]) == 1
    out = capsys.readouterr().out
    assert "缺少索引 blind_index_digest" in out
    assert "数据表 conflicts 缺少列 resolved_by" in out
    assert "索引 records_kind_village 无效" in out
    assert pg.mask(pg_url) in out and "jiandang-test" not in out


def test_changes_whose_record_is_gone_are_reported_and_batches_check_everything(demo_store, monkeypatch):
    """The check reads records a batch at a time with their changes (memory flat in the county's
    size); across batch boundaries nothing is missed, and changes left without their record are named."""
    monkeypatch.setattr(integrity, "CHECK_BATCH", 7)
    report = integrity.check(demo_store)
    assert report.ok, [p.line() for p in report.problems]
    assert report.records == demo_store.conn.execute("SELECT count(*) FROM records").fetchone()[0] > 7 * 3
    assert report.changes == demo_store.change_count()
    gone = [r.id for r in demo_store.records("visit")][-1]
    demo_store.conn.execute("DELETE FROM records WHERE id = ?", (gone,))
    report = integrity.check(demo_store)
    assert [(p.what, p.record_id) for p in report.problems] == [("log", gone)]
    assert "记录本身不存在" in report.problems[0].message
    assert report.changes == demo_store.change_count()


def test_a_check_of_a_county_on_postgresql_reads_one_moment_while_others_write(pg_url, recovery_key, monkeypatch):
    """The service and staff write a county on PostgreSQL while `check` reads it batch by batch. Another
    program edits a household and saves a new one between the check's reading of the records and of
    their change rows: the check, reading one moment, reports no problem that is not there (read
    without it, the edited household's fields disagree with its newer change log); the next check
    sees the new state whole."""
    from app.services import demo as demo_service
    from app.services import households
    from tests.factories import household

    s = Store.create(pg_url, role="county", site_name="雷山县扶贫办", operator="admin", passphrase=PASSPHRASE,
                     recovery_public_key=recovery_key.public_key())
    demo_service.install_reference_data(s)
    first = households.save(s, household(head="王大山", spouse="王大山妻", seq=1)).household_id
    other = Store.open(pg_url)
    other.unlock("admin", PASSPHRASE)
    real_execute = s.conn.execute
    wrote = []

    def execute_while_another_program_writes(sql, params=()):
        if "FROM changes WHERE record_id IN" in sql and not wrote:
            other.put("household", {"phone": "13700000000"}, record_id=first)
            wrote.append(households.save(other, household(head="李小河", spouse="李小河妻", seq=2)).household_id)
        return real_execute(sql, params)

    monkeypatch.setattr(s.conn, "execute", execute_while_another_program_writes)
    try:
        report = integrity.check(s)
        assert wrote and report.ok, [p.message for p in report.problems]
        after = integrity.check(s)
        assert after.ok and after.records > report.records and after.changes > report.changes
        assert s.get(first).fields["phone"] == "13700000000"
    finally:
        other.close()
        s.close()
