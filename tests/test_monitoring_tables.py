"""防返贫动态监测 in Excel (issue #20): the national system's columns 户类型, 易返贫致贫户(监测对象)类型,
风险是否消除, 风险识别时间, 风险消除时间 are read with the system's values and written back; risks travel on
their own sheet."""

from __future__ import annotations

import datetime as dt

from openpyxl import Workbook, load_workbook

from app.core import idnumber
from app.services import households
from app.tables import exporter, importer
from tests.factories import VILLAGE, household


def national_export(path) -> None:
    """A small 已脱贫人口名单-style sheet: one row per person, the monitoring columns on each row."""
    wb = Workbook()
    ws = wb.active
    ws.append(["村代码", "户编号", "户主姓名", "姓名", "公民身份号码", "与户主关系", "性别", "家庭人口数", "识别标准",
               "贫困户属性", "脱贫状态", "主要致贫原因", "首次识别时间", "户类型", "易返贫致贫户(监测对象)类型",
               "风险是否消除", "风险识别时间", "风险消除时间"])
    rows = [
        ("5226341012010101", "欧阳明远", "1", dt.date(1970, 5, 6), "户主", "男", "脱贫户", "脱贫不稳定户", "是",
         "2022-04-08", "2023/6/30"),
        ("5226341012010102", "司马秀兰", "2", dt.date(1972, 8, 9), "户主", "女", "监测户", "突发严重困难户", "否",
         "2024年3月1日", None),
        ("5226341012010103", "上官清", "3", dt.date(1980, 1, 2), "户主", "男", "一般户", None, None, None, None),
    ]
    for number, head, seq, birth, rel, sex, htype, mtype, gone, found, ended in rows:
        ws.append([VILLAGE, number, head, head, idnumber.make("522634", birth, int(seq), "1" if sex == "男" else "2"),
                   rel, sex, 1, "国家标准", "一般贫困户", "已脱贫(享受政策)", "因病", "2014-06-01", htype, mtype, gone,
                   found, ended])
    wb.save(path)


def test_the_national_monitoring_columns_import(store, tmp_path):
    path = tmp_path / "已脱贫人口名单.xlsx"
    national_export(path)
    report = importer.import_table(store, path)
    assert report.created == 3, report.summary() + str([r.message for r in report.rejections])
    docs = {d["household_number"]: d for d in households.documents(store)}
    one, two, three = (docs[f"522634101201010{i}"] for i in (1, 2, 3))
    assert (one["household_type"], one["monitoring_type"], one["risk_eliminated"], one["risk_identified_date"],
            one["risk_eliminated_date"]) == ("1", "1", True, "2022-04-08", "2023-06-30")
    assert (two["household_type"], two["monitoring_type"], two["risk_eliminated"], two["risk_identified_date"]) == \
        ("2", "3", False, "2024-03-01")
    assert "risk_eliminated_date" not in two
    assert three["household_type"] == "3" and "monitoring_type" not in three


def test_the_monitoring_columns_and_risks_export_and_read_back(store, tmp_path):
    doc = household(status="2", household_type="2", monitoring_type="3", risk_eliminated=False,
                    risk_identified_date="2025-03-15")
    doc["risks"] = [{"risk_type": "01", "found_date": "2025-02-27", "source": "2"}]
    households.save(store, doc)
    out = tmp_path / "导出.xlsx"
    exporter.export_table(store, out)
    wb = load_workbook(out)
    header = [c.value for c in wb["贫困户"][1]]
    row = dict(zip(header, [c.value for c in wb["贫困户"][2]]))
    assert (row["户类型"], row["监测对象类型"], row["风险是否消除"]) == ("监测户", "突发严重困难户", "否")
    assert row["风险识别时间"] == dt.datetime(2025, 3, 15)
    risks = wb["返贫致贫风险"]
    assert [c.value for c in risks[1]][:6] == ["村代码", "户编号", "风险类型", "发现日期", "发现方式", "风险状态"]
    assert [c.value for c in risks[2]][2:6] == ["因病", dt.datetime(2025, 2, 27), "干部走访排查", "未消除"]
