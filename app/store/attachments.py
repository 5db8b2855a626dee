"""Attachment images in the store: sealed, content-addressed blobs (docs/attachments.md).

An attachment is two things:
- its metadata, an ordinary sealed record of kind "attachment" (parent: the household; fields: the
  record it belongs to, the content address, kind, caption, date taken ...). It is written with
  `Store.put` and deleted with `Store.delete`, so it has a change log, syncs and merges like any record;
- its image, a row of `attachment_blobs`: AES-256-GCM under the data key (the store's Sealer) with
  associated data binding the database, "attachment" and the content address, so a blob moved under
  another address fails to open. The address is `crypto.content_digest` (HMAC-SHA256 under the
  county-wide index key) of the image bytes: one photo attached to several records is stored once,
  and a laptop and the county name it the same way. Opening checks the address again.

No image is ever written to disk in plain form: the bytes go from memory into the sealed column.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.store import crypto
from app.store.db import Store, StoreError

KIND = "attachment"
_BLOB = "attachment"
_THUMB = "attachment-thumb"


def digest_of(store: Store, data: bytes) -> str:
    """The content address of these bytes in this store (needs the store unlocked)."""
    store.sealer()
    if store._index_key is None:
        raise StoreError("数据库已锁定,请先输入密码解锁")
    return crypto.content_digest(store._index_key, data)


def digester(store: Store):
    """The content-address function of this store as a plain function of bytes, usable on another
    thread (it holds the key, not the database connection). Raises StoreLocked when locked."""
    digest_of(store, b"")
    key = store._index_key
    return lambda data: crypto.content_digest(key, data)


def has_blob(store: Store, digest: str) -> bool:
    return store.conn.execute("SELECT 1 FROM attachment_blobs WHERE digest = ?", (digest,)).fetchone() is not None


def put_blob(store: Store, digest: str, data: bytes, thumb: bytes | None = None) -> bool:
    """Seal and store an image under its address (in the caller's transaction). False when it was
    already there (content-addressed: stored once)."""
    sealer = store.sealer()
    if digest_of(store, data) != digest:
        raise StoreError(f"照片内容与其编号 {digest[:12]} 不符,未保存")
    if has_blob(store, digest):
        return False
    store.conn.execute(
        "INSERT INTO attachment_blobs(digest, size, key_version, blob, thumb) VALUES (?,?,?,?,?)",
        (digest, len(data), sealer.key_version, sealer.seal(_BLOB, digest, data),
         sealer.seal(_THUMB, digest, thumb) if thumb else None))
    return True


def get_blob(store: Store, digest: str) -> bytes | None:
    """The image bytes, or None when this store does not hold them (not yet synced)."""
    sealer = store.sealer()
    row = store.conn.execute("SELECT blob FROM attachment_blobs WHERE digest = ?", (digest,)).fetchone()
    if row is None:
        return None
    data = sealer.open(_BLOB, digest, row[0])
    if digest_of(store, data) != digest:
        raise crypto.DecryptionError(f"照片 {digest[:12]} 的内容与编号不符:数据被改动")
    return data


def get_thumb(store: Store, digest: str) -> bytes | None:
    sealer = store.sealer()
    row = store.conn.execute("SELECT thumb FROM attachment_blobs WHERE digest = ?", (digest,)).fetchone()
    if row is None or row[0] is None:
        return None
    return sealer.open(_THUMB, digest, row[0])


def set_thumb(store: Store, digest: str, thumb: bytes) -> None:
    sealer = store.sealer()
    store.conn.execute("UPDATE attachment_blobs SET thumb = ? WHERE digest = ?", (sealer.seal(_THUMB, digest, thumb), digest))


def blob_size(store: Store, digest: str) -> int | None:
    row = store.conn.execute("SELECT size FROM attachment_blobs WHERE digest = ?", (digest,)).fetchone()
    return row[0] if row else None


def live_digests(store: Store, village_prefixes: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
    """Content address -> (attachment id, village) of every attachment not deleted (in these villages,
    or prefixes of village codes), oldest first."""
    out: dict[str, tuple[str, str]] = {}
    for rec in _attachment_records(store, village_prefixes):
        digest = rec.fields.get("digest")
        if digest and digest not in out:
            out[digest] = (rec.id, rec.village_code or "")
    return out


def _attachment_records(store: Store, village_prefixes: Iterable[str] | None, include_deleted: bool = False) -> list:
    """Attachment records in these villages (prefixes of village codes), chosen on the plain columns
    before anything is decrypted: the county exporting to one device opens that device's only."""
    if village_prefixes is None:
        return list(store.records(KIND, include_deleted=include_deleted))
    prefixes = list(village_prefixes)
    if not prefixes:
        return []
    where = " OR ".join("village_code LIKE ?" for _ in prefixes)
    rows = store.conn.execute(
        f"SELECT {store._COLUMNS} FROM records WHERE kind = ? AND ({where})" + ("" if include_deleted else " AND deleted = 0")
        + " ORDER BY rowid", [KIND, *(p.replace("%", "") + "%" for p in prefixes)]).fetchall()
    return store._decode_rows(rows)


def referencing(store: Store, digest: str, *, include_deleted: bool = False) -> list:
    """Attachment records that hold this address."""
    return [r for r in store.records(KIND, include_deleted=include_deleted) if r.fields.get("digest") == digest]


def damaged_blobs(store: Store) -> list[str]:
    """Addresses of stored images that fail to open or whose content no longer matches (integrity check)."""
    bad = []
    for (digest,) in store.conn.execute("SELECT digest FROM attachment_blobs").fetchall():
        try:
            get_blob(store, digest)
        except crypto.DecryptionError:
            bad.append(digest)
    return bad


def drop_unreferenced(store: Store, digests: Iterable[str]) -> int:
    """Remove the images no attachment still in use refers to (after a delete: a photo deleted by
    mistake or of the wrong family must not stay in the file). Returns how many were removed."""
    wanted = set(digests)
    if not wanted:
        return 0
    live = {r.fields.get("digest") for r in store.records(KIND)}
    gone = [d for d in wanted if d not in live]
    for d in gone:
        store.conn.execute("DELETE FROM attachment_blobs WHERE digest = ?", (d,))
        store.conn.execute("DELETE FROM attachment_sync WHERE digest = ?", (d,))
    return len(gone)
