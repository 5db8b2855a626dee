"""Reference data: divisions from a CSV/Excel file or one at a time, poverty lines per year, who may
edit them, the `jiandang reference` commands, and the county → laptop path (enrollment package and
downstream bundles) that lets a real, non-demo laptop create a household and assess an exit."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from openpyxl import Workbook

from app.cli.main import main
from app.services import households, proposals, reference
from app.store import Store
from app.sync import identity, refdata
from app.tables import divisions as division_files
from tests import sync_helpers as sh
from tests.conftest import PASSPHRASE
from tests.factories import household

BACKENDS = ("sqlite", "postgresql")  # tests/pg.py: the store-level tests run on both

GOOD = """代码,名称,级别,上级代码
522634000000,雷山县,县,
522634101000,西江镇,乡镇,522634000000
522634101201,龙井村,村,522634101000
522634101202,石桥村,村,522634101
522634102,永乐镇,乡,522634
522634102201,新寨村,村,522634102
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def table(store: Store) -> list[tuple]:
    return [tuple(d.values()) for d in store.divisions()]


@pytest.fixture
def county(where):
    c = Store.create(where("c.db"), role="county", site_name="雷山县扶贫办", operator="admin",
                     passphrase=PASSPHRASE, recovery_public_key=X25519PrivateKey.generate().public_key())
    identity.setup_county(c)
    yield c
    c.close()


# ---------------------------------------------------------------------- import from a file


def test_a_good_csv_is_imported_as_a_tree_with_levels_and_parents(county, tmp_path):
    plan = division_files.import_divisions(county, write(tmp_path, "区划.csv", GOOD))
    assert plan.applied and len(plan.added) == 6 and not plan.renamed
    assert table(county) == [
        ("522634", "雷山县", "county", None),
        ("522634101", "西江镇", "township", "522634"),
        ("522634101201", "龙井村", "village", "522634101"),
        ("522634101202", "石桥村", "village", "522634101"),
        ("522634102", "永乐镇", "township", "522634"),
        ("522634102201", "新寨村", "village", "522634102"),
    ]
    assert [(depth, d["code"]) for depth, d in reference.division_tree(county)] == [
        (0, "522634"), (1, "522634101"), (2, "522634101201"), (2, "522634101202"), (1, "522634102"), (2, "522634102201")]
    # the same file again changes nothing; a renamed row is a rename, not a second division
    again = division_files.import_divisions(county, write(tmp_path, "b.csv", GOOD.replace("石桥村", "石桥新村")))
    assert again.unchanged == 5 and again.renamed == [("522634101202", "石桥村", "石桥新村")] and not again.added
    assert county.division_name("522634101202") == "石桥新村"


def test_an_excel_sheet_with_a_title_row_numeric_codes_and_the_prefecture_row(county, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["雷山县统计用区划代码"])
    ws.append(["统计用区划代码", "名称", "城乡分类代码"])
    ws.append([522600000000, "某某州", None])  # above the county: skipped, not an error
    ws.append([522634000000, "雷山县", None])
    ws.append([522634101000, "西江镇", None])
    ws.append([522634101201, "龙井村（新）", 220])
    wb.save(tmp_path / "区划.xlsx")
    plan = division_files.import_divisions(county, tmp_path / "区划.xlsx")
    assert plan.skipped == 1 and len(plan.added) == 3
    assert county.division_name("522634101201") == "龙井村（新）"  # full-width brackets kept as typed
    assert county.divisions("village")[0]["parent"] == "522634101"


def test_english_headers_and_a_dry_run_that_writes_nothing(county, tmp_path):
    path = write(tmp_path, "d.csv", "code,name,level,parent\n522634,雷山县,county,\n522634101,西江镇,township,522634\n")
    plan = division_files.import_divisions(county, path, dry_run=True)
    assert len(plan.added) == 2 and not plan.applied and county.divisions() == []


