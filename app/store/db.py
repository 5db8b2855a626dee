"""The encrypted store: one SQLite file through sqlite-utils.

Plain columns hold only what routing needs (record ids, kinds, village codes, parent ids, clocks).
Every record's fields and every change's values are sealed with the database's data key
(see app.store.crypto). Every write goes through `put` or `delete`, which write the record and its
change row in the same transaction; the change log is the audit trail and what sync ships.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import math
import os
import secrets
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import sqlite_utils

from app import fileio
from app.core import idnumber
from app.core.clock import ZERO, HybridClock
from app.store import crypto
from app.store.migrations import SCHEMA_VERSION, migrate

APP_ID = "jiandang"
ROLES = ("village", "township", "county")
MAX_DELAY_SECONDS = 300


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


class StoreLocked(StoreError):
    """The store has not been unlocked (or was locked again)."""


@dataclass(slots=True)
class Record:
    id: str
    kind: str
    village_code: str | None
    parent_id: str | None
    hlc: str
    deleted: bool
    fields: dict
    clocks: dict = field(default_factory=dict)

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


_DECODE_BATCH = 4000


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


def _is_busy(exc) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


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


def _now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


class _FileLock:
    """An exclusive OS lock on a sidecar file, so two running programs never write one database at
    once (each keeps counters and the search index in memory). msvcrt on Windows, flock elsewhere;
    both are released by the OS when the process ends, however it ends."""

    POLL = 0.2

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def _try(self) -> bool:
        self._fh = open(self.path, "a+b")
        try:
            if sys.platform == "win32":
                import msvcrt

                self._fh.seek(0)
                msvcrt.locking(self._fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            self._fh = None
            return False
        return True

    def acquire(self, wait: float = 0, on_wait: Callable[[float], None] | None = None) -> bool:
        """Take the lock, waiting up to `wait` seconds for another program to let it go (`on_wait`
        is called once, with the limit, when waiting starts)."""
        if self._try():
            return True
        if wait <= 0:
            return False
        if on_wait:
            on_wait(wait)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            time.sleep(self.POLL)
            if self._try():
                return True
        return False

    def release(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None


def _creating_leftovers(path: Path) -> list[Path]:
    """What a `create` cut off (power lost, killed) left beside the database: DB.creating and its
    SQLite sidecars (only these names)."""
    tmp = path.with_name(path.name + ".creating")
    return [p for p in (tmp, *(Path(str(tmp) + s) for s in ("-wal", "-shm", "-journal"))) if p.exists()]


def held_by_another(path) -> bool:
    """Whether another running program has this database open for writing (its lock is taken)."""
    path = Path(path)
    lock = _FileLock(path.with_name(path.name + ".lock"))
    if lock.acquire():
        lock.release()
        return False
    return True


READERS = "list、print、export-table、validate、check、worklist"


def busy_message(path, waited: float = 0) -> str:
    """What a writing command says when another program keeps the database (after waiting)."""
    how = f",等了 {waited:g} 秒仍未结束" if waited > 0 else ""
    return (f"{path} 已被另一个正在运行的建档程序打开{how}。请先关闭那个程序(窗口或命令),再运行此命令;"
            f"只读取数据的命令({READERS})可以与它同时运行。")


class Store:
    """An open database. Create with `Store.create`, open an existing file with `Store.open`,
    then `unlock` with an operator's passphrase before reading or writing records."""

    def __init__(self, path: Path, db: sqlite_utils.Database, lock: _FileLock | None, wall: Callable[[], float] = time.time,
                 read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only  # opened beside a writer: reads one snapshot, never writes records
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self._lock = lock
        self._wall = wall
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        self.db_id: str = meta["db_id"]
        self.role: str = meta["role"]
        self.site_id: str = meta["site_id"]
        self.site_name: str = meta["site_name"]
        self.clock = HybridClock(meta.get("clock", ZERO), wall)
        self._sealer: crypto.Sealer | None = None
        self._index_key: bytes | None = None
        self.operator: str | None = None
        self._depth = 0
        self._next_seq: int | None = None
        self._search: dict[str, str] | None = None
        self._search_parts: dict[str, dict[str, str]] = {}
        self._numbers: dict[str, set[str]] = {}  # 户编号 -> household ids (kept with the search index)
        self._number_of: dict[str, str] = {}     # household id -> its 户编号
        self._data_key: bytes | None = None
        self.listeners: list[Callable[[list[Change]], None]] = []
        self._pending: list[Change] = []
        # record id -> kind of records that failed to decrypt while listing (skipped by records())
        self.damaged: dict[str, str] = {}

    # ------------------------------------------------------------------ opening

    @staticmethod
    def _connect(path: Path, read_only: bool = False) -> sqlite_utils.Database:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
        db = sqlite_utils.Database(conn)
        if read_only:  # the writer set WAL mode; switching modes would need its lock
            conn.execute("PRAGMA temp_store=MEMORY")
            return db
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute("PRAGMA foreign_keys=ON")
        return db

    @classmethod
    def create(
        cls,
        path,
        *,
        role: str,
        site_name: str,
        operator: str,
        passphrase: str,
        recovery_public_key=None,
        kdf: crypto.KdfParams | None = None,
        site_id: str | None = None,
        index_key: bytes | None = None,
    ) -> "Store":
        """Create a new encrypted database and return it unlocked for `operator`.

        `recovery_public_key` is the county's X25519 public key: the data key is also sealed to it
        so that a forgotten passphrase never loses data."""
        path = Path(path)
        if role not in ROLES:
            raise StoreError(f"角色应为 village、township 或 county 之一,而不是 {role!r}")
        if path.exists() and path.stat().st_size > 0:
            raise StoreError(f"{path} 已存在:不会覆盖已有文件,请换一个文件名")
        if not operator.strip():
            raise StoreError("操作员名称不能为空")
        _check_passphrase(passphrase)
        if recovery_public_key is None:
            raise StoreError("创建数据库需要县级恢复公钥")
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _FileLock(path.with_name(path.name + ".lock"))
        if not lock.acquire():
            raise StoreError(f"{path} 正被另一个程序使用")
        tmp = path.with_name(path.name + ".creating")
        for leftover in _creating_leftovers(path):
            leftover.unlink(missing_ok=True)
        fileio.create_private(tmp).close()  # owner-only; SQLite gives its WAL and journal the same mode
        db = cls._connect(tmp)
        data_key = secrets.token_bytes(32)
        db_id = str(uuid.uuid4())
        with _transaction(db.conn):
            migrate(db)
            meta = {
                "app": APP_ID,
                "db_id": db_id,
                "role": role,
                "site_id": site_id or secrets.token_hex(8),
                "site_name": site_name,
                "created": _now_iso(),
                "clock": ZERO,
                "key_version": "1",
            }
            db.conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", meta.items())
            _add_wrap(db.conn, operator.strip(), passphrase, data_key, kdf or crypto.kdf_from_environment())
            db.conn.execute(
                "INSERT INTO recovery(public_key, wrapped_key, created) VALUES (?, ?, ?)",
                (
                    crypto.x25519_public_pem(recovery_public_key),
                    crypto.wrap_to_recovery(recovery_public_key, data_key, db_id),
                    _now_iso(),
                ),
            )
            sealer = crypto.Sealer(data_key, db_id)
            ikey = index_key or secrets.token_bytes(32)
            db.conn.execute("INSERT INTO secrets(name, blob) VALUES ('index_key', ?)", (sealer.seal("secret", "index_key", ikey),))
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.conn.close()
        os.replace(tmp, path)
        for leftover in (Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            leftover.unlink(missing_ok=True)
        store = cls(path, cls._connect(path), lock)
        store._unlocked(data_key, operator.strip())
        return store

    @classmethod
    def open(cls, path, wall: Callable[[], float] = time.time, *, read_only: bool = False, wait: float = 0,
             on_wait: Callable[[float], None] | None = None) -> "Store":
        """Open an existing database (locked). Raises StoreError for a missing, foreign, truncated
        or busy file.

        A writer takes the database's exclusive lock, waiting up to `wait` seconds for another
        program to close it. `read_only` takes no lock: it reads beside a writer (SQLite WAL
        readers), sees one snapshot once `snapshot()` is called, and refuses to write records."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"找不到数据库文件 {path}")
        if path.is_dir():
            raise StoreError(f"{path} 是一个文件夹,不是数据库文件:请给出 .db 文件的路径")
        with open(path, "rb") as fh:
            header = fh.read(16)
        if header != b"SQLite format 3\x00":
            raise StoreError(f"{path} 不是建档数据库(文件格式不对,或文件已损坏)")
        lock = None if read_only else _FileLock(path.with_name(path.name + ".lock"))
        if lock is not None and not lock.acquire(wait, on_wait):
            raise StoreError(busy_message(path, wait))
        if lock is not None:  # holding the lock: nobody is creating this file now
            for leftover in _creating_leftovers(path):
                leftover.unlink(missing_ok=True)
        try:
            db = cls._connect(path, read_only)
            names = set(db.table_names())
            if "meta" not in names:
                raise StoreError(f"{path} 不是建档数据库")
            meta = dict(db.conn.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("app") != APP_ID:
                raise StoreError(f"{path} 不是建档数据库")
            version = int(meta.get("schema_version", 0))
            if version > SCHEMA_VERSION:
                raise StoreError(f"{path} 由更新版本的建档程序创建(结构版本 {version}),请升级程序")
            if version < SCHEMA_VERSION:
                if read_only:
                    raise StoreError(f"{path} 需要升级数据结构:请先用窗口或写入数据的命令打开它一次")
                with _transaction(db.conn):
                    migrate(db)
            check = db.conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{path} 已损坏({sqlite_reason(check, what=str(path))}),请从备份恢复")
        except sqlite3.DatabaseError as exc:
            if lock is not None:
                lock.release()
            if read_only and _is_busy(exc):
                raise StoreError(f"{path} 正被另一个建档程序写入,一时读不了:请稍后再试(数据没有问题)") from None
            raise StoreError(f"{path} 不是完整的建档数据库:{sqlite_reason(exc, what=str(path))}。"
                             "请从备份恢复(jiandang restore)") from None
        except StoreError:
            if lock is not None:
                lock.release()
            raise
        return cls(path, db, lock, wall, read_only)

    def close(self) -> None:
        self.lock()
        if not self.read_only:  # a reader leaves the writer's WAL alone
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.close()
        if self._lock:
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ keys and operators

    def operators(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT login FROM operators ORDER BY created, login")]

    def unlock(self, operator: str, passphrase: str) -> None:
        """Unlock with an operator's passphrase. A wrong passphrase raises WrongPassphrase and makes
        the next attempt wait (1 s, 2 s, 4 s, ... up to 5 minutes)."""
        self._unlocked(self._open_wrap(operator, passphrase), operator)

    def _open_wrap(self, operator: str, passphrase: str) -> bytes:
        """The data key from an operator's passphrase wrap, counting failures."""
        row = self.conn.execute(
            "SELECT salt, kdf, wrapped_key, failed, locked_until FROM operators WHERE login = ?", (operator,)
        ).fetchone()
        if row is None:
            raise StoreError(f"没有名为“{operator}”的操作员。已有操作员:{'、'.join(self.operators())}")
        salt, kdf, wrapped, failed, locked_until = row
        now = self._wall()
        # a wait longer than the longest delay means the machine's clock jumped back (a flat CMOS
        # battery): it must not lock the operator out for years, so that wait is over
        if now < locked_until <= now + MAX_DELAY_SECONDS:
            wait = locked_until - now
            raise TooManyAttempts(f"上一次密码错误(已连续错 {failed} 次),每次错误后须等待一会儿再试:"
                                  f"请 {math.ceil(wait)} 秒后再输入密码", wait)
        kek = crypto.derive_key(passphrase, salt, crypto.KdfParams.from_json(kdf))
        try:
            data_key = crypto.open_sealed(kek, wrapped, self._wrap_aad(operator))
        except crypto.DecryptionError:
            failed += 1
            delay = min(2 ** (failed - 1), MAX_DELAY_SECONDS)
            self.conn.execute(
                "UPDATE operators SET failed = ?, locked_until = ? WHERE login = ?", (failed, now + delay, operator)
            )
            raise WrongPassphrase(
                f"操作员“{operator}”的密码不正确(第 {failed} 次)。请 {delay} 秒后再试;忘记密码请联系县扶贫办用恢复密钥重置。",
                delay,
            ) from None
        if failed:
            self.conn.execute("UPDATE operators SET failed = 0, locked_until = 0 WHERE login = ?", (operator,))
        return data_key

    def unlock_with_recovery(self, private_key, operator: str = "县级恢复") -> None:
        """Unlock with the county's recovery private key (X25519)."""
        wrapped = self.conn.execute("SELECT wrapped_key FROM recovery ORDER BY id DESC").fetchone()[0]
        data_key = crypto.unwrap_with_recovery(private_key, wrapped, self.db_id)
        self._unlocked(data_key, operator)

    def _wrap_aad(self, operator: str) -> bytes:
        return f"jd1|{self.db_id}|operator|{operator}".encode()

    def _unlocked(self, data_key: bytes, operator: str) -> None:
        self._data_key = data_key
        self._sealer = crypto.Sealer(data_key, self.db_id)
        self.operator = operator
        blob = self.conn.execute("SELECT blob FROM secrets WHERE name = 'index_key'").fetchone()[0]
        self._index_key = self._sealer.open("secret", "index_key", blob)

    @property
    def unlocked(self) -> bool:
        return self._sealer is not None

    def lock(self) -> None:
        """Forget the keys and the decrypted search index (idle lock, close)."""
        self._sealer = None
        self._data_key = None
        self._index_key = None
        self._search = None
        self.operator = None

    def _require(self) -> crypto.Sealer:
        if self._sealer is None:
            raise StoreLocked("数据库已锁定,请先输入密码解锁")
        return self._sealer

    def add_operator(self, login: str, passphrase: str, kdf: crypto.KdfParams | None = None) -> None:
        self._require()
        login = login.strip()
        if not login:
            raise StoreError("操作员名称不能为空")
        if login in self.operators():
            raise StoreError(f"操作员“{login}”已存在")
        _check_passphrase(passphrase)
        with self.transaction():
            _add_wrap(self.conn, login, passphrase, self._data_key, kdf or crypto.kdf_from_environment(), self.db_id)

    def change_passphrase(self, login: str, old: str, new: str, kdf: crypto.KdfParams | None = None) -> None:
        """Change an operator's passphrase; the old one must be right."""
        data_key = self._open_wrap(login, old)  # raises on a wrong passphrase
        _check_passphrase(new)
        with self.transaction():
            self.conn.execute("DELETE FROM operators WHERE login = ?", (login,))
            _add_wrap(self.conn, login, new, data_key, kdf or crypto.kdf_from_environment(), self.db_id)

    def reset_passphrase(self, login: str, new: str, kdf: crypto.KdfParams | None = None) -> None:
        """Set a new passphrase for an operator without the old one (after `unlock_with_recovery`)."""
        self._require()
        _check_passphrase(new)
        with self.transaction():
            self.conn.execute("DELETE FROM operators WHERE login = ?", (login,))
            _add_wrap(self.conn, login, new, self._data_key, kdf or crypto.kdf_from_environment(), self.db_id)

    # ------------------------------------------------------------------ secrets (sealed key material)

    def put_secret(self, name: str, value: bytes) -> None:
        sealer = self._require()
        self.conn.execute("INSERT OR REPLACE INTO secrets(name, blob) VALUES (?, ?)", (name, sealer.seal("secret", name, value)))

    def get_secret(self, name: str) -> bytes | None:
        sealer = self._require()
        row = self.conn.execute("SELECT blob FROM secrets WHERE name = ?", (name,)).fetchone()
        return sealer.open("secret", name, row[0]) if row else None

    def delete_secret(self, name: str) -> None:
        self.conn.execute("DELETE FROM secrets WHERE name = ?", (name,))

    def secret_names(self, prefix: str = "") -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM secrets WHERE name LIKE ? ORDER BY name",
                                                (prefix.replace("%", r"\%") + "%",))]

    def meta(self, key: str, default=None):
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ transactions

    def snapshot(self) -> None:
        """A reader: from here on read the database as it is now (one read transaction until close),
        whatever a writer beside it commits meanwhile."""
        if self.read_only and not self.conn.in_transaction:
            self.conn.execute("BEGIN")
            self.conn.execute("SELECT count(*) FROM meta").fetchone()

    @contextlib.contextmanager
    def transaction(self):
        """One atomic unit of work. Nested uses join the outer transaction."""
        if self.read_only:
            raise StoreError(f"{self.path.name} 是只读打开的(另一个程序可能正在写入),此处不能保存修改")
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        saved_clock = self.clock.last
        try:
            yield self
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('clock', ?)", (self.clock.last,))
            self.conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            self.clock.last = saved_clock
            self._next_seq = None
            self._search = None
            self._pending = []
            raise
        finally:
            self._depth = 0
        pending, self._pending = self._pending, []
        if pending:
            for listener in list(self.listeners):
                listener(pending)

    # ------------------------------------------------------------------ records

    def damaged_in(self, place: str) -> list[str]:
        """Ids of records found damaged so far (this session) in a village, or in every village of a
        township or county code (a prefix)."""
        ids = list(self.damaged)
        found = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            found += [r[0] for r in self.conn.execute(
                f"SELECT id FROM records WHERE id IN ({','.join('?' * len(chunk))}) AND village_code LIKE ?",
                [*chunk, f"{place}%"])]
        return found

    def damaged_summary(self) -> str | None:
        """A Chinese sentence about the records `records()` had to skip, or None if there were none."""
        if not self.damaged:
            return None
        from app.core.dictionary import default  # noqa: PLC0415 - labels only

        kinds = default().kinds
        named = "、".join(f"{kinds[k].label if k in kinds else k} {rid}" for rid, k in list(self.damaged.items())[:5])
        more = f" 等 {len(self.damaged)} 条" if len(self.damaged) > 5 else ""
        return (f"有 {len(self.damaged)} 条记录无法解密,已跳过({named}{more}):数据文件中的这些记录已损坏或被改动。"
                f"请运行 jiandang check {self.path.name} 查看,并用 jiandang restore 从最近的备份恢复")

    def _decode(self, row) -> Record:
        rid, kind, village, parent, hlc, deleted, blob = row
        body = _loads(self._require().open(kind, rid, blob))
        return Record(rid, kind, village, parent, hlc, bool(deleted), body["f"], body["c"])

    _COLUMNS = "id, kind, village_code, parent_id, hlc, deleted, blob"

    def get(self, record_id: str) -> Record | None:
        row = self.conn.execute(f"SELECT {self._COLUMNS} FROM records WHERE id = ?", (record_id,)).fetchone()
        return self._decode(row) if row else None

    def records(
        self,
        kind: str | None = None,
        *,
        village_code: str | None = None,
        parent_id: str | None = None,
        include_deleted: bool = False,
    ) -> Iterator[Record]:
        """Decrypted records filtered on their plain routing columns, in insertion order. A record
        that fails to decrypt (damaged or tampered with) is skipped and added to `self.damaged`;
        `get` of that record raises DecryptionError."""
        self._require()
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if village_code:
            where.append("village_code = ?")
            args.append(village_code)
        if parent_id:
            where.append("parent_id = ?")
            args.append(parent_id)
        if not include_deleted:
            where.append("deleted = 0")
        columns = self._COLUMNS if include_deleted else self._COLUMNS.replace("deleted", "0")  # known: not deleted
        sql = f"SELECT {columns} FROM records" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY rowid"
        cursor = self.conn.execute(sql, args)
        while rows := cursor.fetchmany(_DECODE_BATCH):
            with _gc_paused():  # never while the caller's code runs between our yields
                decoded = self._decode_rows(rows)
            del rows
            yield from decoded

    def _decode_rows(self, rows: list) -> list[Record]:
        """`_decode` of many rows in one loop (the load of a whole database goes through here). A
        record that fails to decrypt (damaged or tampered with) is skipped and named in
        `self.damaged`: one damaged record must not make the whole database unreadable; the caller
        (and `check`) reports it."""
        plains = self._require().open_rows(rows, 0, 1, 6)
        out = []
        append = out.append
        loads = orjson.loads
        for (rid, kind, village, parent, hlc, deleted, _blob), plain in zip(rows, plains):
            if plain is None:
                self.damaged[rid] = kind
                continue
            try:
                body = loads(plain) if plain[:1] != STDLIB_MARK else _loads(plain)
            except orjson.JSONDecodeError:
                body = _loads(plain)
            append(Record(rid, kind, village, parent, hlc, deleted != 0, body["f"], body["c"]))
        return out

    def count(self, kind: str | None = None, village_code: str | None = None) -> int:
        sql, args = "SELECT count(*) FROM records WHERE deleted = 0", []
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        if village_code:
            sql += " AND village_code = ?"
            args.append(village_code)
        return self.conn.execute(sql, args).fetchone()[0]

    def village_codes(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT village_code FROM records WHERE village_code IS NOT NULL ORDER BY 1")]

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

    def put(
        self,
        kind: str,
        fields: dict,
        *,
        record_id: str | None = None,
        village_code: str | None = None,
        parent_id: str | None = None,
        seen: dict | None = None,
        reason: str | None = None,
        replace: bool = False,
    ) -> Change | None:
        """Create a record or change some of its fields, writing the change row in the same
        transaction. Fields not named are left alone unless `replace` (then they are cleared).
        A value of None removes a field. Returns the Change written, or None when nothing changed."""
        sealer = self._require()
        with self.transaction():
            current = self.get(record_id) if record_id else None
            if current is None and record_id and village_code is None and parent_id is None:
                # an edit meant for a record this database does not hold would otherwise create a
                # record in no village, which no bundle can carry to the county
                raise StoreError(f"找不到记录 {record_id}:它不在本数据库中(新建记录时请给出村代码)")
            record_id = record_id or new_record_id()
            hlc = self.clock.now()
            if current is None:
                new = {k: v for k, v in fields.items() if not _is_empty(v)}
                change = Change(self.site_id, self._next_sequence(), record_id, kind, village_code, parent_id, hlc,
                                "create", new, {}, {}, self.operator, reason)
                record = Record(record_id, kind, village_code, parent_id, hlc, False, new, {"*": hlc})
            else:
                if current.kind != kind:
                    raise StoreError(f"记录 {record_id} 是 {current.kind},不能按 {kind} 保存")
                target = dict(fields)
                if replace:
                    for key in current.fields:
                        target.setdefault(key, None)
                new, old, seen_out = {}, {}, {}
                for key, value in target.items():
                    if value == "" or value == []:
                        value = None
                    before = current.fields.get(key)
                    if value != before:
                        new[key] = value
                        old[key] = before
                        seen_out[key] = (seen or {}).get(key, current.clock_of(key))
                moved = village_code is not None and village_code != current.village_code
                if not new and not moved and not current.deleted:
                    return None
                if moved:
                    new["__village_code"] = village_code
                    old["__village_code"] = current.village_code
                op = "restore" if current.deleted else "update"
                change = Change(self.site_id, self._next_sequence(), record_id, kind, village_code or current.village_code,
                                current.parent_id, hlc, op, new, old, seen_out, self.operator, reason)
                merged = {k: v for k, v in current.fields.items()}
                clocks = dict(current.clocks)
                for key, value in new.items():
                    if key.startswith("__"):
                        continue
                    clocks[key] = hlc
                    if value is None:
                        merged.pop(key, None)
                    else:
                        merged[key] = value
                record = Record(record_id, kind, village_code or current.village_code, current.parent_id, hlc, False, merged, clocks)
            self._write_record(sealer, record)
            self._write_change(sealer, change)
            return change

    def create_many(self, items: Iterable[tuple[str, dict, str | None, str | None]], *, reason: str | None = None) -> list[Change]:
        """Create many new records at once: items are (kind, fields, village_code, parent_id), or
        (kind, fields, village_code, parent_id, record_id) to choose the id. Each gets its sealed record
        and change row like `put`, written with executemany in the caller's transaction (bulk import)."""
        sealer = self._require()
        records, changes, blinds, out = [], [], [], []
        tail = b',"old":{},"seen":{},"by":' + _dumps(self.operator) + b',"why":' + _dumps(reason) + b"}"
        with self.transaction():
            for item in items:
                kind, fields, village, parent = item[:4]
                record_id = (item[4] if len(item) > 4 else None) or new_record_id()
                hlc = self.clock.now()
                new = {k: v for k, v in fields.items() if not _is_empty(v)}
                seq = self._next_sequence()
                change = Change(self.site_id, seq, record_id, kind, village, parent, hlc, "create", new, {}, {},
                                self.operator, reason)
                body = _dumps(new)
                mark = STDLIB_MARK if body[:1] == STDLIB_MARK else b""  # the whole must carry it
                blob = sealer.seal(kind, record_id, mark + b'{"f":' + body + b',"c":{"*":"' + hlc.encode() + b'"}}')
                payload = sealer.seal("change", f"{self.site_id}:{seq}", mark + b'{"op":"create","new":' + body + tail)
                records.append((record_id, kind, village, parent, hlc, 0, sealer.key_version, blob))
                changes.append((self.site_id, seq, record_id, kind, village, parent, hlc, sealer.key_version, payload))
                if kind == "member" and new.get("id_number"):
                    blinds.append((record_id, self.blind("id_number", idnumber.normalise(new["id_number"]))))
                if self._search is not None:
                    self._index_record(Record(record_id, kind, village, parent, hlc, False, new, {"*": hlc}))
                out.append(change)
            self.conn.executemany("INSERT INTO records(id, kind, village_code, parent_id, hlc, deleted, key_version, blob) "
                                  "VALUES (?,?,?,?,?,?,?,?)", records)
            self.conn.executemany("INSERT INTO changes(site_id, seq, record_id, kind, village_code, parent_id, hlc, "
                                  "key_version, payload) VALUES (?,?,?,?,?,?,?,?,?)", changes)
            self.conn.executemany("INSERT INTO blind_index(record_id, field, digest) VALUES (?, 'id_number', ?)", blinds)
            self._pending.extend(out)
        return out

    def delete(self, record_id: str, *, reason: str | None = None) -> Change | None:
        """Tombstone a record (never a silent removal). Returns the Change, or None if already deleted."""
        sealer = self._require()
        with self.transaction():
            current = self.get(record_id)
            if current is None:
                raise StoreError(f"找不到记录 {record_id}")
            if current.deleted:
                return None
            hlc = self.clock.now()
            change = Change(self.site_id, self._next_sequence(), record_id, current.kind, current.village_code,
                            current.parent_id, hlc, "delete", {}, {}, {"__deleted": current.clock_of("__deleted")},
                            self.operator, reason)
            current.deleted = True
            current.hlc = hlc
            current.clocks["__deleted"] = hlc
            self._write_record(sealer, current)
            self._write_change(sealer, change)
            return change

    def _write_record(self, sealer: crypto.Sealer, record: Record) -> None:
        blob = sealer.seal(record.kind, record.id, _dumps({"f": record.fields, "c": record.clocks}))
        self.conn.execute(
            "INSERT INTO records(id, kind, village_code, parent_id, hlc, deleted, key_version, blob) VALUES (?,?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET village_code=excluded.village_code, hlc=excluded.hlc, deleted=excluded.deleted, "
            "key_version=excluded.key_version, blob=excluded.blob",
            (record.id, record.kind, record.village_code, record.parent_id, record.hlc, int(record.deleted), sealer.key_version, blob),
        )
        self._update_blind_index(record)
        if self._search is not None:
            self._index_record(record)

    def _write_change(self, sealer: crypto.Sealer, change: Change) -> None:
        payload = sealer.seal("change", f"{change.site_id}:{change.seq}", _dumps(change.payload()))
        self.conn.execute(
            "INSERT INTO changes(site_id, seq, record_id, kind, village_code, parent_id, hlc, key_version, payload) VALUES (?,?,?,?,?,?,?,?,?)",
            (change.site_id, change.seq, change.record_id, change.kind, change.village_code, change.parent_id, change.hlc,
             sealer.key_version, payload),
        )
        self._pending.append(change)

    def write_record_raw(self, record: Record) -> None:
        """Write a record's state as given (merge code applies remote changes through this)."""
        self._write_record(self._require(), record)

    def write_change_raw(self, change: Change) -> None:
        """Append a change received from another site to the log, as it was made there."""
        self._write_change(self._require(), change)

    def write_records_raw(self, records: list[Record]) -> None:
        """Write many records' states as given at once (executemany; merge code)."""
        sealer = self._require()
        rows = [(r.id, r.kind, r.village_code, r.parent_id, r.hlc, int(r.deleted), sealer.key_version,
                 sealer.seal(r.kind, r.id, _dumps({"f": r.fields, "c": r.clocks}))) for r in records]
        self.conn.executemany(
            "INSERT INTO records(id, kind, village_code, parent_id, hlc, deleted, key_version, blob) VALUES (?,?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET village_code=excluded.village_code, hlc=excluded.hlc, deleted=excluded.deleted, "
            "key_version=excluded.key_version, blob=excluded.blob", rows)
        for r in records:
            self._update_blind_index(r)
            if self._search is not None:
                self._index_record(r)

    def get_many(self, record_ids: list[str]) -> dict[str, Record]:
        """The records with these ids that exist (chunked lookups)."""
        out = {}
        ids = list(record_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT {self._COLUMNS} FROM records WHERE id IN ({marks})", chunk):
                out[row[0]] = self._decode(row)
        return out

    def write_changes_raw(self, changes: list[Change]) -> None:
        """Append many changes received from other sites at once (executemany; merge code)."""
        sealer = self._require()
        rows = [(c.site_id, c.seq, c.record_id, c.kind, c.village_code, c.parent_id, c.hlc, sealer.key_version,
                 sealer.seal("change", f"{c.site_id}:{c.seq}", _dumps(c.payload()))) for c in changes]
        self.conn.executemany(
            "INSERT INTO changes(site_id, seq, record_id, kind, village_code, parent_id, hlc, key_version, payload) VALUES (?,?,?,?,?,?,?,?,?)",
            rows)
        self._pending.extend(changes)

    def new_hlc(self) -> str:
        return self.clock.now()

    # ------------------------------------------------------------------ change log

    def _decode_change(self, row) -> Change:
        site, seq, rid, kind, village, parent, hlc, payload = row
        body = _loads(self._require().open("change", f"{site}:{seq}", payload))
        return Change(site, seq, rid, kind, village, parent, hlc, body["op"], body["new"], body["old"], body["seen"],
                      body["by"], body.get("why"))

    _CHANGE_COLUMNS = "site_id, seq, record_id, kind, village_code, parent_id, hlc, payload"

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

    # ------------------------------------------------------------------ blind index and search

    def blind(self, field_type: str, value: str) -> bytes:
        if self._index_key is None:
            raise StoreLocked("数据库已锁定,请先输入密码解锁")
        return crypto.blind_digest(self._index_key, field_type, value)

    def _update_blind_index(self, record: Record) -> None:
        if record.kind != "member":
            return
        self.conn.execute("DELETE FROM blind_index WHERE record_id = ?", (record.id,))
        number = record.fields.get("id_number")
        if number and not record.deleted:
            digest = self.blind("id_number", idnumber.normalise(number))
            self.conn.execute("INSERT INTO blind_index(record_id, field, digest) VALUES (?, 'id_number', ?)", (record.id, digest))

    def find_id_number(self, number: str) -> list[str]:
        """Ids of current member records holding this ID number (through the blind index)."""
        digest = self.blind("id_number", idnumber.normalise(number))
        return [r[0] for r in self.conn.execute("SELECT record_id FROM blind_index WHERE digest = ?", (digest,))]

    def duplicate_id_numbers(self) -> list[list[str]]:
        """Groups of member ids that share an ID number."""
        rows = self.conn.execute(
            "SELECT group_concat(record_id, ',') FROM blind_index WHERE field = 'id_number' GROUP BY digest HAVING count(*) > 1"
        )
        return [r[0].split(",") for r in rows]

    def _index_record(self, record: Record) -> None:
        if record.kind == "household":
            key = record.id
            text = "\x1f".join(str(record.fields.get(k, "")) for k in ("household_number", "head_name", "phone"))
            own = f"{record.id}|h"
            number = None if record.deleted else str(record.fields.get("household_number") or "") or None
            before = self._number_of.pop(record.id, None)
            if before is not None:
                self._numbers.get(before, set()).discard(record.id)
            if number is not None:
                self._numbers.setdefault(number, set()).add(record.id)
                self._number_of[record.id] = number
        elif record.kind == "member":
            key = record.parent_id
            text = "\x1f".join(str(record.fields.get(k, "")) for k in ("name", "id_number"))
            own = f"{record.id}|m"
        else:
            return
        parts = self._search_parts.setdefault(key, {})
        if record.deleted:
            parts.pop(own, None)
        else:
            parts[own] = text
        self._search[key] = "\x1f".join(parts.values()).upper()

    def build_search_index(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Decrypt household and member names into memory for substring search."""
        self._search, self._search_parts, self._numbers, self._number_of = {}, {}, {}, {}
        total = self.conn.execute("SELECT count(*) FROM records WHERE kind IN ('household','member') AND deleted = 0").fetchone()[0]
        i = 0
        for kind in ("household", "member"):  # through records(): a damaged record is skipped and named
            for record in self.records(kind):
                self._index_record(record)
                i += 1
                if progress and i % 1000 == 0:
                    progress(i, total)
        if progress:
            progress(total, total)

    def find_household_number(self, number: str) -> list[str]:
        """Ids of current households whose 户编号 is exactly `number` (through the in-memory search
        index, built on first use)."""
        self._require()
        if self._search is None:
            self.build_search_index()
        return sorted(self._numbers.get(str(number).strip(), ()))

    def search(self, text: str, limit: int | None = None) -> list[str]:
        """Household ids whose household number, head's name, phone, or any member's name or ID
        number contains `text` (case-insensitive)."""
        self._require()
        if self._search is None:
            self.build_search_index()
        needle = text.strip().upper()
        if not needle:
            return list(self._search)[:limit] if limit else list(self._search)
        out = [hid for hid, hay in self._search.items() if needle in hay]
        return out[:limit] if limit else out

    # ------------------------------------------------------------------ reference data

    def set_divisions(self, rows: Iterable[tuple[str, str, str, str | None]]) -> None:
        """(code, name, level, parent) rows of the administrative divisions this database knows."""
        with self.transaction():
            self.conn.executemany("INSERT OR REPLACE INTO divisions(code, name, level, parent) VALUES (?,?,?,?)", list(rows))

    def divisions(self, level: str | None = None) -> list[dict]:
        sql = "SELECT code, name, level, parent FROM divisions"
        args = []
        if level:
            sql += " WHERE level = ?"
            args.append(level)
        return [dict(zip(("code", "name", "level", "parent"), r)) for r in self.conn.execute(sql + " ORDER BY code", args)]

    def division_name(self, code: str) -> str:
        row = self.conn.execute("SELECT name FROM divisions WHERE code = ?", (code,)).fetchone()
        return row[0] if row else code

    def set_poverty_line(self, year: int, line: float, source: str = "") -> None:
        with self.transaction():
            self.conn.execute("INSERT OR REPLACE INTO poverty_lines(year, line, source) VALUES (?,?,?)", (year, line, source))

    def poverty_line(self, year: int) -> float | None:
        row = self.conn.execute("SELECT line FROM poverty_lines WHERE year = ?", (year,)).fetchone()
        return row[0] if row else None

    def poverty_lines(self) -> dict[int, float]:
        return dict(self.conn.execute("SELECT year, line FROM poverty_lines ORDER BY year").fetchall())


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase or "") < 8:
        raise StoreError("密码至少需要 8 个字符")


def _add_wrap(conn, login: str, passphrase: str, data_key: bytes, kdf: crypto.KdfParams, db_id: str | None = None) -> None:
    if db_id is None:
        db_id = dict(conn.execute("SELECT key, value FROM meta").fetchall())["db_id"]
    salt = secrets.token_bytes(16)
    kek = crypto.derive_key(passphrase, salt, kdf)
    wrapped = crypto.seal(kek, data_key, f"jd1|{db_id}|operator|{login}".encode())
    conn.execute(
        "INSERT INTO operators(login, salt, kdf, wrapped_key, failed, locked_until, created) VALUES (?,?,?,?,0,0,?)",
        (login, salt, kdf.to_json(), wrapped, _now_iso()),
    )


@contextlib.contextmanager
def _transaction(conn):
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
