"""The store's value types, errors and encodings: Record, Change, the errors every caller catches,
record ids (`new_record_id`, `short_id`), SQLite's errors in words (`sqlite_reason`), and the JSON
encoding of sealed bodies (`_dumps`/`_loads`, orjson with the standard library as fallback)."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import os
import time
from dataclasses import dataclass

import orjson

from app.core.clock import ZERO

class StoreError(Exception):
    """A problem with the database file or its use; the message is Chinese and says what to do."""


class WrongPassphrase(StoreError):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(StoreError):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class UpgradeNeeded(StoreError):
    """A database of an older schema or record format, opened to read only: a writer upgrades it
    (at open, and at unlock for the record bodies)."""


class StoreLocked(StoreError):
    """The store has not been unlocked (or was locked again)."""


class Record:
    """One stored record as read or written: its id, kind, village, parent, clock, deleted flag, fields
    (name -> value) and the field clocks (name -> the clock of its last change; "*" for the rest).

    A record loaded in bulk keeps its field clocks as the sealed body held them (JSON bytes, already
    authenticated with the fields) and decodes them when `clocks` is first used: lists, prints and
    searches never need them, a merge or an edit does (app/store/bodies.py, body format 3)."""

    __slots__ = ("id", "kind", "village_code", "parent_id", "hlc", "deleted", "fields", "_clocks")

    def __init__(self, id: str, kind: str, village_code: str | None, parent_id: str | None, hlc: str,
                 deleted: bool, fields: dict, clocks: dict | bytes | None = None):
        self.id = id
        self.kind = kind
        self.village_code = village_code
        self.parent_id = parent_id
        self.hlc = hlc
        self.deleted = deleted
        self.fields = fields
        self._clocks = {} if clocks is None else clocks

    @property
    def clocks(self) -> dict:
        clocks = self._clocks
        if type(clocks) is bytes:
            clocks = self._clocks = _loads(clocks)
        return clocks

    @clocks.setter
    def clocks(self, value: dict) -> None:
        self._clocks = value

    def _key(self) -> tuple:
        return (self.id, self.kind, self.village_code, self.parent_id, self.hlc, self.deleted, self.fields, self.clocks)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None

    def __repr__(self) -> str:
        return (f"Record(id={self.id!r}, kind={self.kind!r}, village_code={self.village_code!r}, "
                f"parent_id={self.parent_id!r}, hlc={self.hlc!r}, deleted={self.deleted!r}, "
                f"fields={self.fields!r}, clocks={self.clocks!r})")

    def clock_of(self, key: str) -> str:
        return self.clocks.get(key, self.clocks.get("*", ZERO))


@dataclass
class Change:
    """One entry of the change log: an edit of one record by one operator at one moment."""

    site_id: str
    seq: int
    record_id: str
    kind: str
    village_code: str | None
    parent_id: str | None
    hlc: str
    op: str  # "create" | "update" | "delete" | "restore"
    new: dict  # field -> new value
    old: dict  # field -> old value
    seen: dict  # field -> the field's clock the editor saw
    operator: str
    reason: str | None = None

    def payload(self) -> dict:
        return {"op": self.op, "new": self.new, "old": self.old, "seen": self.seen,
                "by": self.operator, "why": self.reason}


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


_DECODER = json.JSONDecoder()


def _dumps(obj) -> bytes:
    """Compact UTF-8 JSON. orjson (several times faster: every record and change goes through here);
    the standard library for what orjson refuses (integers beyond 64 bits, non-string keys). Such a
    body starts with a space (valid JSON, and orjson never writes one) so that `_loads` knows to read
    it with the standard library: orjson would read a 64-bit-overflowing integer as an inexact float."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError
        return STDLIB_MARK + _ENCODER.encode(obj).encode("utf-8")


STDLIB_MARK = b" "


def _loads(data: bytes):
    if data[:1] == STDLIB_MARK:
        return _DECODER.decode(data.decode("utf-8"))
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _DECODER.decode(data.decode("utf-8"))


