"""The Excel/CSV dialog: dry run off the GUI thread, mapping edits, confirm, export."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")

from openpyxl import load_workbook  # noqa: E402

from app.tables import mapping  # noqa: E402
from app.ui.table_dialog import MAPPING_META, TableDialog  # noqa: E402
from tests.test_tables import REQUIRED, REQUIRED_VALUES, SYN_HEADER, V, ledger, syn_rows  # noqa: E402


def test_dry_run_edit_mapping_confirm_and_export(qtbot, store, tmp_path):
    header = ["户主名字", *SYN_HEADER[2:]]   # 户主名字 is not a known header, and no 户号 column
    rows = [[r[1], *r[2:]] for r in syn_rows()]
    id_col = header.index("身份证号")
    rows[3][id_col] = rows[3][id_col][:-1] + ("0" if rows[3][id_col][-1] != "0" else "1")  # the son: bad check digit
    path = ledger(tmp_path / "台账.xlsx", header, rows)
    dialog = TableDialog(store)
    qtbot.addWidget(dialog)
    dialog.village.setCurrentIndex(dialog.village.findData(V))
    dialog.set_file(path)
    dialog.check()
    assert dialog.busy  # checking runs in a worker thread
    assert dialog.wait_until_done()
    # 户主名字 is unmapped (and named); the head's name is taken from the member row whose 与户主关系 is 户主
    assert dialog.report.created == 1 and "户主名字" in dialog.summary.text()
    assert store.count() == 0
    dialog.set_target("户主名字", "household.head_name")  # the user picks the field in the mapping table
    dialog.recheck_button.click()
    assert dialog.wait_until_done()
    assert dialog.report is not None and dialog.report.created == 1
    assert dialog.rejections.rowCount() == 2  # both rows of the second household
    assert dialog.import_button.isEnabled() and dialog.errors_button.isEnabled()
    assert store.count() == 0  # the dry run wrote nothing
    dialog.save_mapping()
    assert json.loads(store.meta(MAPPING_META))["户主名字"] == "household.head_name"
    errors = dialog.save_errors_to(tmp_path / "errors.xlsx")
    assert {r[1] for r in load_workbook(errors)["错误清单"].iter_rows(min_row=2, values_only=True)} == {4, 5}
    assert any("校验位" in dialog.rejections.item(r, 3).text() for r in range(2))
    dialog.grab().save(str(tmp_path / "dialog.png"))
    dialog.confirm_import()
    assert dialog.wait_until_done()
    assert store.count("household") == 1 and store.count("member") == 2
    assert "已新建 1 户" in dialog.summary.text()
    # next time the saved mapping is used without editing
    again = TableDialog(store)
    qtbot.addWidget(again)
    again.village.setCurrentIndex(again.village.findData(V))
    again.set_file(path)
    again.check()
    assert again.wait_until_done() and again.report.unchanged == 1
    # export the village
    dialog.scope.setCurrentIndex(dialog.scope.findData(f"village:{V}"))
    out = tmp_path / "out.xlsx"
    dialog.export_to(out)
    assert dialog.wait_until_done()
    assert "已导出 1 户" in dialog.status.text() and load_workbook(out)["贫困户"].max_row == 2



def test_a_sheet_without_a_known_name_column_lists_its_columns_to_be_mapped(qtbot, store, tmp_path):
    """A ledger whose name columns have headings the program does not know (户主名字, 名字): the message
    says to choose the field in 列对照, and 列对照 now lists the file's columns to choose it in (it was
    empty, so the user could do nothing but edit the file)."""
    header = [{"户主": "户主名字", "姓名": "名字"}.get(h, h) for h in SYN_HEADER]
    path = ledger(tmp_path / "台账.xlsx", header, syn_rows())
    dialog = TableDialog(store)
    qtbot.addWidget(dialog)
    dialog.village.setCurrentIndex(dialog.village.findData(V))
    dialog.set_file(path)
    dialog.check()
    assert dialog.wait_until_done()
    assert "找不到“户主姓名”或“姓名”列" in dialog.summary.text() and "列对照" in dialog.summary.text()
    assert "户主" in dialog.summary.text() and "docs/" not in dialog.summary.text()  # no docs folder on a laptop
    listed = [dialog.mapping_table.item(r, 0).text() for r in range(dialog.mapping_table.rowCount())]
    assert "名字" in listed and "户主名字" in listed and "身份证号" in listed
    assert dialog.recheck_button.isEnabled() and not dialog.import_button.isEnabled()
    dialog.set_target("名字", "member.name")
    dialog.set_target("户主名字", "household.head_name")
    dialog.recheck_button.click()
    assert dialog.wait_until_done()
    assert dialog.report is not None and dialog.report.created >= 2, dialog.summary.text()
    assert dialog.import_button.isEnabled() and store.count() == 0

def test_unreadable_file_is_reported(qtbot, store, tmp_path):
    locked = tmp_path / "locked.xlsx"
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024))
    dialog = TableDialog(store)
    qtbot.addWidget(dialog)
    dialog.set_file(locked)
    dialog.check()
    assert dialog.wait_until_done()
    assert "密码" in dialog.summary.text() and not dialog.import_button.isEnabled()
    assert "密码" not in dialog.status.text() and "原因见上方" in dialog.status.text()  # said once, not twice
    assert store.count() == 0


def test_dialog_fills_missing_columns_imports_incomplete_and_previews_the_mapping(qtbot, make_store, tmp_path):
    """The messy village ledger of issue #15 in the window: the mapping is shown before anything is
    written, the missing required columns can be filled for every household, or the households
    imported as 待完善; the wrong ones never are."""
    from app.services import households, worklists
    from app.tables import divisions as division_files
    from tests.test_tables_real import DATA, HEADINGS, VILLAGE, VILLAGE_NAME, COUNTY, messy_rows

    store = make_store("宜城.db")
    divisions = tmp_path / "区划.csv"
    divisions.write_text((DATA / "divisions" / f"{COUNTY}.csv").read_text(encoding="utf-8")
                         + f"{VILLAGE},{VILLAGE_NAME}\n", encoding="utf-8")
    division_files.import_divisions(store, divisions)
    path = ledger(tmp_path / "台账.xlsx", HEADINGS["village_ledger"], messy_rows())
    dialog = TableDialog(store)
    qtbot.addWidget(dialog)
    dialog.resize(1366, 768)
    dialog.village.setCurrentIndex(dialog.village.findData(VILLAGE))
    dialog.set_file(path)
    dialog.check()
    assert dialog.wait_until_done()
    assert store.count() == 0 and dialog.report.created == 0 and dialog.report.rejected_households == 5
    assert dialog.mapping_table.rowCount() == len(HEADINGS["village_ledger"])
    assert not dialog.fixed_table.isHidden() and dialog.fixed_table.rowCount() == 2
    assert "缺少必填列:识别标准、首次识别时间" in dialog.summary.text()
    dialog.set_fixed("household.identification_standard", "国家标准")
    dialog.allow_incomplete.setChecked(True)
    assert not dialog.import_button.isEnabled()  # changed choices: check again before importing
    dialog.recheck_button.click()
    assert dialog.wait_until_done()
    assert dialog.report.created == 3 and dialog.report.incomplete == 3 and dialog.report.rejected_households == 2
    assert {dialog.rejections.item(r, 1).text() for r in range(dialog.rejections.rowCount())} == {"4", "5", "8"}
    dialog.grab().save(str(tmp_path / "import-dialog.png"))
    dialog.confirm_import()
    assert dialog.wait_until_done()
    docs = households.documents(store)
    assert len(docs) == 3 and all(d["identification_standard"] == "1" for d in docs)
    assert {e.detail for e in worklists.build(store).incomplete} == {"待完善:未填 首次识别时间"}
