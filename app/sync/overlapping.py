"""The county's group of uploads merged with its writes streamed (PostgreSQL; issue 23, eighth pass).

The service merges the uploads that queued up meanwhile as one group, in one transaction under the
county's write lock (exchange.import_bundles). Merged a bundle at a time, each bundle waits for the
server three times (its device's receipt and sequence state, the records it touches, the duplicate
check that carries its writes), and while the server inserts a bundle's rows the worker waits, and
while the worker merges the server waits: their times add up under the lock.

When the group's bundles have nothing in common (`possible`: different devices, and no record or
parent household touched by two of them) no bundle's merge can read what another one writes, so:

- what every bundle's merge would read first is read for the whole group at once, before any of
  them writes (`Ahead`: receipts, device state, 户编号 top-ups, the records touched and their parent
  households): two round trips for the group;
- each bundle's writes, and its duplicate check after them, are streamed to the server without
  waiting (PgConnection.streaming): the server inserts one bundle's rows while the worker merges the
  next;
- the duplicate checks' answers are asked for after the last bundle: the group waits once.

Any other read a merge makes (a conflict's history, a proposal's household, a device's first
bundle) goes to the server in order, after everything streamed before it, and so sees all of it.
A bundle refused by the merge still rolls back its own savepoint. A streamed statement that fails
cannot be undone alone (the server skips everything after it): the whole transaction is rolled
back and the group merged again a bundle at a time (RetryAlone). Groups that touch a record twice
are merged a bundle at a time from the start; so is everything on SQLite, where nothing waits for a
server."""

from __future__ import annotations

from app.store import Store

CHUNK = 500  # values per IN list


def footprint(bundle) -> set[str]:
    """The records a bundle's changes touch or hang under."""
    return {c.record_id for c in bundle.changes} | {c.parent_id for c in bundle.changes if c.parent_id}


def possible(store: Store, bundles: list) -> bool:
    """Whether this group may be merged with its writes streamed: a county on a server that streams,
    two bundles or more, all uploads from different devices, and no record touched by two of them."""
    if store.role != "county" or len(bundles) < 2 or not hasattr(store.conn, "streaming"):
        return False
    senders: set = set()
    touched: set = set()
    for bundle in bundles:
        if bundle.kind != "up" or bundle.report.sender in senders:
            return False
        senders.add(bundle.report.sender)
        mine = footprint(bundle)
        if not touched.isdisjoint(mine):
            return False
        touched |= mine
    return True


class Ahead:
    """What the bundles' merges read first, read for the whole group before any of them writes (they
    touch nothing in common: `possible`). Inside the streaming transaction: the first four statements
    go to the server together, the records after them."""

    def __init__(self, store: Store, bundles: list):
        conn = store.conn
        senders = [b.report.sender for b in bundles]
        keys = [(b.report.sender, b.report.seq, b.kind) for b in bundles]
        ids = sorted(set().union(*(footprint(b) for b in bundles)))
        metas = [f"number_topups:{s}" for s in senders]
        sent = [conn.execute_deferred("SELECT sender, seq, kind, digest FROM receipts WHERE "
                                      + " OR ".join(["(sender = ? AND seq = ? AND kind = ?)"] * len(part)),
                                      [v for key in part for v in key])
                for part in _chunks(keys, 200)]
        peers = [conn.execute_deferred(f"SELECT site_id, have_seq, bundle_seq FROM peers WHERE site_id IN ({_marks(part)})",
                                       part) for part in _chunks(senders, CHUNK)]
        meta = [conn.execute_deferred(f"SELECT key, value FROM meta WHERE key IN ({_marks(part)})", part)
                for part in _chunks(metas, CHUNK)]
        places = [conn.execute_deferred(f"SELECT id, kind, village_code, parent_id FROM records WHERE id IN ({_marks(part)})",
                                        part) for part in _chunks(ids, CHUNK)]
        self.receipts = {(r[0], r[1], r[2]): r[3] for cursor in sent for r in cursor.fetchall()}
        self.peers = {r[0]: (r[1], r[2]) for cursor in peers for r in cursor.fetchall()}
        self.meta = dict(r for cursor in meta for r in cursor.fetchall())
        self.places: dict[str, tuple | None] = dict.fromkeys(ids)
        self.places.update((r[0], tuple(r[1:])) for cursor in places for r in cursor.fetchall())
        changed = {c.record_id for b in bundles for c in b.changes}
        self.records = store.get_many([rid for rid in ids if rid in changed and self.places[rid] is not None])

    def device_row(self, bundle) -> tuple:
        """As exchange._merge reads it: (receipt digest, have_seq, bundle_seq, 户编号 top-ups)."""
        sender = bundle.report.sender
        peer = self.peers.get(sender, (None, None))
        return (self.receipts.get((sender, bundle.report.seq, bundle.kind)), peer[0], peer[1],
                self.meta.get(f"number_topups:{sender}"))

    def places_of(self, ids) -> dict:
        """record id -> (kind, village, parent id) as the county holds it, None when it does not."""
        return {rid: self.places.get(rid) for rid in ids}

    def records_of(self, ids) -> dict:
        """The held records among `ids` (decrypted), for the bundle's Merger."""
        return {rid: self.records[rid] for rid in ids if rid in self.records}


def _chunks(values: list, size: int) -> list[list]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def _marks(part: list) -> str:
    return ",".join("?" * len(part))
