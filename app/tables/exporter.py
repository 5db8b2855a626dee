"""Exporting registers and full household data to .xlsx (or .csv).

The workbook has one sheet of households (the register: 村代码, 村名称 and every household field),
one of members (户编号, 户主姓名 and every member field) and one per other child kind (家庭收入,
帮扶责任人, 帮扶措施, 脱贫计划, 工作台账), all with Chinese headers and code labels, a frozen header row,
column widths and a drop-down list (data validation) on every code column. It is exactly the two-sheet
layout `import-table` reads, so an export imports back into a fresh database unchanged.
A .csv export has one row per member with the household's fields repeated (UTF-8 with BOM, which Excel
opens correctly).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

from app.core.dictionary import Dictionary, default
from app.core.validation import collection
from app.services import households
from app.store import Store
from app.tables import workbook_temp
from app.tables.errorbook import write_atomic
from app.tables.reader import TableError

CODE_SHEET = "代码表"


def villages_of(store: Store, village: str | None = None, township: str | None = None) -> list[str]:
    """The village codes an export covers."""
    if village:
        return [village]
    if township:
        codes = {row["code"] for row in store.divisions("village") if row.get("parent") == township}
        codes |= {c for c in store.village_codes() if c.startswith(township)}
        return sorted(codes)
    return store.village_codes()


def _cell(d: Dictionary, kind: str, key: str, value):
    f = d.kinds[kind].fields[key]
    if value is None or value == "" or value == []:
        return None
    if f.type == "date":
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            return str(value)
    if f.type in ("integer", "decimal") and isinstance(value, (int, float)):
        return value
    return d.display(kind, key, value)


def _columns(d: Dictionary, kind: str) -> list[str]:
    return list(d.kinds[kind].fields)


def collect(store: Store, village: str | None = None, township: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> list[dict]:
    docs = []
    for code in villages_of(store, village, township):
        docs += households.documents(store, code)
    if progress:
        progress(0, max(len(docs), 1))
    return docs


def export_table(store: Store, out, *, village: str | None = None, township: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the export (by the suffix of `out`: .xlsx or .csv) atomically. Returns counts."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise TableError(f"导出文件 {out.name} 应以 .xlsx 或 .csv 结尾。")
    if not out.parent.exists():
        raise TableError(f"文件夹 {out.parent} 不存在。")
    docs = collect(store, village, township, progress)
    if store.damaged_in(village or township):  # a table missing a household must not look complete
        raise TableError(f"{store.damaged_summary()},未导出。")
    if not docs:
        where = f"村 {village}" if village else f"乡镇 {township}"
        raise TableError(f"{where} 没有贫困户可导出(请检查代码)。")
    data = (xlsx_bytes if suffix == ".xlsx" else csv_bytes)(store, docs, progress)
    write_atomic(out, data)  # beside the target, owner-only, removed in every path (app.fileio)
    return {"households": len(docs), "members": sum(len(doc.get("members", [])) for doc in docs)}


def _village_cells(store: Store, doc: dict, names: dict) -> list:
    code = doc.get("village_code")
    if code not in names:
        names[code] = store.division_name(code) if code else ""
    return [code, names[code]]


def xlsx_bytes(store: Store, docs: list[dict], progress=None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    d = default()
    wb = Workbook()
    bold = Font(bold=True)
    codes_ws = wb.active
    codes_ws.title = CODE_SHEET
    code_ranges: dict[str, str] = {}
    sheets = []  # (title, kind, headers, rows)
    names: dict = {}
    house_keys = _columns(d, "household")
    rows = []
    for doc in docs:
        rows.append([*_village_cells(store, doc, names), *(_cell(d, "household", k, doc.get(k)) for k in house_keys)])
    sheets.append(("贫困户", "household", ["村代码", "村名称", *(d.field_label("household", k) for k in house_keys)],
                   [None, None, *(("household", k) for k in house_keys)], rows))
    for kind in d.child_kinds("household"):
        keys = _columns(d, kind.key)
        rows = []
        for doc in docs:
            prefix = [doc.get("village_code"), doc.get("household_number")] + ([doc.get("head_name")] if kind.key == "member" else [])
            for item in doc.get(collection(kind.key), []):
                rows.append([*prefix, *(_cell(d, kind.key, k, item.get(k)) for k in keys)])
        head = ["村代码", "户编号"] + (["户主姓名"] if kind.key == "member" else [])
        sheets.append((kind.label, kind.key, [*head, *(d.field_label(kind.key, k) for k in keys)],
                       [*(None for _ in head), *((kind.key, k) for k in keys)], rows))
    column = 0
    for title, kind, headers, fields, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(headers)
        for cell in ws[1]:
            cell.font = bold
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for row in rows:
            ws.append(row)
        ws.freeze_panes = "A2"
        last = max(len(rows) + 1, 2)
        for c, (header, spec) in enumerate(zip(headers, fields), 1):
            letter = get_column_letter(c)
            sample = [len(str(r[c - 1])) for r in rows[:200] if r[c - 1] is not None]
            width = max([len(header) * 2 + 2, *(n * 1.6 + 2 for n in sample)])
            ws.column_dimensions[letter].width = min(max(width, 8), 40)
            if spec is None:
                continue
            f = d.kinds[spec[0]].fields[spec[1]]
            if f.type == "date":
                for (cell,) in ws.iter_rows(min_row=2, min_col=c, max_col=c):
                    cell.number_format = "yyyy-mm-dd"
            if f.type not in ("code", "bool"):
                continue
            list_key = f.codes if f.type == "code" else "__bool__"
            if list_key not in code_ranges:
                labels = list(d.codes[f.codes].values()) if f.type == "code" else ["是", "否"]
                column += 1
                cl = get_column_letter(column)
                codes_ws.cell(1, column, d.kinds[spec[0]].fields[spec[1]].label if f.type == "code" else "是/否")
                for i, label in enumerate(labels, 2):
                    codes_ws.cell(i, column, label)
                code_ranges[list_key] = f"'{CODE_SHEET}'!${cl}$2:${cl}${len(labels) + 1}"
            dv = DataValidation(type="list", formula1=code_ranges[list_key], allow_blank=True,
                                showErrorMessage=True, errorTitle="不在代码表中",
                                error=f"“{header}”请从下拉列表中选择")
            dv.add(f"{letter}2:{letter}{last}")
            ws.add_data_validation(dv)
    codes_ws.sheet_state = "hidden"
    wb.move_sheet(CODE_SHEET, offset=len(wb.sheetnames) - 1)
    wb.active = 0
    buf = io.BytesIO()
    with workbook_temp.saving():  # sheet XML with names and ID numbers: owner-only, removed
        wb.save(buf)
    if progress:
        progress(len(docs), len(docs))
    return buf.getvalue()


def csv_bytes(store: Store, docs: list[dict], progress=None) -> bytes:
    """One row per member (a household without members gets one row), household fields repeated."""
    d = default()
    house_keys, member_keys = _columns(d, "household"), _columns(d, "member")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["村代码", "村名称", *(d.field_label("household", k) for k in house_keys),
                     *(d.field_label("member", k) for k in member_keys)])
    names: dict = {}

    def text(kind, key, value):
        v = _cell(d, kind, key, value)
        return v.isoformat() if isinstance(v, dt.date) else ("" if v is None else v)

    for doc in docs:
        house = [*_village_cells(store, doc, names), *(text("household", k, doc.get(k)) for k in house_keys)]
        for m in doc.get("members") or [{}]:
            writer.writerow([*house, *(text("member", k, m.get(k)) for k in member_keys)])
    if progress:
        progress(len(docs), len(docs))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
