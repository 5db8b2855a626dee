"""The encrypted store: one SQLite file through sqlite-utils. `Store` is the front door; its parts
live beside this file, one seam each:

- app/store/base.py       Record, Change, the errors, record ids, JSON encoding of sealed bodies
- app/store/locking.py    the exclusive OS lock on the database's sidecar file
- app/store/keys.py       operators' passphrase wraps, recovery, unlock/lock, sealed secrets
- app/store/changelog.py  change rows, sequence numbers, history, the log for sync
- app/store/search.py     the blind index of ID numbers and 户编号, the in-memory search index
- app/store/reference.py  divisions and poverty lines
- app/store/bodies.py     what a record's sealed body holds, reading many at once, converting old ones
- this file               creating and opening the file, transactions and listeners, records

Plain columns hold only what routing needs (record ids, kinds, village codes, parent ids, clocks);
the sealed body holds village, parent and clock too, and reads take them from there.
Every record's fields and every change's values are sealed with the database's data key
(see app.store.crypto). Every write goes through `put` or `delete`, which write the record and its
change row in the same transaction; the change log is the audit trail and what sync ships.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from app import fileio
from app.core.clock import ZERO, HybridClock
from app.store import bodies, crypto
from app.store.base import (  # noqa: F401 - the names callers import from app.store.db
    _DECODE_BATCH,
    _READ_STEP,
    STDLIB_MARK,
    Change,
    Record,
    StoreError,
    StoreLocked,
    TooManyAttempts,
    UpgradeNeeded,
    WrongPassphrase,
    _dumps,
    _gc_paused,
    _is_empty,
    _loads,
    _now_iso,
    matches_short_id,
    new_record_id,
    short_id,
    sqlite_reason,
)
from app.store.changelog import ChangeLog
from app.store.keys import MAX_DELAY_SECONDS, Keys, _add_wrap, _check_passphrase  # noqa: F401
from app.store.locations import PgLocation, location
from app.store.locking import FileLock, _FileLock  # noqa: F401
from app.store.migrations import SCHEMA_VERSION, migrate
from app.store.reference import ReferenceData
from app.store.search import SearchIndex, number_index_pending
from app.store.shared import SharedWriters

if TYPE_CHECKING:
    import sqlite_utils

APP_ID = "jiandang"
ROLES = ("village", "township", "county")
# The page size of a new database (SQLite's default is 4 KiB). A sealed record body is 0.5-1 KB, so
# a 4 KiB page holds about five rows and leaves a sixth of itself empty; loading 10,000 households
# read some 10,000 pages one system call each. 16 KiB pages hold four times the rows with less left
# over: the load reads a quarter of the pages (bench/store.py, docs/developing.md). A database keeps
# the page size it was made with (existing ones stay at 4 KiB; both work alike).
PAGE_SIZE = 16384


def _is_busy(exc) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _creating_leftovers(path: Path) -> list[Path]:
    """What a `create` cut off (power lost, killed) left beside the database: DB.creating and its
    SQLite sidecars (only these names)."""
    tmp = path.with_name(path.name + ".creating")
    return [p for p in (tmp, *(Path(str(tmp) + s) for s in ("-wal", "-shm", "-journal"))) if p.exists()]


def _orphaned_sidecars(path: Path) -> list[Path]:
    """A write-ahead log or rollback journal (not empty) beside a database file that is not there:
    SQLite would take it for the new file's own and replay another database's pages into it."""
    return [p for p in (Path(str(path) + "-wal"), Path(str(path) + "-journal")) if p.exists() and p.stat().st_size > 0]


def held_by_another(path) -> bool:
    """Whether another running program has this database open for writing (its lock is taken). A
    county on PostgreSQL has no such lock: several programs write it at once."""
    if isinstance(location(path), PgLocation):
        return False
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
    return (f"{path} 已被另一个正在运行的建档程序打开{how}。请先关闭那个程序(窗口或命令)后再试;"
            f"只读取数据的命令({READERS})可以与它同时运行。")


MOVED_TO, MOVED_ON = "moved_to", "moved_on"  # meta of a county file moved to PostgreSQL (app/services/county_move.py)


def moved_message(path, url: str, when: str) -> str:
    """Why a county file that `jiandang county migrate` moved to PostgreSQL is not opened for writing."""
    return (f"{path} 这个县级数据库已{f'于 {when} ' if when else ''}迁移到 PostgreSQL({url}),"
            "现在只作迁移前的备份:请改用这个地址(窗口的“服务器上的县级库…”,或命令中写这个地址)。"
            "不再在这个文件中导入、登记或修改,否则改动不会出现在 PostgreSQL 中,登记的电脑也同步不上")


class Store(SharedWriters, Keys, ChangeLog, SearchIndex, ReferenceData):
    """An open database. Create with `Store.create`, open an existing file with `Store.open`,
    then `unlock` with an operator's passphrase before reading or writing records.

    The database is a SQLite file (a path) or, for a county, a PostgreSQL database (a
    `postgresql://` URL, app/store/postgres.py): `app.store.location(text)` tells them apart."""

    def __init__(self, path: Path | PgLocation, db: sqlite_utils.Database, lock: _FileLock | None,
                 wall: Callable[[], float] = time.time, read_only: bool = False):
        self.path = path if isinstance(path, PgLocation) else Path(path)
        self.shared = isinstance(self.path, PgLocation)  # other programs write it at the same time
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
        self._savepoints = 0  # savepoints made in the current transaction (their names)
        self._next_seq: int | None = None
        self._search: dict[str, str] | None = None
        self._search_parts: dict[str, dict[str, str]] = {}
        self._data_key: bytes | None = None
        self.listeners: list[Callable[[list[Change]], None]] = []
        self._pending: list[Change] = []
        # record id -> kind of records that failed to decrypt while listing (skipped by records())
        self.damaged: dict[str, str] = {}

    # ------------------------------------------------------------------ opening

    @staticmethod
    def _connect(path: Path, read_only: bool = False, *, new: bool = False) -> sqlite_utils.Database:
        import sqlite_utils  # noqa: PLC0415 - loaded for a SQLite file only: a PostgreSQL county's
        # programs (the service's workers, `sync import` at the county) start without it (about 0.1 s)

        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
        db = sqlite_utils.Database(conn)
        if new:  # only before the first table: a database keeps the page size it was made with
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
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
        where = location(path)
        if role not in ROLES:
            raise StoreError(f"角色应为 village、township 或 county 之一,而不是 {role!r}")
        if isinstance(where, PgLocation):
            return cls._create_postgres(where, role=role, site_name=site_name, operator=operator, passphrase=passphrase,
                                        recovery_public_key=recovery_public_key, kdf=kdf, site_id=site_id,
                                        index_key=index_key)
        path = where
        if path.exists() and path.stat().st_size > 0:
            raise StoreError(f"{path} 已存在:不会覆盖已有文件,请换一个文件名")
        for sidecar in _orphaned_sidecars(path):  # SQLite would replay it into the new file
            raise StoreError(f"{sidecar} 存在:这是以前同名数据库留下的未写完的数据(程序被中断时留下)。"
                             f"新数据库不会放在它旁边:请换一个文件名;如确认不再需要,可先删除 {sidecar.name}")
        _check_new_store(operator, passphrase, recovery_public_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = _FileLock(path.with_name(path.name + ".lock"))
        if not lock.acquire():
            raise StoreError(f"{path} 正被另一个程序使用")
        tmp = path.with_name(path.name + ".creating")
        for leftover in _creating_leftovers(path):
            leftover.unlink(missing_ok=True)
        fileio.create_private(tmp).close()  # owner-only; SQLite gives its WAL and journal the same mode
        db = cls._connect(tmp, new=True)
        with write_transaction(db.conn):
            data_key = _initialise(db, role=role, site_name=site_name, operator=operator, passphrase=passphrase,
                                   recovery_public_key=recovery_public_key, kdf=kdf, site_id=site_id, index_key=index_key)
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.conn.close()
        os.replace(tmp, path)
        for leftover in (Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            leftover.unlink(missing_ok=True)
        store = cls(path, cls._connect(path), lock)
        store._unlocked(data_key, operator.strip())
        return store

    @classmethod
    def _create_postgres(cls, where: PgLocation, *, role: str, operator: str, passphrase: str, recovery_public_key,
                         **settings) -> "Store":
        """A county database in an empty PostgreSQL database: all of it in one transaction, so a
        failure leaves the database as empty as it was."""
        from app.store import postgres  # noqa: PLC0415 - laptops never load psycopg

        if role != "county":
            raise StoreError(f"PostgreSQL 数据库只能作县级数据库(--role county);{role} 数据库请用 SQLite 文件,"
                             "例如 jiandang init 本村.db")
        _check_new_store(operator, passphrase, recovery_public_key)
        conn = postgres.connect(where)
        db = postgres.PgDatabase(conn)
        try:
            with write_transaction(conn):
                if db.table_names():
                    raise StoreError(f"PostgreSQL 数据库 {where.masked} 中已有数据表:不会覆盖已有数据。"
                                     "请换一个新建的空数据库(例如 createdb 新名字)")
                data_key = _initialise(db, role=role, operator=operator, passphrase=passphrase,
                                       recovery_public_key=recovery_public_key, **settings)
        except BaseException:
            conn.close()
            raise
        store = cls(where, db, None)
        store._unlocked(data_key, operator.strip())
        return store

    @classmethod
    def open(cls, path, wall: Callable[[], float] = time.time, *, read_only: bool = False, wait: float = 0,
             on_wait: Callable[[float], None] | None = None, moved_ok: bool = False) -> "Store":
        """Open an existing database (locked). Raises StoreError for a missing, foreign, truncated
        or busy file.

        A writer takes the database's exclusive lock, waiting up to `wait` seconds for another
        program to close it. `read_only` takes no lock: it reads beside a writer (SQLite WAL
        readers), sees one snapshot once `snapshot()` is called, and refuses to write records.

        A `postgresql://` URL opens a county database on a PostgreSQL server (no file lock: other
        programs write it at the same time, see app/store/postgres.py).

        A county file that `jiandang county migrate` moved to PostgreSQL is refused for writing
        (`moved_message`), unless `moved_ok` (the check of a backup of it, which unlocks it)."""
        where = location(path)
        if isinstance(where, PgLocation):
            return cls._open_postgres(where, wall, read_only)
        path = where
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
                    raise UpgradeNeeded(f"{path} 需要升级数据结构:请先用窗口或写入数据的命令打开它一次")
                with write_transaction(db.conn):
                    migrate(db)
            check = db.conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{path} 已损坏({sqlite_reason(check, what=str(path))}),请从备份恢复")
            if meta.get(MOVED_TO) and not (read_only or moved_ok):
                raise StoreError(moved_message(path, meta[MOVED_TO], meta.get(MOVED_ON, "")))
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

    @classmethod
    def _open_postgres(cls, where: PgLocation, wall: Callable[[], float], read_only: bool) -> "Store":
        from app.store import postgres  # noqa: PLC0415 - laptops never load psycopg

        conn = postgres.connect(where, read_only=read_only)
        db = postgres.PgDatabase(conn)
        try:
            names = set(db.table_names())
            if not names:
                raise StoreError(f"PostgreSQL 数据库 {where.masked} 是空的,还不是建档数据库:"
                                 f"请先运行 jiandang init {where.masked} --role county 建立县级数据库")
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall()) if "meta" in names else {}
            if meta.get("app") != APP_ID:
                raise StoreError(f"PostgreSQL 数据库 {where.masked} 不是建档数据库(其中的数据表属于别的程序),"
                                 "没有改动它。请核对地址中的数据库名")
            version = int(meta.get("schema_version", 0))
            if version > SCHEMA_VERSION:
                raise StoreError(f"PostgreSQL 数据库 {where.masked} 由更新版本的建档程序创建(结构版本 {version},"
                                 f"本程序支持到 {SCHEMA_VERSION}),没有改动它:请升级本机的建档程序")
            if meta.get("role") != "county":
                raise StoreError(f"PostgreSQL 数据库 {where.masked} 的角色是 {meta.get('role')}:"
                                 "PostgreSQL 只用于县级数据库")
            if version < SCHEMA_VERSION:
                if read_only:
                    raise StoreError(f"{where.masked} 需要升级数据结构:请先用窗口或写入数据的命令打开它一次")
                with write_transaction(conn):  # the write lock: two programs never migrate at once
                    migrate(db)
        except BaseException:
            conn.close()
            raise
        return cls(where, db, None, wall, read_only)

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


    def _unlocked(self, data_key: bytes, operator: str, progress=None) -> None:
        """Keys in hand (Keys.unlock, unlock_with_recovery, create): bodies of an older format are
        converted now, in one transaction (app/store/bodies.py; schema version 5), and the 户编号 rows
        of the blind index written (app/store/search.py; schema version 7), in another."""
        super()._unlocked(data_key, operator)
        if not self.upgrade_pending():
            return
        try:
            if bodies.pending(self.conn):
                if self.read_only:
                    raise bodies.refuse_read_only(self.path.name)
                with self.transaction():
                    bodies.convert(self.conn, self._sealer, progress)
            if not self.read_only and number_index_pending(self.conn):  # a reader looks numbers up without
                with self.transaction():
                    if number_index_pending(self.conn):  # another program on PostgreSQL may have written them
                        self.fill_household_numbers(progress)
        except BaseException:
            self.lock()
            raise

    def upgrade_pending(self) -> bool:
        """True when the next unlock converts the record bodies to the current format or writes the
        blind index of 户编号 (once; seconds on a big database): the window says so while it works."""
        return bodies.pending(self.conn) or number_index_pending(self.conn)

    # ------------------------------------------------------------------ settings

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
        self._savepoints = 0
        saved_clock = self.clock.last
        try:
            if self.shared:
                self._refresh_shared()
            yield self
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('clock', ?)", (self.clock.last,))
            if self.shared:
                self._before_commit_shared()
            self.conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error, StoreError):
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

    @contextlib.contextmanager
    def savepoint(self):
        """Inside a transaction: a part that a failure undoes on its own (SQL SAVEPOINT), in the
        database and in what the store keeps in memory (clock, next sequence number, changes for the
        listeners, the search index); the transaction goes on and commits the rest. The county
        service merges a group of uploads so, one savepoint per bundle (app.sync.exchange.import_bundles).
        A part that succeeds is not released: the commit releases every savepoint at once (one
        round trip less per part on PostgreSQL)."""
        if not self._depth:
            raise StoreError("savepoint() 只能在事务之内使用")
        self._savepoints += 1
        name = f"part_{self._savepoints}"
        self.conn.execute(f"SAVEPOINT {name}")
        saved = self.clock.last, self._next_seq, len(self._pending)
        depth = self._depth
        self._depth += 1
        try:
            yield self
            send = getattr(self.conn, "send_queued", None)
            if send is not None:  # PostgreSQL: the part's writes still queued fail here, inside the part
                send()
        except BaseException:
            with contextlib.suppress(sqlite3.Error, StoreError):
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.clock.last, self._next_seq = saved[0], saved[1]
            del self._pending[saved[2]:]
            self._search = None  # rebuilt when next needed, as after a rolled-back transaction
            raise
        finally:
            self._depth = depth

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
        return bodies.open_one(self._require(), row)

    _COLUMNS = bodies.COLUMNS  # what a read selects: the sealed body holds village, parent and clock

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
        batch: int | None = None,
    ) -> Iterator[Record]:
        """Decrypted records filtered on their plain routing columns, in insertion order. A record
        that fails to decrypt (damaged or tampered with) is skipped and added to `self.damaged`;
        `get` of that record raises DecryptionError. `batch`: records decrypted at a time; by default
        64 from SQLite (`_READ_STEP`: each row is decoded while its bytes are still in the processor's
        cache) and 4,000 from PostgreSQL (`_DECODE_BATCH`, one round trip each)."""
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
        columns = self._COLUMNS if include_deleted else bodies.LIVE_COLUMNS  # known: not deleted
        sql = f"SELECT {columns} FROM records" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY rowid"
        if batch is None:
            batch = _DECODE_BATCH if getattr(self.conn, "batches", None) is not None else _READ_STEP
        for rows in self._row_batches(sql, args, batch):
            with _gc_paused():  # never while the caller's code runs between our yields
                decoded = self._decode_rows(rows)
            del rows
            yield from decoded

    def _row_batches(self, sql: str, args, size: int) -> Iterator[list]:
        """The rows of a SELECT, `size` at a time, never all of them in memory: SQLite's cursor
        steps through the file; on PostgreSQL a server-side cursor holds the result
        (app/store/postgres.py `batches`)."""
        batches = getattr(self.conn, "batches", None)
        if batches is not None:
            yield from batches(sql, args, size)
            return
        cursor = self.conn.execute(sql, args)
        while rows := cursor.fetchmany(size):
            yield rows

    def _decode_rows(self, rows: list) -> list[Record]:
        """`_decode` of many rows in one loop (the load of a whole database goes through here). A
        record that fails to decrypt (damaged or tampered with) is skipped and named in
        `self.damaged`: one damaged record must not make the whole database unreadable; the caller
        (and `check`) reports it."""
        return bodies.open_many(self._require(), rows, self.damaged)

    def children_of(self, parent_ids: list[str], kinds: list[str] | None = None) -> list[Record]:
        """Live records whose parent is one of these ids (of these kinds), in insertion order within
        each chunk of ids; a damaged record is skipped and named in `self.damaged` as in `records`."""
        self._require()
        out: list[Record] = []
        # "+kind": SQLite must look the rows up by parent, not scan every child of that kind per chunk
        kind_sql = f" AND +kind IN ({','.join('?' * len(kinds))})" if kinds else ""
        for i in range(0, len(parent_ids), 500):
            chunk = parent_ids[i:i + 500]
            rows = self.conn.execute(
                f"SELECT {bodies.LIVE_COLUMNS} FROM records WHERE parent_id IN "
                f"({','.join('?' * len(chunk))}) AND deleted = 0{kind_sql} ORDER BY rowid",
                [*chunk, *(kinds or [])]).fetchall()
            with _gc_paused():
                out += self._decode_rows(rows)
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
                blob = sealer.seal(kind, record_id, bodies.encode_new(body, village, parent, hlc))
                payload = sealer.seal("change", f"{self.site_id}:{seq}", mark + b'{"op":"create","new":' + body + tail)
                records.append((record_id, kind, village, parent, hlc, 0, sealer.key_version, blob))
                changes.append((self.site_id, seq, record_id, kind, village, parent, hlc, sealer.key_version, payload))
                if kind in ("member", "household"):
                    record = Record(record_id, kind, village, parent, hlc, False, new, {"*": hlc})
                    if (blind := self._blind_row(record)) is not None:
                        blinds.append(blind)
                    if self._search is not None:
                        self._index_record(record)
                out.append(change)
            self.conn.executemany("INSERT INTO records(id, kind, village_code, parent_id, hlc, deleted, key_version, blob) "
                                  "VALUES (?,?,?,?,?,?,?,?)", records)
            self.conn.executemany("INSERT INTO changes(site_id, seq, record_id, kind, village_code, parent_id, hlc, "
                                  "key_version, payload) VALUES (?,?,?,?,?,?,?,?,?)", changes)
            self.conn.executemany("INSERT INTO blind_index(record_id, field, digest) VALUES (?, ?, ?)", blinds)
            if self.listeners:  # kept for the listeners only: a bulk import keeps nothing per change
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
        blob = sealer.seal(record.kind, record.id, bodies.encode(record))
        self.conn.execute(
            "INSERT INTO records(id, kind, village_code, parent_id, hlc, deleted, key_version, blob) VALUES (?,?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET village_code=excluded.village_code, hlc=excluded.hlc, deleted=excluded.deleted, "
            "key_version=excluded.key_version, blob=excluded.blob",
            (record.id, record.kind, record.village_code, record.parent_id, record.hlc, int(record.deleted), sealer.key_version, blob),
        )
        self._update_blind_index(record)
        if self._search is not None:
            self._index_record(record)


    def write_record_raw(self, record: Record) -> None:
        """Write a record's state as given (merge code applies remote changes through this)."""
        self._write_record(self._require(), record)


    def write_records_raw(self, records: list[Record], new: set[str] | frozenset = frozenset()) -> list[tuple]:
        """Write many records' states as given at once (executemany; merge code). `new`: ids of
        records not held before (the merge looked them up): they have no blind index rows to drop.
        Returns their blind index rows as written (record id, field, digest)."""
        sealer = self._require()
        blobs = sealer.seal_many([(r.kind, r.id, bodies.encode(r)) for r in records])
        version = sealer.key_version
        if any(r.parent_id is not None for r in records):
            rows = [(r.id, r.kind, r.village_code, r.parent_id, r.hlc, int(r.deleted), version, blob)
                    for r, blob in zip(records, blobs)]
            columns = "id, kind, village_code, parent_id, hlc, deleted, key_version, blob"
        else:  # parent_id left out (NULL; an update keeps it): None is bound through sqlite3's adapter lookup
            rows = [(r.id, r.kind, r.village_code, r.hlc, int(r.deleted), version, blob) for r, blob in zip(records, blobs)]
            columns = "id, kind, village_code, hlc, deleted, key_version, blob"
        self.conn.executemany(
            f"INSERT INTO records({columns}) VALUES ({','.join('?' * (columns.count(',') + 1))}) "
            "ON CONFLICT(id) DO UPDATE SET village_code=excluded.village_code, hlc=excluded.hlc, deleted=excluded.deleted, "
            "key_version=excluded.key_version, blob=excluded.blob", rows)
        written = self._update_blind_index_many(records, new)
        if self._search is not None:
            for r in records:
                self._index_record(r)
        return written

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


def _check_new_store(operator: str, passphrase: str, recovery_public_key) -> None:
    if not operator.strip():
        raise StoreError("操作员名称不能为空")
    _check_passphrase(passphrase)
    if recovery_public_key is None:
        raise StoreError("创建数据库需要县级恢复公钥")


def _initialise(db, *, role: str, site_name: str, operator: str, passphrase: str, recovery_public_key,
                kdf: crypto.KdfParams | None, site_id: str | None, index_key: bytes | None) -> bytes:
    """The schema, settings, first operator, recovery wrap and index key of a new database (in the
    caller's transaction). Returns the new data key."""
    data_key = secrets.token_bytes(32)
    db_id = str(uuid.uuid4())
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
    _add_wrap(db.conn, operator.strip(), passphrase, data_key, kdf or crypto.new_wrap_kdf())
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
    return data_key


@contextlib.contextmanager
def write_transaction(conn):
    """One write transaction on a bare connection (before a `Store` exists: creating, migrating,
    copying a county). BEGIN IMMEDIATE: SQLite's write lock, the county's write lock on PostgreSQL."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
