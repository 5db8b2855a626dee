"""Several programs on one database (a county on PostgreSQL): what a `Store` keeps in memory must be
brought up to date with what the others committed. Part of `Store` (app/store/db.py).

A SQLite database has one writer (the file lock), so nothing here runs for it. On PostgreSQL every
write transaction holds the database's write lock (app/store/postgres.py) from its first statement;
right after taking it, `_refresh_shared` re-reads what other programs may have moved on:

- the next change sequence number of this site (`_next_seq`, read again from the log),
- the hybrid clock (`meta.clock`: a change made here must sort after every change already stored),
- the in-memory search index and its 户编号 map (records named in the change log since this
  program last looked are decrypted and indexed again).

Readers refresh the search index the same way before answering a search.

A reading that must see one moment of the database across many statements (the integrity check
compares records with their change log, batch by batch) runs inside `one_moment()`: on PostgreSQL a
REPEATABLE READ, READ ONLY transaction, so what others commit meanwhile is not half seen."""

from __future__ import annotations

import contextlib


class SharedWriters:
    """Keeping a `Store`'s caches true beside other writers (uses `conn`, `shared`, `clock`,
    `_search`, `get_many`, `_index_record`)."""

    shared = False          # set by Store for a database other programs write at the same time
    _log_seen: int | None = None  # the change log's position up to which the search index is current

    @contextlib.contextmanager
    def one_moment(self):
        """Every read in the block sees the database as it was at the block's first statement, even
        while other programs write (a shared database: PostgreSQL's REPEATABLE READ, READ ONLY). A
        database with one writer (SQLite, the file lock), or a block inside an open transaction (a
        reader's `snapshot`, a write), reads as it already does. Writes in the block are refused."""
        if not self.shared or self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def _log_position(self) -> int:
        return self.conn.execute("SELECT coalesce(max(rowid), 0) FROM changes").fetchone()[0]

    def _refresh_shared(self) -> None:
        """Inside a write transaction, holding the write lock: take in what others committed."""
        self._next_seq = None
        clock, top = self.conn.execute(  # one round trip: a county's writes are many and small
            "SELECT (SELECT value FROM meta WHERE key = 'clock'), (SELECT coalesce(max(rowid), 0) FROM changes)").fetchone()
        if clock:
            self.clock.observe(clock)
        self._catch_up_search(top)

    def _catch_up_search(self, top: int | None = None) -> None:
        if self._search is None or self._log_seen is None:
            return
        if top is None:
            top = self._log_position()
        if top == self._log_seen:
            return
        ids = [r[0] for r in self.conn.execute(
            "SELECT DISTINCT record_id FROM changes WHERE rowid > ? AND rowid <= ?", (self._log_seen, top))]
        by_id = self.get_many(ids)
        for rid in ids:
            record = by_id.get(rid)
            if record is not None and record.kind in ("household", "member"):
                self._index_record(record)
        self._log_seen = top

    def _before_commit_shared(self) -> None:
        """Our own writes are in the index already: the log up to here is taken in."""
        if self._search is not None and self._log_seen is not None:
            self._log_seen = self._log_position()

    # the search index of a shared database starts from the log position it was built at

    def build_search_index(self, progress=None, records=None) -> None:
        if self.shared:
            self._log_seen = self._log_position()  # before reading: what comes after is caught up later
        super().build_search_index(progress, records)

    def start_search_index(self) -> None:  # the window's index, filled in parts (search.py)
        if self.shared:
            self._log_seen = self._log_position()
        super().start_search_index()

    def search(self, text: str, limit: int | None = None) -> list[str]:
        self._catch_up_reading()
        return super().search(text, limit)

    def find_household_number(self, number: str) -> list[str]:
        self._catch_up_reading()
        return super().find_household_number(number)

    def _catch_up_reading(self) -> None:
        if self.shared and self._search is not None and self.unlocked and not self.conn.in_transaction:
            self._catch_up_search()
