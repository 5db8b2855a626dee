"""`jiandang county migrate`: a county database moves from its SQLite file onto a PostgreSQL server
with everything it holds, verified, and keeps syncing with its laptops as if nothing happened."""

from __future__ import annotations

import os
import sqlite3

import pytest

from app.cli.main import main
from app.services import attachments, county_move, households
from app.store import Store, StoreError
from app.sync import exchange, identity, merge
from tests import factories, pg
from tests.conftest import fill_demo
from tests.photos import photo
from tests.sync_helpers import PASSPHRASE, change_ids, down, make_county, make_device, state, up

TABLES_WITH_ROWS = ("meta", "operators", "recovery", "secrets", "records", "changes", "blind_index", "divisions",
                    "poverty_lines", "certificates", "peers", "receipts", "conflicts", "attachment_blobs",
                    "attachment_sync")


@pytest.fixture
def filled(tmp_path):
    """A county file with demo households, a laptop's synced household with a photo, a conflict with
    a second laptop, and a third laptop whose certificate was revoked. Returns (county path, laptop a,
    an old bundle of a already imported, the county's state before the move)."""
    county = make_county(tmp_path)
    fill_demo(county, per_village=1)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    c = make_device(tmp_path, county, "丙队")
    identity.revoke(county, c.site_id)
    c.close()
    hid = households.save(a, factories.household()).household_id
    (tmp_path / "照片.jpg").write_bytes(photo(800, 600))
    assert attachments.add_files(a, a.get(hid), [tmp_path / "照片.jpg"], kind="家庭合影").added
    old_name, old_bundle = exchange.export_upstream(a)
    assert exchange.import_bundle(county, old_bundle, old_name).status == "accepted"
    assert down(county, a).status == "accepted"
    assert down(county, b).status == "accepted"
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    assert up(a, county).status == "accepted"
    assert up(b, county).conflicts == 1
    assert down(county, a).status == "accepted"
    b.close()
    before = {"state": state(county), "changes": change_ids(county), "conflicts": len(merge.conflicts(county)),
              "revoked": identity.revoked_sites(county), "mark": county.change_mark(),
              "peers": sorted(county.conn.execute("SELECT * FROM peers").fetchall())}
    path = county.path
    county.close()
    yield path, a, (old_name, old_bundle), hid, before
    a.close()


def test_a_filled_county_moves_to_postgresql_and_keeps_syncing_with_its_laptop(filled, pg_url):
    path, a, (old_name, old_bundle), hid, before = filled
    heard: dict = {}
    report = county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE,
                                 progress=lambda stage, done, total: heard.setdefault(stage, []).append((done, total)))
    # a long copy shows how far it is: rows copied, tables compared, records decrypted
    assert list(heard) == ["复制", "核对", "解密检查"]
    assert heard["复制"][-1] == (report.rows(), report.rows()) and heard["解密检查"][-1][0] == heard["解密检查"][-1][1]
    copied = {t.name: t.rows for t in report.tables}
    assert all(copied[name] > 0 for name in TABLES_WITH_ROWS), copied
    assert report.records == len(before["state"]) and report.changes == len(before["changes"])

    with Store.open(pg_url) as county:
        county.unlock("admin", PASSPHRASE)
        # everything the county held, as it held it: records, change log and its positions (the
        # downstream sync cursor), conflicts, certificates (the revoked one still revoked), peers
        assert state(county) == before["state"]
        assert change_ids(county) == before["changes"]
        assert county.change_mark() == before["mark"]
        assert len(merge.conflicts(county)) == before["conflicts"] == 1
        assert identity.revoked_sites(county) == before["revoked"] != []
        assert sorted(county.conn.execute(
            "SELECT site_id, have_seq, bundle_seq, last_digest, down_seq, down_acked FROM peers").fetchall()) == before["peers"]
        [attached] = attachments.of_household(county, hid)
        assert attachments.image(county, attached)[:2] == b"\xff\xd8"
        # an old bundle is not applied twice; the laptop's next bundle is taken
        assert exchange.import_bundle(county, old_bundle, old_name).status == "duplicate"
        a.put("household", {"phone": "13700000003"}, record_id=hid)
        report_up = up(a, county)
        assert (report_up.status, report_up.changes) == ("accepted", 1)
        assert county.get(hid).fields["phone"] == "13700000003"
        # the county's new changes are numbered after the copied log, and the laptop's cursor
        # continues: the downstream bundle carries what is new since its last one, not the whole log
        assert county.change_mark() > before["mark"]
        county.put("household", {"address": "新地址 8 号"}, record_id=hid)
        report_down = down(county, a)
        assert (report_down.status, report_down.changes) == ("accepted", 1)
        assert a.get(hid).fields["address"] == "新地址 8 号"
        assert state(a) == {rid: v for rid, v in state(county).items() if rid in state(a)}
        assert up(a, county).status == "accepted"  # the laptop acknowledges what it received
        assert down(county, a).changes == 0


