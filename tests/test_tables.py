"""Excel/CSV import and export (app.tables): generated workbooks covering each bad input, the round
trip, re-import, the error workbook, one transaction."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook, load_workbook

from app.core import idnumber
from app.core.dictionary import default
from app.core.validation import collection
from app.services import demo, households
from app.tables import TableError, exporter, importer, mapping
from app.tables.reader import OLE_MAGIC, read_file
from tests import factories

V = factories.VILLAGE


def _strip(doc: dict) -> dict:
    """A document without ids and empty values, for comparing two databases."""
    d = default()
    out = {k: v for k, v in doc.items() if k != "id" and v not in (None, "", [])}
    for kind in d.child_kinds("household"):
        key = collection(kind.key)
        out[key] = [{k: v for k, v in r.items() if k != "id" and v not in (None, "", [])} for r in doc.get(key, [])]
    return out


def _by_number(store) -> dict:
    return {doc["household_number"]: _strip(doc) for doc in households.documents(store)}


@pytest.fixture
def fresh(make_store):
    s = make_store("fresh.db")
    demo.install_reference_data(s)
    return s


def ledger(path, header: list, rows: list, title_rows: list | None = None, sheet: str = "台账", merges=()):
    """A one-sheet workbook as a county ledger would look."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for r in title_rows or []:
        ws.append(r)
    ws.append(header)
    for r in rows:
        ws.append(r)
    for m in merges:
        ws.merge_cells(m)
    wb.save(path)
    return path


REQUIRED = ["识别标准", "贫困户属性", "脱贫状态", "主要致贫原因", "首次识别时间"]
REQUIRED_VALUES = ["国家标准", "一般贫困户", "未脱贫", "因病", "2014-06-01"]


def person(birth: dt.date, seq: int, sex: str) -> str:
    return idnumber.make("522634", birth, seq, sex)


HEAD1 = person(dt.date(1970, 5, 6), 11, "1")
WIFE1 = person(dt.date(1972, 8, 9), 12, "2")
HEAD2 = person(dt.date(1965, 1, 2), 13, "1")
SON2 = person(dt.date(1990, 3, 4), 15, "1")

# one row per member, household fields repeated, synonyms for the headers, code labels as text
SYN_HEADER = ["户号", "户主", "家庭人口", "致贫原因", "属性", "识别标准", "脱贫状态", "识别时间",
              "耕地面积(亩)", "姓名", "性别", "身份证号", "出生日期", "与户主的关系", "健康状况", "备注"]


def syn_rows():
    return [
        [f"{V}0001", "欧阳明远", 2, "因病", "一般贫困户", "国家标准", "未脱贫", "2014.06.01", "1,234.5",
         "欧阳明远", "男", HEAD1, "1970.05.06", "户主", "健康", "无"],
        [f"{V}0001", "欧阳明远", 2, "因病", "一般贫困户", "国家标准", "未脱贫", "2014.06.01", "1,234.5",
         "司马秀兰", "女", WIFE1, 26520, "配偶", "长期慢性病", None],
        [f"{V}0002", "诸葛长青", "２", "缺技术", "低保贫困户", "国家标准", "未脱贫", "2014年6月1日", "２.5",
         "诸葛长青", "男", HEAD2, "1965-01-02", "户主", "健康", None],
        [f"{V}0002", "诸葛长青", "２", "缺技术", "低保贫困户", "国家标准", "未脱贫", "2014年6月1日", "２.5",
         "诸葛小明", "男", SON2, dt.datetime(1990, 3, 4), "之子", "健康", None],
    ]


# ---------------------------------------------------------------------- import of a ledger


