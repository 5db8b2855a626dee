"""Reading .xlsx and .csv files as sheets of rows.

A workbook is read from its file as it is (no temporary copies on disk; bytes given instead, the
window's, are read from memory), a CSV file's bytes into memory once. Workbooks are opened with
openpyxl in read-only mode, so a sheet of 60,000 rows streams instead of building cell objects;
`Source` hands out a sheet's rows one at a time (the import never holds a whole sheet), `read_file`
collects them (small files: divisions lists, tests).
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import logging
import zipfile
from collections.abc import Iterator
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
    index: int = 0                           # the sheet's place in the file (Source.rows)


def _clean(value):
    if value is None:  # most cells of a wide ledger row (openpyxl fills the row out to the widest)
        return None
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
    """Every non-empty sheet of a .xlsx or .csv file with all its rows. Raises TableError with a
    Chinese message. (The import streams instead: `Source`.)"""
    source = Source(path, data)
    try:
        return [Sheet(s.title, list(source.rows(s.index)), index=s.index) for s in source.sheets(scan=1)]
    finally:
        source.close()


def _file_bytes(path: Path, data: bytes | None) -> bytes:
    if data is not None:
        return data
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TableError(f"找不到文件 {path}") from None
    except OSError as exc:
        raise TableError(f"无法读取文件 {path}:{exc.strerror}") from None


def _file_start(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except FileNotFoundError:
        raise TableError(f"找不到文件 {path}") from None
    except OSError as exc:
        raise TableError(f"无法读取文件 {path}:{exc.strerror}") from None


class Source:
    """A .xlsx or .csv file read sheet by sheet, row by row, as often as needed, without holding its
    rows: each pass over a sheet parses that sheet again (openpyxl read-only) from the file (a
    workbook is not held in memory: a 50,000-household ledger is 40 MB) or from the bytes given; a
    CSV file's bytes stay in memory. Raises TableError with a Chinese message, also while rows are
    being read. `close()` when done (a pass after it opens the file again)."""

    def __init__(self, path, data: bytes | None = None):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        self.is_csv = suffix in (".csv", ".txt")
        self._wb = None
        if self.is_csv:
            self.data = _file_bytes(self.path, data)
            return
        self.data = data  # None: read from the file
        start = data[:len(OLE_MAGIC)] if data is not None else _file_start(self.path, len(OLE_MAGIC))
        if start.startswith(OLE_MAGIC):
            raise TableError(f"文件 {self.path.name} 设置了打开密码,或是旧版 .xls 格式,无法读取。请在 Excel 中取消密码"
                             "(文件 › 信息 › 保护工作簿 › 用密码进行加密,清空密码)并另存为 .xlsx 后重试。未导入任何数据。")
        if suffix not in (".xlsx", ".xlsm") and not start.startswith(b"PK"):
            raise TableError(f"文件 {self.path.name} 不是 .xlsx 或 .csv 表格。请在 Excel 中另存为 .xlsx 或 CSV 后重试。")
        self._workbook()

    def _workbook(self):
        if self._wb is None:
            from openpyxl import load_workbook

            try:
                self._wb = load_workbook(self.path if self.data is None else io.BytesIO(self.data),
                                         read_only=True, data_only=True)
                # openpyxl finds a sheet's size by parsing it, when the sheet does not say it (its own
                # write-only files, our exports): that whole tree of emptied rows stays in a reference
                # cycle of ElementTree.iterparse until the cyclic collector runs (245 B a household)
                gc.collect()
            except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError, EOFError) as exc:
                _log_detail(self.path, exc)
                raise TableError(f"文件 {self.path.name} 已损坏或不是有效的 .xlsx 文件(压缩包结构不完整,可能下载或复制时中断),"
                                 "未导入任何数据。请在 Excel 中打开并另存为 .xlsx 后重试。") from None
            except Exception as exc:  # openpyxl raises assorted errors on damaged parts
                _log_detail(self.path, exc)
                raise TableError(f"文件 {self.path.name} 无法读取(文件中的表格内容有误),未导入任何数据。"
                                 "请在 Excel 中打开并另存为 .xlsx 后重试。") from None
        return self._wb

    def close(self) -> None:
        if self._wb is not None:
            self._wb.close()
            self._wb = None

    def titles(self) -> list[str]:
        return [self.path.stem] if self.is_csv else list(self._workbook().sheetnames)

    def sheets(self, scan: int = HEADER_SCAN_ROWS) -> list[Sheet]:
        """Every non-empty sheet, holding only its first `scan` non-blank rows (where the header is)."""
        out = []
        for index, title in enumerate(self.titles()):
            rows = []
            for row in self.rows(index):
                rows.append(row)
                if len(rows) >= scan:
                    break
            if rows or self.is_csv:  # an empty .csv is still a sheet (it has no header, which is said)
                out.append(Sheet(title, rows, index=index))
        return out

    def rows(self, index: int) -> Iterator[tuple[int, tuple]]:
        """The non-blank rows of sheet `index` as (1-based row number, cleaned cell values)."""
        if self.is_csv:
            yield from self._csv_rows()
            return
        ws = self._workbook().worksheets[index]
        try:
            rows = ws.iter_rows(values_only=True)
            for number, values in enumerate(rows, 1):
                values = tuple(map(_clean, values))
                if values.count(None) != len(values):  # not blank
                    yield number, values
            rows = None
            gc.collect()  # this pass's parsed tree, as above (the next pass would add its own)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
            _log_detail(self.path, exc)
            raise TableError(f"文件 {self.path.name} 已损坏,读取工作表时出错(工作表内容不完整),未导入任何数据。"
                             "请在 Excel 中打开并另存为 .xlsx 后重试。") from None
        except TableError:
            raise
        except Exception as exc:
            _log_detail(self.path, exc)
            raise TableError(f"文件 {self.path.name} 无法读取(文件中的表格内容有误),未导入任何数据。"
                             "请在 Excel 中打开并另存为 .xlsx 后重试。") from None

    def _csv_rows(self) -> Iterator[tuple[int, tuple]]:
        text = decode_text(self.data, self.path.name)
        first = text.split("\n", 1)[0]
        delimiter = "\t" if first.count("\t") > first.count(",") else ","
        try:
            for number, values in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1):
                values = tuple(_clean(v) for v in values)
                if not _is_blank(values):
                    yield number, values
        except csv.Error as exc:
            _log_detail(self.path, exc)
            raise TableError(f"文件 {self.path.name} 不是有效的 CSV(引号不成对,或某一格内容过长)。未导入任何数据。"
                             "请在 Excel 中打开并另存为“CSV UTF-8”后重试。") from None


def _log_detail(path: Path, exc: BaseException) -> None:
    """The library's English account of a damaged file goes to the log, not into the message."""
    logging.getLogger(__name__).info("%s: %s: %s", path.name, type(exc).__name__, exc)


def decode_text(data: bytes, name: str = "") -> str:
    """CSV text: UTF-8 (with or without BOM), else GB18030 (a superset of GBK)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise TableError(f"文件 {name} 的编码无法识别(支持 UTF-8 和 GBK/GB18030)。请另存为“CSV UTF-8”后重试。")


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
