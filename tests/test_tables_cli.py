"""import-table / export-table from the command line, and a 60,000-row sheet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from app.cli.main import main
from app.core import idnumber
from app.services import households
from app.store import Store
from app.tables import importer
from tests.conftest import PASSPHRASE
from tests.test_tables import REQUIRED, REQUIRED_VALUES, SYN_HEADER, V, ledger, syn_rows


@pytest.fixture
def db(store, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    path = store.path
    store.close()
    return path


def _count(path, kind="household"):
    s = Store.open(path)
    try:
        s.unlock("admin", PASSPHRASE)
        return s.count(kind)
    finally:
        s.close()


def test_import_dry_run_then_import_then_export(db, tmp_path, capsys):
    rows = syn_rows()
    rows[2][11] = rows[2][11][:-1] + ("0" if rows[2][11][-1] != "0" else "1")  # bad check digit
    path = ledger(tmp_path / "台账.xlsx", SYN_HEADER, rows)
    errors = tmp_path / "errors.xlsx"
    assert main(["import-table", str(db), str(path), "--village", V, "--dry-run", "--errors", str(errors)]) == 1
    out = capsys.readouterr()
    assert "将新建 1 户" in out.out and "试导入" in out.out and "拒绝 台账 第 4 行 列“身份证号”" in out.out
    assert "2 行被拒绝,其余 1 户可导入" in out.err
    assert _count(db) == 0 and errors.exists()
    rejected = {r[1] for r in load_workbook(errors)["错误清单"].iter_rows(min_row=2, values_only=True)}
    assert rejected == {4, 5}
    mapping_file = tmp_path / "m.json"
    assert main(["import-table", str(db), str(path), "--village", V, "--save-mapping", str(mapping_file)]) == 1
    assert "已新建 1 户" in capsys.readouterr().out and _count(db) == 1
    assert '"户号": "household.household_number"' in mapping_file.read_text(encoding="utf-8")
    good = ledger(tmp_path / "good.xlsx", SYN_HEADER, syn_rows())
    assert main(["import-table", str(db), str(good), "--village", V, "--mapping", str(mapping_file)]) == 0
    assert "已新建 1 户" in capsys.readouterr().out and _count(db) == 2 and _count(db, "member") == 4
    out_csv = tmp_path / "v.csv"
    assert main(["export-table", str(db), "--village", V, "--out", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "已导出 2 户、4 名成员" in out and "家庭收入、帮扶责任人、帮扶措施、脱贫计划和工作台账没有导出" in out
    assert "欧阳明远" in out_csv.read_text(encoding="utf-8-sig")
    out_xlsx = tmp_path / "t.xlsx"
    assert main(["export-table", str(db), "--township", V[:9], "--out", str(out_xlsx)]) == 0
    assert load_workbook(out_xlsx)["贫困户"].max_row == 3


def test_cli_errors_are_clear(db, tmp_path, capsys):
    locked = tmp_path / "locked.xlsx"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2048))
    assert main(["import-table", str(db), str(locked), "--village", V]) == 1
    assert "密码" in capsys.readouterr().err
    missing = tmp_path / "nope.xlsx"
    assert main(["import-table", str(db), str(missing), "--village", V]) == 1
    assert "找不到文件" in capsys.readouterr().err
    assert main(["export-table", str(db), "--village", V, "--out", str(tmp_path / "x.xlsx")]) == 1
    assert "没有贫困户" in capsys.readouterr().err
    bad_map = tmp_path / "bad.json"
    bad_map.write_text("{not json", encoding="utf-8")
    path = ledger(tmp_path / "l.xlsx", SYN_HEADER, syn_rows())
    assert main(["import-table", str(db), str(path), "--mapping", str(bad_map)]) == 1
    assert "JSON" in capsys.readouterr().err
    assert _count(db) == 0


def test_sixty_thousand_row_sheet(store, tmp_path):
    """A village-sized county ledger: 60,000 member rows on one sheet (15,000 households of 4)."""
    header = ["户编号", "户主姓名", "姓名", "身份证号", "与户主关系", "性别", *REQUIRED]
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("台账")
    ws.append(header)
    relations = [("户主", "1"), ("配偶", "2"), ("之子", "1"), ("之女", "2")]
    households_n = 15000
    for h in range(households_n):
        birth = dt.date(1950, 1, 1) + dt.timedelta(days=h)
        number = f"{V}{h + 1:05d}"
        for i, (relation, sex) in enumerate(relations):
            seq = 2 * i + (1 if sex == "1" else 2)
            ws.append([number, f"户主{h}", f"成员{h}-{i}", idnumber.make("522634", birth, seq, sex), relation, sex,
                       *REQUIRED_VALUES])
    path = tmp_path / "big.xlsx"
    wb.save(path)
    plan = importer.analyse(store, path, village=V)
    assert sum(info.rows for info in plan.infos) == 60000
    assert len(plan.groups) == households_n
    report = importer.dry_run(store, plan)
    assert report.created == households_n and report.members == 60000 and report.rejected_rows == []
    assert store.count("household") == 0


def test_a_file_with_nothing_importable_says_so_and_names_a_list_rule_in_chinese(db, tmp_path, capsys):
    rows = syn_rows()[:2]
    rows[1][13] = "户主"  # a second head in the only household
    path = ledger(tmp_path / "两个户主.xlsx", SYN_HEADER, rows)
    assert main(["import-table", str(db), str(path), "--village", V]) == 1
    out = capsys.readouterr()
    assert "列“家庭成员”:一户只能有一名户主" in out.out and "members" not in out.out
    assert "没有一户可以导入,数据库没有改动" in out.err and _count(db) == 0


def test_import_lists_the_first_50_warnings_and_says_how_many_there_are(db, tmp_path, capsys):
    """Every person's ID number with an old area code: 60 warnings, the first 50 listed, then the count."""
    from tests.test_tables_stream import rows_of, sheet

    path = sheet(tmp_path / "旧代码.xlsx", [r for h in range(20) for r in rows_of(h)])
    assert main(["import-table", str(db), str(path), "--village", V]) == 0
    out = capsys.readouterr().out
    assert "提醒 60 条(这些户已照常导入)" in out
    assert out.count("  提醒 台账 第 ") == 50 and "  …… 共 60 条提醒" in out


