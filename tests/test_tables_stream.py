"""import-table streams a sheet (issue #16): the analysis never holds a whole sheet, keeps each
household packed, and still names every problem of the file, also across households far apart."""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc

import pytest
from openpyxl import Workbook, load_workbook

from app.core import idnumber
from app.services import households
from app.tables import importer
from app.tables.reader import HEADER_SCAN_ROWS
from tests.test_tables import REQUIRED, REQUIRED_VALUES, V

HEADER = ["户编号", "户主姓名", "姓名", "身份证号", "与户主关系", "性别", "备注", *REQUIRED]
RELATIONS = [("户主", "1"), ("配偶", "2"), ("之子", "1")]


def rows_of(h: int) -> list[list]:
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=h)
    return [[f"{V}{h + 1:05d}", f"户主{h}", f"成员{h}-{i}", idnumber.make("522699", birth, 2 * i + (1 if sex == "1" else 2), sex),
             relation, sex, "一段较长的备注文字" * 3, *REQUIRED_VALUES]
            for i, (relation, sex) in enumerate(RELATIONS)]


def sheet(path, rows: list[list]):
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("台账")
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def test_households_far_apart_in_the_sheet_are_still_checked_together(store, tmp_path, monkeypatch):
    """200 households, each packed as soon as two others were read: a household whose last row is at
    the foot of the sheet keeps it, a person registered in households 5 and 190 rejects both, a bad
    check digit rejects its household only, and the error workbook copies the rejected rows as they were."""
    rows = [r for h in range(200) for r in rows_of(h)]
    rows.append(rows.pop(2))  # household 0's son, moved to the foot of the sheet (row 601)
    # now household h >= 1 is on sheet rows 3h+1 .. 3h+3, list items 3h-1 .. 3h+1
    rows[570][3], rows[570][2] = rows[15][3], "同一人"  # household 190's wife (row 572) has 5's wife's number (row 17)
    bad = rows[299][3]  # household 100's head (row 301)
    rows[299][3] = bad[:-1] + ("0" if bad[-1] != "0" else "1")
    path = sheet(tmp_path / "远.xlsx", rows)

    monkeypatch.setattr(importer.Groups, "LIVE", 2)
    plan = importer.analyse(store, path, village=V)
    assert all(len(s.rows) <= HEADER_SCAN_ROWS for s in plan.sheets)  # no sheet held whole
    assert len(plan.groups) == 200 and plan.infos[0].rows == 600
    errors = tmp_path / "错误.xlsx"
    report = importer.commit(store, plan)
    importer.write_error_workbook(report, errors)

    assert report.created == 197 and report.rejected_households == 3
    assert sorted(r for _, r in report.rejected_rows) == [16, 17, 18, 301, 302, 303, 571, 572, 573]
    assert {r.row for r in report.rejections if "重复" in r.reason} == {17, 572}
    assert any(r.row == 301 and "校验位" in r.reason for r in report.rejections)
    first = next(d for d in households.documents(store) if d["household_number"] == f"{V}00001")
    assert sorted(m["name"] for m in first["members"]) == ["成员0-0", "成员0-1", "成员0-2"]
    wb = load_workbook(errors)
    copy = list(wb["台账"].iter_rows(min_row=2, values_only=True))
    assert [r[-1] for r in copy] == sorted(r for _, r in report.rejected_rows)
    assert copy[0][:3] == tuple(rows[14][:3])  # row 16 as it was in the file


def test_the_same_file_gives_the_same_report_however_few_households_stay_unpacked(store, tmp_path, monkeypatch):
    rows = [r for h in range(80) for r in rows_of(h)]
    rows[7][4] = "户主"  # a second head in household 2
    rows.append(rows[30])  # household 10's head again, at the foot
    path = sheet(tmp_path / "l.xlsx", rows)
    reports = []
    for live in (1000, 1):
        monkeypatch.setattr(importer.Groups, "LIVE", live)
        r = importer.dry_run(store, importer.analyse(store, path, village=V))
        reports.append((r.created, r.rejected_rows, [(x.row, x.column, x.reason) for x in r.rejections]))
    assert reports[0] == reports[1] and reports[0][0] == 78


