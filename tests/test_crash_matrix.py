"""A crash matrix: a real `jiandang` process killed (SIGKILL where it exists, TerminateProcess on
Windows: `Popen.kill()`) at several moments of add, import-table, backup, sync export and county
import. After each kill the database opens, `check` passes, nothing committed before is lost, the
interrupted work is all there or not at all, and no temporary file is left that a later run would
accept (a backup `restore` offers, a bundle `sync import` reads)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.services import backup as backups
from app.services import households, integrity
from app.store import Store
from app.sync import exchange
from tests import factories
from tests.conftest import PASSPHRASE
from tests.support.jiandang_test_hooks import subprocess_env
from tests.sync_helpers import VILLAGE, make_county, make_device
from tests.test_tables import REQUIRED, REQUIRED_VALUES, ledger, person

HOUSEHOLDS = 150


def _env(**extra) -> dict:
    return subprocess_env(JIANDANG_PASSPHRASE=PASSPHRASE, JIANDANG_WAIT="20", **extra)


def _run_and_kill(argv, delay: float, tmp: Path, **env) -> int | None:
    """Start `python -m app ARGV`, kill it `delay` seconds after it began (or when the marker of the
    import hold appears). Returns its exit status when it finished before the kill, else None."""
    proc = subprocess.Popen([sys.executable, "-m", "app", *map(str, argv)], env=_env(**env), cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = env.get("JIANDANG_TEST_HOLD_IMPORT")
    deadline = time.monotonic() + (30 if marker else delay)
    while time.monotonic() < deadline and proc.poll() is None:
        if marker and Path(marker).exists():
            break
        time.sleep(0.02)
    finished = proc.poll()
    proc.kill()
    proc.wait()
    return finished


def _open(path) -> Store:
    s = Store.open(path)
    s.unlock("admin", PASSPHRASE)
    return s


def _checked(path) -> dict[str, str]:
    """The database opens and passes the full check; returns household id -> 户编号."""
    with _open(path) as s:
        report = integrity.check(s)
        assert report.ok, [p.line() for p in report.problems]
        return {h.id: h.fields.get("household_number") for h in s.records("household")}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    county = make_county(tmp)
    laptop = make_device(tmp, county, "龙井村工作队")
    households.save(laptop, factories.household())
    for s in (county, laptop):
        s.close()
    docs = [{"village_code": VILLAGE, "head_name": f"批量{i}", "members": [
        {"name": f"批量{i}", "id_number": person(dt.date(1960, 1, 1) + dt.timedelta(days=i), 1, "1"),
         "relation": "01", "sex": "1"}]} for i in range(HOUSEHOLDS)]
    (tmp / "批量.json").write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    header = ["户主姓名", "姓名", "身份证号", "与户主关系", "性别", *REQUIRED]
    rows = [[f"表{i}", f"表{i}", person(dt.date(1950, 1, 1) + dt.timedelta(days=i), 3, "1"),
             "户主/本人", "1", *REQUIRED_VALUES] for i in range(HOUSEHOLDS)]
    ledger(tmp / "台账.xlsx", header, rows)
    return tmp


def _no_acceptable_leftovers(folder: Path) -> None:
    for f in folder.iterdir():
        if f.name.endswith(".jdtmp") or ".jdbak.tmp" in f.name:
            assert f.name.startswith(".") or ".jdbak.tmp" in f.name  # hidden, or a name restore refuses


@pytest.mark.parametrize("delay", [0.9, 1.6])
def test_killed_add_keeps_all_or_nothing(world, delay):
    db = world / "龙井村工作队.db"
    before = _checked(db)
    finished = _run_and_kill(["add", db, "--json", world / "批量.json", "--draft"], delay, world)
    after = _checked(db)
    assert set(before) <= set(after) and all(after[h] == n for h, n in before.items())
    assert len(after) - len(before) in (0, HOUSEHOLDS), (finished, len(after) - len(before))
    numbers = [n for n in after.values() if n]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("delay", [1.2, 2.2])
def test_killed_import_table_keeps_what_was_committed(world, delay):
    db = world / "龙井村工作队.db"
    before = _checked(db)
    _run_and_kill(["import-table", db, world / "台账.xlsx", "--village", VILLAGE], delay, world)
    after = _checked(db)
    assert set(before) <= set(after) and all(after[h] == n for h, n in before.items())
    _no_acceptable_leftovers(world)


@pytest.mark.parametrize("delay", [0.7, 1.2])
def test_killed_backup_leaves_no_backup_that_restore_would_offer_half_written(world, delay):
    db = world / "龙井村工作队.db"
    folder = world / "备份"
    before = _checked(db)
    _run_and_kill(["backup", db, "--to", folder], delay, world)
    assert _checked(db) == before
    for info in backups.backups(folder):  # every backup offered is complete and checks
        backups.verify_backup(info.path, "admin", PASSPHRASE)
    if folder.exists():
        _no_acceptable_leftovers(folder)


@pytest.mark.parametrize("delay", [0.8, 1.4])
def test_killed_sync_export_leaves_only_whole_bundles(world, delay):
    db = world / "龙井村工作队.db"
    stick = world / f"U盘{delay}"
    stick.mkdir()
    before = _checked(db)
    _run_and_kill(["sync", "export", db, "--to", stick], delay, world)
    assert _checked(db) == before
    _no_acceptable_leftovers(stick)
    files, _ = exchange.bundle_files([stick], _open(world / "county.db"))
    for f in files:  # whatever a later import would read is a whole, signed bundle
        assert f.suffix == ".jdb" and not f.name.startswith(".")
    with _open(world / "county.db") as county:
        reports = exchange.import_paths(county, [stick])
        assert all(r.status in ("accepted", "duplicate") for r in reports), [r.line() for r in reports]


def test_killed_county_import_changes_nothing_and_the_bundle_is_taken_again(world):
    county_db, laptop_db = world / "county.db", world / "龙井村工作队.db"
    with _open(laptop_db) as laptop:
        households.save(laptop, factories.household(head="县导入", seq=70))
        stick = world / "U盘-县"
        stick.mkdir()
        exchange.export_to(laptop, stick)
    before = _checked(county_db)
    marker = world / "holding"
    _run_and_kill(["sync", "import", county_db, stick], 0, world, JIANDANG_TEST_HOLD_IMPORT=str(marker))
    assert marker.exists()  # it was killed inside the import's transaction
    assert _checked(county_db) == before
    with _open(county_db) as county:
        reports = exchange.import_paths(county, [stick])
        assert [r.status for r in reports] == ["accepted"]
    assert len(_checked(county_db)) > len(before)