def test_one_sheet_ledger_with_synonyms_labels_and_odd_values(fresh, tmp_path):
    path = ledger(tmp_path / "台账.xlsx", SYN_HEADER, syn_rows())
    report = importer.import_table(fresh, path, village=V)
    assert (report.created, report.updated, report.rejected_rows) == (2, 0, [])
    docs = {d["household_number"]: d for d in households.documents(fresh)}
    one, two = docs[f"{V}0001"], docs[f"{V}0002"]
    assert one["head_name"] == "欧阳明远" and one["main_cause"] == "1" and one["attribute"] == "1"
    assert one["first_identified"] == "2014-06-01" and one["farmland_area"] == 1234.5
    assert two["family_size"] == 2 and two["farmland_area"] == 2.5 and two["attribute"] == "2"
    assert two["main_cause"] == "7" and two["first_identified"] == "2014-06-01"
    wife = next(m for m in one["members"] if m["name"] == "司马秀兰")
    assert wife["birth_date"] == "1972-08-09"  # Excel serial 26520
    assert wife["relation"] == "02" and wife["sex"] == "2" and wife["health"] == ["2"]
    assert [m["birth_date"] for m in two["members"]] == ["1965-01-02", "1990-03-04"]
    assert "备注" in "".join(report.notes)  # an unknown column is named, not silently dropped


def test_a_totals_line_at_the_foot_of_the_sheet_is_skipped_and_said(fresh, tmp_path):
    """Registers kept in Excel end with a 合计 line; it is not a household, and must not be read as
    a continuation of the last household (which then got rejected for its odd values)."""
    header = ["户编号", "户主姓名", "家庭人口", "姓名", "公民身份号码", "与户主关系", "性别", *REQUIRED]
    rows = [[f"{V}0001", "欧阳明远", 2, "欧阳明远", HEAD1, "户主", "男", *REQUIRED_VALUES],
            [None, None, None, "司马秀兰", WIFE1, "配偶", "女"],
            [f"{V}0002", "诸葛长青", 2, "诸葛长青", HEAD2, "户主", "男", *REQUIRED_VALUES],
            [None, None, None, "诸葛小明", SON2, "之子", "男"],
            [None, "合 计:", 4, "4 人"]]
    path = ledger(tmp_path / "合计.xlsx", header, rows)
    report = importer.import_table(fresh, path, village=V)
    assert (report.created, report.rejected_rows) == (2, [])
    assert "第 6 行是合计行" in report.summary()
    docs = {d["household_number"]: d for d in households.documents(fresh)}
    assert sorted(m["name"] for m in docs[f"{V}0002"]["members"]) == ["诸葛小明", "诸葛长青"]


def test_sex_and_birth_date_come_from_the_id_number_when_the_sheet_has_no_such_columns(fresh, tmp_path):
    header = ["户编号", "户主姓名", "姓名", "公民身份号码", "与户主关系", *REQUIRED]
    rows = [[f"{V}0001", "欧阳明远", "欧阳明远", HEAD1, "户主", *REQUIRED_VALUES],
            [None, None, "司马秀兰", WIFE1, "配偶"]]
    report = importer.import_table(fresh, ledger(tmp_path / "无性别.xlsx", header, rows), village=V)
    assert (report.created, report.rejected_rows) == (1, [])
    members = {m["name"]: m for m in households.documents(fresh)[0]["members"]}
    assert (members["欧阳明远"]["sex"], members["欧阳明远"]["birth_date"]) == ("1", "1970-05-06")
    assert (members["司马秀兰"]["sex"], members["司马秀兰"]["birth_date"]) == ("2", "1972-08-09")


