"""Record bodies: what a record's sealed blob holds, reading many at once, and the one-time
conversion of older bodies at unlock. Part of `Store` (app/store/db.py).

Body format 2 (schema version 5 on): compact JSON

    {"f": fields, "c": field clocks, "v": village code, "p": parent id, "t": the record's clock}

sealed with AES-256-GCM under the data key, the associated data binding database, kind, record id
and key version (app.store.crypto.Sealer). The plain columns village_code, parent_id and hlc stay,
for routing queries (which records to read); a read takes id, kind and blob only (deleted too when
deleted records are asked for), so the village, parent and clock a caller gets are the sealed ones,
authenticated with the fields. Format 1 (before schema version 5) held {"f", "c"} only and took
village, parent and clock from the plain columns.

Field names stay names: numbering them from the dictionary made bodies 40% smaller but decoding no
faster (orjson caches keys; mapping numbers back to names cost more than the parse saved).
"""

from __future__ import annotations

import orjson

from app.store import crypto
from app.store.base import STDLIB_MARK, Record, UpgradeNeeded, _dumps, _gc_paused, _loads

FORMAT = "2"
META = "record_body"  # meta key: the body format every record of this database has
COLUMNS = "id, kind, deleted, blob"  # what a read selects (records(): "0" for deleted when known)
LIVE_COLUMNS = "id, kind, 0, blob"


def encode(record: Record) -> bytes:
    return _dumps({"f": record.fields, "c": record.clocks, "v": record.village_code, "p": record.parent_id,
                   "t": record.hlc})


def decode(plain: bytes, record_id: str, kind: str, deleted) -> Record:
    """A Record from an opened body. Raises KeyError/TypeError/ValueError for a body of another shape."""
    body = _loads(plain)
    return Record(record_id, kind, body["v"], body["p"], body["t"], deleted != 0, body["f"], body["c"])


def open_one(sealer: crypto.Sealer, row) -> Record:
    """The record of one row (COLUMNS); raises DecryptionError when it does not open."""
    rid, kind, deleted, blob = row
    plain = sealer.open(kind, rid, blob)
    try:
        return decode(plain, rid, kind, deleted)
    except (KeyError, TypeError, ValueError):
        raise crypto.DecryptionError(f"记录 {rid} ({kind}) 的内容格式不对:数据已损坏") from None


def open_many(sealer: crypto.Sealer, rows, damaged: dict) -> list[Record]:
    """The records of many rows (COLUMNS) in one loop: open, parse, build (a whole database's load
    goes through here). A row that does not open or parse (damaged or tampered with) is skipped and
    named in `damaged` (id -> kind): one damaged record must not make the whole database unreadable."""
    decrypt, heads, tail, errors = sealer.record_opener()
    loads = orjson.loads
    out = []
    append = out.append
    for rid, kind, deleted, blob in rows:
        try:
            plain = decrypt(blob[:crypto.NONCE], blob[crypto.NONCE:], heads[kind] + rid.encode() + tail)
        except errors:
            damaged[rid] = kind
            continue
        try:
            body = loads(plain) if plain[:1] != STDLIB_MARK else _loads(plain)
            append(Record(rid, kind, body["v"], body["p"], body["t"], deleted != 0, body["f"], body["c"]))
        except orjson.JSONDecodeError:  # what orjson refuses, the standard library may read (base._loads)
            try:
                append(decode(plain, rid, kind, deleted))
            except (KeyError, TypeError, ValueError):
                damaged[rid] = kind
        except (KeyError, TypeError, ValueError):  # opened, but not a record body
            damaged[rid] = kind
    return out


# ---------------------------------------------------------------------- conversion (schema version 5)

CONVERT_BATCH = 2000


def set_format(conn, value: str) -> None:
    conn.execute("DELETE FROM meta WHERE key = ?", (META,))
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (META, value))


def pending(conn) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META,)).fetchone()
    return (row[0] if row else None) != FORMAT


def convert(conn, sealer: crypto.Sealer, progress=None) -> int:
    """Re-seal every format-1 body as format 2, inside the caller's transaction (so a conversion cut
    off leaves every record as it was, and the next unlock converts again). Village, parent and clock
    come from the plain columns, as format 1 read them. A body that does not open is left as it is:
    it stays damaged, reported by records() and `check` as before. `progress(records read, total)`
    after each page (the window's progress bar). Returns how many were converted."""
    done = 0
    last = ""
    total = conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] if progress else 0
    read = 0
    if progress:
        progress(0, total)
    while True:  # in pages of ids: a county's records need not all be in memory at once
        rows = conn.execute("SELECT id, kind, village_code, parent_id, hlc, deleted, blob FROM records "
                            "WHERE id > ? ORDER BY id LIMIT ?", (last, CONVERT_BATCH)).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        updates = []
        with _gc_paused():
            for rid, kind, village, parent, hlc, deleted, blob in rows:
                try:
                    body = _loads(sealer.open(kind, rid, blob))
                    if "t" in body:  # already format 2 (only if the flag was lost)
                        continue
                    record = Record(rid, kind, village, parent, hlc, bool(deleted), body["f"], body["c"])
                except (crypto.DecryptionError, KeyError, TypeError, ValueError):
                    continue
                updates.append((sealer.seal(kind, rid, encode(record)), rid))
        conn.executemany("UPDATE records SET blob = ? WHERE id = ?", updates)
        done += len(updates)
        read += len(rows)
        if progress:
            progress(min(read, total), total)
    set_format(conn, FORMAT)
    return done


NEEDS_CONVERSION = ("{name} 需要升级数据格式(记录内容的新格式):请先用窗口或写入数据的命令打开并解锁它一次;"
                    "只读打开时不能升级")


def refuse_read_only(name: str) -> UpgradeNeeded:
    return UpgradeNeeded(NEEDS_CONVERSION.format(name=name))
