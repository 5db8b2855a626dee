"""The household list: rows computed once (off the GUI thread) from the decrypted documents, then
filtered in memory. Typing in the search box runs store.search (an in-memory substring scan of the
decrypted names and numbers) and a set lookup per row: nothing is decrypted per keystroke.

Loading hands the rows over in parts (`load_parts`): a first screenful, then a thousand households
at a time, each part with its search index entries. The model takes each part in (`add_rows`)
where the current sort and filters put its rows, keeping the selection, so the list is usable from
the first part on while the rest is decrypted."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from app.core.dictionary import default
from app.core.validation import completeness
from app.store.search import SearchEntries

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


_LABELS: dict[int, tuple] = {}  # id(dictionary) -> (dictionary, {field: code -> label})


def _labels(d) -> dict:
    """The code lists of the list's code columns (a row is made for every household at unlock)."""
    found = _LABELS.get(id(d))
    if found is None or found[0] is not d:
        fields = d.kinds["household"].fields
        found = _LABELS[id(d)] = (d, {key: d.codes.get(fields[key].codes, {}) for key in ("attribute", "main_cause", "status")
                                      if fields[key].type == "code"})
    return found[1]


def row_of(doc: dict, d=None, photos: int = 0) -> Row:
    d = d or default()
    labels = _labels(d)

    def shown(key: str) -> str:  # Dictionary.display, for a code field without its lookups
        value = doc.get(key)
        codes = labels.get(key)
        if codes is None:
            return d.display("household", key, value)
        return "" if value is None or value == "" else codes.get(str(value), str(value))

    return Row(
        id=doc["id"],
        village_code=doc.get("village_code") or "",
        household_number=str(doc.get("household_number") or ""),
        head_name=str(doc.get("head_name") or ""),
        population=len(doc.get("members", [])),
        attribute=shown("attribute"),
        main_cause=shown("main_cause"),
        status=shown("status"),
        status_code=str(doc.get("status") or ""),
        cause_code=str(doc.get("main_cause") or ""),
        completeness=completeness(doc, d),
        photos=photos,
    )


FIRST_PART = 150  # households in the first part: more than a screenful at any window size
PART = 1000


@dataclass
class Part:
    """Some households' list rows and search index entries (`done` of `total` read so far; the
    first part's total is 0: not counted yet); `divisions` rides on the first part for the village
    tree (read by the worker, not the GUI)."""

    rows: list[Row]
    entries: SearchEntries
    done: int
    total: int
    divisions: list[dict] | None = None


def load_parts(store, part, progress=None, first: int = FIRST_PART, size: int = PART) -> int:
    """Every household's list row and search index entries, handed to `part(Part)` a part at a
    time (always at least one part, empty for an empty database), from one decryption of each
    household and member. A row needs the household and its members only (not incomes, visits,
    ...). Runs on a worker thread; touches nothing of the store but reading. Returns the number of
    households."""
    from app.services import attachments  # noqa: PLC0415

    d = default()
    photos = attachments.counts(store)
    houses = store.records("household", batch=first)  # the first part needs no more decrypted
    done, total, n = 0, 0, first  # total: counted after the first part (it reads every household's row)
    while True:
        batch = list(islice(houses, n))
        if not batch and done:
            break
        kids = store.children_of([h.id for h in batch], ["member"]) if batch else []
        members: dict[str, list[dict]] = defaultdict(list)
        for m in kids:
            members[m.parent_id].append(m.fields)
        rows = [row_of({"id": h.id, "village_code": h.village_code, **h.fields, "members": members.get(h.id, [])}, d,
                       photos.get(h.id, 0)) for h in batch]
        done += len(batch)
        if len(batch) < n:  # the last part
            total = done
        part(Part(rows, SearchEntries(batch + kids), done, max(total, done) if total else 0))
        if progress and total:
            progress(done, max(total, done))
        if len(batch) < n:
            break
        if not total:
            total = store.count("household")
        n = size
    return done


