"""Divisions files (CSV or Excel: columns 代码, 名称, optional 级别 and 上级代码, or code/name/level/
parent) read into rows for app.services.reference, which checks and writes them (docs/cli.md, "reference").
The file is checked completely before anything is written; a file with any problem changes nothing."""

from __future__ import annotations

from pathlib import Path

from app.services.reference import (
    COLUMN_LABELS, DivisionImport, Problem, ReferenceDataError, apply_divisions, check_divisions, require_edit,
)
from app.store import Store
from app.tables.mapping import normalise_header
from app.tables.reader import TableError, locate_header, read_file

# Column headers as written in tables (compared after normalise_header) -> field
COLUMNS = {
    "code": ("代码", "区划代码", "统计用区划代码", "行政区划代码", "编码", "区划编码", "code", "CODE", "Code"),
    "name": ("名称", "区划名称", "名字", "单位名称", "村名", "name", "NAME", "Name"),
    "level": ("级别", "层级", "区划级别", "类型", "level", "LEVEL", "Level"),
    "parent": ("上级代码", "上级", "上级区划代码", "父级代码", "所属代码", "parent", "PARENT", "Parent"),
}

def _header_columns(headers: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        for key, names in COLUMNS.items():
            if key not in found and header in {normalise_header(n) for n in names}:
                found[key] = index
    return found


def _known_headers() -> dict[str, str]:
    return {normalise_header(n): key for key, names in COLUMNS.items() for n in names}


def _cell(values: tuple, index: int | None):
    if index is None or index >= len(values):
        return None
    return values[index]


def read_division_rows(path, data: bytes | None = None) -> tuple[str, list[tuple[int, dict]], list[Problem], list[str]]:
    """The rows of a divisions file: (file name, [(row number, {code, name, level, parent})],
    problems with the file as a whole, header labels of the columns used)."""
    name = Path(path).name
    try:
        sheets = read_file(path, data)
    except TableError as exc:
        return name, [], [Problem(name, 0, "", str(exc))], []
    if not sheets:
        return name, [], [Problem(name, 0, "", "文件是空的:没有任何行")], []
    known = _known_headers()
    for sheet in sheets:
        if not locate_header(sheet, known, normalise_header):
            continue
        columns = _header_columns(sheet.headers)
        missing = [COLUMN_LABELS[k] for k in ("code", "name") if k not in columns]
        if missing:
            have = "、".join(h for h in sheet.headers if h) or "无"
            return name, [], [Problem(name, sheet.header_row, "", f"缺少“{'”“'.join(missing)}”列(表头有:{have})。"
                                      "需要“代码”和“名称”两列,可另有“级别”和“上级代码”")], []
        rows = []
        for number, values in sheet.rows:
            if number <= sheet.header_row:
                continue
            rows.append((number, {key: _cell(values, columns.get(key)) for key in COLUMNS}))
        used = [sheet.headers[columns[k]] for k in COLUMNS if k in columns]
        return name, rows, [], used
    first = sheets[0].rows[0][1] if sheets[0].rows else ()
    columns = _header_columns([normalise_header(v) for v in first])
    if columns:  # a header with one known column: say which one is missing
        missing = [COLUMN_LABELS[k] for k in ("code", "name") if k not in columns]
        have = "、".join(str(v) for v in first if v is not None)
        return name, [], [Problem(name, sheets[0].rows[0][0], "", f"缺少“{'”“'.join(missing)}”列(表头有:{have})。"
                                  "需要“代码”和“名称”两列,可另有“级别”和“上级代码”")], []
    shown = "、".join(str(v) for v in first if v is not None)[:80] or "空"
    return name, [], [Problem(name, sheets[0].rows[0][0] if sheets[0].rows else 0, "",
                              f"找不到表头(第一行是:{shown})。第一行应是列名:“代码”“名称”,可另有“级别”“上级代码”"
                              "(或 code、name、level、parent)")], []


def analyse_divisions(path, existing: list[dict], data: bytes | None = None) -> DivisionImport:
    """Read and check a divisions file against `existing` (store.divisions()); writes nothing and
    does not touch the store, so it may run on a worker thread."""
    file, rows, problems, _used = read_division_rows(path, data)
    if problems:
        return DivisionImport(file, problems=problems)
    return check_divisions(file, rows, existing)


def import_divisions(store: Store, path, *, dry_run: bool = False, data: bytes | None = None) -> DivisionImport:
    """Check a file and, when it has no problem and this is not a dry run, write it in one
    transaction. Raises ReferenceDataError (with `problems`) when the file has problems."""
    if not dry_run:
        require_edit(store)
    plan = analyse_divisions(path, store.divisions(), data)
    if plan.problems:
        raise ReferenceDataError(plan.summary(), plan.problems)
    if dry_run:
        return plan
    return apply_divisions(store, plan)
