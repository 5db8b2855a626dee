"""Excel and CSV tables: import existing 台账 (ledgers) and export registers. No Qt here.

- `app.tables.mapping`: column headers to dictionary fields (Chinese labels and synonyms), mapping files.
- `app.tables.reader`: .xlsx (openpyxl read-only) and .csv (UTF-8 with/without BOM, GBK/GB18030) into rows.
- `app.tables.importer`: grouping rows into household documents, dry run, one-transaction import,
  the error workbook.
- `app.tables.exporter`: village/township registers and full household data to .xlsx or .csv.
"""

from app.tables.reader import TableError

__all__ = ["TableError"]