BAD_FILES = {
    "wrong columns": ("编号,村名字\n1,龙井村\n", 1, "", "找不到表头"),
    "no name column": ("代码,村名字\n522634,雷山县\n", 1, "", "缺少“名称”列"),
    "bad code": (GOOD + "52263410120,坪上村,村,522634101\n", 8, "代码", "有 11 位"),
    "scientific notation": (GOOD + "5.22699E+11,坪上村,村,522634101\n", 8, "代码", "科学计数法"),
    "missing parent": (GOOD + "522634103201,坡脚村,村,522634103\n", 8, "上级代码", "上级 522634103 既不在文件中,也不在数据库中"),
    "level wrong": (GOOD + "522634101203,坪上村,乡,522634101\n", 8, "级别", "是村级"),
    "unknown level": (GOOD + "522634101203,坪上村,组,522634101\n", 8, "级别", "无法识别"),
    "parent does not match the code": (GOOD + "522634101203,坪上村,村,522634102\n", 8, "上级代码", "应为 522634101"),
    "duplicate code, other name": (GOOD + "522634101201,龙井二村,村,522634101\n", 8, "代码",
                                   "第 4 行是“龙井村”,这一行是“龙井二村”"),
    "empty name": (GOOD + "522634101203,,村,522634101\n", 8, "名称", "名称为空"),
    "another county": (GOOD + "522698,别的县,县,\n", 8, "代码", "一个数据库只管一个县"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_changes_nothing_and_names_file_row_and_column(county, tmp_path, case):
    division_files.import_divisions(county, write(tmp_path, "first.csv", "代码,名称\n522634,雷山县\n522634101,西江镇\n"))
    before = table(county)
    text, row, column, words = BAD_FILES[case]
    with pytest.raises(reference.ReferenceDataError) as caught:
        division_files.import_divisions(county, write(tmp_path, "bad.csv", text))
    assert "未导入任何区划" in str(caught.value)
    lines = [p.line() for p in caught.value.problems]
    assert any(p.row == row and p.column == column and words in p.message for p in caught.value.problems), lines
    assert all(line.startswith("bad.csv") for line in lines)
    assert table(county) == before  # the good rows of the same file were not written either


def test_a_duplicate_row_with_the_same_name_is_not_a_problem(county, tmp_path):
    plan = division_files.import_divisions(county, write(tmp_path, "d.csv", GOOD + "522634101201,龙井村,村,522634101\n"))
    assert len(plan.added) == 6


def test_a_file_that_cannot_be_read_is_one_problem(county, tmp_path):
    with pytest.raises(reference.ReferenceDataError) as caught:
        division_files.import_divisions(county, tmp_path / "nowhere.csv")
    assert "找不到文件" in caught.value.problems[0].message
    (tmp_path / "x.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(reference.ReferenceDataError) as caught:
        division_files.import_divisions(county, tmp_path / "x.xlsx")
    assert "x.xlsx" in caught.value.problems[0].line() and county.divisions() == []


def test_the_import_is_one_transaction(county, tmp_path, monkeypatch):
    division_files.import_divisions(county, write(tmp_path, "a.csv", "代码,名称\n522634,雷山县\n"))
    plan = division_files.analyse_divisions(write(tmp_path, "b.csv", GOOD), county.divisions())
    original = county.set_divisions

    def half_then_fail(rows):
        rows = list(rows)
        original(rows[:3])
        raise OSError("disk full")

    monkeypatch.setattr(county, "set_divisions", half_then_fail)
    with pytest.raises(OSError):
        reference.apply_divisions(county, plan)
    assert table(county) == [("522634", "雷山县", "county", None)]


# ---------------------------------------------------------------------- one at a time


def test_add_and_rename_one_division(county):
    assert reference.add_division(county, "522634", "雷山县")["level"] == "county"
    d = reference.add_division(county, "522634101000", "西江镇", level="乡", parent="522634000000")
    assert d == {"code": "522634101", "name": "西江镇", "level": "township", "parent": "522634"}
    reference.add_division(county, "522634101201", "龙井村")
    assert reference.rename_division(county, "522634101201", " 龙井新村 ") == ("龙井村", "龙井新村")
    refusals = {
        ("522634101201", "x", None, None): "已有区划“龙井新村”",
        ("522634103201", "坡脚村", None, None): "上级乡(镇) 522634103 还不存在",
        ("522634101202", "石桥村", "township", None): "是村级,不是乡(镇)级",
        ("522634101202", "石桥村", None, "522634102"): "应为 522634101",
        ("5226341012", "石桥村", None, None): "有 10 位",
        ("522698", "别的县", None, None): "不属于本县",
        ("522634101202", "", None, None): "名称为空",
    }
    for (code, name, level, parent), words in refusals.items():
        with pytest.raises(reference.ReferenceDataError, match=re.escape(words)):
            reference.add_division(county, code, name, level=level, parent=parent)
    with pytest.raises(reference.ReferenceDataError, match="没有代码为 522634101299"):
        reference.rename_division(county, "522634101299", "x")
    assert len(county.divisions()) == 3


# ---------------------------------------------------------------------- poverty lines


def test_poverty_lines_per_year_with_a_source(county):
    reference.set_poverty_line(county, "2025年", "4,000元", "县扶贫开发领导小组〔2025〕3号")
    reference.set_poverty_line(county, 2024, 3900.5)
    reference.set_poverty_line(county, 2025, "4100", "更正")
    assert reference.poverty_lines(county) == [
        {"year": 2024, "line": 3900.5, "source": ""}, {"year": 2025, "line": 4100.0, "source": "更正"}]
    assert county.poverty_line(2025) == 4100
    for year, amount, words in ((1999, 4000, "不合理"), (dt.date.today().year + 2, 4000, "不合理"), ("二〇二五", 4000, "四位数字"),
                                (2023, 0, "大于 0"), (2023, -5, "大于 0"), (2023, "abc", "应为金额"),
                                (2023, 400000, "不合理"), (2023, "nan", "大于 0")):
        with pytest.raises(reference.ReferenceDataError, match=words):
            reference.set_poverty_line(county, year, amount)
    assert [r["year"] for r in reference.poverty_lines(county)] == [2024, 2025]


def test_an_enrolled_laptop_may_not_edit_but_a_standalone_database_may(county, tmp_path, store):
    laptop = sh.make_device(tmp_path, county, "龙井村工作队")
    try:
        assert reference.edit_refusal(laptop) and "县扶贫办" in reference.edit_refusal(laptop)
        for call in (lambda: reference.set_poverty_line(laptop, 2025, 4000),
                     lambda: reference.add_division(laptop, "522634", "雷山县"),
                     lambda: division_files.import_divisions(laptop, write(tmp_path, "g.csv", GOOD))):
            with pytest.raises(reference.ReferenceDataError, match="不能在本机修改"):
                call()
        assert laptop.divisions() == [] and laptop.poverty_lines() == {}
    finally:
        laptop.close()
    assert reference.edit_refusal(county) is None
    assert reference.edit_refusal(store) is None  # a village database used on its own, no county above it
    reference.set_poverty_line(store, 2026, 7500, "自定")
    assert store.poverty_line(2026) == 7500


# ---------------------------------------------------------------------- what travels to the laptops


def test_a_device_gets_the_divisions_of_its_area_and_every_line_with_its_source(county, tmp_path):
    division_files.import_divisions(county, write(tmp_path, "g.csv", GOOD))
    reference.set_poverty_line(county, 2025, 4000, "县级文件")
    out = refdata.outgoing(county, ["522634101201"])
    assert [d[0] for d in out["divisions"]] == ["522634", "522634101", "522634101201"]
    assert out["poverty_lines"] == {"2025": 4000.0} and out["poverty_line_sources"] == {"2025": "县级文件"}
    assert [d[0] for d in refdata.outgoing(county, ["522634102"])["divisions"]] == ["522634", "522634102", "522634102201"]


def test_a_bundle_from_an_older_county_leaves_the_reference_data_alone(make_store):
    laptop = make_store()
    laptop.set_divisions([("522634", "雷山县", "county", None)])
    refdata.install(laptop, {"changes": []})  # no divisions, no lines: an older or minimal payload
    assert table(laptop) == [("522634", "雷山县", "county", None)] and laptop.poverty_lines() == {}
    refdata.install(laptop, {"poverty_lines": {"2025": 4000}})  # the first format: lines without sources
    assert reference.poverty_lines(laptop) == [{"year": 2025, "line": 4000, "source": "县级"}]
    refdata.install(laptop, {"divisions": [["522634101", "西江镇", "township", "522634"], ["x", None, "bad", None]]})
    assert [d["code"] for d in laptop.divisions()] == ["522634", "522634101"]


def test_a_division_added_after_enrollment_reaches_the_laptop_with_the_next_downstream_bundle(county, tmp_path):
    division_files.import_divisions(county, write(tmp_path, "g.csv", GOOD))
    laptop = sh.make_device(tmp_path, county, "西江镇工作队", villages=("522634101",))
    try:
        assert [d["code"] for d in laptop.divisions("village")] == ["522634101201", "522634101202"]
        reference.add_division(county, "522634101203", "坪上村")
        reference.rename_division(county, "522634101201", "龙井新村")
        reference.add_division(county, "522634102202", "白岩村")  # not the laptop's township
        reference.set_poverty_line(county, 2025, 4000, "县级文件")
        report = sh.down(county, laptop)
        assert report.status == "accepted", report.line()
        assert [(d["code"], d["name"]) for d in laptop.divisions("village")] == [
            ("522634101201", "龙井新村"), ("522634101202", "石桥村"), ("522634101203", "坪上村")]
        assert reference.poverty_lines(laptop) == [{"year": 2025, "line": 4000.0, "source": "县级文件"}]
        # the import line says what the bundle changed, though it carried no household changes
        assert report.changes == 0
        assert "参考数据:新增区划 1 个(坪上村);区划更名 龙井村改为龙井新村;2025 年贫困线 4000 元" in report.line()
        reference.set_poverty_line(county, 2025, 4400, "县级文件")
        assert "2025 年贫困线由 4000 元改为 4400 元" in sh.down(county, laptop).line()
        assert "参考数据" not in sh.down(county, laptop).line()  # nothing new: nothing said
    finally:
        laptop.close()


# ---------------------------------------------------------------------- the CLI and the real county → laptop flow


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)
    return monkeypatch


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def opened(path) -> Store:
    store = Store.open(path)
    store.unlock(store.operators()[0], PASSPHRASE)
    return store


def test_cli_round_trip(tmp_path, env, capsys):
    db = tmp_path / "county.db"
    assert cli(capsys, "init", db, "--role", "county", "--site-name", "雷山县扶贫办")[0] == 0
    code, out, err = cli(capsys, "reference", "divisions", db)
    assert code == 0 and "还没有行政区划" in out
    bad = write(tmp_path, "bad.csv", GOOD + "522634103201,坡脚村,村,522634103\n")
    code, out, err = cli(capsys, "reference", "divisions", db, "--import", bad)
    assert code == 1 and err.startswith("错误:bad.csv:发现 1 处问题,未导入任何区划")
    assert "bad.csv 第 8 行 列“上级代码”" in err
    code, out, err = cli(capsys, "reference", "divisions", db, "--import", write(tmp_path, "g.csv", GOOD), "--dry-run")
    assert code == 0 and "将新增 6 个区划" in out
    assert cli(capsys, "reference", "divisions", db, "--json")[1].strip() == "[]"
    code, out, err = cli(capsys, "reference", "divisions", db, "--import", tmp_path / "g.csv")
    assert code == 0 and "已新增 6 个区划" in out and "下发包" in out
    code, out, err = cli(capsys, "reference", "add-division", db, "522634101203", "坪上村")
    assert code == 0 and "已新增村 522634101203 坪上村,上级 522634101 西江镇" in out
    code, out, err = cli(capsys, "reference", "add-division", db, "522634101204", "x", "--level", "township")
    assert code == 1 and err.startswith("错误:") and "是村级" in err
    code, out, err = cli(capsys, "reference", "rename-division", db, "522634101203", "坪上新村")
    assert code == 0 and "坪上村 → 坪上新村" in out
    code, out, err = cli(capsys, "reference", "divisions", db)
    assert code == 0
    assert out.splitlines()[:4] == ["522634 雷山县 [县](2 个乡镇)", "  522634101 西江镇 [乡(镇)](3 个村)",
                                    "    522634101201 龙井村 [村]", "    522634101202 石桥村 [村]"]
    assert "    522634101203 坪上新村 [村]" in out.splitlines()
    code, out, err = cli(capsys, "reference", "poverty-line", db, "2025", "4000", "--source", "县级文件")
    assert code == 0 and "已设定 2025 年贫困线:4000 元/人·年" in out
    code, out, err = cli(capsys, "reference", "poverty-line", db, "2025", "4100.5")
    assert code == 0 and "(原为 4000 元)" in out
    code, out, err = cli(capsys, "reference", "poverty-line", db, "2025", "-1")
    assert code == 1 and err.startswith("错误:贫困线应大于 0 元")
    code, out, err = cli(capsys, "reference", "poverty-lines", db, "--json")
    assert code == 0 and json.loads(out) == [{"year": 2025, "line": 4100.5, "source": ""}]
    assert "4100.5" in cli(capsys, "reference", "poverty-lines", db)[1]
    with pytest.raises(SystemExit) as usage:
        main(["reference", "poverty-line", str(db)])
    assert usage.value.code == 2


def test_a_real_county_sets_up_its_reference_data_and_the_laptop_can_work(tmp_path, env, capsys):
    """The tester's path: init county, enroll a laptop before any reference data exists, init the
    laptop (nothing to work with), then the county imports divisions and sets the lines, and one
    downstream bundle gives the laptop its villages and lines: a household in the village, an exit
    assessed, a register printed."""
    county, laptop, package = tmp_path / "c.db", tmp_path / "laptop.db", tmp_path / "l.jde"
    assert cli(capsys, "init", county, "--role", "county", "--site-name", "雷山县扶贫办")[0] == 0
    code, out, err = cli(capsys, "enroll", county, "--site-name", "龙井村工作队", "--role", "village",
                         "--villages", "522634101201", "--out", package)
    assert code == 0, err
    env.setenv("JIANDANG_ENROLLMENT_CODE", next(line.split(":", 1)[1] for line in out.splitlines() if line.startswith("登记码")))
    assert cli(capsys, "init", laptop, "--enrollment", package)[0] == 0
    code, out, err = cli(capsys, "reference", "divisions", laptop)
    assert code == 0 and "本机还没有收到行政区划" in out
    code, out, err = cli(capsys, "reference", "poverty-line", laptop, "2025", "4000")
    assert code == 1 and "不能在本机修改" in err
    with opened(laptop) as lap:
        assert lap.divisions() == []

    assert cli(capsys, "reference", "divisions", county, "--import", write(tmp_path, "g.csv", GOOD))[0] == 0
    assert cli(capsys, "reference", "poverty-line", county, "2025", "4000", "--source", "县级文件")[0] == 0
    usb = tmp_path / "usb"
    usb.mkdir()
    assert cli(capsys, "sync", "export", county, "--to", usb)[0] == 0
    code, out, err = cli(capsys, "sync", "import", laptop, usb)
    assert code == 0, out + err

    code, out, err = cli(capsys, "reference", "divisions", laptop)
    assert out.splitlines() == ["522634 雷山县 [县](1 个乡镇)", "  522634101 西江镇 [乡(镇)](1 个村)",
                                "    522634101201 龙井村 [村]"]
    with opened(laptop) as lap:
        assert reference.poverty_lines(lap) == [{"year": 2025, "line": 4000.0, "source": "县级文件"}]
        hid = households.save(lap, household(dilapidated="0")).household_id
        doc = households.document(lap, hid)
        assessment = proposals.exit_assessment(lap, doc, year=2025, food_secure=True, clothing_secure=True)
        assert assessment.line == 4000 and assessment.passed
        p = proposals.propose(lap, hid, "exit", reasons="收入稳定", food_secure=True, clothing_secure=True)
        assert p["assessed_line"] == 4000
    code, out, err = cli(capsys, "print", "register", laptop, "--village", "522634101201", "--out", tmp_path / "r.pdf")
    assert code == 0, err
    assert (tmp_path / "r.pdf").stat().st_size > 1000


def test_rows_of_another_county_are_named_once_as_such(county, tmp_path):
    """A county importing the national township list as it is: each foreign row is refused once, as
    another county's (not also for a parent the file does not have), and add-division says the same."""
    division_files.import_divisions(county, write(tmp_path, "first.csv", "代码,名称\n522634,雷山县\n"))
    with pytest.raises(reference.ReferenceDataError) as caught:
        division_files.import_divisions(county, write(tmp_path, "streets.csv",
                                                      "code,name,areaCode\n110101001,东华门街道,110101\n"
                                                      "522634101,西江镇,522634\n"))
    [problem] = caught.value.problems
    assert problem.row == 2 and "不属于本县" in problem.message
    with pytest.raises(reference.ReferenceDataError, match="不属于本县"):
        reference.add_division(county, "522698101201", "外县村")