_DECODE_BATCH = 4000  # rows a reading takes from PostgreSQL at a time (one round trip each)
# Rows a reading takes from SQLite and decodes at a time (`Store.records`): few enough that each row's
# bytes are still in the processor's cache when they are decrypted and parsed (one step's rows, their
# copies and plaintexts take some 150 KB); a whole database's load takes about a tenth less processor
# time than in steps of 4,000 (issue 16, docs/developing.md).
_READ_STEP = 64


def new_record_id() -> str:
    """A new record id in the UUID version 7 layout (RFC 9562): 48 bits of Unix milliseconds, then
    74 random bits. Unique without coordination between laptops, like version 4, but roughly in
    creation order, so the primary-key and parent indexes grow at their end instead of splitting
    pages all over (bulk imports and county merges are about a quarter faster)."""
    ms = time.time_ns() // 1_000_000
    rnd = os.urandom(10).hex()
    t = f"{ms:012x}"
    return f"{t[:8]}-{t[8:]}-7{rnd[:3]}-{'89ab'[int(rnd[3], 16) & 3]}{rnd[4:7]}-{rnd[7:19]}"


_SQLITE_REASONS = (  # (words in SQLite's English message, what to tell the user)
    (("malformed",), "文件内容不完整或已损坏,可能在复制或写入时被截断"),
    (("not a database", "file is encrypted"), "文件不是数据库,或文件开头已损坏"),
    (("locked", "busy"), "文件正被另一个程序使用"),
    (("disk i/o", "i/o error"), "读写磁盘时出错,U盘或硬盘可能有故障"),
    (("unable to open",), "无法打开文件:文件夹不存在或没有权限"),
    (("no such table", "no such column"), "缺少建档数据库应有的数据表"),
    (("readonly", "read-only"), "文件是只读的,无法写入"),
    (("full",), "磁盘空间已满"),
)


def sqlite_reason(detail, *, what: str = "") -> str:
    """Why SQLite could not read a file, in Chinese words (for messages). `detail` is the exception or
    the text of a failed integrity check; that English detail goes to the log only (`what` names the
    file there)."""
    import logging

    text = str(detail)
    logging.getLogger("app.store").info("SQLite: %s%s", f"{what}: " if what else "", text)
    lowered = text.lower()
    for words, reason in _SQLITE_REASONS:
        if any(w in lowered for w in words):
            return reason
    if isinstance(detail, BaseException):
        return "文件已损坏,无法按数据库读取"
    return "数据库内部结构校验未通过,文件已损坏"


def short_id(record_id: str) -> str:
    """The 8 characters a person reads and types for a record (申报编号 and the like): the end of the
    id, which is random; the start is the creation time and is shared by records made together."""
    return record_id[-8:]


def matches_short_id(record_id: str, text: str) -> bool:
    """Whether `text` (at least 4 characters) names this record: the whole id, its beginning, or its
    end as `short_id` prints it."""
    text = text.strip().lower()
    return len(text) >= 4 and (record_id.startswith(text) or record_id.endswith(text))


def _is_empty(value) -> bool:
    """None, "" and [] are "not filled in" and are not stored; 0 and False are values."""
    if value is None:
        return True
    kind = type(value)
    return (kind is str or kind is list) and not value


@contextlib.contextmanager
def _gc_paused():
    """Decoding thousands of records allocates containers quickly enough to trigger the cyclic
    garbage collector over and over, and each collection walks the records decoded so far again.
    The collector is paused while a batch is decoded; afterwards the new objects are moved straight
    to the oldest generation (`gc.freeze()` then `gc.unfreeze()`: documented to put every tracked
    object into the oldest generation) instead of being walked once per younger generation on the
    way there. Loaded records are long-lived (the window keeps them for the session) and hold no
    cycles. Young garbage of other code moves with them and is freed by the next full collection.
    Skipped when the program has frozen objects on purpose (`gc.get_freeze_count()`), so those stay
    frozen. Loading a whole database went from about 1.4 to about 1.15 times plain sqlite-utils."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


gc_paused = _gc_paused  # the public name (a county import pauses the collector for a bundle)


def _now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")
