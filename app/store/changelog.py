"""The change log: every write's change row (sealed), this site's sequence numbers, the audit trail
(`history`), the log in order for sync (`changes`). Part of `Store` (app/store/db.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import orjson

from app.store import crypto
from app.store.crypto import NONCE
from app.store.base import Change, _dumps, _loads


INSERT_CHANGES = ("INSERT INTO changes(site_id, seq, record_id, kind, village_code, parent_id, hlc, key_version, payload) "
                  "VALUES (?,?,?,?,?,?,?,?,?)")
INSERT_CHANGES_NO_PARENT = ("INSERT INTO changes(site_id, seq, record_id, kind, village_code, hlc, key_version, payload) "
                            "VALUES (?,?,?,?,?,?,?,?)")


class ChangeLog:
    """The change log of a `Store` (uses its `conn`, `site_id`, `clock`, `meta()`, `_require()`;
    commits hand `_pending` to the listeners)."""

    def raise_sequence_floor(self, seq: int) -> None:
        """Number this site's next changes after `seq` (the county already holds changes of this site
        up to it that this database lost, e.g. restored from an older backup)."""
        floor = max(int(seq), int(self.meta("sequence_floor", 0)))
        self.set_meta("sequence_floor", str(floor))
        self._next_seq = None

    def _next_sequence(self) -> int:
        if self._next_seq is None:
            row = self.conn.execute("SELECT max(seq) FROM changes WHERE site_id = ?", (self.site_id,)).fetchone()
            self._next_seq = max(row[0] or 0, int(self.meta("sequence_floor", 0))) + 1
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _write_change(self, sealer: crypto.Sealer, change: Change) -> None:
        payload = sealer.seal("change", f"{change.site_id}:{change.seq}", _dumps(change.payload()))
        self.conn.execute(
            "INSERT INTO changes(site_id, seq, record_id, kind, village_code, parent_id, hlc, key_version, payload) VALUES (?,?,?,?,?,?,?,?,?)",
            (change.site_id, change.seq, change.record_id, change.kind, change.village_code, change.parent_id, change.hlc,
             sealer.key_version, payload),
        )
        if self.listeners:  # kept for the listeners only: a bulk write keeps nothing per change
            self._pending.append(change)

    def write_change_raw(self, change: Change) -> None:
        """Append a change received from another site to the log, as it was made there."""
        self._write_change(self._require(), change)

    def write_changes_raw(self, changes: list[Change]) -> None:
        """Append many changes received from other sites at once (executemany; merge code). One loop
        makes each change's row: its payload dumped (orjson called directly; `_dumps` for what orjson
        refuses), sealed (`Sealer.change_sealer`, the associated data `seal` binds, made with one
        format) and put in the row."""
        sealer = self._require()
        version = sealer.key_version
        encrypt, head, tail = sealer.change_sealer()
        nonces = os.urandom(NONCE * len(changes))
        dumps = orjson.dumps
        rows = []
        append = rows.append
        at = 0
        parents = any(c.parent_id is not None for c in changes)  # else parent_id is left out (NULL): the
        join = bytearray().join  # nonce + ciphertext as one bytearray: bound as a BLOB without the adapter lookup
        for c in changes:  # sqlite3 module binds None through its adapter lookup too
            nonce = nonces[at:at + NONCE]
            at += NONCE
            site, seq = c.site_id, c.seq
            try:
                plain = dumps({"op": c.op, "new": c.new, "old": c.old, "seen": c.seen, "by": c.operator, "why": c.reason})
            except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a key not a string
                plain = _dumps({"op": c.op, "new": c.new, "old": c.old, "seen": c.seen, "by": c.operator, "why": c.reason})
            blob = join((nonce, encrypt(nonce, plain, f"{head}{site}:{seq}{tail}".encode())))
            if parents:
                append((site, seq, c.record_id, c.kind, c.village_code, c.parent_id, c.hlc, version, blob))
            else:
                append((site, seq, c.record_id, c.kind, c.village_code, c.hlc, version, blob))
        sql = INSERT_CHANGES if parents else INSERT_CHANGES_NO_PARENT
        self.conn.executemany(sql, rows)
        if self.listeners:
            self._pending.extend(changes)

    def new_hlc(self) -> str:
        return self.clock.now()

    def _decode_change(self, row) -> Change:
        site, seq, rid, kind, village, parent, hlc, payload = row
        body = _loads(self._require().open("change", f"{site}:{seq}", payload))
        return Change(site, seq, rid, kind, village, parent, hlc, body["op"], body["new"], body["old"], body["seen"],
                      body["by"], body.get("why"))

    CHANGE_COLUMNS = _CHANGE_COLUMNS = "site_id, seq, record_id, kind, village_code, parent_id, hlc, payload"

    def history(self, record_id: str) -> list[Change]:
        """A record's audit trail, oldest first."""
        rows = self.conn.execute(
            f"SELECT {self._CHANGE_COLUMNS} FROM changes WHERE record_id = ? ORDER BY hlc, site_id", (record_id,)
        )
        return [self._decode_change(r) for r in rows]

    def changes(self, *, site_id: str | None = None, after_seq: int = 0, limit: int | None = None) -> Iterator[Change]:
        """Change rows in log order; with site_id, that site's changes after a sequence number."""
        sql, args = f"SELECT {self._CHANGE_COLUMNS} FROM changes", []
        if site_id:
            sql += " WHERE site_id = ? AND seq > ? ORDER BY seq"
            args = [site_id, after_seq]
        else:
            sql += " ORDER BY rowid"
        if limit:
            sql += f" LIMIT {int(limit)}"
        for row in self.conn.execute(sql, args):
            yield self._decode_change(row)

    def change_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM changes").fetchone()[0]

    def change_mark(self) -> int:
        """A number that grows with every change row written (the log's last rowid; 0 when empty)."""
        return self.conn.execute("SELECT coalesce(max(rowid), 0) FROM changes").fetchone()[0]

    def count_changes(self, site_id: str, after_seq: int = 0) -> int:
        """How many changes of `site_id` have a sequence number above `after_seq`."""
        return self.conn.execute("SELECT count(*) FROM changes WHERE site_id = ? AND seq > ?",
                                 (site_id, int(after_seq))).fetchone()[0]

    def decode_change(self, row) -> Change:
        """A Change from a row of `changes` selected with the columns `CHANGE_COLUMNS` (for sync's
        own queries over the log)."""
        return self._decode_change(row)
