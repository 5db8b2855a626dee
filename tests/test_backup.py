"""Backups to a folder, daily backups with retention, and restore (app.services.backup, CLI)."""

import datetime as dt
import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from app.cli.main import main
from app.services import backup as backups
from app.services import households
from app.store import Store
from tests.conftest import PASSPHRASE


def _personal_values(store):
    values = []
    for member in store.records("member"):
        values += [member.fields.get("name"), member.fields.get("id_number")]
    for house in store.records("household"):
        values += [house.fields.get("head_name"), house.fields.get("phone")]
    return [v for v in values if v]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _documents(path: Path, **unlock):
    with Store.open(path) as s:
        if "recovery" in unlock:
            s.unlock_with_recovery(unlock["recovery"])
        else:
            s.unlock("admin", PASSPHRASE)
        return sorted(households.documents(s), key=lambda d: d["id"])


def test_backup_is_a_complete_encrypted_copy_that_opens_with_the_passphrase_and_the_recovery_key(
        demo_store, tmp_path, recovery_key):
    folder = tmp_path / "usb"
    secrets = _personal_values(demo_store)
    assert len(secrets) > 20
    expected = sorted(households.documents(demo_store), key=lambda d: d["id"])
    info = backups.backup(demo_store, folder)
    assert info.path.parent == folder and info.path.suffix == ".jdbak"
    assert [p.name for p in folder.iterdir()] == [info.path.name]  # no temporary file left behind
    raw = info.path.read_bytes()
    assert raw.startswith(b"SQLite format 3\x00")
    for value in secrets:
        assert value.encode("utf-8") not in raw, "personal data in plain text in the backup"
    demo_store.close()
    copy = tmp_path / "copy.db"
    copy.write_bytes(raw)
    assert _documents(copy) == expected
    copy2 = tmp_path / "copy2.db"
    copy2.write_bytes(raw)
    assert _documents(copy2, recovery=recovery_key) == expected


def test_backup_needs_no_passphrase_from_the_cli(demo_store, tmp_path, capsys):
    path = demo_store.path
    db_id = demo_store.db_id
    demo_store.close()
    assert main(["backup", str(path), "--to", str(tmp_path / "usb")]) == 0
    assert "已备份到" in capsys.readouterr().out
    [info] = backups.backups(tmp_path / "usb", db_id)
    assert backups.read_meta(info.path)["db_id"] == db_id