def test_a_second_migration_into_the_same_database_is_refused_naming_it(filled, pg_url, tmp_path):
    """A copy of the county file taken before the move (a backup, unmarked) is refused by the
    database it went into: the same county is there already."""
    import shutil

    path, *_ = filled
    before = tmp_path / "copy-before.db"
    shutil.copy(path, before)
    county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    rows = pg.psql(pg_url, "SELECT count(*) FROM changes")[0][0]
    with pytest.raises(StoreError, match="迁移已经做过了"):
        county_move.migrate(before, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert pg.psql(pg_url, "SELECT count(*) FROM changes")[0][0] == rows


def test_the_moved_file_is_refused_for_writing_and_names_the_new_address(filled, pg_url, tmp_path, capsys):
    """After the move the SQLite file says where the county went: a window, `sync import`, `enroll`,
    `serve` or another `county migrate` opening it for writing is refused with the address (they went
    on in a copy nobody else saw, and laptops enrolled from it were refused by the real county);
    reading it still works (a read-only open: the backup from before the move)."""
    from app.store.locations import mask

    path, *_ = filled
    report = county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert report.marked
    with pytest.raises(StoreError) as refused:
        Store.open(path)
    text = str(refused.value)
    assert "已于" in text and f"迁移到 PostgreSQL({mask(pg_url)})" in text and "服务器上的县级库" in text
    assert "jiandang-test" not in text  # the password is not written into the file or said
    with Store.open(path, read_only=True) as old:  # still the backup from before the move
        assert old.role == "county"
    assert main(["sync", "import", str(path), str(tmp_path)]) == 1
    assert "迁移到 PostgreSQL" in capsys.readouterr().err
    other = pg_url.rsplit("/", 1)[0] + "/jd_never_made"
    with pytest.raises(StoreError, match="迁移到 PostgreSQL"):
        county_move.migrate(path, other, operator="admin", passphrase=PASSPHRASE)


def test_a_backup_of_the_moved_file_is_checked_and_restored_still_marked(filled, pg_url, tmp_path, monkeypatch, capsys):
    """Backing up the moved file and restoring it works (the backup's check unlocks it, which a
    refusal for writing stopped); what is restored is the same moved county, refused for writing."""
    path, *_ = filled
    county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["backup", str(path), "--to", str(tmp_path / "bk")]) == 0
    dump = next((tmp_path / "bk").glob("*.jdbak"))
    restored = tmp_path / "restored.db"
    capsys.readouterr()
    assert main(["restore", str(dump), "--to", str(restored), "--operator", "admin"]) == 0
    assert "备份校验通过" in capsys.readouterr().out
    with pytest.raises(StoreError, match="迁移到 PostgreSQL"):
        Store.open(restored)