def test_title_row_two_row_merged_header_and_blank_lines(fresh, tmp_path):
    header2 = [None, None, "姓名", "公民身份号码", "与户主关系", "性别", *REQUIRED]
    rows = [
        [f"{V}0001", "欧阳明远", "欧阳明远", HEAD1, "01", "1", *REQUIRED_VALUES],
        [None] * 11,
        [f"{V}0001", "欧阳明远", "司马秀兰", WIFE1, "02", "2", *REQUIRED_VALUES],
        [None] * 11,
        [None] * 11,
        [f"{V}0002", "诸葛长青", "诸葛长青", HEAD2, "01", "1", *REQUIRED_VALUES],
    ]
    path = ledger(tmp_path / "merged.xlsx", header2, rows,
                  title_rows=[["某某村贫困户台账(2025年)"], ["户编号", "户主姓名", "家庭成员", None, None, None, *REQUIRED]],
                  merges=["A1:K1", "A2:A3", "B2:B3", "C2:F2", "G2:G3", "H2:H3", "I2:I3", "J2:J3", "K2:K3"])
    # 与户主关系 written as this program's codes (01, 02): a bare number is read only when declared
    report = importer.import_table(fresh, path, village=V, options=importer.Options(codes="jiandang"))
    assert report.rejected_rows == [] and report.created == 2
    docs = {d["household_number"]: d for d in households.documents(fresh)}
    assert sorted(m["name"] for m in docs[f"{V}0001"]["members"]) == ["司马秀兰", "欧阳明远"]
    assert docs[f"{V}0001"]["family_size"] == 2  # no 人口数 column: counted from the members


def test_household_fields_only_on_first_row_of_each_household(fresh, tmp_path):
    """Vertically merged household cells: later rows of a household leave them empty."""
    header = ["户编号", "户主姓名", "姓名", "公民身份号码", "与户主关系", "性别", *REQUIRED]
    rows = [[f"{V}0001", "欧阳明远", "欧阳明远", HEAD1, "户主", "男", *REQUIRED_VALUES],
            [None, None, "司马秀兰", WIFE1, "配偶", "女"],
            [f"{V}0002", "诸葛长青", "诸葛长青", HEAD2, "户主", "男", *REQUIRED_VALUES],
            [None, None, "诸葛小明", SON2, "子", "男"]]
    path = ledger(tmp_path / "first.xlsx", header, rows, merges=["A2:A3", "B2:B3", "A4:A5", "B4:B5"])
    report = importer.import_table(fresh, path, village=V)
    assert report.rejected_rows == [] and report.created == 2 and report.members == 4
    sizes = sorted(len(d["members"]) for d in households.documents(fresh))
    assert sizes == [2, 2]


