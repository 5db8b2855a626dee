"""Reading .xlsx and .csv files into sheets of rows, in memory.

The whole file is read into memory once (no temporary copies on disk). Workbooks are opened with
openpyxl in read-only mode, so a sheet of 60,000 rows streams instead of building cell objects.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted .xlsx and old .xls are OLE compound files
HEADER_SCAN_ROWS = 12


class TableError(Exception):
    """The file cannot be read as a table at all (nothing is imported); the message says what to do."""


@dataclass
class Sheet:
    title: str
    rows: list[tuple[int, tuple]]           # (1-based row number in the file, cell values)
    header_row: int = 0                      # 1-based row number of the header, 0 when none was found
    headers: list[str] = field(default_factory=list)  # header text per column (merged cells resolved)
    raw_headers: list = field(default_factory=list)   # header cells as written (for the error workbook)


def _clean(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:  # exact as an integer
        return int(value)
    if isinstance(value, str):
        value = value.strip()
        return value if value else None
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()
    return value


def _is_blank(values) -> bool:
    return all(v is None for v in values)


def read_file(path, data: bytes | None = None) -> list[Sheet]:
    """Every non-empty sheet of a .xlsx or .csv file. Raises TableError with a Chinese message."""
    path = Path(path)
    if data is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TableError(f"找不到文件 {path}") from None
        except OSError as exc:
            raise TableError(f"无法读取文件 {path}:{exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return [_read_csv(path, data)]
    if data.startswith(OLE_MAGIC):
        raise TableError(f"文件 {path.name} 设置了打开密码,或是旧版 .xls 格式,无法读取。请在 Excel 中取消密码"
                         "(文件→信息→保护工作簿→用密码进行加密,清空密码)并另存为 .xlsx 后重试。未导入任何数据。")
    if suffix not in (".xlsx", ".xlsm") and not data.startswith(b"PK"):
        raise TableError(f"文件 {path.name} 不是 .xlsx 或 .csv 表格。请在 Excel 中另存为 .xlsx 或 CSV 后重试。")
    return _read_xlsx(path, data)


def _log_detail(path: Path, exc: BaseException) -> None:
    """The library's English account of a damaged file goes to the log, not into the message."""
    logging.getLogger(__name__).info("%s: %s: %s", path.name, type(exc).__name__, exc)


def _read_xlsx(path: Path, data: bytes) -> list[Sheet]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError, EOFError) as exc:
        _log_detail(path, exc)
        raise TableError(f"文件 {path.name} 已损坏或不是有效的 .xlsx 文件(压缩包结构不完整,可能下载或复制时中断),"
                         "未导入任何数据。请在 Excel 中打开并另存为 .xlsx 后重试。") from None
    except Exception as exc:  # openpyxl raises assorted errors on damaged parts
        _log_detail(path, exc)
        raise TableError(f"文件 {path.name} 无法读取(文件中的表格内容有误),未导入任何数据。"
                         "请在 Excel 中打开并另存为 .xlsx 后重试。") from None
    sheets = []
    try:
        for ws in wb.worksheets:
            rows = []
            for number, values in enumerate(ws.iter_rows(values_only=True), 1):
                values = tuple(_clean(v) for v in values)
                if not _is_blank(values):
                    rows.append((number, values))
            if rows:
                sheets.append(Sheet(ws.title, rows))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        _log_detail(path, exc)
        raise TableError(f"文件 {path.name} 已损坏,读取工作表时出错(工作表内容不完整),未导入任何数据。"
                         "请在 Excel 中打开并另存为 .xlsx 后重试。") from None
    except Exception as exc:
        _log_detail(path, exc)
        raise TableError(f"文件 {path.name} 无法读取(文件中的表格内容有误),未导入任何数据。"
                         "请在 Excel 中打开并另存为 .xlsx 后重试。") from None
    finally:
        wb.close()
    return sheets


def decode_text(data: bytes, name: str = "") -> str:
    """CSV text: UTF-8 (with or without BOM), else GB18030 (a superset of GBK)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError(f"文件 {name} 的编码无法识别(支持 UTF-8 和 GBK/GB18030)。请另存为“CSV UTF-8”后重试。")


def _read_csv(path: Path, data: bytes) -> Sheet:
    text = decode_text(data, path.name)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    rows = []
    try:
        for number, values in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1):
            values = tuple(_clean(v) for v in values)
            if not _is_blank(values):
                rows.append((number, values))
    except csv.Error as exc:
        _log_detail(path, exc)
        raise TableError(f"文件 {path.name} 不是有效的 CSV(引号不成对,或某一格内容过长)。未导入任何数据。"
                         "请在 Excel 中打开并另存为“CSV UTF-8”后重试。") from None
    return Sheet(path.stem, rows)


def locate_header(sheet: Sheet, known: dict[str, str], normalise) -> int:
    """Find the header row among the first rows: the row whose cells (a blank cell takes the nearest
    non-blank cell above it, as a vertically merged header does) match the most known names.
    Sets sheet.header_row/headers and returns the number of matched columns (0: no header found)."""
    best, best_score = None, 0
    scan = sheet.rows[:HEADER_SCAN_ROWS]
    width = max((len(v) for _, v in scan), default=0)
    above: list = [None] * width
    for number, values in scan:
        resolved = []
        for c in range(width):
            v = values[c] if c < len(values) else None
            resolved.append(v if v is not None else above[c])
        score = sum(1 for v in resolved if normalise(v) in known)
        if score > best_score:
            best, best_score = (number, resolved, values), score
        for c in range(width):
            v = values[c] if c < len(values) else None
            if v is not None:
                above[c] = v
    if best is None or best_score < 2:
        return 0
    number, resolved, values = best
    sheet.header_row = number
    sheet.headers = [normalise(v) for v in resolved]
    sheet.raw_headers = list(resolved)
    return best_score