def rows_of(store, ids, d=None) -> dict[str, Row | None]:
    """Fresh list rows of these records (a commit touched them): a live household's row, None for
    a record that is not (or no longer) a live household; ids of no record are left out. A few
    queries for all of them (an import touches thousands)."""
    from app.services import attachments  # noqa: PLC0415

    d = d or default()
    records = store.get_many(list(ids))
    live = [r for r in records.values() if r.kind == "household" and not r.deleted]
    members: dict[str, list[dict]] = defaultdict(list)
    for m in store.children_of([h.id for h in live], ["member"]):
        members[m.parent_id].append(m.fields)
    if len(live) > 50:
        photos = attachments.counts(store)
    else:
        photos = {h.id: attachments.count_of(store, h.id) for h in live}
    out: dict[str, Row | None] = dict.fromkeys(records)
    for h in live:
        out[h.id] = row_of({"id": h.id, "village_code": h.village_code, **h.fields, "members": members.get(h.id, [])}, d,
                           photos.get(h.id, 0))
    return out


def load_rows(store, progress=None) -> list[Row]:
    """Every household's list row at once, and the store's search index built from the same
    records (`load_parts` collected; for scripts and tests)."""
    rows: list[Row] = []
    store.start_search_index()

    def take(p: Part) -> None:
        rows.extend(p.rows)
        store.add_search_entries(p.entries)

    load_parts(store, take, progress)
    return rows


_CELLS = [attrgetter("household_number"), attrgetter("head_name"), attrgetter("population"), attrgetter("attribute"),
          attrgetter("main_cause"), attrgetter("status"), lambda r: f"{r.completeness:.0%}",
          lambda r: r.photos or ""]
_SORT_KEYS = [attrgetter("household_number"), attrgetter("head_name"), attrgetter("population"),
              attrgetter("attribute"), attrgetter("main_cause"), attrgetter("status"), attrgetter("completeness"),
              attrgetter("photos")]


