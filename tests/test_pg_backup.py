"""Backups of a county on PostgreSQL: `jiandang backup postgresql://… --to DIR` (pg_dump, written
atomically, as encrypted as the database) and `jiandang restore DUMP --to postgresql://…` into a new
empty database, checked in full; the refusals in words."""

from __future__ import annotations

import os
import subprocess

import pytest

from app.cli.main import main
from app.core import demo as demo_data
from app.services import backup, households, pg_backup
from app.store import Store
from tests import pg
from tests.conftest import PASSPHRASE, fill_demo
from tests.sync_helpers import state


@pytest.fixture
def county(pg_url, recovery_key):
    """A county database on PostgreSQL with demo households; returns its URL."""
    s = Store.create(pg_url, role="county", site_name="雷山县扶贫办", operator="admin", passphrase=PASSPHRASE,
                     recovery_public_key=recovery_key.public_key())
    fill_demo(s, per_village=1)
    s.close()
    return pg_url


def _tables(url) -> list:
    return pg.psql(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")


def _unlocked(url) -> Store:
    s = Store.open(url)
    s.unlock("admin", PASSPHRASE)
    return s


def test_a_backup_is_written_atomically_restores_into_a_new_database_and_the_county_goes_on(
        county, pg_databases, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    folder = tmp_path / "县级备份"
    assert main(["backup", county, "--to", str(folder)]) == 0
    out = capsys.readouterr().out
    [dump] = list(folder.iterdir())  # no temporary file left beside it
    assert dump.name.endswith(".jdpgdump") and str(dump) in out and "内容仍为加密" in out
    assert "jiandang-test" not in out
    if os.name == "posix":
        assert dump.stat().st_mode & 0o077 == 0
    # as encrypted as the database: the dump's whole contents, decompressed, hold no name or ID number
    text = subprocess.run(["pg_restore", "--file=-", str(dump)], capture_output=True, check=True).stdout
    with _unlocked(county) as s:
        before = state(s)
        mark = s.change_mark()
        people = [m.fields for m in s.records("member")]
    assert people and b"COPY public.records" in text
    for fields in people:
        assert fields["name"].encode() not in text
        if fields.get("id_number"):
            assert fields["id_number"].encode() not in text

    target = pg_databases()
    assert main(["restore", str(dump), "--to", target]) == 0
    out = capsys.readouterr().out
    assert f"已恢复到 {pg.mask(target)}" in out and "逐条解密校验通过" in out
    with _unlocked(target) as s:
        assert state(s) == before
        assert s.change_mark() == mark
        # the restored county keeps numbering its change log after the restored rows
        doc = demo_data.households(1, seed=11)[0]
        households.save(s, doc, allow_errors=True)
        assert s.change_mark() > mark
    # a second restore into the now filled database is refused, and nothing changes there
    rows = pg.psql(target, "SELECT count(*) FROM changes")
    assert main(["restore", str(dump), "--to", target]) == 1
    assert "不是空的" in capsys.readouterr().err
    assert pg.psql(target, "SELECT count(*) FROM changes") == rows


def test_keep_prunes_older_backups_of_this_county_only(county, tmp_path, capsys):
    import datetime as dt

    folder = tmp_path / "备份"
    folder.mkdir()
    stranger = folder / "other-0badc0de-20250101-000000.jdpgdump"
    stranger.write_bytes(b"x")
    for day in (1, 2, 3):
        pg_backup.backup(county, folder, now=dt.datetime(2026, 12, day, 8, 0, 0))
    assert main(["backup", county, "--to", str(folder), "--keep", "2"]) == 0
    assert "已删除 2 份较早的备份" in capsys.readouterr().out
    names = sorted(p.name for p in folder.iterdir())
    assert stranger.name in names and len(names) == 3
    assert any("20261203-080000" in n for n in names)


def test_a_wrong_passphrase_or_a_damaged_dump_leaves_the_target_empty(county, pg_databases, tmp_path, monkeypatch,
                                                                      capsys):
    info = pg_backup.backup(county, tmp_path)
    target = pg_databases()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "not the passphrase")
    assert main(["restore", str(info.path), "--to", target]) == 1
    err = capsys.readouterr().err
    assert "无法解锁" in err and "密码不正确" in err and "已恢复为空数据库" in err
    assert "。。" not in err  # one full stop between the reason and what was done
    assert _tables(target) == []
    cut = tmp_path / ("cut-" + info.path.name)
    cut.write_bytes(info.path.read_bytes()[: info.size // 2])
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["restore", str(cut), "--to", target]) == 1
    assert f"{cut} 不是完整的 PostgreSQL 备份" in capsys.readouterr().err
    assert _tables(target) == []


def test_a_tampered_record_in_a_dump_is_named_and_not_restored(county, pg_databases, tmp_path):
    with _unlocked(county) as s:
        rid = next(s.records("household")).id
    pg.psql(county, f"UPDATE records SET blob = set_byte(blob, 20, get_byte(blob, 20) # 1) WHERE id = '{rid}'")
    info = pg_backup.backup(county, tmp_path)  # a backup copies what is there, damage included
    target = pg_databases()
    with pytest.raises(backup.BackupError, match=f"已损坏,不能用来恢复:\n记录 {rid}"):
        pg_backup.restore(info.path, target, operator="admin", passphrase=PASSPHRASE)
    assert _tables(target) == []


def test_backups_and_databases_of_the_other_kind_are_refused_in_words(county, tmp_path, make_store, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    village = make_store("village.db")
    sqlite_backup = backup.backup(village, tmp_path / "b")
    village.close()
    assert main(["restore", str(sqlite_backup.path), "--to", county]) == 1
    err = capsys.readouterr().err
    assert "不是 PostgreSQL 备份" in err and "jiandang county migrate" in err
    info = pg_backup.backup(county, tmp_path / "pg")
    assert main(["restore", str(info.path), "--to", str(tmp_path / "县.db")]) == 1
    assert "只能恢复到 PostgreSQL 数据库" in capsys.readouterr().err
    assert not (tmp_path / "县.db").exists()


def test_missing_or_too_old_pg_dump_is_said_and_nothing_is_written(county, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "备份"
    monkeypatch.setattr(pg_backup.shutil, "which", lambda name: None)  # a computer without PostgreSQL's tools
    monkeypatch.setattr(pg_backup.sys, "platform", "linux")
    assert main(["backup", county, "--to", str(folder)]) == 1
    assert "没有找到 PostgreSQL 的 pg_dump" in capsys.readouterr().err
    monkeypatch.undo()
    server = pg_backup.server_major(pg_backup.location(county))
    monkeypatch.setattr(pg_backup, "tool_major", lambda tool: server - 1)  # an older client than the server
    assert main(["backup", county, "--to", str(folder)]) == 1
    err = capsys.readouterr().err
    assert f"pg_dump 是 PostgreSQL {server - 1},服务器是 PostgreSQL {server}" in err
    assert not folder.exists() or not list(folder.iterdir())


def test_the_window_backs_up_a_county_on_postgresql_with_pg_dump_and_leaves_daily_backups_to_the_server(
        county, tmp_path):
    with _unlocked(county) as s:
        info = backup.backup(s, tmp_path / "menu")  # 文件 › 备份到…
        assert info.path.name.endswith(".jdpgdump") and info.db_id == s.db_id
        assert backup.daily_backup(s, folder=tmp_path / "daily") is None
    assert not (tmp_path / "daily").exists()
