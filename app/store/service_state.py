"""The county sync service's shared state, kept in the county database (tables of schema version 5):
the single-use fetch challenges (replay protection for the downstream request) and the token buckets
of its rate limits. In the database, so that every worker process of `jiandang serve --workers N`
and a restarted service see the same challenges and the same limits (docs/serve.md, "Limits").

The service reaches them through a connection of its own (`connect`), in autocommit: each statement
here is atomic by itself (a token is taken and a challenge used up by ONE statement, so two workers
can never both take the last token or both accept one challenge); the few statements of issuing a
challenge only keep bounded counts, where a race between workers can at worst let a count pass its
bound by one per worker. On PostgreSQL that connection never waits for an import's transaction; on
SQLite (one worker) it waits for the write lock like any writer.

Portable SQL only (an `ON CONFLICT` upsert, `CASE` for min/max, no rowid, no PRAGMA), written with `?`
placeholders, which app/store/postgres.py turns into psycopg's `%s`. Times are wall-clock seconds
(`time.time()`), the one clock that separate processes and a restart share. Nothing here is personal:
a challenge is stored only as its SHA-256 digest, with the client address it was given to.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import sqlite3
import threading

_ORDINAL = itertools.count()  # orders the challenges of one address issued within one clock tick


class StateConnection:
    """A connection of its own to the county database, in autocommit, used by one thread at a time
    (a lock: the service calls it from its import thread and from its state thread)."""

    def __init__(self, raw):
        self.raw = raw  # sqlite3's connection, or app.store.postgres.PgConnection (which says `?` as `%s`)
        self.lock = threading.RLock()

    def execute(self, sql: str, params: tuple = ()):
        with self.lock:
            return self.raw.execute(sql, params)

    def close(self) -> None:
        with self.lock:
            self.raw.close()


def connect(store) -> StateConnection:
    """A new connection to `store`'s database for the service state."""
    if getattr(store, "shared", False):  # a county on a PostgreSQL server (app/store/postgres.py)
        from app.store import postgres  # noqa: PLC0415 - psycopg only for a PostgreSQL county

        conn = postgres.connect(store.path)  # it says `?` as psycopg's `%s` itself
        # a commit here need not wait for the server's disk: losing the last fraction of a second of
        # rate-limit tokens or challenges in a server crash costs nothing (about 2.5 ms per upload saved)
        conn.raw.execute("SET synchronous_commit TO off")
        return StateConnection(conn)
    conn = sqlite3.connect(str(store.path), isolation_level=None, check_same_thread=False, timeout=30)
    # as on PostgreSQL: a commit here need not wait for the disk (SQLite's default for a connection
    # syncs the log at every commit: 0.6 ms per upload's token against 0.02 ms, measured on the
    # development machine); a power cut loses at most the last tokens and challenges
    conn.execute("PRAGMA synchronous=NORMAL")
    return StateConnection(conn)


# ---------------------------------------------------------------------- rate limits (token buckets)


def take_token(conn: StateConnection, bucket: str, key: str, rate: float, burst: float, now: float) -> float:
    """Take one token from the bucket (`bucket`, `key`), which refills at `rate` tokens a second up
    to `burst`: 0 when one was taken, else the seconds until the next one. One statement: a bucket
    is never drawn below zero by two workers at once."""
    refill = ("(service_rates.tokens + (CASE WHEN excluded.updated > service_rates.updated "
              "THEN excluded.updated - service_rates.updated ELSE 0 END) * ?)")
    capped = f"(CASE WHEN {refill} > ? THEN ? ELSE {refill} END)"
    cursor = conn.execute(
        "INSERT INTO service_rates(bucket, key, tokens, updated) VALUES (?, ?, ?, ?) "
        f"ON CONFLICT (bucket, key) DO UPDATE SET tokens = {capped} - 1, updated = excluded.updated "
        f"WHERE {refill} >= 1",
        (bucket, key, burst - 1, now, rate, burst, burst, rate, rate))
    if cursor.rowcount:
        return 0.0
    row = conn.execute("SELECT tokens, updated FROM service_rates WHERE bucket = ? AND key = ?", (bucket, key)).fetchone()
    if row is None:  # forgotten meanwhile: full again
        return 0.0
    tokens = min(burst, row[0] + max(0.0, now - row[1]) * rate)
    return max(0.0, (1 - tokens) / rate)


def forget_full_buckets(conn: StateConnection, bucket: str, rate: float, burst: float, now: float) -> int:
    """Forget the buckets of `bucket` untouched long enough to be full again (the same as keeping
    them); the number forgotten."""
    return conn.execute("DELETE FROM service_rates WHERE bucket = ? AND updated < ?",
                        (bucket, now - burst / rate)).rowcount


# ---------------------------------------------------------------------- fetch challenges


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


def issue_challenge(conn: StateConnection, address: str, seconds: float, per_address: int, cap: int,
                    now: float) -> str | None:
    """A new single-use challenge for `address`, good for `seconds`. An address keeps at most
    `per_address` (a new one drops that address's oldest, so a flood only ever drops the flooder's
    own); over all addresses at most `cap`: when that is full (after dropping expired ones) a new
    address gets None rather than anyone's challenge being evicted."""
    with conn.lock:
        conn.execute("DELETE FROM service_challenges WHERE address = ? AND expires < ?", (address, now))
        mine = conn.execute("SELECT count(*) FROM service_challenges WHERE address = ?", (address,)).fetchone()[0]
        if mine == 0 and count_challenges(conn) >= cap:
            expire_challenges(conn, now)
            if count_challenges(conn) >= cap:
                return None
        if mine >= per_address:
            conn.execute("DELETE FROM service_challenges WHERE digest IN (SELECT digest FROM service_challenges "
                         "WHERE address = ? ORDER BY issued, ordinal LIMIT ?)", (address, mine - per_address + 1))
        value = secrets.token_hex(32)
        conn.execute("INSERT INTO service_challenges(digest, address, issued, ordinal, expires) VALUES (?, ?, ?, ?, ?)",
                     (_digest(value), address, now, next(_ORDINAL), now + seconds))
        return value


def take_challenge(conn: StateConnection, value: str, address: str, now: float) -> bool:
    """Use up a challenge: True when it was issued to `address` and has not expired or been used.
    One statement: two workers handed the same challenge accept it once."""
    digest = _digest(value)
    if conn.execute("DELETE FROM service_challenges WHERE digest = ? AND address = ? AND expires >= ?",
                    (digest, address, now)).rowcount == 1:
        return True
    conn.execute("DELETE FROM service_challenges WHERE digest = ? AND address = ?", (digest, address))  # expired
    return False


def count_challenges(conn: StateConnection) -> int:
    """Challenges outstanding (expired ones not yet dropped included)."""
    return conn.execute("SELECT count(*) FROM service_challenges").fetchone()[0]


def expire_challenges(conn: StateConnection, now: float) -> int:
    """Drop expired challenges; the number dropped."""
    return conn.execute("DELETE FROM service_challenges WHERE expires < ?", (now,)).rowcount