def test_two_sheets_households_and_members(fresh, tmp_path):
    wb = Workbook()
    h = wb.active
    h.title = "贫困户"
    h.append(["村代码", "户编号", "户主姓名", "人口数", *REQUIRED])
    h.append([V, f"{V}0001", "欧阳明远", 2, *REQUIRED_VALUES])
    h.append([V, f"{V}0002", "诸葛长青", 1, *REQUIRED_VALUES[:3], "因残", REQUIRED_VALUES[4]])
    m = wb.create_sheet("成员")
    m.append(["户编号", "姓名", "证件号码", "与户主关系", "性别"])
    m.append([f"{V}0001", "欧阳明远", HEAD1, "户主", "男"])
    m.append([f"{V}0002", "诸葛长青", HEAD2, "户主", "男"])
    m.append([f"{V}0001", "司马秀兰", WIFE1, "配偶", "女"])
    wb.save(tmp_path / "two.xlsx")
    report = importer.import_table(fresh, tmp_path / "two.xlsx")
    assert report.rejected_rows == [] and report.created == 2
    docs = {d["household_number"]: d for d in households.documents(fresh)}
    assert docs[f"{V}0002"]["main_cause"] == "2"
    assert sorted(x["name"] for x in docs[f"{V}0001"]["members"]) == ["司马秀兰", "欧阳明远"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings(fresh, tmp_path, encoding):
    lines = [",".join(SYN_HEADER)] + [",".join("" if v is None else (v.date().isoformat() if isinstance(v, dt.datetime) else
                                                                     f'"{v}"' if "," in str(v) else str(v)) for v in r)
                                      for r in syn_rows()]
    path = tmp_path / "台账.csv"
    path.write_bytes("\r\n".join(lines).encode(encoding))
    report = importer.import_table(fresh, path, village=V)
    assert report.rejected_rows == [] and report.created == 2
    names = sorted(m["name"] for d in households.documents(fresh) for m in d["members"])
    assert names == sorted(["欧阳明远", "司马秀兰", "诸葛长青", "诸葛小明"])


def test_village_from_name_column(fresh, tmp_path):
    name = fresh.division_name(V)
    path = ledger(tmp_path / "v.xlsx", ["村名称", "户主姓名", "姓名", "身份证号", "与户主关系", "性别", *REQUIRED],
                  [[name, "欧阳明远", "欧阳明远", HEAD1, "户主", "男", *REQUIRED_VALUES]])
    report = importer.import_table(fresh, path)
    assert report.created == 1
    assert households.documents(fresh)[0]["village_code"] == V


# ---------------------------------------------------------------------- bad input


def test_bad_check_digit_rejects_that_household_only_and_error_workbook_lists_its_rows(fresh, tmp_path):
    rows = syn_rows()
    bad = HEAD2[:-1] + ("0" if HEAD2[-1] != "0" else "1")
    rows[2][11] = bad
    path = ledger(tmp_path / "bad.xlsx", SYN_HEADER, rows)
    errors = tmp_path / "errors.xlsx"
    report = importer.import_table(fresh, path, village=V, errors_out=errors)
    assert report.created == 1 and report.rejected_households == 1
    assert report.rejected_rows == [("台账", 4), ("台账", 5)]  # both rows of household 0002, nothing else
    assert fresh.count("household") == 1
    own = [r for r in report.rejections if r.row == 4]
    assert own[0].column == "身份证号" and "校验位" in own[0].reason
    assert f"最后一位应为 {HEAD2[-1]}" in own[0].reason  # which check digit is expected, as the editor says
    wb = load_workbook(errors)
    listed = [(r[0], r[1]) for r in wb["错误清单"].iter_rows(min_row=2, values_only=True)]
    assert sorted(set(listed)) == [("台账", 4), ("台账", 5)]
    copy = list(wb["台账"].iter_rows(values_only=True))
    assert len(copy) == 3 and copy[0][: len(SYN_HEADER)] == tuple(SYN_HEADER)
    assert [r[-1] for r in copy[1:]] == [4, 5]  # original row numbers
    # fix the error in the error workbook and import it again: the household comes in
    ws = wb["台账"]
    ws.cell(2, SYN_HEADER.index("身份证号") + 1, HEAD2)
    wb.save(errors)
    again = importer.import_table(fresh, errors, village=V)
    assert again.created == 1 and again.rejected_rows == []
    assert fresh.count("household") == 2 and fresh.count("member") == 4


def test_wrong_values_are_named_by_row_and_column(fresh, tmp_path):
    rows = syn_rows()
    rows[0][3] = "因懒"          # not in the code list
    rows[2][12] = "1965.13.40"   # not a date
    path = ledger(tmp_path / "values.xlsx", SYN_HEADER, rows)
    report = importer.import_table(fresh, path, village=V, dry=True)
    found = {(r.row, r.column) for r in report.rejections if r.column}
    assert (2, "致贫原因") in found and (4, "出生日期") in found
    assert report.rejected_households == 2 and report.created == 0


def test_duplicate_rows_are_rejected(fresh, tmp_path):
    rows = syn_rows()
    rows.insert(2, list(rows[1]))  # the wife's row pasted twice
    path = ledger(tmp_path / "dup.xlsx", SYN_HEADER, rows)
    report = importer.import_table(fresh, path, village=V)
    assert any("重复" in r.reason and r.row == 4 for r in report.rejections)
    assert ("台账", 2) in report.rejected_rows and ("台账", 4) in report.rejected_rows
    assert report.created == 1 and fresh.count("member") == 2


def test_same_person_in_two_households_is_rejected(fresh, tmp_path):
    rows = syn_rows()
    rows[3][11] = WIFE1  # household 2's son carries the wife's ID number
    rows[3][12] = "1972-08-09"
    path = ledger(tmp_path / "dup2.xlsx", SYN_HEADER, rows)
    report = importer.import_table(fresh, path, village=V, dry=True)
    assert report.rejected_households == 2 and report.created == 0


def test_missing_columns_import_nothing(fresh, tmp_path):
    path = ledger(tmp_path / "cols.xlsx", ["编号", "名字", "地址"], [["1", "欧阳明远", "某地"]])
    with pytest.raises(TableError, match="户主姓名"):
        importer.import_table(fresh, path, village=V)
    path = ledger(tmp_path / "novillage.xlsx", SYN_HEADER, syn_rows())
    with pytest.raises(TableError, match="--village"):
        importer.import_table(fresh, path)
    assert fresh.count() == 0


def test_damaged_xlsx_and_csv_are_explained_in_chinese_with_the_detail_in_the_log(fresh, tmp_path, caplog):
    import logging
    import re

    good = ledger(tmp_path / "good.xlsx", SYN_HEADER, syn_rows())
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good.read_bytes()[:3000])
    huge = tmp_path / "huge.csv"
    huge.write_text("户编号,户主姓名\n1,\"" + "长" * 200_000 + "\"\n", encoding="utf-8")
    expected = {broken: "已损坏或不是有效的 .xlsx 文件(压缩包结构不完整,可能下载或复制时中断)",
                huge: "不是有效的 CSV(引号不成对,或某一格内容过长)"}
    for path, words in expected.items():
        with caplog.at_level(logging.INFO, logger="app.tables.reader"):
            with pytest.raises(TableError) as err:
                importer.import_table(fresh, path, village=V)
        message = str(err.value)
        assert words in message, message
        english = [w for w in re.findall(r"[A-Za-z]{3,}", message.replace(path.name, "")) if w not in ("xlsx", "csv", "CSV", "Excel", "UTF")]
        assert english == [], message
    assert "BadZipFile" in caplog.text and "field larger than field limit" in caplog.text
    assert fresh.count() == 0


