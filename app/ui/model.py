"""The household list: rows computed once (off the GUI thread) from the decrypted documents, then
filtered in memory. Typing in the search box runs store.search (an in-memory substring scan of the
decrypted names and numbers) and a set lookup per row: nothing is decrypted per keystroke."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from app.core.dictionary import default
from app.core.validation import completeness

DISPLAY, ALIGNMENT, USER = int(Qt.DisplayRole.value), int(Qt.TextAlignmentRole.value), int(Qt.UserRole.value)
RIGHT = int((Qt.AlignRight | Qt.AlignVCenter).value)
CENTER = int(Qt.AlignCenter.value)
COLUMNS = ["户编号", "户主", "人口", "属性", "主要致贫原因", "状态", "完整度", "照片", "搜索匹配"]
PHOTO_COLUMN = 7
MATCH_COLUMN = 8
MATCH_WORDS = {"household_number": "户编号", "head_name": "户主", "phone": "电话",
               "member_name": "成员", "member_id_number": "成员身份证号"}


def match_text(reason: tuple[str, str] | None) -> str:
    """Why a household is in the search result, in words: 成员“张三”, 户编号 …"""
    if not reason:
        return ""
    field, value = reason
    if field == "member_name":
        return f"成员“{value}”"
    if field == "member_id_number":
        return f"成员“{value}”的身份证号"
    return MATCH_WORDS.get(field, field)


@dataclass
class Row:
    id: str
    village_code: str
    household_number: str
    head_name: str
    population: int
    attribute: str
    main_cause: str
    status: str
    status_code: str
    cause_code: str
    completeness: float
    photos: int = 0  # attachments (photos and scans) of the household

    def cells(self) -> tuple:
        return (self.household_number, self.head_name, self.population, self.attribute, self.main_cause,
                self.status, f"{self.completeness:.0%}", self.photos or "")


def row_of(doc: dict, d=None, photos: int = 0) -> Row:
    d = d or default()
    return Row(
        id=doc["id"],
        village_code=doc.get("village_code") or "",
        household_number=str(doc.get("household_number") or ""),
        head_name=str(doc.get("head_name") or ""),
        population=len(doc.get("members", [])),
        attribute=d.display("household", "attribute", doc.get("attribute")),
        main_cause=d.display("household", "main_cause", doc.get("main_cause")),
        status=d.display("household", "status", doc.get("status")),
        status_code=str(doc.get("status") or ""),
        cause_code=str(doc.get("main_cause") or ""),
        completeness=completeness(doc, d),
        photos=photos,
    )


def load_rows(store, progress=None) -> list[Row]:
    """Every household's list row, and the search index, from one decryption of each household and
    member (the index is built from the same records). Runs on a worker thread.
    A row needs the household and its members only (not incomes, visits, ...)."""
    d = default()
    total = store.count("household")
    member_records = list(store.records("member"))
    members: dict[str, list[dict]] = defaultdict(list)
    for m in member_records:
        members[m.parent_id].append(m.fields)
    if progress:
        progress(total // 2, total * 2)
    from app.services import attachments  # noqa: PLC0415

    photos = attachments.counts(store)
    rows = []
    house_records = []
    for i, h in enumerate(store.records("household"), 1):
        house_records.append(h)
        rows.append(row_of({"id": h.id, "village_code": h.village_code, **h.fields, "members": members.get(h.id, [])}, d,
                           photos.get(h.id, 0)))
        if progress and i % 500 == 0:
            progress(total // 2 + i // 2, total * 2)
    store.build_search_index(records=house_records + member_records)
    if progress:
        progress(total * 2, total * 2)
    return rows


class HouseholdModel(QAbstractTableModel):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.rows: list[Row] = []
        self.visible: list[int] = []
        self._by_id: dict[str, int] = {}
        self.village_prefix = ""  # "" all, a township code (9 digits) or a village code (12)
        self.status = ""
        self.cause = ""
        self.text = ""
        self._search_ids: set[str] | None = None
        self._reasons: dict[str, tuple[str, str]] = {}

    # ---------------------------------------------------------------- data
    def set_rows(self, rows: list[Row]) -> None:
        self.beginResetModel()
        self.rows = rows
        self._by_id = {r.id: i for i, r in enumerate(rows)}
        self.visible = self._filtered()
        self.endResetModel()

    def clear(self) -> None:
        """Forget every row (the window is locked)."""
        self._search_ids = None
        self.set_rows([])

    def update_row(self, row: Row | None, household_id: str) -> None:
        """Put a changed household (or remove a deleted one) and re-filter."""
        if row is None:
            if household_id in self._by_id:
                self.rows.pop(self._by_id[household_id])
        elif household_id in self._by_id:
            self.rows[self._by_id[household_id]] = row
        else:
            self.rows.append(row)
        if self.text:
            self._search_ids = set(self.store.search(self.text))
            self._reasons = self.store.search_reasons(self.text, self._search_ids)
        self.set_rows(self.rows)

    def row_at(self, view_row: int) -> Row:
        return self.rows[self.visible[view_row]]

    def view_row_of(self, household_id: str) -> int:
        i = self._by_id.get(household_id)
        try:
            return self.visible.index(i)
        except ValueError:
            return -1

    # ---------------------------------------------------------------- filters
    def _filtered(self) -> list[int]:
        ids, prefix, status, cause = self._search_ids, self.village_prefix, self.status, self.cause
        return [i for i, r in enumerate(self.rows)
                if (ids is None or r.id in ids)
                and (not prefix or r.village_code.startswith(prefix))
                and (not status or r.status_code == status)
                and (not cause or r.cause_code == cause)]

    def refilter(self) -> None:
        self.beginResetModel()
        self.visible = self._filtered()
        self.endResetModel()

    def set_search(self, text: str) -> None:
        self.text = text.strip()
        self._search_ids = set(self.store.search(self.text)) if self.text else None
        self._reasons = self.store.search_reasons(self.text, self._search_ids) if self.text else {}
        self.refilter()

    def reason(self, household_id: str) -> str:
        """Why the household matched the current search ("" without a search)."""
        return match_text(self._reasons.get(household_id)) if self.text else ""

    def set_filters(self, village_prefix: str | None = None, status: str | None = None, cause: str | None = None) -> None:
        if village_prefix is not None:
            self.village_prefix = village_prefix
        if status is not None:
            self.status = status
        if cause is not None:
            self.cause = cause
        self.refilter()

    # ---------------------------------------------------------------- Qt model
    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.visible)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=DISPLAY):
        # called for every role of every cell painted or measured (fitting the columns asks
        # thousands of times): plain int comparisons, no enum arithmetic per call
        if role == DISPLAY:
            if not index.isValid():
                return None
            row = self.rows[self.visible[index.row()]]
            if index.column() == MATCH_COLUMN:
                return self.reason(row.id)
            return row.cells()[index.column()]
        if role == ALIGNMENT:
            if not index.isValid():
                return None
            column = index.column()
            return RIGHT if column in (2, 6) else CENTER if column == PHOTO_COLUMN else None
        if role == USER and index.isValid():
            return self.rows[self.visible[index.row()]].id
        return None

    def headerData(self, section, orientation, role=Qt.DisplayRole):
        if role == Qt.DisplayRole and orientation == Qt.Horizontal:
            return COLUMNS[section]
        return None

    def sort(self, column, order=Qt.AscendingOrder):
        key = [lambda r: r.household_number, lambda r: r.head_name, lambda r: r.population, lambda r: r.attribute,
               lambda r: r.main_cause, lambda r: r.status, lambda r: r.completeness, lambda r: r.photos,
               lambda r: self.reason(r.id)][column]
        self.beginResetModel()
        self.visible.sort(key=lambda i: key(self.rows[i]), reverse=order == Qt.DescendingOrder)
        self.endResetModel()
