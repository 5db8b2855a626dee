"""Real ledgers and real reference data (issue #15): ledgers built from public heading sets and the
spellings villages type, real county division lists, all problems of a file in one pass,
--set / --allow-incomplete / --codes, ID numbers in other scripts and disability certificate numbers."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from openpyxl import load_workbook

from app.cli.main import main
from app.core import idnumber, synonyms, values
from app.core.dictionary import default
from app.services import households, reference, worklists
from app.store import Store
from app.tables import TableError, importer
from app.tables import divisions as division_files
from tests.conftest import PASSPHRASE
from tests.test_tables import ledger

DATA = Path(__file__).parent / "data"
HEADINGS = tomllib.loads((DATA / "national_headings.toml").read_text(encoding="utf-8"))
COUNTY = "420684"                  # 宜城市, a real county (tests/data/divisions/420684.csv)
VILLAGE = "420684103229"           # a village of 小河镇 (the code of issue #15; the name is invented)
PUA = "\ue4c6"                     # a private-use character, as real village names of 宜城市 hold
VILLAGE_NAME = f"{PUA}家湾村"


def pid(birth: dt.date, seq: int, sex: str, area: str = COUNTY) -> str:
    return idnumber.make(area, birth, seq, sex)


@pytest.fixture
def real(make_store, tmp_path):
    """A database with 宜城市's real division list and one village."""
    s = make_store("宜城.db")
    text = (DATA / "divisions" / f"{COUNTY}.csv").read_text(encoding="utf-8") + f"{VILLAGE},{VILLAGE_NAME}\n"
    path = tmp_path / "宜城市区划.csv"
    path.write_text(text, encoding="utf-8")
    division_files.import_divisions(s, path)
    return s