def test_a_refused_households_own_reason_is_printed_before_the_rows_that_point_at_it(tmp_path, monkeypatch, capsys):
    """A county importing a township's export before adding two of its villages: the 家庭成员 sheet sorts before
    the 贫困户 sheet, so the first 50 lines printed were all 同户其他行有错误(见贫困户第 N 行) and the
    reason on 贫困户 row N (the village is not in the divisions) was never shown. Own reasons come first."""
    from app.core import demo

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    village_db, county_db, sheet = tmp_path / "演示.db", tmp_path / "县.db", tmp_path / "西江镇.xlsx"
    assert main(["demo", str(village_db), "--per-village", "8"]) == 0
    assert main(["export-table", str(village_db), "--township", demo.TOWNSHIPS[0][0], "--out", str(sheet)]) == 0
    assert main(["init", str(county_db), "--role", "county", "--site-name", "雷山县扶贫办"]) == 0
    divisions = Path(__file__).parent / "data" / "divisions" / "522634.csv"  # the county and towns, no villages
    assert main(["reference", "divisions", str(county_db), "--import", str(divisions)]) == 0
    village, name = demo.TOWNSHIPS[0][2][0]
    assert main(["reference", "add-division", str(county_db), village, name]) == 0  # its other two not yet
    capsys.readouterr()
    assert main(["import-table", str(county_db), str(sheet), "--dry-run"]) == 1
    refused = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  拒绝")]
    assert len(refused) == 50  # more than are printed
    assert refused[0].startswith("  拒绝 贫困户 第 ") and "不在本库的行政区划中" in refused[0], refused[:3]
    own = [line for line in refused if "同户其他行有错误" not in line]
    assert len(own) == 16 and refused[:16] == own  # one a household, then the rows that point at them
