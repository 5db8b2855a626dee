"""Finding records without decrypting the database: the blind index of members' ID numbers and of
households' 户编号 (an HMAC under the index key, on disk: checking a number needs nothing in memory)
and the in-memory substring index of household numbers, names, phones and ID numbers (built when
something first searches, forgotten at lock). Part of `Store` (app/store/db.py).

A database from before schema version 7 has no 户编号 rows: they are written at the first unlock
after the upgrade (`fill_household_numbers`, one transaction, like app/store/bodies.py's conversion);
until then `meta.number_index` says pending and a lookup reads the households instead."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from app.core import idnumber
from app.core.text import tidy_name
from app.store import bodies, crypto
from app.store.base import Record, StoreLocked


_CHUNK = 500  # ids per IN (...) list
_FILL_BATCH = 2000  # households read at a time by fill_household_numbers
NUMBER_INDEX = "number_index"  # meta key: "pending" until the 户编号 rows of an older database are written
NUMBER_FIELD = "household_number"


def number_key(number) -> str:
    """What a 户编号 is looked up by: as stored, without surrounding spaces (as the in-memory map of
    the code before it compared them: a number typed with a space before or after is found)."""
    return str(number or "").strip()


def _blind_value(record: Record) -> tuple[str, str] | None:
    """(field, normalised value) this record has in the blind index, or None."""
    if record.deleted:
        return None
    if record.kind == "member":
        number = record.fields.get("id_number")
        return ("id_number", idnumber.normalise(number)) if number else None
    if record.kind == "household":
        number = number_key(record.fields.get(NUMBER_FIELD))
        return (NUMBER_FIELD, number) if number else None
    return None


def number_index_pending(conn) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (NUMBER_INDEX,)).fetchone()
    return row is not None and row[0] == "pending"


def set_number_index(conn, value: str) -> None:
    conn.execute("DELETE FROM meta WHERE key = ?", (NUMBER_INDEX,))
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (NUMBER_INDEX, value))



def search_text(text: str) -> str:
    """What a search looks for: as the index holds it (upper case), with full-width digits and
    letters made ASCII (an input method in full-width mode types ５２２６…Ｘ) and a space typed next
    to a Chinese character dropped (郭 宇山), as names are stored (app.core.text.tidy_name)."""
    return tidy_name(unicodedata.normalize("NFKC", text)).upper()


class SearchIndex:
    """The blind index and the search index of a `Store` (uses its `conn`, `_index_key`,
    `records()`, `_decode_rows()`, `count()`, `_require()`)."""

    _numbers_filled = False  # the 户编号 rows are known to be written (meta.number_index not pending)

    _blinder: tuple = (None, None)  # (index key, crypto.blind_digester of it), made at first use

    def blind(self, field_type: str, value: str) -> bytes:
        key = self._index_key
        if key is None:
            raise StoreLocked("数据库已锁定,请先输入密码解锁")
        held, digest = self._blinder
        if held is not key:  # a new unlock (or another key): keyed anew
            digest = crypto.blind_digester(key)
            self._blinder = (key, digest)
        return digest(field_type, value)

    def _update_blind_index(self, record: Record) -> None:
        if record.kind not in ("member", "household"):
            return
        self.conn.execute("DELETE FROM blind_index WHERE record_id = ?", (record.id,))
        value = _blind_value(record)
        if value is not None:
            self.conn.execute("INSERT INTO blind_index(record_id, field, digest) VALUES (?, ?, ?)",
                              (record.id, value[0], self.blind(*value)))

    def _update_blind_index_many(self, records: list[Record], new: set[str] | frozenset = frozenset()) -> list[tuple]:
        """`_update_blind_index` for many records in a few statements (a merge writes a bundle's
        records at once; on PostgreSQL each statement is a round trip to the server). `new`: ids of
        records that were not held before, which have no rows to drop. Returns the rows written
        (record id, field, digest): each of these records' rows in the index now."""
        indexed = [r for r in records if r.kind in ("member", "household")]
        held = [r.id for r in indexed if r.id not in new]
        for start in range(0, len(held), _CHUNK):
            ids = held[start:start + _CHUNK]
            self.conn.execute(f"DELETE FROM blind_index WHERE record_id IN ({','.join('?' * len(ids))})", ids)
        rows = [(r.id, value[0], self.blind(*value)) for r in indexed if (value := _blind_value(r)) is not None]
        if rows:
            self.conn.executemany("INSERT INTO blind_index(record_id, field, digest) VALUES (?, ?, ?)", rows)
        return rows

    def _blind_row(self, record: Record) -> tuple[str, str, bytes] | None:
        """The blind index row of a new record (`create_many`), or None."""
        value = _blind_value(record)
        return None if value is None else (record.id, value[0], self.blind(*value))

    def fill_household_numbers(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Write the 户编号 rows of the blind index of a database from before them (schema version 7),
        in the caller's transaction: cut off, it leaves none and the next unlock writes them all.
        Reads the households in pages of ids (nothing of the whole held at once). Returns how many
        rows were written."""
        self.conn.execute("DELETE FROM blind_index WHERE field = ?", (NUMBER_FIELD,))
        total = self.count("household") if progress else 0
        if progress:
            progress(0, total)
        done = read = 0
        last = ""
        while True:
            rows = self.conn.execute(f"SELECT {bodies.LIVE_COLUMNS} FROM records WHERE kind = 'household' AND deleted = 0 "
                                     "AND id > ? ORDER BY id LIMIT ?", (last, _FILL_BATCH)).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            read += len(rows)
            found = [row for record in self._decode_rows(rows) if (row := self._blind_row(record)) is not None]
            if found:
                self.conn.executemany("INSERT INTO blind_index(record_id, field, digest) VALUES (?, ?, ?)", found)
            done += len(found)
            if progress:
                progress(min(read, total), total)
        set_number_index(self.conn, "done")
        return done

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

    def duplicate_household_numbers(self) -> set[str] | None:
        """Ids of the live households whose 户编号 another one also carries (through the blind index);
        None while its 户编号 rows are still to be written (a reader beside a writer not yet unlocked)."""
        if self._numbers_pending():
            return None
        rows = self.conn.execute(
            "SELECT group_concat(record_id, ',') FROM blind_index WHERE field = ? GROUP BY digest HAVING count(*) > 1",
            (NUMBER_FIELD,))
        return {rid for (group,) in rows for rid in group.split(",")}

    def _index_record(self, record: Record) -> None:
        if record.kind == "household":
            key = record.id
            text = "\x1f".join(str(record.fields.get(k, "")) for k in ("household_number", "head_name", "phone"))
            own = f"{record.id}|h"
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
        self._search, self._search_parts = {}, {}
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
        self._search, self._search_parts = {}, {}

    def forget_search_index(self) -> None:
        """Drop a search index left unfinished (it is built again on first use)."""
        self._search = None

    def add_search_entries(self, entries: "SearchEntries") -> None:
        """Add the entries `search_entries` built (of households not yet in the index)."""
        if self._search is None:
            self.start_search_index()
        self._search.update(entries._search)
        self._search_parts.update(entries._search_parts)

    def find_household_number(self, number: str) -> list[str]:
        """Ids of current households whose 户编号 is exactly `number` (surrounding spaces aside),
        through the blind index: nothing is decrypted and nothing is kept in memory."""
        self._require()
        key = number_key(number)
        if not key:
            return []
        if self._numbers_pending():  # a reader of a database whose writer has not yet written the rows
            return sorted(h.id for h in self.records("household") if number_key(h.fields.get(NUMBER_FIELD)) == key)
        digest = self.blind(NUMBER_FIELD, key)
        return sorted(r[0] for r in self.conn.execute(
            "SELECT record_id FROM blind_index WHERE digest = ? AND field = ?", (digest, NUMBER_FIELD)))

    def _numbers_pending(self) -> bool:
        if self._numbers_filled:
            return False
        pending = number_index_pending(self.conn)
        self._numbers_filled = not pending  # once written, never pending again
        return pending

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
            elif record.kind == "member":
                own = parts.get(record.parent_id)
                if own is None:
                    own = parts[record.parent_id] = {}
                own[f"{record.id}|m"] = f"{f.get('name', '')}\x1f{f.get('id_number', '')}"
        self._search = {key: "\x1f".join(own.values()).upper() for key, own in parts.items()}