def test_a_database_with_any_table_is_refused_and_left_alone(filled, pg_url):
    path, *_ = filled
    pg.psql(pg_url, "CREATE TABLE visitors (name text); INSERT INTO visitors VALUES ('x')")
    with pytest.raises(StoreError, match="不是空的.*visitors"):
        county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert pg.psql(pg_url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'") == [("visitors",)]


def test_a_village_database_is_not_a_source(tmp_path, pg_url):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    path = laptop.path
    laptop.close()
    county.close()
    with pytest.raises(StoreError, match="是村级数据库.*只有县级数据库可以迁移"):
        county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert pg.psql(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_a_wrong_passphrase_stops_before_anything_is_written(filled, pg_url):
    path, *_ = filled
    with pytest.raises(StoreError, match="密码不正确"):
        county_move.migrate(path, pg_url, operator="admin", passphrase="not the passphrase")
    assert pg.psql(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_a_failure_in_the_middle_leaves_the_destination_empty(filled, pg_url, monkeypatch):
    path, *_ = filled
    real = county_move._copy_table

    def failing(raw, name, *args):
        if name == "records":
            raise StoreError("模拟:复制中断")
        return real(raw, name, *args)

    monkeypatch.setattr(county_move, "_copy_table", failing)
    with pytest.raises(StoreError, match="模拟"):
        county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert pg.psql(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_a_copy_that_differs_from_its_source_is_rolled_back(filled, pg_url, monkeypatch):
    """The per-table digests catch a copy that lost or changed a row."""
    path, *_ = filled
    real = county_move._reset_identities

    def tamper(raw):
        raw.execute("UPDATE changes SET hlc = hlc || '0' WHERE pos = (SELECT max(pos) FROM changes)")
        real(raw)

    monkeypatch.setattr(county_move, "_reset_identities", tamper)
    with pytest.raises(StoreError, match="表 changes.*内容摘要不同.*仍是空的"):
        county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert pg.psql(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_a_damaged_record_in_the_source_is_named_and_nothing_stays_behind(filled, pg_url):
    """The copy is faithful, damage included: the check with the passphrase after the commit finds
    it, names the record and removes what was written."""
    path, *_ = filled
    with sqlite3.connect(path) as conn:
        rid, blob = conn.execute("SELECT id, blob FROM records WHERE kind = 'member' LIMIT 1").fetchone()
        conn.execute("UPDATE records SET blob = ? WHERE id = ?", (blob[:-3] + bytes([blob[-3] ^ 1]) + blob[-2:], rid))
    conn.close()
    with pytest.raises(StoreError, match=f"(?s)逐条解密检查未通过.*仍是空的:\n记录 {rid}:member 记录无法解密.*jiandang check"):
        county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert pg.psql(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_a_refusal_by_the_server_is_said_and_rolled_back(filled, pg_url, monkeypatch):
    path, *_ = filled

    def refused(raw):  # as a server that lets the user connect but not create what it needs
        raw.execute("CREATE SEQUENCE pg_toast.nope")

    monkeypatch.setattr(county_move, "_reset_identities", refused)
    with pytest.raises(StoreError, match="被服务器拒绝.*已全部撤销,PostgreSQL 数据库仍是空的"):
        county_move.migrate(path, pg_url, operator="admin", passphrase=PASSPHRASE)
    assert pg.psql(pg_url, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == [(0,)]


def test_the_cli_moves_the_county_and_says_what_to_do_next(filled, pg_url, monkeypatch, capsys):
    import shutil

    path, *_ = filled
    unmoved = shutil.copy(path, path.with_name("迁移前的副本.db"))
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["county", "migrate", str(path), pg_url]) == 0
    out = capsys.readouterr().out
    masked = pg.mask(pg_url)
    assert "逐表核对行数和内容摘要(SHA-256)一致" in out and "全部解密并核对通过" in out
    assert f"jiandang serve {masked}" in out and f"原文件 {path} 保留作迁移前的备份,已标记为已迁移" in out
    assert "jiandang-test" not in out  # the password never printed
    # a second run, a wrong URL and a village source: one clear line each, nothing written
    assert main(["county", "migrate", str(path), pg_url]) == 1
    assert f"迁移到 PostgreSQL({masked})" in capsys.readouterr().err  # the file says where it went
    assert main(["county", "migrate", str(path), "postgresql://localhost:notaport/x"]) == 1
    assert "端口应为数字" in capsys.readouterr().err
    assert main(["county", "migrate", str(path), str(path)]) == 1
    assert "应是 PostgreSQL 数据库地址" in capsys.readouterr().err
    assert main(["county", "migrate", str(path.with_name("没有.db")), pg_url]) == 1
    assert "找不到县级数据库文件" in capsys.readouterr().err
    other = path.with_name("别的程序.db")
    with sqlite3.connect(other) as conn:  # a SQLite file of another program
        conn.execute("CREATE TABLE accounts (name TEXT)")
    conn.close()
    assert main(["county", "migrate", str(other), pg_url]) == 1
    assert "不是建档数据库" in capsys.readouterr().err
    assert main(["county", "migrate", str(unmoved), "postgresql://u:secret@127.0.0.1:1/county"]) == 1
    err = capsys.readouterr().err
    assert "无法连接 PostgreSQL 服务器" in err and "secret" not in err


def test_a_missing_source_file_is_said_before_the_passphrase_is_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JIANDANG_PASSPHRASE", raising=False)
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # no terminal: asking would end in 需要密码
    assert main(["county", "migrate", str(tmp_path / "县级.db"), "postgresql://u:p@127.0.0.1:5432/x"]) == 1
    err = capsys.readouterr().err
    assert "找不到县级数据库文件" in err and "需要密码" not in err
