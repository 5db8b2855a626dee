"""Record bodies: what a record's sealed blob holds, reading many at once, and the one-time
conversion of older bodies at unlock. Part of `Store` (app/store/db.py).

Body format 3: two compact JSON texts joined by a newline (JSON never writes a raw one),

    [village code, parent id, the record's clock, fields] \n field clocks

sealed with AES-256-GCM under the data key, the associated data binding database, kind, record id
and key version (app.store.crypto.Sealer). The whole body is authenticated at every read; the field
clocks are kept as their JSON and decoded when a caller first uses `Record.clocks` (an edit, a
merge): a load for lists, prints and searches does not build them (a fifth of the parsing). The
plain columns village_code, parent_id and hlc stay, for routing queries (which records to read); a
read takes id, kind and blob only (deleted too when deleted records are asked for), so the village,
parent and clock a caller gets are the sealed ones, authenticated with the fields. A load decodes
the rows of SQLite 64 at a time (`Store.records`, `_READ_STEP`), while their bytes are still in the
processor's cache.
Older formats, converted at the first unlock (`convert`): format 2 (schema version 5 on) the one
object {"f": fields, "c": field clocks, "v", "p", "t"}; format 1 (before schema version 5) {"f", "c"}
only, village, parent and clock taken from the plain columns.

Field names stay names: numbering them from the dictionary made bodies 40% smaller but decoding no
faster (orjson caches keys; mapping numbers back to names cost more than the parse saved).
"""

from __future__ import annotations

import orjson

from app.store import crypto
from app.store.base import STDLIB_MARK, Record, UpgradeNeeded, _dumps, _gc_paused, _loads

FORMAT = "3"
META = "record_body"  # meta key: the body format every record of this database has
COLUMNS = "id, kind, deleted, blob"  # what a read selects (records(): "0" for deleted when known)
LIVE_COLUMNS = "id, kind, 0, blob"
_SPACE = STDLIB_MARK[0]


def encode(record: Record) -> bytes:
    try:  # orjson directly (a merge encodes every record it writes); `_dumps` for what orjson refuses
        return orjson.dumps([record.village_code, record.parent_id, record.hlc, record.fields]) + b"\n" + orjson.dumps(
            record.clocks)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a key not a string
        return (_dumps([record.village_code, record.parent_id, record.hlc, record.fields]) + b"\n"
                + _dumps(record.clocks))


def encode_new(fields_json: bytes, village: str | None, parent: str | None, hlc: str) -> bytes:
    """`encode` of a new record (clocks {"*": hlc}) whose fields are already JSON (`_dumps`; a bulk
    import writes the same text into the change row)."""
    mark = STDLIB_MARK if fields_json[:1] == STDLIB_MARK else b""  # the part that holds them carries it
    stamp = hlc.encode()
    return (mark + b"[" + orjson.dumps(village) + b"," + orjson.dumps(parent) + b',"' + stamp + b'",' + fields_json
            + b']\n{"*":"' + stamp + b'"}')


def decode(plain: bytes, record_id: str, kind: str, deleted) -> Record:
    """A Record from an opened body (format 3). Raises KeyError/TypeError/ValueError for a body of
    another shape."""
    at = plain.find(b"\n")
    if at < 0:
        raise ValueError("not a record body")
    village, parent, hlc, fields = _loads(plain[:at])
    clocks = _loads(plain[at + 1:])
    if type(fields) is not dict or type(clocks) is not dict:
        raise TypeError("not a record body")
    return Record(record_id, kind, village, parent, hlc, deleted != 0, fields, clocks)


def open_one(sealer: crypto.Sealer, row) -> Record:
    """The record of one row (COLUMNS); raises DecryptionError when it does not open."""
    rid, kind, deleted, blob = row
    plain = sealer.open(kind, rid, blob)
    try:
        return decode(plain, rid, kind, deleted)
    except (KeyError, TypeError, ValueError):
        raise crypto.DecryptionError(f"记录 {rid} ({kind}) 的内容格式不对:数据已损坏") from None


def open_many(sealer: crypto.Sealer, rows, damaged: dict) -> list[Record]:
    """The records of many rows (COLUMNS) in one loop: open, parse the first part, build; the field
    clocks stay JSON until used (see the module's text). A whole database's load goes through here,
    64 rows at a time from SQLite (`Store.records`), each `Record` built without its `__init__` call.
    A row that does not open or parse (damaged or tampered with) is skipped and named in `damaged`
    (id -> kind): one damaged record must not make the whole database unreadable."""
    decrypt, heads, tail, errors = sealer.record_opener()
    loads = orjson.loads
    new = object.__new__
    out = []
    append = out.append
    for rid, kind, deleted, blob in rows:
        try:
            plain = decrypt(blob[:crypto.NONCE], blob[crypto.NONCE:], heads[kind] + rid.encode() + tail)
        except errors:
            damaged[rid] = kind
            continue
        at = plain.find(b"\n")
        try:
            if at <= 0 or plain[0] == _SPACE:  # not a body of this format, or written by the standard library
                raise ValueError
            village, parent, hlc, fields = loads(plain[:at])
            if type(fields) is not dict:
                raise TypeError
            record = new(Record)  # Record(...) without its __init__ call: a third less to build
            record.id = rid
            record.kind = kind
            record.village_code = village
            record.parent_id = parent
            record.hlc = hlc
            record.deleted = deleted != 0
            record.fields = fields
            record._clocks = plain[at + 1:]
            append(record)
        except (TypeError, ValueError):  # orjson.JSONDecodeError is a ValueError
            try:
                append(decode(plain, rid, kind, deleted))
            except (KeyError, TypeError, ValueError):  # opened, but not a record body
                damaged[rid] = kind
    return out


# ---------------------------------------------------------------------- conversion of older bodies

CONVERT_BATCH = 2000


def set_format(conn, value: str) -> None:
    conn.execute("DELETE FROM meta WHERE key = ?", (META,))
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (META, value))


def pending(conn) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META,)).fetchone()
    return (row[0] if row else None) != FORMAT


def _old_record(body, rid, kind, village, parent, hlc, deleted) -> Record | None:
    """The record of an older body (format 1 or 2), or None for one already in the current format."""
    if type(body) is not dict:
        return None
    if "t" in body:  # format 2: village, parent and clock sealed with the fields
        village, parent, hlc = body["v"], body["p"], body["t"]
    return Record(rid, kind, village, parent, hlc, bool(deleted), body["f"], body["c"])


def convert(conn, sealer: crypto.Sealer, progress=None) -> int:
    """Re-seal every body of an older format (1 or 2) in the current one, inside the caller's
    transaction (so a conversion cut off leaves every record as it was, and the next unlock converts
    again). Format 1 takes village, parent and clock from the plain columns, as it read them. A body
    that does not open is left as it is: it stays damaged, reported by records() and `check` as
    before. `progress(records read, total)` after each page (the window's progress bar). Returns how
    many were converted."""
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
                    plain = sealer.open(kind, rid, blob)
                    if b"\n" in plain:  # already in the current format (only if the flag was lost)
                        continue
                    record = _old_record(_loads(plain), rid, kind, village, parent, hlc, deleted)
                except (crypto.DecryptionError, KeyError, TypeError, ValueError):
                    continue
                if record is not None:
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