@pytest.mark.parametrize("households_n", [600])
def test_the_analysis_holds_about_a_kilobyte_per_household(store, tmp_path, households_n):
    """What a plan keeps is the file's bytes and each household packed, not the sheet's rows and
    their dicts (tens of kilobytes a household before issue #16)."""
    path = sheet(tmp_path / "l.xlsx", [r for h in range(households_n) for r in rows_of(h)])
    size = path.stat().st_size
    # the program's one-time caches (dictionary, synonyms, divisions, regexes) are filled by a small
    # file first, so that the figure is what this file's analysis holds, whichever test ran before
    importer.dry_run(store, importer.analyse(store, sheet(tmp_path / "warm.xlsx", rows_of(households_n)), village=V))
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plan = importer.analyse(store, path, village=V)
        held = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.reset_peak()
        report = importer.dry_run(store, plan)
        checking = tracemalloc.get_traced_memory()[1] - before - held
    finally:
        tracemalloc.stop()
    assert report.created == households_n
    print(f"held {held / households_n:.0f} B/household beyond the {size} B file; dry run peak +{checking / 1e6:.1f} MB")
    assert held - size < 4000 * households_n
    assert checking < 2_000_000


def test_a_plan_holds_neither_the_workbook_nor_more_than_600_bytes_a_household(store, tmp_path):
    """A workbook is read from its file at every pass (its bytes are not kept: a 50,000-household
    ledger is 40 MB) and the households are packed against the first one's pickle (1.3 KB each
    without that preset dictionary): what a 50,000-household plan keeps fits in 40 MB."""
    n = 600
    path = sheet(tmp_path / "l.xlsx", [r for h in range(n) for r in rows_of(h)])
    importer.analyse(store, sheet(tmp_path / "warm.xlsx", rows_of(n)), village=V)  # the program's caches
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plan = importer.analyse(store, path, village=V)
        gc.collect()  # what the analysis left behind, not what it has dropped
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"held {held / n:.0f} B/household; the file is {path.stat().st_size / n:.0f} B/household")
    assert held < 600 * n  # 943 B before (the file's bytes, and 1.3 KB a household packed alone)
    report = importer.dry_run(store, plan)  # the plan reads the file again and unpacks each household
    assert report.created == n and report.rejected_households == 0


def test_a_household_number_of_the_database_is_matched_through_the_index_without_decrypting_the_others(
        store, tmp_path, monkeypatch):
    """A sheet's 户编号 that a stored household carries updates that household (its members are added
    to it), found through the blind index of 户编号: importing a few households into a county database
    decrypts none of the other households (the whole database was decrypted into a map before)."""
    importer.commit(store, importer.analyse(store, sheet(tmp_path / "全.xlsx", [r for h in range(40) for r in rows_of(h)]),
                                            village=V))
    target = next(d for d in households.documents(store) if d["household_number"] == f"{V}00008")
    newcomer = rows_of(900)[2]  # a person no stored household holds: only the number can match
    newcomer[0], newcomer[1], newcomer[2], newcomer[4] = target["household_number"], "户主7", "新成员", "之女"
    path = sheet(tmp_path / "一户.xlsx", [newcomer])
    decoded = []
    real = type(store)._decode_rows

    def counting(self, rows):
        out = real(self, rows)
        decoded.extend(r for r in out if r.kind == "household")
        return out

    monkeypatch.setattr(type(store), "_decode_rows", counting)
    plan = importer.analyse(store, path, village=V)
    assert decoded == [] and plan.groups[0].household_id == target["id"]
    report = importer.commit(store, plan)
    assert (report.created, report.updated) == (0, 1) and store.count("household") == 40
    after = households.document(store, target["id"])
    assert sorted(m["name"] for m in after["members"]) == ["成员7-0", "成员7-1", "成员7-2", "新成员"]


def test_an_import_whose_every_person_is_warned_counts_them_all_and_holds_few(store, tmp_path):
    """A ledger whose every ID number starts with a code no longer in GB/T 2260 gives a warning a
    person: the summary counts all of them and names the first, and the import's report keeps only the
    first ones (it kept every warning before, 1.5 KB a household held until the end of a county's import):
    what the import leaves held does not grow with the number of households."""
    n = 600
    path = sheet(tmp_path / "l.xlsx", [r for h in range(n) for r in rows_of(h)])
    plan = importer.analyse(store, path, village=V)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        report = importer.commit(store, plan)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert report.created == n and report.warning_count == 3 * n
    assert f"提醒 {3 * n} 条(这些户已照常导入),如 台账 第 2 行" in report.summary()
    assert report.warnings[0].row == 2 and "GB/T 2260" in report.warnings[0].reason
    print(f"the report and what the import left hold {held} B")
    assert held < 200_000  # its first 200 warnings; 1.1 MB for these 600 households before