@pytest.fixture
def real_db(real, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    path = real.path
    real.close()
    return path


def _open(path) -> Store:
    s = Store.open(path)
    s.unlock("admin", PASSPHRASE)
    return s


# ---------------------------------------------------------------------- the messy village ledger


FW = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def messy_rows():
    """Five households as a village types them: no 识别标准 or 首次识别时间 column, full-width digits,
    stray spaces, 缺劳动力 / 其它 / 已脱贫（享受政策）; household 2 has a bad check digit, household 4 a
    cause not in the list."""
    h = [
        ("1组", "王建国", [("王建国", "户主", pid(dt.date(1966, 3, 2), 11, "1").translate(FW), "1"),
                          ("李秀英 ", "妻子", pid(dt.date(1968, 7, 9), 12, "2"), "2")],
         "一般户", "缺劳动力", "已脱贫（享受政策）"),
        ("1组", "赵德胜", [("赵德胜", "户主", None, "1"), ("赵小燕", "之女", pid(dt.date(1995, 1, 5), 14, "2"), "2")],
         "低保户", "因病", "未脱贫"),
        ("2组", "陈桂兰", [(" 陈桂兰", "户主", pid(dt.date(1950, 11, 30), 15, "2"), "2"),
                          ("刘强", "之孙子", pid(dt.date(2008, 4, 1), 17, "1"), "1")],
         "低保特困供养户", "其它", "未脱贫"),
        ("2组", "孙福", [("孙福", "户主", pid(dt.date(1958, 2, 14), 19, "1"), "1")],
         "特困供养贫困户", "因穷", "未脱贫"),
        ("3组", "周文", [("周文", "户主", pid(dt.date(1975, 6, 6), 21, "1"), "1"),
                        ("周　武", "之兄弟姐妹", pid(dt.date(1979, 9, 9), 23, "1"), "1")],
         "一般贫困户", "缺技术", "未脱贫"),
    ]
    bad = pid(dt.date(1962, 8, 8), 13, "1")
    bad = bad[:-1] + ("0" if bad[-1] != "0" else "1")
    rows, n = [], 0
    for group, head, members, attribute, cause, status in h:
        for name, relation, number, _sex in members:
            n += 1
            rows.append([n, group, head, name, relation, number or bad, attribute, cause, status, "13800000000", None])
    return rows


def test_messy_village_ledger_one_dry_run_names_only_the_two_bad_households(real_db, tmp_path, capsys):
    path = ledger(tmp_path / "小河镇台账.xlsx", HEADINGS["village_ledger"], messy_rows())
    errors = tmp_path / "错误.xlsx"
    args = ["import-table", str(real_db), str(path), "--village", VILLAGE]
    assert main([*args, "--dry-run", "--allow-incomplete", "--errors", str(errors)]) == 1
    out = capsys.readouterr().out
    # the missing columns once, at the top, not on every row
    assert out.count("缺少必填列:识别标准、首次识别时间") == 1 and "为必填项" not in out
    assert "将新建 3 户" in out and "拒绝 2 户" in out and "3 户缺必填项" in out
    assert "校验位" in out and "“因穷”不在代码表“主要致贫原因”中" in out
    listed = load_workbook(errors)["错误清单"]
    rows = {r[1] for r in listed.iter_rows(min_row=2, values_only=True)}
    assert rows == {4, 5, 8}  # 赵德胜's two rows, 孙福's row: nothing of the households that import
    sheet = load_workbook(errors)["台账"]
    assert {r[2] for r in sheet.iter_rows(min_row=2, values_only=True)} == {"赵德胜", "孙福"}
    with _open(real_db) as s:
        assert s.count("household") == 0
    # the real import adds the others as 待完善
    assert main([*args, "--allow-incomplete"]) == 1
    out = capsys.readouterr().out
    assert "已新建 3 户" in out and "3 户缺必填项,已作为“待完善”导入" in out
    with _open(real_db) as s:
        docs = {d["head_name"]: d for d in households.documents(s)}
        assert set(docs) == {"王建国", "陈桂兰", "周文"}
        wang = docs["王建国"]
        assert wang["members"][0]["id_number"] == pid(dt.date(1966, 3, 2), 11, "1")  # full-width digits made ASCII
        assert {m["name"] for m in wang["members"]} == {"王建国", "李秀英"}
        assert (wang["main_cause"], wang["status"], wang["attribute"]) == ("8", "2", "1")
        assert docs["陈桂兰"]["main_cause"] == "99" and docs["陈桂兰"]["attribute"] == "3"
        assert docs["周文"]["members"][1]["relation"] == "21" and docs["周文"]["members"][1]["name"] == "周武"
        assert docs["陈桂兰"]["members"][0]["name"] == "陈桂兰"  # the leading space gone
        incomplete = worklists.build(s).incomplete
        assert {e.head_name for e in incomplete} == {"王建国", "陈桂兰", "周文"}
        assert all("识别标准" in e.detail and "首次识别时间" in e.detail for e in incomplete)
    # importing again adds nothing
    assert main([*args, "--allow-incomplete"]) == 1
    out = capsys.readouterr().out
    assert "已新建 0 户" in out and "3 户无变化" in out
    with _open(real_db) as s:
        assert s.count("household") == 3 and s.count("member") == 6
    # without --allow-incomplete the incomplete households are refused, the reason said once per household
    assert main([*args, "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "拒绝 5 户" in out and out.count("缺少必填列:识别标准、首次识别时间(整列缺失") == 3


def test_set_fills_the_missing_columns_for_every_household(real, tmp_path):
    rows = [r for r in messy_rows() if r[2] not in ("赵德胜", "孙福")]
    path = ledger(tmp_path / "台账.xlsx", HEADINGS["village_ledger"], rows)
    fixed = importer.parse_fixed(["识别标准=国家标准", "first_identified=2014-08"])
    report = importer.import_table(real, path, village=VILLAGE, options=importer.Options(fixed=fixed))
    assert report.created == 3 and report.rejected_households == 0 and report.incomplete == 0
    doc = households.documents(real)[0]
    assert doc["identification_standard"] == "1" and doc["first_identified"] == "2014-08-01"
    with pytest.raises(TableError, match="没有“识别年份”这个字段"):
        importer.parse_fixed(["识别年份=2014"])
    with pytest.raises(TableError, match="数字代码“1”"):  # a bare number is as ambiguous here as in a cell
        importer.import_table(real, path, village=VILLAGE,
                              options=importer.Options(fixed=importer.parse_fixed(["识别标准=1"])))
    with pytest.raises(TableError, match="“国标”不在代码表“识别标准”中"):
        importer.import_table(real, path, village=VILLAGE,
                              options=importer.Options(fixed=importer.parse_fixed(["识别标准=国标"])))


def test_one_pass_reports_value_and_required_errors_of_a_household_together(real, tmp_path):
    header = ["户主姓名", "姓名", "身份证号", "与户主关系", "识别标准", "贫困户属性", "主要致贫原因", "首次识别时间", "文化成度"]
    rows = [["钱多多", "钱多多", pid(dt.date(1970, 1, 1), 11, "1"), "户主", "国家标准", "一般贫困户", "因穷", None, "初中"]]
    path = ledger(tmp_path / "台账.xlsx", header, rows)
    report = importer.import_table(real, path, village=VILLAGE, dry=True)
    assert "文化成度(最接近“文化程度”" in report.summary()  # an unmapped heading with the closest field
    reasons = [r.reason for r in report.rejections]
    assert any("因穷" in r for r in reasons) and any("首次识别时间”为必填项" in r for r in reasons)
    assert not any("主要致贫原因”为必填项" in r for r in reasons)  # the bad value is said once, not twice


# ---------------------------------------------------------------------- national exports


def national_rows():
    """A 已脱贫人口名单 of two households, laid out with the real export's 32 headings."""
    header = HEADINGS["poverty_exited_people"]
    people = [
        ("001", "1", "吴大山", pid(dt.date(1961, 5, 5), 31, "1"), 3, "户主", "初中", "健康", "普通劳动力", "", "因病"),
        ("001", "2", "郑小梅", pid(dt.date(1963, 6, 6), 32, "2"), 3, "配偶", "小学", "长期慢性病", "弱劳动力或半劳动力", "", "因病"),
        ("001", "3", "吴亮", pid(dt.date(1990, 7, 7), 33, "1"), 3, "之子", "本科及以上", "健康", "技能劳动力", "10", "因病"),
        ("002", "1", "冯春", pid(dt.date(1948, 8, 8), 35, "2"), 1, "户主", "文盲或半文盲", "残疾", "丧失劳动力", "", "因残"),
    ]
    rows = []
    for n, (house, person_no, name, number, size, relation, edu, health, skill, months, cause) in enumerate(people, 1):
        values_ = {
            "序号": n, "数据日期": "2022-09", "县(市、区、旗)": "宜城市", "乡(镇)": "小河镇", "行政村": VILLAGE_NAME,
            "自然村": "三组", "户编号": f"{VILLAGE}{house}", "人编号": f"{VILLAGE}{house}{person_no}", "姓名": name,
            "证件号码": number, "人数": size, "与户主关系": relation, "民族": "汉族", "文化程度": edu,
            "在校生状况": "非在校生", "健康状况": health, "劳动技能": skill, "务工时间（月）": months,
            "是否参加大病保险": "是", "致贫原因1": cause, "危房户": "否", "是否解决安全饮用水": "是",
            "人均纯收入": "12,345.60", "户联系电话": "13911112222", "人联系电话": None, "首次识别时间": "2014-08",
            "人员识别时间": "2014-08", "户类型": "脱贫户", "易返贫致贫户(监测对象)类型": None, "风险是否消除": None,
            "风险识别时间": None, "风险消除时间": None,
        }
        rows.append([values_[h] for h in header])
    return header, rows


def test_national_exited_people_export_dry_run_then_set(real, tmp_path):
    header, rows = national_rows()
    path = ledger(tmp_path / "已脱贫人口名单.xlsx", header, rows)
    report = importer.import_table(real, path, dry=True)
    text = report.summary()
    assert report.plan.missing == [("household.identification_standard", "识别标准"), ("household.attribute", "贫困户属性")]
    assert text.count("缺少必填列:识别标准、贫困户属性") == 1
    assert report.rejected_households == 2 and report.created == 0
    # nothing else is wrong with the file
    assert all("缺少必填列" in r.reason or "同户其他行" in r.reason for r in report.rejections)
    assert "户类型" in text and "人均纯收入" in text  # unmapped headings are named
    used = {t for info in report.sheets for t in info.columns.values()}
    assert {"household.family_size", "household.main_cause", "household.phone", "household.dilapidated",
            "household.water_safe", "member.serious_illness_insurance", "member.id_number", "household.group",
            "village_name", "member.work_months"} <= used
    options = importer.Options(fixed=importer.parse_fixed(["识别标准=国家标准", "贫困户属性=一般贫困户",
                                                           "脱贫状态=已脱贫（享受政策）"]))
    report = importer.import_table(real, path, options=options)
    assert report.created == 2 and report.members == 4 and report.rejected_households == 0
    wu = next(d for d in households.documents(real) if d["head_name"] == "吴大山")  # 户主姓名 from the 户主 row
    assert wu["village_code"] == VILLAGE and wu["family_size"] == 3 and wu["first_identified"] == "2014-08-01"
    assert wu["status"] == "2" and wu["group"] == "三组" and wu["dilapidated"] == "0"
    by_name = {m["name"]: m for m in wu["members"]}
    assert by_name["郑小梅"]["labour_skill"] == "5" and by_name["吴亮"]["education"] == "5"
    assert by_name["吴亮"]["work_months"] == 10 and by_name["吴大山"]["serious_illness_insurance"] is True


def test_national_entry_2018_headings_all_map(real, tmp_path):
    header = HEADINGS["entry_2018"]
    number = pid(dt.date(1970, 2, 2), 41, "1")
    row = {"户编号": f"{VILLAGE}0099", "户主姓名": "蒋山", "户联系电话": "13900000000", "识别标准": "国家标准",
           "贫困户属性": "一般贫困户", "致贫原因1": "缺劳动力", "人数": 1, "首次识别时间": "2014年8月",
           "与村主干路距离": "1.5", "住房面积": "80", "是否解决安全饮用水": "是", "是否有卫生厕所": "否", "危房户": "否",
           "姓名": "蒋山", "证件号码": number, "与户主关系": "户主", "文化程度": "初中", "劳动技能": "普通劳动力",
           "务工所在地": "广东省东莞市", "务工时间（月）": 6, "是否参加城乡居民基本医疗保险": "是", "是否参加大病保险": "是",
           "是否参加城乡居民基本养老保险": "是", "商业补充医疗保险": "否", "工资性收入": "8,000",
           "资产收益分红型收入": 300, "其他财产性收入": "200.5"}
    path = ledger(tmp_path / "2018录入.xlsx", header, [[row[h] for h in header]])
    report = importer.import_table(real, path, village=VILLAGE, dry=True)
    assert report.plan.missing == [("income.year", "收入年度")]  # the incomes need their year, said once
    options = importer.Options(fixed=importer.parse_fixed(["收入年度=2018"]))
    report = importer.import_table(real, path, village=VILLAGE, options=options)
    assert report.created == 1 and not any(info.ignored for info in report.sheets)
    doc = households.documents(real)[0]
    m = doc["members"][0]
    assert (doc["road_distance"], doc["housing_area"], doc["water_safe"], doc["sanitary_toilet"]) == (1.5, 80, True, False)
    assert m["work_area"] == "广东省东莞市" and m["basic_medical"] is True and m["resident_pension"] is True
    assert m["commercial_medical"] is False and doc["main_cause"] == "8"
    income = doc["incomes"][0]  # the income on the household's row; 财产性收入 = its two parts
    assert (income["year"], income["wage_income"], income["dividend_income"], income["property_income"]) == (2018, 8000, 300, 500.5)
    again = importer.import_table(real, path, village=VILLAGE, options=options)
    assert again.unchanged == 1 and len(households.documents(real)[0]["incomes"]) == 1


# ---------------------------------------------------------------------- values, codes, ID numbers


@pytest.mark.parametrize(("kind", "key", "typed", "stored"), [
    ("household", "exit_year", "2016年", 2016),
    ("household", "first_identified", "2014-08", "2014-08-01"),
    ("household", "status", "已脱贫（享受政策）", "2"),
    ("household", "main_cause", "缺劳动力", "8"),
    ("household", "main_cause", "其它", "99"),
    ("household", "attribute", "低保特困供养户", "3"),
    ("household", "attribute", "低保特困供养贫困户", "3"),
    ("member", "labour_skill", "弱劳动力或半劳动力", "5"),
    ("member", "education", "本科及以上", "5"),
    ("member", "relation", "之兄弟姐妹", "21"),
    ("member", "relation", "之曾孙子", "25"),
    ("member", "relation", "之曾孙女", "26"),
    ("member", "relation", "之侄儿", "23"),
    ("member", "relation", "之侄女", "24"),
    ("member", "relation", "之兄弟媳妇", "22"),
    ("member", "relation", "之叔伯", "27"),
])
def test_ledger_spellings_are_read_everywhere_values_are(kind, key, typed, stored):
    d = default()
    assert values.coerce(d.kinds[kind].fields[key], typed, d) == (stored, None)


def test_bare_numeric_codes_need_to_be_declared(real, tmp_path):
    header = ["户主姓名", "姓名", "身份证号", "与户主关系", "识别标准", "贫困户属性", "主要致贫原因", "首次识别时间", "脱贫状态"]
    row = ["褚一", "褚一", pid(dt.date(1970, 3, 3), 51, "1"), "户主", "国家标准", "一般贫困户", "因病", "2014-06-01", 3]
    path = ledger(tmp_path / "代码.xlsx", header, [row])
    report = importer.import_table(real, path, village=VILLAGE, dry=True)
    assert report.rejected_households == 1
    reason = report.rejections[0].reason
    assert "数字代码“3”" in reason and "已脱贫(享受政策)" in reason and "--codes national" in reason
    national = importer.import_table(real, path, village=VILLAGE, options=importer.Options(codes="national"))
    assert national.created == 1 and households.documents(real)[0]["status"] == "4"  # 返贫 in the national list
    row[0] = row[1] = "褚二"
    row[2] = pid(dt.date(1971, 3, 3), 53, "1")
    path = ledger(tmp_path / "代码2.xlsx", header, [row])
    ours = importer.import_table(real, path, village=VILLAGE, options=importer.Options(codes="jiandang"))
    assert ours.created == 1
    assert {d["head_name"]: d["status"] for d in households.documents(real)}["褚二"] == "3"


def test_id_numbers_in_other_scripts_and_disability_certificates(real, tmp_path):
    number = pid(dt.date(1980, 1, 1), 61, "1")
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(c)] if c.isdigit() else c for c in number)
    header = ["户主姓名", "姓名", "身份证号", "与户主关系", "识别标准", "贫困户属性", "主要致贫原因", "首次识别时间"]
    base = ["国家标准", "一般贫困户", "因残", "2014-06-01"]
    wife = pid(dt.date(1982, 2, 2), 62, "2")
    unknown_region = idnumber.make("990101", dt.date(1985, 5, 5), 63, "1")
    rows = [["卫东", "卫东", arabic, "户主", *base],
            ["卫东", "沈兰", wife + "12", "配偶", *base],       # a 20-digit disability certificate number
            ["卫东", "卫小", unknown_region, "之子", *base]]
    path = ledger(tmp_path / "证号.xlsx", header, rows)
    report = importer.import_table(real, path, village=VILLAGE)
    assert report.created == 1
    assert any("990101" in w.reason and "GB/T 2260" in w.reason for w in report.warnings)
    assert "提醒 1 条(这些户已照常导入)" in report.summary()
    members = {m["name"]: m for m in households.documents(real)[0]["members"]}
    assert members["卫东"]["id_number"] == number
    assert members["沈兰"]["id_number"] == wife and members["沈兰"]["disability_certificate"] == wife + "12"
    assert real.find_id_number(number) and real.find_id_number(wife)
    # the same people typed in ASCII in another household's file are found as duplicates on the 18
    again = ledger(tmp_path / "另一户.xlsx", header, [["韩梅", "韩梅", pid(dt.date(1990, 9, 9), 65, "2"), "户主", *base],
                                                        ["韩梅", "沈兰", wife, "之儿媳", *base]])
    other = importer.import_table(real, again, village=VILLAGE, dry=True)
    stored = households.documents(real)[0]["id"]
    assert other.plan.groups[0].household_id == stored  # 沈兰 found through the 18 digits
    assert other.rejected_households == 1 and any("卫东、韩梅" in r.reason for r in other.rejections)


def test_head_name_comes_from_the_member_row_of_the_head(real, tmp_path):
    header = ["姓名", "身份证号", "与户主关系", "识别标准", "贫困户属性", "主要致贫原因", "首次识别时间"]
    base = ["国家标准", "一般贫困户", "因病", "2014-06-01"]
    rows = [["杨柳", pid(dt.date(1995, 5, 5), 71, "2"), "之女", *base],
            ["杨树", pid(dt.date(1966, 6, 6), 73, "1"), "户主", *base]]
    report = importer.import_table(real, ledger(tmp_path / "无户主列.xlsx", header, rows), village=VILLAGE)
    assert report.created == 1 and households.documents(real)[0]["head_name"] == "杨树"


# ---------------------------------------------------------------------- real divisions


@pytest.mark.parametrize(("county", "name", "rows"), [("420684", "宜城市", 16), ("441900", "东莞市", 37),
                                                      ("460400", "儋州市", 19)])
def test_a_real_county_full_list_imports(make_store, county, name, rows):
    s = make_store(f"{county}.db")
    plan = division_files.import_divisions(s, DATA / "divisions" / f"{county}.csv")
    assert len(plan.added) == rows and not plan.problems
    assert s.division_name(county) == name
    townships = s.divisions("township")
    assert len(townships) == rows - 1 and all(t["code"].startswith(county) for t in townships)


def test_every_county_level_code_of_china_is_a_county():
    """All 2,978 county-level units of the real code table (tests/data/divisions/areas.csv), among
    them the cities without counties whose code ends in 00."""
    import csv

    from app.core import divisions

    with open(DATA / "divisions" / "areas.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2978
    for row in rows:
        assert divisions.normalise_code(row["code"]) == row["code"], row
        assert divisions.normalise_code(row["code"] + "000000") == row["code"]
        assert not divisions.is_above_county(row["code"]), row
    assert divisions.normalise_code("460400100000") == "460400100"
    with pytest.raises(ValueError, match="省或地"):
        divisions.normalise_code("460100")  # 海口市: a prefecture with districts


def test_township_directly_under_a_city_without_counties_takes_villages(make_store):
    s = make_store("东莞.db")
    division_files.import_divisions(s, DATA / "divisions" / "441900.csv")
    village = reference.add_division(s, "441900101201", "石碣村")
    assert village["code"] == "441900101201" and s.division_name("441900101") == "石碣镇"


def test_private_use_characters_in_village_names_are_accepted_and_named(make_store, tmp_path):
    s = make_store("宜城.db")
    text = (DATA / "divisions" / "420684.csv").read_text(encoding="utf-8")
    text += f"{VILLAGE},{VILLAGE_NAME}\n450681101201,江{PUA}村\n"  # 东兴市's village: another county
    path = tmp_path / "区划.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(reference.ReferenceDataError):
        division_files.import_divisions(s, path)  # two counties in one file are still refused
    path.write_text(text.rsplit("450681101201", 1)[0], encoding="utf-8")
    plan = division_files.import_divisions(s, path)
    assert s.division_name(VILLAGE) == VILLAGE_NAME
    assert plan.private_use == [(VILLAGE, VILLAGE_NAME)] and f"{VILLAGE_NAME}({VILLAGE})" in plan.summary()
    with pytest.raises(ValueError, match="控制字符"):
        reference.check_name("石\x07桥村")


# ---------------------------------------------------------------------- docs/tables.md


def test_docs_list_every_accepted_heading_and_spelling_from_forms():
    from app.tables import headings_doc, mapping

    doc = (Path(__file__).parent.parent / "docs" / "tables.md").read_text(encoding="utf-8")
    assert headings_doc.main(["--check"]) == 0, "docs/tables.md is stale: run python -m app.tables.headings_doc"
    generated = doc[doc.index(headings_doc.BEGIN):doc.index(headings_doc.END)]
    for heading in mapping.known_headers("household"):
        assert heading in generated.replace(" ", "")
    for spellings in synonyms.default().value_spellings.values():
        for spelling in spellings:
            assert f"| {spelling} |" in generated
    stale = headings_doc.rewrite(doc, headings_doc.generate().replace("户联系电话", "户电话"))
    assert stale != doc  # a change in forms/ shows up as a difference


def test_add_json_documents_get_the_same_id_number_handling(store):
    """households.save (add --json, the editor) normalises other-script digits and splits a disability
    certificate number too, so the same person is found whichever way the number came in."""
    from tests import factories

    doc = factories.household()
    head = doc["members"][0]["id_number"]
    wife = doc["members"][1]["id_number"]
    doc["members"][0]["id_number"] = head.translate(FW)
    doc["members"][1]["id_number"] = wife + "23"
    doc["members"][1]["name"] = "司马秀兰"
    saved = households.save(store, doc)
    members = {m["name"]: m for m in households.document(store, saved.household_id)["members"]}
    assert members["欧阳明远"]["id_number"] == head
    assert members["司马秀兰"]["id_number"] == wife and members["司马秀兰"]["disability_certificate"] == wife + "23"
    only_certificate = factories.household("独孤求败", "任盈盈", seq=5)
    number = only_certificate["members"][1].pop("id_number")
    only_certificate["members"][1]["disability_certificate"] = (number + "41").translate(FW)
    saved = households.save(store, only_certificate)
    m = households.document(store, saved.household_id)["members"][1]
    assert (m["id_number"], m["disability_certificate"]) == (number, number + "41")
    other = factories.household("东方不败", "西门吹雪", seq=3)
    other["members"][1]["id_number"] = wife
    with pytest.raises(households.ValidationFailed, match="已登记"):
        households.save(store, other)


def test_a_gbk_console_prints_a_private_use_name_without_a_traceback(make_store, tmp_path, monkeypatch):
    """The divisions import names the private-use names; on a cp936 console they print escaped."""
    import io
    import sys

    s = make_store("宜城.db")
    path = tmp_path / "区划.csv"
    path.write_text((DATA / "divisions" / f"{COUNTY}.csv").read_text(encoding="utf-8") + f"{VILLAGE},{VILLAGE_NAME}\n",
                    encoding="utf-8")
    db = s.path
    s.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    raw = io.BytesIO()
    console = io.TextIOWrapper(raw, encoding="cp936", errors="strict")
    monkeypatch.setattr(sys, "stdout", console)
    assert main(["reference", "divisions", str(db), "--import", str(path)]) == 0
    console.flush()
    text = raw.getvalue().decode("cp936")
    assert "1 个名称含有私用区字符" in text and f"\\ue4c6家湾村({VILLAGE})" in text  # app.cli.console's escape