class HouseholdModel(QAbstractTableModel):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.rows: list[Row] = []
        self.visible: list[int] = []  # indexes into rows, filtered and in the sort order
        self._by_id: dict[str, int] = {}
        self.village_prefix = ""  # "" all, a township code (9 digits) or a village code (12)
        self.status = ""
        self.cause = ""
        self.text = ""
        self.sort_column: int | None = None  # None: in the order the households were read
        self.sort_order = Qt.AscendingOrder
        self._search_ids: set[str] | None = None
        self._reasons: dict[str, str] = {}  # why a household matched the search, asked when shown

    # ---------------------------------------------------------------- data
    def set_rows(self, rows: list[Row]) -> None:
        self.beginResetModel()
        self.rows = rows
        self._by_id = {r.id: i for i, r in enumerate(rows)}
        self.visible = self._filtered()
        self.endResetModel()

    def add_rows(self, rows: list[Row]) -> None:
        """Take in more households (a part of the loading): each goes where the sort and filters
        put it, the selection and the current row stay on their households. The store's search
        index must already hold the new households' entries."""
        if not rows:
            return
        first = len(self.rows)
        self.rows.extend(rows)
        for i, r in enumerate(rows, first):
            self._by_id[r.id] = i
        if self.text:
            self._search_ids = set(self.store.search(self.text))
        new = self._passing(first)
        if not new:
            return
        at = len(self.visible)
        merged = self._sorted(self.visible + new)
        if merged[:at] == self.visible:  # all after the rows shown (reading order is often the sort order)
            self.beginInsertRows(QModelIndex(), at, at + len(new) - 1)
            self.visible.extend(merged[at:])
            self.endInsertRows()
        else:
            self._relayout(merged)

    def clear(self) -> None:
        """Forget every row (the window is locked, or reads the list again)."""
        self._search_ids = None
        self._reasons = {}
        self.set_rows([])

    def update_row(self, row: Row | None, household_id: str) -> None:
        """Put a changed household (or remove a deleted one) and re-filter."""
        self.update_rows({household_id: row})

    def update_rows(self, changed: dict[str, Row | None]) -> None:
        """Put changed households (None: remove that one) and re-filter, once for all of them."""
        gone = set()
        for household_id, row in changed.items():
            i = self._by_id.get(household_id)
            if row is None:
                if i is not None:
                    gone.add(i)
            elif i is not None:
                self.rows[i] = row
            else:
                self._by_id[household_id] = len(self.rows)
                self.rows.append(row)
        if gone:
            self.rows = [r for i, r in enumerate(self.rows) if i not in gone]
        if self.text:
            self._search_ids = set(self.store.search(self.text))
            self._reasons = {}
        self.set_rows(self.rows)

    def row_at(self, view_row: int) -> Row:
        return self.rows[self.visible[view_row]]

    def row_of_id(self, household_id: str) -> Row | None:
        i = self._by_id.get(household_id)
        return None if i is None else self.rows[i]

    def view_row_of(self, household_id: str) -> int:
        i = self._by_id.get(household_id)
        try:
            return self.visible.index(i)
        except ValueError:
            return -1

    # ---------------------------------------------------------------- filters and order
    def _passing(self, first: int = 0) -> list[int]:
        """Indexes of the rows from `first` on that pass the search and the filters."""
        ids, prefix, status, cause = self._search_ids, self.village_prefix, self.status, self.cause
        rows = enumerate(self.rows[first:], first) if first else enumerate(self.rows)
        if ids is None and not (prefix or status or cause):
            return list(range(first, len(self.rows)))
        return [i for i, r in rows
                if (ids is None or r.id in ids)
                and (not prefix or r.village_code.startswith(prefix))
                and (not status or r.status_code == status)
                and (not cause or r.cause_code == cause)]

    def _sorted(self, indexes: list[int]) -> list[int]:
        """`indexes` in the current sort order (stable: equal keys keep the order of reading)."""
        if self.sort_column is None:
            return indexes  # already in the order of reading
        if self.sort_column == MATCH_COLUMN:
            key = lambda r: self.reason(r.id)  # noqa: E731
        else:
            key = _SORT_KEYS[self.sort_column]
        rows = self.rows
        return sorted(indexes, key=lambda i: key(rows[i]), reverse=self.sort_order == Qt.DescendingOrder)

    def _filtered(self) -> list[int]:
        return self._sorted(self._passing())

    def _relayout(self, visible: list[int]) -> None:
        """Show `visible` instead, moving the selection and the current row with their households."""
        self.layoutAboutToBeChanged.emit()
        before = self.visible
        self.visible = visible
        old = self.persistentIndexList()
        if old:
            where = {v: i for i, v in enumerate(visible)}
            new = []
            for index in old:
                at = where.get(before[index.row()]) if index.row() < len(before) else None
                new.append(QModelIndex() if at is None else self.index(at, index.column()))
            self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()

    def refilter(self) -> None:
        self.beginResetModel()
        self.visible = self._filtered()
        self.endResetModel()

    def set_search(self, text: str) -> None:
        self.text = text.strip()
        self._search_ids = set(self.store.search(self.text)) if self.text else None
        self._reasons = {}
        self.refilter()

    def reason(self, household_id: str) -> str:
        """Why the household matched the current search ("" without a search)."""
        if not self.text or self._search_ids is None or household_id not in self._search_ids:
            return ""
        found = self._reasons.get(household_id)
        if found is None:  # only for rows painted (or sorted by it): a keystroke asks a screenful
            found = self._reasons[household_id] = match_text(
                self.store.search_reasons(self.text, [household_id]).get(household_id))
        return found

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
            column = index.column()
            if column == MATCH_COLUMN:
                return self.reason(row.id)
            return _CELLS[column](row)
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
        """Order the list (kept through filtering, searching and loading); the selection stays."""
        self.sort_column, self.sort_order = column, order
        self._relayout(self._sorted(self.visible))