def test_password_protected_and_corrupt_files(fresh, tmp_path):
    good = ledger(tmp_path / "good.xlsx", SYN_HEADER, syn_rows())
    locked = tmp_path / "locked.xlsx"
    locked.write_bytes(OLE_MAGIC + bytes(4096))  # an encrypted .xlsx is an OLE compound file
    with pytest.raises(TableError, match="密码"):
        importer.import_table(fresh, locked, village=V)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(TableError, match="损坏|无法读取"):
        importer.import_table(fresh, broken, village=V)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(128, 256)) * 3)
    with pytest.raises(TableError):
        importer.import_table(fresh, garbage, village=V)
    assert fresh.count() == 0


def test_dry_run_writes_nothing(fresh, tmp_path):
    path = ledger(tmp_path / "l.xlsx", SYN_HEADER, syn_rows())
    before = fresh.conn.execute("SELECT count(*) FROM changes").fetchone()[0]
    report = importer.import_table(fresh, path, village=V, dry=True)
    assert report.dry_run and report.created == 2
    assert fresh.count() == 0 and fresh.conn.execute("SELECT count(*) FROM changes").fetchone()[0] == before


def test_import_is_one_transaction(fresh, tmp_path, monkeypatch):
    path = ledger(tmp_path / "l.xlsx", SYN_HEADER, syn_rows())
    real, calls = households.save, []

    def failing(store, doc, **kw):
        calls.append(doc)
        if len(calls) == 2:
            raise RuntimeError("disk pulled")
        return real(store, doc, **kw)

    monkeypatch.setattr(households, "save", failing)
    with pytest.raises(RuntimeError):
        importer.import_table(fresh, path, village=V)
    assert len(calls) == 2 and fresh.count() == 0  # the first household was rolled back too


