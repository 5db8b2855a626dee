"""import-table's file-wide indexes and packed households live outside Python memory (issue #16,
seventh session): the analysis' peak does not grow with the households of the file, the dry run
still names every problem across the file in both places, and what goes to the scratch file holds
no name or ID number in plain text and is gone after a killed import."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest

from openpyxl import load_workbook

from app.services import households
from app.tables import exporter, importer, scratch
from app.tables.fileindex import FileIndex
from tests.test_tables_stream import rows_of, sheet
from tests.test_tables import V

ROOT = Path(__file__).resolve().parent.parent
ID = 3  # column of 身份证号 in rows_of's rows


def problems(report: importer.Report) -> list[tuple]:
    return [(r.sheet, r.row, r.column, r.reason) for r in report.rejections]


def far_apart_sheet(path, n: int = 300):
    """n households of three rows (household h on sheet rows 3h+2 .. 3h+4, a header above): household
    n-3's wife carries household 2's wife's ID number (sheet rows 9 and 3n-7), household 7's son is
    moved to the foot (row 3n+2, found by its 户编号 across the sheet), household 5's wife's row is
    repeated as it is just above it (rows 18 and 3n+1: the same household, far apart)."""
    rows = [r for h in range(n) for r in rows_of(h)]
    rows[3 * (n - 3) + 1][ID] = rows[7][ID]
    rows[3 * (n - 3) + 1][2] = "同一人"
    son = rows.pop(3 * 7 + 2)
    rows.append(list(rows[3 * 5 + 1]))
    rows.append(son)
    return sheet(path, rows)


def test_duplicates_far_apart_are_named_in_both_places_in_a_fresh_database(store, tmp_path):
    n = 300
    report = importer.dry_run(store, importer.analyse(store, far_apart_sheet(tmp_path / "远.xlsx", n), village=V))
    wife2, wife_late, wife5, again = 9, 3 * n - 7, 18, 3 * n + 1
    assert [p for p in problems(report) if "重复" in p[3]] == [
        ("台账", wife2, "公民身份号码", f"公民身份号码与台账第 {wife_late} 行重复(两户不能登记同一人)"),
        ("台账", wife5, "公民身份号码", "身份证号码与本户成员“成员5-1”重复"),  # the household's own check
        ("台账", wife_late, "公民身份号码", f"公民身份号码与台账第 {wife2} 行重复(两户不能登记同一人)"),
        ("台账", again, "公民身份号码", f"公民身份号码与台账第 {wife5} 行重复(重复行,请删除其中一行)"),
    ]
    assert {r for _, r in report.rejected_rows} == {8, 9, 10, wife_late - 1, wife_late, wife_late + 1,
                                                    17, 18, 19, again}
    assert report.rejected_households == 3 and report.created == n - 3
    plan = importer.analyse(store, far_apart_sheet(tmp_path / "远2.xlsx", n), village=V)
    seventh = next(g for g in plan.groups if g.house.get("household_number") == f"{V}00008")
    assert [m["name"] for m, _ in seventh.children["member"]] == ["成员7-0", "成员7-1", "成员7-2"]
    assert seventh.rows[-1] == (0, 3 * n + 2)


def test_duplicates_far_apart_are_named_in_both_places_importing_a_database_own_export(store, tmp_path):
    """import-into: a database's own export-table workbook imported back (every household matched
    by its 户编号), with one person's ID number given to a household 250 households further on."""
    n = 300
    importer.commit(store, importer.analyse(store, sheet(tmp_path / "全.xlsx", [r for h in range(n) for r in rows_of(h)]),
                                            village=V))
    out = tmp_path / "导出.xlsx"
    exporter.export_table(store, out, village=V)
    wb = load_workbook(out)
    members = next(ws for ws in wb.worksheets if ws.title == "家庭成员")
    header = [c.value for c in members[1]]
    col = header.index("公民身份号码") + 1
    name_col = header.index("姓名") + 1
    lines = {members.cell(r, name_col).value: r for r in range(2, members.max_row + 1)}
    first, late = lines["成员10-1"], lines["成员260-1"]
    members.cell(late, col).value = members.cell(first, col).value
    wb.save(out)
    unchanged = importer.dry_run(store, importer.analyse(store, tmp_path / "全.xlsx", village=V))
    assert unchanged.unchanged == n and not unchanged.rejections

    report = importer.dry_run(store, importer.analyse(store, out))
    duplicates = [p for p in problems(report) if "重复" in p[3]]
    assert duplicates == [
        ("家庭成员", first, "公民身份号码", f"公民身份号码与家庭成员第 {late} 行重复(两户不能登记同一人)"),
        ("家庭成员", late, "公民身份号码", f"公民身份号码与家庭成员第 {first} 行重复(两户不能登记同一人)"),
    ]
    assert report.rejected_households == 2 and report.unchanged == n - 2
    assert {(s, r) for s, r, *_ in problems(report)} >= {("家庭成员", first), ("家庭成员", late)}


