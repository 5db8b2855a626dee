"""What the county's and a laptop's operators read from the sync, device and recovery commands: in
Chinese, in the words and times they use, never a Python representation, a UTC stamp or a library's
English; and a mistyped name refused rather than acted on (found trying the program as a new user)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.cli import server_commands
from app.cli.main import main
from app.services import households
from app.store import Store
from app.sync import exchange, identity
from tests import factories
from tests.sync_helpers import PASSPHRASE, VILLAGE, make_county, make_device, up


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)


@pytest.fixture
def county_and_laptop(tmp_path, env):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村一队")
    township = make_device(tmp_path, county, "示范乡", villages=(VILLAGE[:9],), role="township")
    paths = Path(county.path), Path(laptop.path), Path(township.path), laptop.site_id, township.site_id
    for s in (county, laptop, township):
        s.close()
    return paths


def test_devices_shows_number_blocks_and_revocation_as_people_read_them(county_and_laptop, capsys):
    county, _, _, laptop_site, township_site = county_and_laptop
    capsys.readouterr()
    assert main(["revoke", str(county), "--site", township_site]) == 0
    out = capsys.readouterr().out
    assert "示范乡" in out  # the device by its name, not only its id
    assert main(["devices", str(county)]) == 0
    out = capsys.readouterr().out
    assert "[" not in out and "]" not in out  # not the stored list [1001, 1300]
    assert "1001-1300" in out
    assert "已吊销 " in out and "T" not in out.split("已吊销 ")[1] and "Z" not in out.split("已吊销 ")[1]
    # revoking again says it was already done, and when
    assert main(["revoke", str(county), "--site", township_site]) == 0
    assert "无需再吊销" in capsys.readouterr().out


def test_a_revoked_devices_bundle_is_refused_with_the_local_time(tmp_path, env):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村一队")
    households.save(laptop, factories.household())
    identity.revoke(county, laptop.site_id)
    report = up(laptop, county)
    assert report.status == "refused"
    revoked = identity.certificate_of(county, laptop.site_id)[1]
    assert revoked.endswith("Z") and revoked not in report.line()
    local = identity.parse_iso(revoked).astimezone().strftime("%Y-%m-%d %H:%M")
    assert f"已于 {local} 吊销" in report.line()
    county.close(), laptop.close()


def test_recover_refuses_a_login_that_is_not_an_operator_and_adds_nobody(county_and_laptop, monkeypatch, capsys):
    county, laptop, *_ = county_and_laptop
    monkeypatch.setenv("JIANDANG_NEW_PASSPHRASE", "a new passphrase")
    assert main(["recover", str(laptop), "--county", str(county), "--login", "admn"]) == 1
    err = capsys.readouterr().err
    assert "没有操作员“admn”" in err and "admin" in err
    with Store.open(laptop) as store:
        assert store.operators() == ["admin"]
    assert main(["recover", str(laptop), "--county", str(county), "--login", "admin"]) == 0


@pytest.mark.parametrize("content", [None, b'[{"head_name": "x"}]', b"-----BEGIN PRIVATE KEY-----\nabc\n"])
def test_an_unreadable_recovery_key_file_is_explained_in_chinese(county_and_laptop, tmp_path, monkeypatch, capsys,
                                                                   content):
    _, laptop, *_ = county_and_laptop
    key = tmp_path / "恢复密钥.pem"
    if content is not None:
        key.write_bytes(content)
    monkeypatch.setenv("JIANDANG_NEW_PASSPHRASE", "a new passphrase")
    for argv in (["recover", str(laptop), "--recovery-key", str(key), "--login", "admin"],
                 ["restore", str(tmp_path / "any.jdbak"), "--to", str(tmp_path / "x.db"), "--recovery-key", str(key)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert str(key) in err and "恢复私钥" in err
        for english in ("Errno", "No such file", "PEM", "cryptography", "MalformedFraming", "http"):
            assert english not in err, (english, err)


def test_a_conflict_id_too_short_to_pick_one_says_so(county_and_laptop, capsys):
    county, *_ = county_and_laptop
    assert main(["conflicts", str(county), "--resolve", "26", "--keep", "other"]) == 1
    err = capsys.readouterr().err
    assert "太短" in err and "4 位" in err and "没有编号为" not in err


def test_serve_stop_with_no_service_running_answers_at_once(county_and_laptop, capsys):
    county, *_ = county_and_laptop
    started = time.monotonic()
    assert main(["serve", str(county), "--stop"]) == 1
    assert time.monotonic() - started < server_commands.STOP_WAIT_SECONDS / 10
    assert "没有正在运行的县同步服务" in capsys.readouterr().err
    assert not server_commands.stop_file(county).exists()
    # while a program holds the database, the request is made and waited for as before
    with Store.open(county):
        server_commands.STOP_WAIT_SECONDS, saved = 0.5, server_commands.STOP_WAIT_SECONDS
        try:
            assert main(["serve", str(county), "--stop"]) == 1
        finally:
            server_commands.STOP_WAIT_SECONDS = saved
    assert "没有在" in capsys.readouterr().err


def test_the_store_does_not_turn_a_reset_for_an_unknown_login_into_a_new_operator(county_and_laptop):
    from app.store import StoreError
    from app.sync.identity import county_encryption_key

    county, laptop, *_ = county_and_laptop
    with Store.open(county) as c:
        c.unlock("admin", PASSPHRASE)
        private = county_encryption_key(c)
    with Store.open(laptop) as store:
        store.unlock_with_recovery(private)
        with pytest.raises(StoreError, match="没有操作员“admn”"):
            store.reset_passphrase("admn", "a new passphrase")
        assert store.operators() == ["admin"]


@pytest.mark.parametrize("extra, words", [
    (["--site-name", " "], "站点名称"),
    (["--site-name", "龙井村三队", "--days", "0"], "至少为 1 天"),
    (["--site-name", "龙井村三队", "--days", "-5"], "至少为 1 天"),
])
def test_enroll_refuses_a_device_no_one_could_use_and_registers_nothing(county_and_laptop, tmp_path, capsys,
                                                                         extra, words):
    county, *_ = county_and_laptop
    with Store.open(county) as store:
        before = len(identity.certificates(store))
    argv = ["enroll", str(county), "--role", "village", "--villages", VILLAGE, "--out", str(tmp_path / "新.jde"), *extra]
    assert main(argv) == 1
    assert words in capsys.readouterr().err
    with Store.open(county) as store:
        assert len(identity.certificates(store)) == before
    assert not (tmp_path / "新.jde").exists()


def test_enroll_to_a_missing_folder_registers_nothing_and_says_so_in_chinese(county_and_laptop, tmp_path, capsys):
    county, *_ = county_and_laptop
    with Store.open(county) as store:
        before = identity.certificates(store)
    out = tmp_path / "没插好的U盘" / "新.jde"
    assert main(["enroll", str(county), "--site-name", "龙井村三队", "--role", "village", "--villages", VILLAGE,
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "不存在" in err and "未登记" in err and "Errno" not in err and ".part" not in err
    with Store.open(county) as store:
        assert identity.certificates(store) == before


@pytest.mark.parametrize("keep", ["0", "-1"])
def test_backup_keep_below_one_is_refused_and_deletes_nothing(county_and_laptop, tmp_path, capsys, keep):
    county, laptop, *_ = county_and_laptop
    folder = tmp_path / "备份"
    assert main(["backup", str(laptop), "--to", str(folder)]) == 0
    before = sorted(folder.iterdir())
    time.sleep(1.1)  # backup names carry the second
    assert main(["backup", str(laptop), "--to", str(folder), "--keep", keep]) == 1
    assert "--keep" in capsys.readouterr().err
    assert sorted(folder.iterdir()) == before


def test_file_errors_are_explained_in_chinese(county_and_laptop, tmp_path, capsys):
    county, laptop, *_ = county_and_laptop
    a_file = tmp_path / "不是文件夹.txt"
    a_file.write_text("x")
    assert main(["backup", str(laptop), "--to", str(a_file)]) == 1
    assert main(["init", str(tmp_path / "新.db"), "--role", "county", "--site-name", "测试县",
                 "--recovery-key", str(tmp_path / "没有这个.pem")]) == 1
    err = capsys.readouterr().err
    assert "已有同名的文件" in err and "找不到这个文件或文件夹" in err
    for english in ("File exists", "No such file", "Errno"):
        assert english not in err


def test_a_package_that_cannot_be_written_leaves_no_usable_certificate(county_and_laptop, tmp_path, monkeypatch,
                                                                         capsys):
    import errno

    from app.sync import wire

    county, *_ = county_and_laptop

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wire, "write_atomic", full)
    assert main(["enroll", str(county), "--site-name", "龙井村三队", "--role", "village", "--villages", VILLAGE,
                 "--out", str(tmp_path / "新.jde")]) == 1
    err = capsys.readouterr().err
    assert "磁盘或U盘已满" in err and "已作废" in err and "No space" not in err
    with Store.open(county) as store:
        [cert] = [c for c in identity.certificates(store) if c["site_name"] == "龙井村三队"]
        assert cert["revoked"]


def test_device_commands_on_a_laptop_say_they_are_for_the_county(county_and_laptop, capsys):
    _, laptop, _, laptop_site, _ = county_and_laptop
    capsys.readouterr()
    assert main(["devices", str(laptop)]) == 1
    assert "不是县级数据库" in capsys.readouterr().err
    assert main(["revoke", str(laptop), "--site", laptop_site]) == 1
    err = capsys.readouterr().err
    assert "不是县级数据库" in err and "没有站点" not in err
    assert main(["conflicts", str(laptop)]) == 0
    assert "冲突只在县级数据库记录和审核" in capsys.readouterr().err


def test_an_enrollment_package_that_cannot_be_read_is_explained_in_chinese(tmp_path, env, capsys):
    monkey_db = tmp_path / "新.db"
    for package, words in ((tmp_path / "没有.jde", "找不到这个文件或文件夹"), (tmp_path, "这是一个文件夹")):
        assert main(["init", str(monkey_db), "--enrollment", str(package)]) == 1
        err = capsys.readouterr().err
        assert words in err and ".jde" in err and "No such" not in err and "directory" not in err
    assert not monkey_db.exists()


def test_a_certificate_file_that_is_not_text_is_explained_in_chinese(county_and_laptop, tmp_path, capsys):
    county, laptop, *_ = county_and_laptop
    not_a_cert = tmp_path / "证书.pem"
    not_a_cert.write_text("贫困户名单", encoding="utf-8")
    assert main(["sync", "now", str(laptop), "--server", "https://127.0.0.1:1", "--ca-cert", str(not_a_cert),
                 "--retries", "0"]) == 1
    assert main(["enroll", str(county), "--site-name", "龙井村三队", "--role", "village", "--villages", VILLAGE,
                 "--out", str(tmp_path / "新.jde"), "--server", "https://127.0.0.1:1", "--server-ca", str(not_a_cert)]) == 1
    err = capsys.readouterr().err
    assert err.count("不是 PEM 格式的证书") == 2 and "codec" not in err and "ascii" not in err
    assert not (tmp_path / "新.jde").exists()


def test_devices_says_when_a_certificate_has_expired(tmp_path, env, capsys):
    county = make_county(tmp_path)
    identity.enroll(county, site_name="龙井村短期队", role="village", villages=[VILLAGE], days=1)
    county.conn.execute("UPDATE certificates SET not_after = '2020-01-01T00:00:00Z' WHERE site_name = '龙井村短期队'")
    identity.enroll(county, site_name="龙井村一队", role="village", villages=[VILLAGE])
    path = Path(county.path)
    county.close()
    capsys.readouterr()
    assert main(["devices", str(path)]) == 0
    lines = {line.split("\t")[1]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["龙井村短期队"].endswith("已过期(请重新登记)")
    assert lines["龙井村一队"].endswith("有效")


def test_sync_status_of_a_demo_database_says_it_is_not_enrolled(tmp_path, env, capsys):
    """A new user's first `sync status` on the demo answered `待发给各设备的照片:无` (the county's words)
    and an empty line: a database never enrolled has nothing to send and says so, as the window does."""
    path = tmp_path / "演示.db"
    assert main(["demo", str(path), "--per-village", "1"]) == 0
    capsys.readouterr()
    assert main(["sync", "status", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == "本库未在县里登记,不同步:数据只在本机,请定期备份\n", out


def test_init_from_a_package_without_a_terminal_asks_for_the_enrollment_code_by_its_name(tmp_path, env, capsys,
                                                                                          monkeypatch):
    """Without JIANDANG_ENROLLMENT_CODE and no terminal to ask in, the message said 需要密码 while the
    variable it named holds the 登记码: it names the 登记码."""
    import os

    package = tmp_path / "龙井村.jde"
    package.write_bytes(b"JDE" + bytes(60))
    monkeypatch.delenv("JIANDANG_ENROLLMENT_CODE", raising=False)
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    assert main(["init", str(tmp_path / "新.db"), "--enrollment", str(package)]) == 1
    err = capsys.readouterr().err
    assert "需要登记码" in err and "JIANDANG_ENROLLMENT_CODE" in err and "密码" not in err, err
    assert not (tmp_path / "新.db").exists()