# ---------------------------------------------------------------------- re-import


def test_reimport_updates_instead_of_duplicating(fresh, tmp_path):
    path = ledger(tmp_path / "l.xlsx", SYN_HEADER, syn_rows())
    importer.import_table(fresh, path, village=V)
    ids = {d["household_number"]: d["id"] for d in households.documents(fresh)}
    again = importer.import_table(fresh, path, village=V)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    rows = syn_rows()
    for r in rows[:2]:
        r[3] = "因残"
    rows[1][14] = "残疾"
    ledger(path, SYN_HEADER, rows)
    third = importer.import_table(fresh, path, village=V)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 1)
    docs = {d["household_number"]: d for d in households.documents(fresh)}
    assert {k: d["id"] for k, d in docs.items()} == ids
    assert fresh.count("household") == 2 and fresh.count("member") == 4
    assert docs[f"{V}0001"]["main_cause"] == "2"
    assert next(m for m in docs[f"{V}0001"]["members"] if m["name"] == "司马秀兰")["health"] == ["4"]


def test_reimport_matches_by_id_number_without_household_number(fresh, tmp_path):
    header = [h for h in SYN_HEADER if h != "户号"]
    rows = [r[1:] for r in syn_rows()]
    path = ledger(tmp_path / "nonumber.xlsx", header, rows)
    first = importer.import_table(fresh, path, village=V)
    assert first.created == 2
    second = importer.import_table(fresh, path, village=V)
    assert second.created == 0 and second.unchanged == 2 and fresh.count("household") == 2


def test_an_id_number_of_a_stored_person_under_another_name_is_named_in_the_dry_run(fresh, tmp_path):
    """A re-import matches members by ID number and takes the file's name (a corrected spelling), but
    an ID number copied from another person's row would rename that person without a word: the dry
    run and the import name both names for the row (a warning: the household is still imported)."""
    rows = syn_rows()
    path = ledger(tmp_path / "l.xlsx", SYN_HEADER, rows)
    importer.import_table(fresh, path, village=V)
    col = SYN_HEADER.index("姓名")
    before = rows[1][col]
    rows[1][col] = "甘霖"
    ledger(path, SYN_HEADER, rows)
    report = importer.import_table(fresh, path, village=V, dry=True)
    assert report.updated == 1
    said = [w for w in report.warnings if "甘霖" in w.reason]
    assert len(said) == 1 and f"属于“{before}”" in said[0].reason and said[0].row == 3
    assert "提醒" in report.summary()
    unchanged = importer.import_table(fresh, ledger(tmp_path / "same.xlsx", SYN_HEADER, syn_rows()), village=V, dry=True)
    assert not any("属于" in w.reason for w in unchanged.warnings)


def test_mapping_file_for_unusual_headers(fresh, tmp_path):
    header = ["户主名字", "成员", "身份证", "关系", "男女", *REQUIRED]
    path = ledger(tmp_path / "odd.xlsx", header, [["欧阳明远", "欧阳明远", HEAD1, "户主", "男", *REQUIRED_VALUES]])
    file = tmp_path / "mapping.json"
    mapping.save_mapping(file, {"户主名字": "household.head_name", "成员": "member.name", "男女": "member.sex",
                                "关系": "member.relation"})
    saved = mapping.load_mapping(file)
    report = importer.import_table(fresh, path, village=V, mapping=saved)
    assert report.created == 1 and report.rejected_rows == []
    member = households.documents(fresh)[0]["members"][0]
    assert member["name"] == "欧阳明远" and member["sex"] == "1" and member["id_number"] == HEAD1
    bad = tmp_path / "bad.json"
    bad.write_text('{"columns": {"户主名字": "household.no_such_field"}}', encoding="utf-8")
    with pytest.raises(TableError, match="no_such_field"):
        mapping.load_mapping(bad)


# ---------------------------------------------------------------------- export and round trip