def test_backup_to_a_folder_that_cannot_be_written_says_so(demo_store, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(backups.BackupError, match="无法创建备份文件夹"):
        backups.backup(demo_store, blocker / "sub")


def test_restore_brings_back_the_backup_and_keeps_the_current_database_aside(demo_store, tmp_path):
    folder = tmp_path / "usb"
    before = sorted(households.documents(demo_store), key=lambda d: d["id"])
    info = backups.backup(demo_store, folder)
    some = before[0]["id"]
    demo_store.put("household", {"phone": "13800001111"}, record_id=some)
    target = demo_store.path
    demo_store.close()
    result = backups.restore(info.path, target, operator="admin", passphrase=PASSPHRASE)
    assert result.kept_aside is not None and result.kept_aside.exists()
    assert _documents(target) == before
    with Store.open(result.kept_aside) as aside:  # the replaced database, with the later edit, is kept
        aside.unlock("admin", PASSPHRASE)
        assert aside.get(some).fields["phone"] == "13800001111"
    assert not list(tmp_path.glob("*.restoring*"))


def test_restore_to_a_new_file_on_a_new_laptop(demo_store, tmp_path):
    info = backups.backup(demo_store, tmp_path / "usb")
    expected = sorted(households.documents(demo_store), key=lambda d: d["id"])
    target = tmp_path / "new-laptop" / "village.db"
    result = backups.restore(info.path, target, operator=None, passphrase=PASSPHRASE)
    assert result.kept_aside is None
    assert _documents(target) == expected


def test_restore_with_the_county_recovery_key_when_the_passphrase_is_lost(demo_store, tmp_path, recovery_key,
                                                                           monkeypatch, capsys):
    from app.store import crypto

    info = backups.backup(demo_store, tmp_path / "usb")
    expected = sorted(households.documents(demo_store), key=lambda d: d["id"])
    key_file = tmp_path / "county.pem"
    key_file.write_bytes(crypto.x25519_private_pem(recovery_key))
    monkeypatch.delenv("JIANDANG_PASSPHRASE", raising=False)
    target = tmp_path / "new" / "village.db"
    assert main(["restore", str(info.path), "--to", str(target), "--recovery-key", str(key_file)]) == 0
    assert _documents(target) == expected
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    key_file.write_bytes(crypto.x25519_private_pem(X25519PrivateKey.generate()))
    assert main(["restore", str(info.path), "--to", str(tmp_path / "other.db"), "--recovery-key", str(key_file)]) == 1
    assert "恢复私钥与此数据库不匹配" in capsys.readouterr().err
    assert not (tmp_path / "other.db").exists()


def test_restore_refuses_a_backup_of_another_database(make_store, tmp_path):
    mine = make_store("mine.db")
    mine.put("household", {"head_name": "甲"}, village_code="522634101201")
    other = make_store("other.db")
    foreign = backups.backup(other, tmp_path / "usb")
    mine.close()
    before = _digest(tmp_path / "mine.db")
    with pytest.raises(backups.BackupError, match="属于另一个数据库"):
        backups.restore(foreign.path, tmp_path / "mine.db", operator="admin", passphrase=PASSPHRASE)
    assert _digest(tmp_path / "mine.db") == before
    assert not list(tmp_path.glob("mine.db.before-restore-*"))


def test_restore_refuses_a_backup_with_a_damaged_record_and_names_it(demo_store, tmp_path):
    info = backups.backup(demo_store, tmp_path / "usb")
    target = demo_store.path
    demo_store.close()
    conn = sqlite3.connect(info.path)
    rid, blob = conn.execute("SELECT id, blob FROM records WHERE kind = 'member' LIMIT 1").fetchone()
    damaged = bytearray(blob)
    damaged[len(damaged) // 2] ^= 0x01
    conn.execute("UPDATE records SET blob = ? WHERE id = ?", (bytes(damaged), rid))
    conn.commit()
    conn.close()
    before = _digest(target)
    with pytest.raises(backups.BackupError) as err:
        backups.restore(info.path, target, operator="admin", passphrase=PASSPHRASE)
    assert rid in str(err.value) and "已损坏" in str(err.value)
    assert _digest(target) == before


def test_restore_refuses_a_truncated_backup(demo_store, tmp_path, monkeypatch, capsys):
    info = backups.backup(demo_store, tmp_path / "usb")
    target = demo_store.path
    demo_store.close()
    raw = info.path.read_bytes()
    info.path.write_bytes(raw[: len(raw) // 2])
    before = _digest(target)
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["restore", str(info.path), "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert info.path.name in err and "损坏" in err and ".restoring" not in err
    assert _digest(target) == before
    # to a new file: nothing is left behind
    fresh = tmp_path / "new.db"
    assert main(["restore", str(info.path), "--to", str(fresh)]) == 1
    assert ".restoring" not in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")) == []


def test_restore_refuses_a_file_that_is_not_a_backup(demo_store, tmp_path):
    target = demo_store.path
    demo_store.close()
    junk = tmp_path / "photo.jdbak"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not a database" * 100)
    with pytest.raises(backups.BackupError, match="不是建档数据库或备份"):
        backups.restore(junk, target, operator="admin", passphrase=PASSPHRASE)


def test_restore_with_a_wrong_passphrase_changes_nothing(demo_store, tmp_path):
    info = backups.backup(demo_store, tmp_path / "usb")
    target = demo_store.path
    demo_store.close()
    before, backup_before = _digest(target), _digest(info.path)
    with pytest.raises(backups.BackupError, match="无法解锁"):
        backups.restore(info.path, target, operator="admin", passphrase="wrong passphrase")
    assert _digest(target) == before
    assert _digest(info.path) == backup_before  # the backup itself is never touched


def test_restore_refuses_while_the_database_is_open(demo_store, tmp_path):
    info = backups.backup(demo_store, tmp_path / "usb")
    with pytest.raises(backups.BackupError, match="正被一个正在运行的建档程序打开"):
        backups.restore(info.path, demo_store.path, operator="admin", passphrase=PASSPHRASE)
    assert demo_store.count("household") == 12


def test_daily_backup_once_a_day_with_retention(demo_store, tmp_path, monkeypatch):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    day = dt.datetime(2026, 3, 1, 9, 0, 0)
    first = backups.daily_backup(demo_store, keep=3, now=day)
    assert first is not None
    assert first.path.parent == tmp_path / "home" / "data" / "backups"
    assert backups.daily_backup(demo_store, keep=3, now=day.replace(hour=18)) is None  # same day: no second
    for n in range(1, 6):
        assert backups.daily_backup(demo_store, keep=3, now=day + dt.timedelta(days=n)) is not None
    kept = backups.backups(first.path.parent, demo_store.db_id)
    assert [b.created.date() for b in kept] == [(day + dt.timedelta(days=n)).date() for n in (5, 4, 3)]


def test_retention_never_touches_other_databases_backups(make_store, tmp_path):
    a, b = make_store("a.db"), make_store("b.db")
    folder = tmp_path / "usb"
    other = backups.backup(b, folder, now=dt.datetime(2026, 1, 1))
    for n in range(4):
        backups.backup(a, folder, now=dt.datetime(2026, 2, 1 + n))
    backups.prune(folder, a.db_id, 1)
    assert other.path.exists()
    assert len(backups.backups(folder, a.db_id)) == 1


def test_daily_backup_respects_the_setting(demo_store, tmp_path, monkeypatch):
    from app import settings

    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    settings.save(settings.Settings(auto_backup=False))
    assert backups.daily_backup(demo_store) is None
    assert not (tmp_path / "home" / "data" / "backups").exists()
    settings.save(settings.Settings(auto_backup=True, backup_folder=str(tmp_path / "stick"), backup_keep=2))
    info = backups.daily_backup(demo_store)
    assert info is not None and info.path.parent == tmp_path / "stick"


def test_a_failed_daily_backup_is_an_oserror_with_a_clear_message(demo_store, tmp_path, monkeypatch):
    """The window guards the daily backup with `except OSError` and shows str(exc) to the user."""
    blocker = tmp_path / "stick"
    blocker.write_text("not a folder")
    with pytest.raises(OSError) as err:
        backups.daily_backup(demo_store, folder=blocker / "备份")
    assert str(err.value).startswith("无法创建备份文件夹")


@pytest.mark.parametrize("role, place", [("village", "本村"), ("township", "本乡镇")])
def test_restore_refuses_a_backup_older_than_bundles_already_sent_to_the_county(tmp_path, role, place):
    """The tester's case: backup, edit, sync, restore — the laptop and the county silently disagreed
    and later edits were dropped as duplicates. Now refused (data unchanged) unless --force. The
    advice names what the replacement is enrolled for: 本村, or 本乡镇 on a township's database."""
    from app.sync import exchange
    from tests import factories
    from tests.sync_helpers import VILLAGE, make_county, make_device, up

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队", villages=(VILLAGE if role == "village" else VILLAGE[:9],), role=role)
    hid = households.save(laptop, factories.household()).household_id
    assert up(laptop, county).status == "accepted"
    info = backups.backup(laptop, tmp_path / "usb")
    laptop.put("household", {"phone": "13500000001"}, record_id=hid)
    assert up(laptop, county).status == "accepted"
    target = laptop.path
    laptop.close()
    before = _digest(target)
    with pytest.raises(backups.BackupError, match=re.escape("已向县里发送过同步包(第 2 号)")) as refused:
        backups.restore(info.path, target, operator="admin", passphrase=PASSPHRASE)
    assert "--force" in str(refused.value) and "重新登记" in str(refused.value)
    assert f"为{place}重新登记一台(新登记的机器会从县里取回{place}的全部数据)" in str(refused.value)
    if role == "township":
        assert "本村" not in str(refused.value)
    assert _digest(target) == before and not list(tmp_path.glob("*.restoring*"))
    # a backup made after the last bundle restores as before
    with Store.open(target) as again:
        again.unlock("admin", PASSPHRASE)
        later = backups.backup(again, tmp_path / "usb2")
    assert backups.restore(later.path, target, operator="admin", passphrase=PASSPHRASE).records > 0
    # and --force still restores the older one, on purpose
    assert backups.restore(info.path, target, operator="admin", passphrase=PASSPHRASE, force=True).records > 0
    county.close()
    del exchange


def _english_words(text: str, *paths: Path) -> list[str]:
    for p in paths:
        text = text.replace(str(p), "")
    return [w for w in re.findall(r"[A-Za-z]{3,}", text) if w not in ("jiandang", "restore", "check")]


@pytest.mark.parametrize("keep", [4096, 20000, 0.5])
def test_a_truncated_backup_or_database_is_explained_in_chinese(demo_store, tmp_path, monkeypatch, capsys, keep):
    info = backups.backup(demo_store, tmp_path / "usb")
    demo_store.close()
    raw = info.path.read_bytes()
    cut = int(len(raw) * keep) if isinstance(keep, float) else keep
    info.path.write_bytes(raw[:cut])
    damaged_db = tmp_path / "trunc.db"
    damaged_db.write_bytes(raw[:cut])
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    capsys.readouterr()
    assert main(["restore", str(info.path), "--to", str(tmp_path / "new.db")]) == 1
    err = capsys.readouterr().err
    assert "已损坏" in err and "文件内容不完整或已损坏,可能在复制或写入时被截断" in err, err
    assert _english_words(err, info.path) == [], err
    assert main(["list", str(damaged_db)]) == 1
    err = capsys.readouterr().err
    assert "不是完整的建档数据库:文件内容不完整或已损坏,可能在复制或写入时被截断" in err, err
    assert _english_words(err, damaged_db) == [], err
    assert main(["check", str(damaged_db)]) != 0
    out = capsys.readouterr()
    assert _english_words(out.out + out.err, damaged_db) == [], out


def test_sqlite_reasons_are_chinese_and_the_detail_goes_to_the_log(caplog):
    import logging

    from app.store.db import sqlite_reason

    with caplog.at_level(logging.INFO, logger="app.store"):
        assert sqlite_reason(sqlite3.DatabaseError("file is not a database")) == "文件不是数据库,或文件开头已损坏"
        assert sqlite_reason("*** in database main ***\nPage 7: never used") == "数据库内部结构校验未通过,文件已损坏"
        assert sqlite_reason(sqlite3.DatabaseError("something new")) == "文件已损坏,无法按数据库读取"
    assert "Page 7: never used" in caplog.text and "file is not a database" in caplog.text


def test_a_lost_laptop_database_restored_from_an_older_backup_catches_up_with_the_county(tmp_path):
    """The security review's case: backup, edit A, sync, the database file is lost, the old backup is
    restored. Without the current file the restore cannot tell what was sent since: refused unless
    --force. After a forced restore the first county bundle says what is missing, and the next
    edit (B) is numbered after what the county holds, so it is not dropped as a duplicate."""
    from tests import factories
    from tests.sync_helpers import VILLAGE, down, make_county, make_device, up

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队", villages=(VILLAGE,))
    hid = households.save(laptop, factories.household()).household_id
    assert up(laptop, county).status == "accepted"
    info = backups.backup(laptop, tmp_path / "usb")
    laptop.put("household", {"head_name": "独孤求败"}, record_id=hid)  # edit A
    assert up(laptop, county).status == "accepted"
    target = laptop.path
    laptop.close()
    target.unlink()
    before = sorted(target.parent.iterdir())
    with pytest.raises(backups.BackupError, match="不存在,无法确认备份 .* 之后本机是否又向县里发送过同步包") as caught:
        backups.restore(info.path, target, operator="admin", passphrase=PASSPHRASE)
    assert not target.exists()
    assert "没有创建任何文件" in str(caught.value) and "当前文件未改动" not in str(caught.value)  # there is none
    assert set(target.parent.iterdir()) <= set(before)  # nothing new (no .restoring copy left)
    backups.restore(info.path, target, operator="admin", passphrase=PASSPHRASE, force=True)
    laptop = Store.open(target)
    laptop.unlock("admin", PASSPHRASE)
    report = down(county, laptop)
    assert report.status == "accepted" and any("本机可能恢复过较早的备份" in w for w in report.warnings)
    laptop.put("household", {"phone": "13600000002"}, record_id=hid)  # edit B
    report = up(laptop, county)
    assert report.status == "accepted" and report.applied == 1, report.line()
    assert county.get(hid).fields["phone"] == "13600000002" and county.get(hid).fields["head_name"] == "独孤求败"
    laptop.close()
    county.close()