def _analysis_peak(store, path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plan = importer.analyse(store, path, village=V)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert len(plan.groups) > 0
    return peak


def test_the_analysis_peak_does_not_grow_with_the_households_of_the_file(store, tmp_path):
    """The index of every ID number, 户编号 and head, and the packed households, are on disk: four
    times the households do not raise the analysis' peak by more than a few hundred bytes a household
    (openpyxl's own reading; the indexes and the packed plan were about 1.8 KB a household)."""
    small, large = 400, 1600
    importer.analyse(store, sheet(tmp_path / "warm.xlsx", [r for h in range(small) for r in rows_of(h)]), village=V)
    peaks = {}
    for n in (small, large):
        path = sheet(tmp_path / f"{n}.xlsx", [r for h in range(n) for r in rows_of(h)])
        peaks[n] = _analysis_peak(store, path)
    grows = (peaks[large] - peaks[small]) / (large - small)
    print(f"analysis peak {peaks[small] / 1e6:.1f} MB at {small}, {peaks[large] / 1e6:.1f} MB at {large}: "
          f"{grows:.0f} B a household more")
    assert grows < 700


def _scratch_pages(monkeypatch) -> list:
    """Every scratch connection made from now on, to read its TEMP database's pages (what SQLite
    writes to its temporary file is these pages)."""
    made = []
    real = scratch.connect

    def connect(schema, cache_kib=None):
        db = real(schema, cache_kib)
        made.append(db)
        return db

    monkeypatch.setattr(scratch, "connect", connect)
    return made


def test_no_name_or_id_number_in_plain_text_goes_to_the_scratch_file(store, tmp_path, monkeypatch):
    n = 200
    rows = [r for h in range(n) for r in rows_of(h)]
    path = sheet(tmp_path / "l.xlsx", rows)
    made = _scratch_pages(monkeypatch)
    pages = []
    real_complete = importer._complete

    def complete(g, d, fixed):  # after every row was read: both scratch databases filled
        if not pages:
            pages.extend(db.serialize(name="temp") for db in made)
        return real_complete(g, d, fixed)

    monkeypatch.setattr(importer, "_complete", complete)
    plan = importer.analyse(store, path, village=V)
    assert len(plan.groups) == n and len(pages) == 2
    assert sum(len(p) for p in pages) > 200 * n  # the indexes and the households are there
    secrets = {str(v) for r in rows for v in (r[0], r[1], r[2], r[3])}
    for page in pages:
        for secret in secrets:
            for encoded in (secret.encode(), secret.encode("utf-16-le"), secret[-8:].encode()):
                assert encoded not in page, secret
    sealed = [blob for blob, in plan.groups._db.execute("SELECT sealed FROM groups")]
    assert len(sealed) == n
    for blob in sealed:  # sealed, not merely compressed (deflate's codes would hide the text from the search)
        for start in (0, 12):
            with pytest.raises(zlib.error):
                zlib.decompressobj(zdict=plan.groups._zdict).decompress(blob[start:])
    assert plan.groups[199].house["household_number"] == f"{V}00200"  # the households come back whole


CHILD = """
import json, os, sys, time
from pathlib import Path
from app.tables.fileindex import FileIndex
from app.tables.packed import Groups
from app.tables.importer import Group
index, groups = FileIndex(cache_kib=64), Groups(cache_kib=64)
for i in range(20000):
    index.first_seen(f"52269919500101{i:04d}", i, 0, i)
    groups.add(Group(key=str(i), house={"head_name": f"户主{i}"}))
    groups.settle(keep=i)
def target(p):
    try:
        return os.readlink(p)
    except OSError:  # the descriptor that listed the folder, closed since
        return ""
fd = Path("/proc/self/fd")  # Linux: SQLite unlinks its file at once, the descriptor still names it
held = ([t for t in map(target, list(fd.iterdir())) if "etilqs" in t] if fd.exists()
        else [str(p) for p in Path(sys.argv[1]).iterdir()])  # Windows: in the folder until closed
print(json.dumps(held), flush=True)
time.sleep(120)
"""


def test_a_killed_import_leaves_no_scratch_file(tmp_path):
    """SQLite's temporary file goes to the temporary folder (TMP/TEMP on Windows, SQLITE_TMPDIR/TMPDIR
    elsewhere) and is opened delete-on-close: once the process is killed (TerminateProcess on
    Windows, SIGKILL elsewhere) nothing of it is left there."""
    folder = tmp_path / "临时"
    folder.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMP=str(folder), TEMP=str(folder), TMPDIR=str(folder),
               SQLITE_TMPDIR=str(folder))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        held = json.loads(proc.stdout.readline())
        assert held and all(str(folder) in p for p in held), held  # spilled, into that folder
    finally:
        proc.kill()
        proc.wait(30)
        proc.stdout.close()
    assert list(folder.iterdir()) == []


def test_the_index_answers_as_the_dicts_did():
    with FileIndex(cache_kib=16) as index:
        found, digests = index.household([("n", f"{V}0001"), ("h", "x")])
        assert found is None
        index.remember(digests, 0)
        index.remember(index.digests([("h", "y")]), 1)
        assert index.household([("h", "y"), ("n", f"{V}0001")])[0] == 1
        assert index.household([("n", f"{V}0001")])[0] == 0
        index.remember(index.digests([("n", f"{V}0001")]), 5)  # the first household keeps a key
        for i in range(5000):  # past the page cache and the in-memory recent keys
            index.remember(index.digests([("n", str(i))]), 100 + i)
        assert index.household([("n", f"{V}0001")])[0] == 0 and index.household([("n", "17")])[0] == 117
        assert index.household([("n", 17)])[0] is None  # a number is not the text of its digits
        assert index.first_seen("A", 3, 0, 10) is None and index.first_seen("A", 4, 1, 20) == (3, 0, 10)
        index.add_unnumbered("张三", 0, 7)
        index.add_unnumbered("张三", 1, 7)  # the same household again: kept once, with its first sheet
        assert index.unnumbered("张三", 1) == [7] and index.unnumbered("张三", 0) == []
        index.add_unnumbered("张三", 0, 8)
        assert index.unnumbered("张三", 1) == [7, 8]
