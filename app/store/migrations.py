"""Schema migrations. Each step moves the schema up one version inside the caller's transaction;
the version lives in meta.schema_version."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a county on PostgreSQL never loads sqlite-utils (app/store/postgres.py PgDatabase)
    import sqlite_utils

SCHEMA_VERSION = 7


def _v1(db: sqlite_utils.Database) -> None:
    _run_script(db, """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE operators (
            login TEXT PRIMARY KEY, salt BLOB NOT NULL, kdf TEXT NOT NULL, wrapped_key BLOB NOT NULL,
            failed INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0, created TEXT);
        CREATE TABLE recovery (id INTEGER PRIMARY KEY, public_key BLOB NOT NULL, wrapped_key BLOB NOT NULL, created TEXT);
        CREATE TABLE secrets (name TEXT PRIMARY KEY, blob BLOB NOT NULL);
        CREATE TABLE records (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, village_code TEXT, parent_id TEXT, hlc TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0, key_version INTEGER NOT NULL, blob BLOB NOT NULL);
        CREATE INDEX records_kind_village ON records(kind, village_code);
        CREATE INDEX records_parent ON records(parent_id);
        CREATE TABLE changes (
            site_id TEXT NOT NULL, seq INTEGER NOT NULL, record_id TEXT NOT NULL, kind TEXT NOT NULL,
            village_code TEXT, parent_id TEXT, hlc TEXT NOT NULL, key_version INTEGER NOT NULL,
            payload BLOB NOT NULL, PRIMARY KEY (site_id, seq));
        CREATE INDEX changes_record ON changes(record_id);
        CREATE TABLE blind_index (record_id TEXT NOT NULL, field TEXT NOT NULL, digest BLOB NOT NULL,
            PRIMARY KEY (record_id, field));
        CREATE INDEX blind_index_digest ON blind_index(digest);
        CREATE TABLE divisions (code TEXT PRIMARY KEY, name TEXT NOT NULL, level TEXT NOT NULL, parent TEXT);
        CREATE TABLE poverty_lines (year INTEGER PRIMARY KEY, line REAL NOT NULL, source TEXT);
        """)


def _v2(db: sqlite_utils.Database) -> None:
    """Sync (app.sync): certificates the county issued or a device holds, bundle receipts, per-peer
    sequence state and merge conflicts. Conflict values are sealed; nothing personal is plain."""
    _run_script(db, """
        CREATE TABLE certificates (
            site_id TEXT PRIMARY KEY, site_name TEXT NOT NULL, role TEXT NOT NULL, villages TEXT NOT NULL,
            sign_public BLOB NOT NULL, enc_public BLOB NOT NULL, not_after TEXT NOT NULL,
            number_block TEXT, certificate BLOB NOT NULL, issued TEXT NOT NULL, revoked TEXT);
        CREATE INDEX certificates_sign ON certificates(sign_public);
        CREATE TABLE peers (
            site_id TEXT PRIMARY KEY, have_seq INTEGER NOT NULL DEFAULT 0, bundle_seq INTEGER NOT NULL DEFAULT 0,
            last_digest TEXT, down_seq INTEGER NOT NULL DEFAULT 0, down_acked INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE receipts (
            sender TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, digest TEXT NOT NULL,
            received TEXT NOT NULL, changes INTEGER NOT NULL, applied INTEGER NOT NULL, PRIMARY KEY (sender, seq, kind));
        CREATE TABLE conflicts (
            id TEXT PRIMARY KEY, record_id TEXT NOT NULL, kind TEXT NOT NULL, field TEXT NOT NULL,
            winner_site TEXT NOT NULL, winner_hlc TEXT NOT NULL, loser_site TEXT NOT NULL, loser_hlc TEXT NOT NULL,
            created TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', resolved_by TEXT, payload BLOB NOT NULL,
            UNIQUE (record_id, field, loser_site, loser_hlc));
        CREATE INDEX conflicts_status ON conflicts(status);
        """)


def _v3(db: sqlite_utils.Database) -> None:
    """Attachments (photos, scanned papers; app/store/attachments.py). Their metadata is an ordinary
    sealed record of kind "attachment"; the images are sealed blobs here, content-addressed by a keyed
    digest. `attachment_sync` remembers, per peer site, which blobs it sent there (bundle number) or
    received from there (0), so a blob is sent once and resent only when the peer says it is missing."""
    _run_script(db, """
        CREATE TABLE attachment_blobs (
            digest TEXT PRIMARY KEY, size INTEGER NOT NULL, key_version INTEGER NOT NULL,
            blob BLOB NOT NULL, thumb BLOB);
        CREATE TABLE attachment_sync (
            peer TEXT NOT NULL, digest TEXT NOT NULL, bundle INTEGER NOT NULL, PRIMARY KEY (peer, digest));
        """)


def _v4(db: sqlite_utils.Database) -> None:
    """防返贫动态监测 (issue #20): the county's yearly monitoring criteria, reference data like the
    poverty lines: the monitoring income line (监测收入标准), the minimum months under monitoring before
    a risk may be eliminated, how long a risk may stay open before it is listed, and a source note."""
    _run_script(db, """
        CREATE TABLE monitoring_criteria (
            year INTEGER PRIMARY KEY, line REAL NOT NULL, min_months INTEGER NOT NULL DEFAULT 6,
            risk_days INTEGER NOT NULL DEFAULT 180, source TEXT);
        """)


def _v5(db: sqlite_utils.Database) -> None:
    """Record bodies in format 2 (app/store/bodies.py: village, parent and clock sealed with the
    fields, so a read fetches id, kind and blob only). The bodies are sealed, so they are converted
    at the first unlock (`bodies.convert`, one transaction), which has the data key; until then
    meta.record_body says 1. A new or empty database starts at 2."""
    from app.store import bodies

    held = db.conn.execute("SELECT id FROM records LIMIT 1").fetchone()
    bodies.set_format(db.conn, "1" if held else bodies.FORMAT)


def _v6(db: sqlite_utils.Database) -> None:
    """The sync service's shared state (issue #23; app/store/service_state.py): the single-use fetch
    challenges (kept as their SHA-256 digests, with the address they were given to and when they
    expire) and the rate limits' token buckets (per limit and site or address). In the database, so
    every worker process of `jiandang serve --workers N` and a restarted service see the same ones.
    Portable SQL (DOUBLE PRECISION, no rowid): the same statements run on SQLite and PostgreSQL."""
    _run_script(db, """
        CREATE TABLE service_challenges (
            digest TEXT PRIMARY KEY, address TEXT NOT NULL, issued DOUBLE PRECISION NOT NULL,
            ordinal BIGINT NOT NULL, expires DOUBLE PRECISION NOT NULL);
        CREATE INDEX service_challenges_address ON service_challenges(address, issued, ordinal);
        CREATE INDEX service_challenges_expires ON service_challenges(expires);
        CREATE TABLE service_rates (
            bucket TEXT NOT NULL, key TEXT NOT NULL, tokens DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL, PRIMARY KEY (bucket, key));
        """)


def _v7(db: sqlite_utils.Database) -> None:
    """Households' 户编号 in the blind index (app/store/search.py: HMAC under the index key, as for ID
    numbers), so checking a new number reads one row instead of every household. The numbers are
    sealed, so the rows are written at the first unlock (`SearchIndex.fill_household_numbers`, one
    transaction), which has the key; until then meta.number_index says pending. A new or empty
    database has nothing to fill."""
    from app.store import search

    held = db.conn.execute("SELECT id FROM records WHERE kind = 'household' LIMIT 1").fetchone()
    search.set_number_index(db.conn, "pending" if held else "done")


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    """Run statements one by one (executescript would commit the caller's transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            db.conn.execute(statement)


STEPS = {1: _v1, 2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6, 7: _v7}


def migrate(db: sqlite_utils.Database) -> None:
    """Bring the schema to SCHEMA_VERSION (inside an open transaction)."""
    db.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    row = db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else 0
    while version < SCHEMA_VERSION:
        version += 1
        STEPS[version](db)
        db.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(version),))
