"""Finding records without decrypting the database: the blind index of ID numbers (an HMAC under
the index key, on disk) and the in-memory substring index of household numbers, names, phones and
ID numbers (built after unlock, forgotten at lock). Part of `Store` (app/store/db.py)."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from app.core import idnumber
from app.core.text import tidy_name
from app.store import crypto
from app.store.base import Record, StoreLocked


_CHUNK = 500  # ids per IN (...) list



def search_text(text: str) -> str:
    """What a search looks for: as the index holds it (upper case), with full-width digits and
    letters made ASCII (an input method in full-width mode types ５２２６…Ｘ) and a space typed next
    to a Chinese character dropped (郭 宇山), as names are stored (app.core.text.tidy_name)."""
    return tidy_name(unicodedata.normalize("NFKC", text)).upper()


class SearchIndex:
    """The blind index and the search index of a `Store` (uses its `conn`, `_index_key`,
    `records()`, `_require()`)."""

    def blind(self, field_type: str, value: str) -> bytes:
        if self._index_key is None:
            raise StoreLocked("数据库已锁定,请先输入密码解锁")
        return crypto.blind_digest(self._index_key, field_type, value)

    def _update_blind_index(self, record: Record) -> None:
        if record.kind != "member":
            return
        self.conn.execute("DELETE FROM blind_index WHERE record_id = ?", (record.id,))
        number = record.fields.get("id_number")
        if number and not record.deleted:
            digest = self.blind("id_number", idnumber.normalise(number))
            self.conn.execute("INSERT INTO blind_index(record_id, field, digest) VALUES (?, 'id_number', ?)", (record.id, digest))

    def _update_blind_index_many(self, records: list[Record], new: set[str] | frozenset = frozenset()) -> None:
        """`_update_blind_index` for many records in a few statements (a merge writes a bundle's
        records at once; on PostgreSQL each statement is a round trip to the server). `new`: ids of
        records that were not held before, which have no rows to drop."""
        members = [r for r in records if r.kind == "member"]
        held = [r.id for r in members if r.id not in new]
        for start in range(0, len(held), _CHUNK):
            ids = held[start:start + _CHUNK]
            self.conn.execute(f"DELETE FROM blind_index WHERE record_id IN ({','.join('?' * len(ids))})", ids)
        rows = [(r.id, self.blind("id_number", idnumber.normalise(r.fields["id_number"]))) for r in members
                if r.fields.get("id_number") and not r.deleted]
        if rows:
            self.conn.executemany("INSERT INTO blind_index(record_id, field, digest) VALUES (?, 'id_number', ?)", rows)

    def find_id_number(self, number: str) -> list[str]:
        """Ids of current member records holding this ID number (through the blind index)."""
        digest = self.blind("id_number", idnumber.normalise(number))
        return [r[0] for r in self.conn.execute("SELECT record_id FROM blind_index WHERE digest = ?", (digest,))]

    def duplicate_id_numbers(self) -> list[list[str]]:
        """Groups of member ids that share an ID number."""
        rows = self.conn.execute(
            "SELECT group_concat(record_id, ',') FROM blind_index WHERE field = 'id_number' GROUP BY digest HAVING count(*) > 1"
        )
        return [r[0].split(",") for r in rows]

    def _index_record(self, record: Record) -> None:
        if record.kind == "household":
            key = record.id
            text = "\x1f".join(str(record.fields.get(k, "")) for k in ("household_number", "head_name", "phone"))
            own = f"{record.id}|h"
            number = None if record.deleted else str(record.fields.get("household_number") or "") or None
            before = self._number_of.pop(record.id, None)
            if before is not None:
                self._numbers.get(before, set()).discard(record.id)
            if number is not None:
                self._numbers.setdefault(number, set()).add(record.id)
                self._number_of[record.id] = number
        elif record.kind == "member":
            key = record.parent_id
            text = "\x1f".join(str(record.fields.get(k, "")) for k in ("name", "id_number"))
            own = f"{record.id}|m"
        else:
            return
        parts = self._search_parts.setdefault(key, {})
        if record.deleted:
            parts.pop(own, None)
        else:
            parts[own] = text
        self._search[key] = "\x1f".join(parts.values()).upper()

    def build_search_index(self, progress: Callable[[int, int], None] | None = None,
                           records: list[Record] | None = None) -> None:
        """Decrypt household and member names into memory for substring search. `records`: the
        households and members the caller has just decrypted (households first), indexed instead
        of decrypting them again (the window's list reads them anyway)."""
        self._require()
        self._search, self._search_parts, self._numbers, self._number_of = {}, {}, {}, {}
        if records is not None:
            for record in records:
                if not record.deleted:
                    self._index_record(record)
            return
        total = self.conn.execute("SELECT count(*) FROM records WHERE kind IN ('household','member') AND deleted = 0").fetchone()[0]
        i = 0
        for kind in ("household", "member"):  # through records(): a damaged record is skipped and named
            for record in self.records(kind):
                self._index_record(record)
                i += 1
                if progress and i % 1000 == 0:
                    progress(i, total)
        if progress:
            progress(total, total)

    def start_search_index(self) -> None:
        """An empty search index, filled piece by piece with `add_search_entries` (the window's
        list, which decrypts households in parts on a worker thread). A search meanwhile answers
        from the households added so far."""
        self._require()
        self._search, self._search_parts, self._numbers, self._number_of = {}, {}, {}, {}

    def forget_search_index(self) -> None:
        """Drop a search index left unfinished (it is built again on first use)."""
        self._search = None

    def add_search_entries(self, entries: "SearchEntries") -> None:
        """Add the entries `search_entries` built (of households not yet in the index)."""
        if self._search is None:
            self.start_search_index()
        self._search.update(entries._search)
        self._search_parts.update(entries._search_parts)
        for number, ids in entries._numbers.items():
            self._numbers.setdefault(number, set()).update(ids)
        self._number_of.update(entries._number_of)

    def find_household_number(self, number: str) -> list[str]:
        """Ids of current households whose 户编号 is exactly `number` (through the in-memory search
        index, built on first use)."""
        self._require()
        if self._search is None:
            self.build_search_index()
        return sorted(self._numbers.get(str(number).strip(), ()))

    def search(self, text: str, limit: int | None = None) -> list[str]:
        """Household ids whose household number, head's name, phone, or any member's name or ID
        number contains `text` (case-insensitive)."""
        self._require()
        if self._search is None:
            self.build_search_index()
        needle = search_text(text)
        if not needle:
            return list(self._search)[:limit] if limit else list(self._search)
        out = [hid for hid, hay in self._search.items() if needle in hay]
        return out[:limit] if limit else out

    def search_reasons(self, text: str, ids) -> dict[str, tuple[str, str]]:
        """Why each of these households matched a search for `text`: (field, the value that
        matched) with field one of household_number, head_name, phone (the household's own), or
        member_name / member_id_number (a member's; the value is the member's name)."""
        self._require()
        if self._search is None:
            self.build_search_index()
        needle = search_text(text)
        out = {}
        for hid in ids:
            parts = self._search_parts.get(hid, {})
            own = parts.get(f"{hid}|h", "").split("\x1f")
            found = next(((k, v) for k, v in zip(("household_number", "head_name", "phone"), own)
                          if needle and needle in v.upper()), None)
            if found is None:
                for key, part in parts.items():
                    if key.endswith("|m"):
                        name, _, number = part.partition("\x1f")
                        if needle in name.upper():
                            found = ("member_name", name)
                        elif needle in number.upper():
                            found = ("member_id_number", name)
                        if found:
                            break
            if found:
                out[hid] = found
        return out


class SearchEntries:
    """Search index entries of some households, built from their records already decrypted
    (each household with all its live members), on any thread: nothing of a store is touched.
    `Store.add_search_entries` puts them in the store's index (on the thread that searches).
    The same entries `_index_record` makes one record at a time, in one pass."""

    def __init__(self, records=()) -> None:
        self._search: dict[str, str] = {}
        self._search_parts: dict[str, dict[str, str]] = {}
        self._numbers: dict[str, set[str]] = {}
        self._number_of: dict[str, str] = {}
        parts = self._search_parts
        for record in records:
            if record.deleted:
                continue
            f = record.fields
            if record.kind == "household":
                own = parts.get(record.id)
                if own is None:
                    own = parts[record.id] = {}
                own[f"{record.id}|h"] = f"{f.get('household_number', '')}\x1f{f.get('head_name', '')}\x1f{f.get('phone', '')}"
                number = str(f.get("household_number") or "")
                if number:
                    self._numbers.setdefault(number, set()).add(record.id)
                    self._number_of[record.id] = number
            elif record.kind == "member":
                own = parts.get(record.parent_id)
                if own is None:
                    own = parts[record.parent_id] = {}
                own[f"{record.id}|m"] = f"{f.get('name', '')}\x1f{f.get('id_number', '')}"
        self._search = {key: "\x1f".join(own.values()).upper() for key, own in parts.items()}