def test_round_trip_xlsx_reproduces_every_field(demo_store, fresh, tmp_path):
    out = tmp_path / "all.xlsx"
    total = 0
    for township in sorted({c[:9] for c in demo_store.village_codes()}):
        counts = exporter.export_table(demo_store, tmp_path / f"{township}.xlsx", township=township)
        total += counts["households"]
        report = importer.import_table(fresh, tmp_path / f"{township}.xlsx")
        assert report.rejected_rows == [] and report.created == counts["households"]
    assert total == demo_store.count("household")
    before, after = _by_number(demo_store), _by_number(fresh)
    assert before == after
    # and importing the export again changes nothing
    exporter.export_table(demo_store, out, village=demo_store.village_codes()[0])
    report = importer.import_table(fresh, out)
    assert report.created == report.updated == 0 and report.unchanged == 2
    # every column of our own workbook is understood: no sheet is said to have columns left unread
    # (the child sheets' 村代码 was named as 未导入, 最接近“村代码”)
    assert not [n for n in report.notes if "没有对应字段" in n], report.notes
    assert all(not info.ignored for info in report.sheets), [(i.title, i.ignored) for i in report.sheets]


def test_round_trip_csv_reproduces_households_and_members(demo_store, fresh, tmp_path):
    village = demo_store.village_codes()[0]
    out = tmp_path / "v.csv"
    exporter.export_table(demo_store, out, village=village)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    report = importer.import_table(fresh, out)
    assert report.rejected_rows == [] and report.created == 2

    def core(docs):
        return {n: {k: v for k, v in d.items() if k not in {collection(k.key) for k in default().child_kinds("household")}
                    or k == "members"} for n, d in docs.items()}

    before = {n: d for n, d in _by_number(demo_store).items() if d["village_code"] == village}
    assert core(before) == core(_by_number(fresh))


def test_export_workbook_shape(demo_store, tmp_path):
    village = demo_store.village_codes()[0]
    out = tmp_path / "reg.xlsx"
    exporter.export_table(demo_store, out, village=village)
    wb = load_workbook(out)
    ws = wb["贫困户"]
    header = [c.value for c in ws[1]]
    assert header[:5] == ["村代码", "村名称", "户编号", "村民小组", "户主姓名"]
    assert ws.freeze_panes == "A2"
    assert all(ws.column_dimensions[c].width >= 8 for c in "ABCDE")
    doc = next(d for d in households.documents(demo_store, village))
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[2] == doc["household_number"])
    cause_col = header.index("主要致贫原因")
    assert row[cause_col] == default().code_label("poverty_cause", doc["main_cause"])  # labels, not codes
    letter = ws.cell(1, cause_col + 1).column_letter
    validations = [dv for dv in ws.data_validations.dataValidation if f"{letter}2" in str(dv.sqref)]
    assert validations and validations[0].type == "list" and "代码表" in validations[0].formula1
    assert wb["代码表"].sheet_state == "hidden"
    members = wb["家庭成员"]
    assert [c.value for c in members[1]][:4] == ["村代码", "户编号", "户主姓名", "姓名"]
    assert members.max_row - 1 == sum(len(d["members"]) for d in households.documents(demo_store, village))


def test_export_refuses_empty_scope_and_bad_suffix(demo_store, tmp_path):
    with pytest.raises(TableError, match="没有贫困户"):
        exporter.export_table(demo_store, tmp_path / "x.xlsx", village="999999999999")
    with pytest.raises(TableError, match=r"\.xlsx"):
        exporter.export_table(demo_store, tmp_path / "x.pdf", village=demo_store.village_codes()[0])
    assert not list(tmp_path.glob("x.*"))


def test_read_file_skips_nothing_in_memory(tmp_path):
    """The reader works from bytes: no copy of the file is written anywhere."""
    path = ledger(tmp_path / "l.xlsx", SYN_HEADER, syn_rows())
    data = path.read_bytes()
    path.unlink()
    sheets = read_file(tmp_path / "l.xlsx", data)
    assert len(sheets[0].rows) == 5 and not list(tmp_path.iterdir())


