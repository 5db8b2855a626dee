"""A private scratch database for one import's analysis: what would grow with the number of
households (the file-wide indexes, the packed households of a plan) lives on disk, not in memory.

`connect()` gives a SQLite connection whose TEMP tables are kept in SQLite's own temporary file
(`temp_store=FILE`; the store's connections keep theirs in memory): at most `cache_kib` of their pages
stay in memory, the rest is written to that file. SQLite opens it delete-on-close in its temporary
folder (SQLITE_TMPDIR / TMPDIR, else /var/tmp, /usr/tmp, /tmp; on Windows the user's TEMP folder):
on Linux and macOS it is unlinked as soon as it is created, on Windows it is opened with
FILE_FLAG_DELETE_ON_CLOSE, so the system removes it also when the import is killed. It is only
created when the pages outgrow the cache (a small import never touches the disk).

What goes into it is never personal data in plain text: names and numbers as keyed digests
(`Keys.digest`: BLAKE2b in its keyed mode, a MAC, 16 bytes; 0.6 µs against HMAC-SHA-256's 2 µs
through OpenSSL, and it runs for every row), households sealed
with AES-256-GCM (`Keys.seal`), under random keys made for this import and held only in memory.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CACHE_KIB = 2048  # SQLite's own default page cache


def connect(schema: str, cache_kib: int | None = None) -> sqlite3.Connection:
    """A connection with `schema` (CREATE TEMP TABLE ... statements) inside one transaction that is
    never committed: nothing of it outlives the connection."""
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA temp_store=FILE")  # before the first TEMP table: the TEMP database in a file
    db.executescript(f"{schema}; PRAGMA temp.cache_size=-{int(cache_kib or CACHE_KIB)}; PRAGMA temp.journal_mode=OFF; BEGIN;")
    return db


class Keys:
    """This import's random keys (memory only): digests for equality, sealing for contents."""

    def __init__(self):
        self._mac = os.urandom(32)
        self._aead = AESGCM(AESGCM.generate_key(256))
        self._nonces = 0

    def digest(self, tag: str, value) -> bytes:
        return hashlib.blake2b(f"{tag}\x1f{type(value).__name__}\x1f{value}".encode(), key=self._mac,
                               digest_size=16).digest()

    def seal(self, data: bytes, label: bytes) -> bytes:
        """data sealed (a fresh counter nonce each time; `label` bound as associated data)."""
        self._nonces += 1
        nonce = self._nonces.to_bytes(12, "big")
        return nonce + self._aead.encrypt(nonce, data, label)

    def open(self, sealed: bytes, label: bytes) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], label)
