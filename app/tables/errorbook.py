"""The error workbook of an import: the rejected rows as they were, with their reasons, to fix and
import again."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from app import fileio
from app.tables import workbook_temp

if TYPE_CHECKING:
    from app.tables.importer import Report


def error_workbook_bytes(report: Report) -> bytes:
    """An .xlsx with a list of every rejection (工作表, 行号, 列, 原因) and, per source sheet, the
    rejected rows as they were, under the original header, with a 错误原因 column: fix and re-import."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    plan = report.plan
    wb = Workbook(write_only=False)
    summary = wb.active
    summary.title = "错误清单"
    summary.append(["工作表", "行号", "列", "原因"])
    for r in report.rejections:
        summary.append([r.sheet, r.row, r.column, r.reason])
    for col, width in zip("ABCD", (16, 8, 18, 70)):
        summary.column_dimensions[col].width = width
    summary.freeze_panes = "A2"
    reasons: dict[tuple[str, int], list[str]] = {}
    for r in report.rejections:
        reasons.setdefault((r.sheet, r.row), []).append(f"{r.column}:{r.reason}" if r.column else r.reason)
    rejected = set(report.rejected_rows)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="FFF2CC")
    titles = {title for title, _ in rejected}
    for sheet in plan.sheets:
        if sheet.title not in titles:
            continue
        # the import keeps no sheet's rows: the rejected ones are read from the file again
        source_rows = plan.source.rows(sheet.index) if plan.source is not None else sheet.rows
        rows = [(n, v) for n, v in source_rows if (sheet.title, n) in rejected]
        if not rows:
            continue
        ws = wb.create_sheet(sheet.title[:31] if sheet.title != "错误清单" else "错误清单(原表)")
        header = list(sheet.raw_headers)
        ws.append([*header, "错误原因", "原行号"])
        for cell in ws[1]:
            cell.font = bold
        for n, v in rows:
            cells = [*v, *([None] * (len(header) - len(v)))][: max(len(header), len(v))]
            ws.append([*cells, ";".join(reasons.get((sheet.title, n), [])), n])
            ws.cell(ws.max_row, len(header) + 1).fill = fill
        ws.freeze_panes = "A2"
    if plan.source is not None:
        plan.source.close()
    buf = io.BytesIO()
    with workbook_temp.saving():  # sheet XML with names and ID numbers: owner-only, removed
        wb.save(buf)
    return buf.getvalue()


def write_atomic(path, data: bytes) -> Path:
    """Atomic and owner-only (app.fileio): an error workbook or export holds names and ID numbers."""
    return fileio.write_atomic(path, data)


def write_error_workbook(report: Report, path) -> Path:
    return write_atomic(path, error_workbook_bytes(report))