def test_reimport_cannot_change_status_behind_the_procedure(fresh, tmp_path):
    path = ledger(tmp_path / "l.xlsx", SYN_HEADER, syn_rows())
    importer.import_table(fresh, path, village=V)
    rows = syn_rows()
    for r in rows[:2]:
        r[6] = "已脱贫(享受政策)"
    ledger(path, SYN_HEADER, rows)
    for dry in (True, False):
        report = importer.import_table(fresh, path, village=V, dry=dry)
        assert report.rejected_rows == [("台账", 2), ("台账", 3)] and report.unchanged == 1
    assert {d["status"] for d in households.documents(fresh)} == {"1"}


def test_id_number_stored_as_excel_number_is_explained(fresh, tmp_path):
    rows = syn_rows()
    rows[0][11] = float(HEAD1[:17] + "0") if HEAD1[-1] == "X" else float(HEAD1)
    path = ledger(tmp_path / "num.xlsx", SYN_HEADER, rows)
    report = importer.import_table(fresh, path, village=V, dry=True)
    assert any(r.row == 2 and "文本" in r.reason for r in report.rejections)
    assert report.created == 1 and report.rejected_households == 1


def test_a_household_added_to_an_exported_workbook_without_a_number_keeps_its_members(demo_store, tmp_path):
    """A work team adds a new household to the workbook it exported: the 贫困户 row has no 户编号
    yet, and its 家庭成员 rows carry only the 户主姓名 the export writes on every row."""
    village = demo_store.village_codes()[0]
    path = tmp_path / "v.xlsx"
    exporter.export_table(demo_store, path, village=village)
    wb = load_workbook(path)
    houses, members = wb["贫困户"], wb["家庭成员"]
    head = [c.value for c in houses[1]]
    row = [None] * len(head)
    row[head.index("村代码")], row[head.index("户主姓名")] = village, "令狐冲"
    for label, value in zip(REQUIRED, REQUIRED_VALUES):
        row[head.index(label)] = value
    houses.append(row)
    mhead = [c.value for c in members[1]]
    mrow = [None] * len(mhead)
    for label, value in (("村代码", village), ("户主姓名", "令狐冲"), ("姓名", "令狐冲"),
                         ("公民身份号码", person(dt.date(1980, 1, 2), 41, "1")), ("与户主关系", "户主/本人")):
        mrow[mhead.index(label)] = value
    members.append(mrow)
    wb.save(path)
    report = importer.import_table(demo_store, path)
    assert (report.created, report.rejected_rows) == (1, [])
    new = next(d for d in households.documents(demo_store) if d["head_name"] == "令狐冲")
    assert [m["name"] for m in new["members"]] == ["令狐冲"] and new["household_number"].startswith(village)


def test_a_status_changed_in_an_exported_workbook_is_reported_at_its_own_cell(demo_store, tmp_path):
    village = demo_store.village_codes()[0]
    path = tmp_path / "v.xlsx"
    exporter.export_table(demo_store, path, village=village)
    wb = load_workbook(path)
    houses = wb["贫困户"]
    column = [c.value for c in houses[1]].index("脱贫状态") + 1
    cell = houses.cell(row=3, column=column)  # the second household's row
    cell.value = "已脱贫(享受政策)" if cell.value != "已脱贫(享受政策)" else "未脱贫"
    wb.save(path)
    for dry in (True, False):
        report = importer.import_table(demo_store, path, dry=dry)
        [own] = [r for r in report.rejections if "同户其他行" not in r.reason]
        assert (own.sheet, own.row, own.column) == ("贫困户", 3, "脱贫状态")
        assert own.reason.startswith("贫困户的脱贫状态只能通过识别、退出等程序改变")  # no file name and row again
