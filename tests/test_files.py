"""Files on disk: created owner-only, written through temporary files that are removed in every path,
and what a killed run left behind cleaned at the next run (only names the program makes)."""

from __future__ import annotations

import datetime as dt
import os
import stat
import tempfile
import time
from pathlib import Path

import pytest

from app import fileio
from app.cli.main import main
from app.services import backup as backups
from app.services import demo, households
from app.store import Store
from app.tables import workbook_temp
from tests.conftest import PASSPHRASE
from tests.sync_helpers import VILLAGE, make_county, make_device
from tests.test_tables import REQUIRED, REQUIRED_VALUES, ledger, person

POSIX = os.name == "posix"
OLD = time.time() - 3600


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def village_db(make_store, monkeypatch, tmp_path):
    s = make_store("村.db")
    demo.install_reference_data(s)
    demo.fill(s, per_village=3)
    path = s.path
    s.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    return path


@pytest.mark.skipif(not POSIX, reason="mode bits exist on POSIX only; on Windows the profile's ACLs protect")
def test_files_with_personal_data_are_created_owner_only_under_a_permissive_umask(tmp_path, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    old = os.umask(0o022)
    try:
        db = tmp_path / "新.db"
        assert main(["demo", str(db), "--per-village", "2"]) == 0
        assert main(["export-table", str(db), "--village", VILLAGE, "--out", str(tmp_path / "表.xlsx")]) == 0
        assert main(["export-table", str(db), "--village", VILLAGE, "--out", str(tmp_path / "表.csv")]) == 0
        assert main(["backup", str(db), "--to", str(tmp_path / "备份")]) == 0
        assert main(["print", "register", str(db), "--village", VILLAGE, "--out", str(tmp_path / "册.pdf")]) == 0
        county = make_county(tmp_path)
        laptop = make_device(tmp_path, county, "龙井村工作队")
        from app.sync import exchange

        stick = tmp_path / "U盘"
        stick.mkdir()
        [bundle] = exchange.export_to(laptop, stick)
        laptop.close()
        county.close()
        files = [db, tmp_path / "表.xlsx", tmp_path / "表.csv", *(tmp_path / "备份").iterdir(), tmp_path / "册.pdf",
                 bundle, tmp_path / "county.db", tmp_path / "龙井村工作队.db", *(tmp_path / "home" / "logs").glob("jiandang*.log")]
        assert main(["enroll", str(tmp_path / "county.db"), "--site-name", "二队", "--role", "village",
                     "--villages", VILLAGE, "--out", str(tmp_path / "登记包.jdb")]) == 0
        files.append(tmp_path / "登记包.jdb")
    finally:
        os.umask(old)
    assert any(Path(f).name.startswith("jiandang") and Path(f).suffix == ".log" for f in files)  # backup logs
    modes = {Path(f).name: oct(_mode(f)) for f in files}
    assert all(m == oct(0o600) for m in modes.values()), modes


def test_openpyxl_temporary_files_stay_out_of_the_shared_temp_folder_and_are_removed(village_db, tmp_path, monkeypatch):
    from openpyxl.worksheet import _writer

    seen = []
    original = _writer.create_temporary_file

    def spy(suffix=""):
        name = original(suffix)
        seen.append(Path(name))
        return name

    monkeypatch.setattr(_writer, "create_temporary_file", spy)
    before = set(Path(tempfile.gettempdir()).glob("openpyxl.*"))
    assert main(["export-table", str(village_db), "--village", VILLAGE, "--out", str(tmp_path / "表.xlsx")]) == 0
    assert seen  # openpyxl did write sheet XML to temporary files
    for name in seen:
        assert name.parent != Path(tempfile.gettempdir()) and name.parent.name.startswith(workbook_temp.PREFIX)
        assert not name.parent.exists()  # the private folder is gone after the save
    assert set(Path(tempfile.gettempdir()).glob("openpyxl.*")) == before
    if POSIX:
        with workbook_temp.saving():
            folder = Path(workbook_temp._folder)
            assert _mode(folder) == 0o700


def test_what_a_killed_export_left_is_removed_at_the_next_one(village_db, tmp_path):
    leftover = Path(tempfile.mkdtemp(prefix=workbook_temp.PREFIX))
    (leftover / "openpyxl.sheet.xml").write_text("<row>成员 522634…</row>", encoding="utf-8")
    beside = tmp_path / ".表.xlsx.abcd1234.jdtmp"
    beside.write_bytes(b"half a workbook")
    other = tmp_path / ".someone-elses.tmp"
    other.write_bytes(b"not ours")
    for p in (leftover, beside, other):
        os.utime(p, (OLD, OLD))
    assert main(["export-table", str(village_db), "--village", VILLAGE, "--out", str(tmp_path / "表.xlsx")]) == 0
    assert not leftover.exists() and not beside.exists()
    assert other.exists()  # only names the program makes


def test_a_write_that_fails_leaves_no_temporary_file(tmp_path):
    def broken(tmp):
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fileio.write_atomic(tmp_path / "卡.pdf", build=broken)
    assert list(tmp_path.iterdir()) == []


def test_backup_leftovers_are_cleaned_by_keep_and_never_restored(village_db, tmp_path, capsys):
    folder = tmp_path / "备份"
    assert main(["backup", str(village_db), "--to", str(folder)]) == 0
    [good] = list(folder.iterdir())
    tmp = folder / (good.name.replace("-", "-", 1)[:-len(".jdbak")] + "-x.jdbak.tmp")
    journal = Path(str(tmp) + "-journal")
    fresh = folder / "另一个-12345678-20260101-000000.jdbak.tmp"  # a backup being written right now
    for p in (tmp, journal, fresh):
        p.write_bytes(good.read_bytes()[:4096])
    for p in (tmp, journal):
        os.utime(p, (OLD, OLD))
    assert main(["restore", str(tmp), "--to", str(village_db)]) == 1
    err = capsys.readouterr().err
    assert "没有完成的备份" in err and "只读" not in err
    assert [b.path for b in backups.backups(folder)] == [good]  # restore never offers them
    assert main(["backup", str(village_db), "--to", str(folder), "--keep", "2"]) == 0
    assert not tmp.exists() and not journal.exists() and fresh.exists()


def test_a_cut_off_create_is_cleaned_at_the_next_open(village_db):
    leftovers = [village_db.with_name(village_db.name + s) for s in (".creating", ".creating-journal", ".creating-wal")]
    for p in leftovers:
        p.write_bytes(b"SQLite format 3\x00half")
    with Store.open(village_db):
        pass
    assert not any(p.exists() for p in leftovers)


def test_import_table_on_a_laptop_refuses_numbers_outside_its_block(tmp_path, capsys, monkeypatch):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    path = laptop.path
    laptop.close()
    county.close()
    header = ["户编号", "户主姓名", "姓名", "身份证号", "与户主关系", "性别", *REQUIRED]
    rows = [[f"{VILLAGE}0001", "甲", "甲", person(dt.date(1970, 1, 1), 1, "1"), "户主/本人", "1", *REQUIRED_VALUES],
            [f"{VILLAGE}1001", "乙", "乙", person(dt.date(1971, 1, 1), 3, "1"), "户主/本人", "1", *REQUIRED_VALUES],
            ["", "丙", "丙", person(dt.date(1972, 1, 1), 5, "1"), "户主/本人", "1", *REQUIRED_VALUES]]
    book = tmp_path / "台账.xlsx"
    ledger(book, header, rows)
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "correct horse battery")
    assert main(["import-table", str(path), str(book), "--village", VILLAGE]) == 1
    out = capsys.readouterr().out
    assert "不在本机的户编号段(1001-1300)内" in out
    with Store.open(path) as s:
        s.unlock("admin", "correct horse battery")
        numbers = sorted(d["household_number"] for d in households.documents(s))
    assert numbers == [f"{VILLAGE}1001", f"{VILLAGE}1002"]


def test_a_workbook_saved_outside_an_export_leaves_no_folder_behind(tmp_path):
    """openpyxl called elsewhere in the program's process (not through an export's `saving()`) still
    writes its sheet XML to a private folder: one for the process, gone when the process ends (it was a
    new folder per sheet, each left behind)."""
    import subprocess
    import sys

    code = ("import tempfile, pathlib, app.tables.workbook_temp as t, openpyxl\n"
            "for i in range(3):\n"
            "    wb = openpyxl.Workbook(); wb.create_sheet('二'); wb.save(tempfile.mktemp(suffix='.xlsx', dir=%r))\n"
            "print(len(list(pathlib.Path(tempfile.gettempdir()).glob(t.PREFIX + '*'))))\n" % str(tmp_path))
    env = {**os.environ, "TMPDIR": str(tmp_path), "TEMP": str(tmp_path), "TMP": str(tmp_path)}  # POSIX, Windows
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1"  # one folder while the process runs
    assert not list(tmp_path.glob(workbook_temp.PREFIX + "*"))  # and none after it
