"""The store on a PostgreSQL server (a county database), through psycopg 3.

`PgConnection` looks like the sqlite3 connection the store was written for (`execute`,
`executemany`, `total_changes`, `in_transaction`, `close`) and says every statement in PostgreSQL's
dialect (app/store/dialect.py). Differences that matter, and how they are met:

- Several programs write one county database at once (the service's workers, a USB import, staff
  windows). SQLite's `BEGIN IMMEDIATE` (take the write lock now) is here `BEGIN` at READ COMMITTED
  followed by `pg_advisory_xact_lock(WRITE_LOCK)`: write transactions run one after another, so
  change sequence numbers and `pos` (the change log's order, SQLite's rowid) are allocated in commit
  order, and a sync reader never sees a gap that a later commit fills. Each statement after the lock
  sees everything committed before it; the store refreshes its per-process caches then
  (app/store/shared.py).
- A reader's `BEGIN` (`Store.snapshot`) is REPEATABLE READ, READ ONLY: one moment, as SQLite's WAL
  readers.
- A long read (`Store.records`: a whole county) goes through `batches`: a server-side (named)
  cursor, fetched a batch at a time, so the program holds one batch of rows, as on SQLite, not the
  whole result (psycopg's ordinary cursor receives every row at once).
- Round trips cost most under the write lock, so a write transaction does not wait for its writes:
  an INSERT, UPDATE or DELETE (and a SAVEPOINT) inside a transaction is queued and goes to the
  server with the next statement that needs an answer (a SELECT, the COMMIT), all in one round trip
  (psycopg's pipeline mode: `send_queued`). Order is kept, every read sees the writes before it, and
  a queued statement's rowcount or rows, when asked for, send the queue first (`_Later`). Its error
  is raised by the statement it went with; `Store.savepoint` sends the queue at the end of each part,
  so a part's error still undoes that part only. ROLLBACK (TO) drops what it would undo unsent.
- Streaming (`streaming`, the county service's groups of uploads that touch nothing in common:
  app/sync/overlapping.py): inside it every write goes to the server at once in one open pipeline,
  without waiting, so the server inserts one bundle's rows while the worker merges the next; a
  SELECT sent with `execute_deferred` goes after them and is answered later; any statement that
  needs its answer waits for everything streamed before it. A streamed statement that fails has made
  the server skip the rest, so it is raised as RetryAlone (not a StoreError) and, until the
  transaction is rolled back, every statement raises it: the caller merges the group again without
  streaming.
- Statements with parameters go in PostgreSQL's own `$1` form through psycopg's RawCursor (the `%s`
  form converted once per statement text, `dialect.native_placeholders`): psycopg parses a `%s`
  statement again at every call when it is long or has over 50 parameters, a merge's multi-row
  INSERTs and IN lists (about 1 ms of processor per bundle).
- psycopg prepares a statement on the server once its text has run five times (`prepare_threshold`),
  and the server then plans it once for all values ("generic plan"), from the table sizes it knew
  then, without knowing the values. For a join that plan can read a whole table at every call (the
  merge's duplicate ID-number check: a hash join over the blind index, 0.75 ms of the server's
  processor per bundle on a small county, growing with the table, against 0.45 planned for its
  values; issue 23's seventh pass). A statement that joins tables is therefore never prepared (`_planned_each_time`):
  the server plans it for its values at every call. Single-table statements are prepared, except a
  read asked for with `execute_deferred(…, planned_each_time=True)`: the duplicate check, a read of
  the blind index by digest for every bundle, whose plan prepared on a new county's small index was
  a scan of the whole table at every bundle as it grew, until the server next analysed the table
  (issue 23's ninth pass).
- PRAGMAs: the quick and integrity checks answer "ok" (the server keeps its own pages consistent;
  the store's own check of sealed rows is app/services/integrity.py); the rest are SQLite settings
  with nothing to do here.
- Connection problems become StoreError with a Chinese message naming the URL, password masked.

psycopg is imported only when a URL is opened: laptops never load it."""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import zlib
from urllib.parse import parse_qsl, urlsplit

from app.store import dialect
from app.store.base import StoreError
from app.store.locations import PgLocation

WRITE_LOCK = zlib.crc32(b"jiandang county write lock")  # advisory locks are per database
_cursor_numbers = itertools.count(1)
CONNECT_TIMEOUT = 5
NATIVE_KEPT = 400  # statements kept in PostgreSQL's own form (a merge's multi-row sizes repeat)
MAX_PARAMETERS = 30_000  # per multi-row INSERT (PostgreSQL's limit is 65,535)
_CHECKS = ("quick_check", "integrity_check")
_SAVEPOINT = re.compile(r"^\s*SAVEPOINT\s+\w+\s*$", re.I)
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.I)
_JOIN = re.compile(r"\bJOIN\b", re.I)


def _planned_each_time(query: str) -> bool:
    """Whether a statement must be planned for its values at every call rather than prepared on the
    server (whose plan, made once, is kept as the tables grow): a SELECT that joins tables."""
    return query.lstrip()[:6].upper() == "SELECT" and _JOIN.search(query) is not None


class RetryAlone(Exception):
    """Something streamed (PgConnection.streaming) failed: the server skipped everything after it, so
    the caller rolls the transaction back and does its work again without streaming. Not a
    StoreError: nothing may take it for the refusal of one bundle."""


class PgUnavailable(StoreError):
    """The server could not be reached, or refused us."""


def _psycopg():
    try:
        import psycopg  # noqa: PLC0415 - only a county on PostgreSQL needs it
    except ImportError:  # pragma: no cover - a build without it
        raise StoreError("本程序没有安装 PostgreSQL 支持(psycopg):请安装 psycopg[binary],"
                         "或使用 SQLite 数据库文件") from None
    return psycopg


def check_url(where: PgLocation) -> None:
    """Refuse a URL that cannot name a database, before any connection is tried."""
    text = where.url
    problem = None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
    except ValueError as exc:
        problem = f"地址格式不对({'端口应为数字' if 'port' in str(exc).lower() else exc})"
    else:
        if parts.scheme.lower() not in ("postgresql", "postgres"):
            problem = "地址应以 postgresql:// 开头"
        elif not parts.hostname and "host" not in query:
            problem = "地址中缺少服务器名(例如 postgresql://用户名:密码@服务器:5432/数据库名)"
        elif not where.database:
            problem = "地址中缺少数据库名(地址最后的 /数据库名)"
        elif "/" in where.database:
            problem = "数据库名中不能有“/”"
    if problem:
        raise StoreError(f"PostgreSQL 地址 {where.masked} 无法使用:{problem}。"
                         "正确的格式:postgresql://用户名:密码@服务器:5432/数据库名")


def _connect_error(where: PgLocation, exc) -> StoreError:
    text = str(exc)
    lowered = text.lower()
    import logging  # noqa: PLC0415

    logging.getLogger("app.store").info("PostgreSQL %s: %s", where.masked, text.replace(where.url, where.masked))
    if "no password supplied" in lowered:
        return PgUnavailable(f"无法登录 PostgreSQL 数据库 {where.masked}:服务器要求密码,但没有找到密码。"
                             "请把密码写进本机的密码文件(Linux: ~/.pgpass,权限 600;Windows: "
                             "%APPDATA%\\postgresql\\pgpass.conf,一行 服务器:端口:数据库:用户名:密码,"
                             "服务器要与地址中的写法完全相同),或设置环境变量 PGPASSWORD")
    if "password authentication failed" in lowered or ("authentication failed" in lowered):
        return PgUnavailable(f"无法登录 PostgreSQL 数据库 {where.masked}:用户名或密码不正确。"
                             "请核对地址中的用户名和密码(向管理服务器的同事确认)")
    if "does not exist" in lowered and "database" in lowered:
        return PgUnavailable(f"PostgreSQL 服务器上没有数据库“{where.database}”({where.masked})。"
                             f"请先在服务器上创建它(例如 createdb {where.database}),或核对地址中的数据库名")
    if "role" in lowered and "does not exist" in lowered:
        return PgUnavailable(f"PostgreSQL 服务器不认识地址中的用户名({where.masked}):请核对用户名,"
                             "或请管理员创建该用户")
    if "permission denied" in lowered or "not permitted" in lowered or "pg_hba" in lowered:
        return PgUnavailable(f"PostgreSQL 服务器拒绝了本机的连接({where.masked}):请管理员允许本机登录该数据库")
    if "invalid" in lowered and ("dsn" in lowered or "connection option" in lowered or "uri" in lowered
                                 or "integer value" in lowered):
        return StoreError(f"PostgreSQL 地址 {where.masked} 无法使用:地址格式不对。"
                          "正确的格式:postgresql://用户名:密码@服务器:5432/数据库名")
    if "translate host name" in lowered or "name or service not known" in lowered or "nodename nor servname" in lowered:
        return PgUnavailable(f"找不到 PostgreSQL 服务器 {where.masked}:服务器名不对或网络不通。请核对地址中的服务器名")
    if "timeout" in lowered or "timed out" in lowered:
        return PgUnavailable(f"连接 PostgreSQL 服务器 {where.masked} 超时:服务器没有响应。请检查网络和服务器是否开机")
    return PgUnavailable(f"无法连接 PostgreSQL 服务器 {where.masked}:服务器没有运行或拒绝连接。"
                         "请确认 PostgreSQL 已启动、地址中的服务器名和端口正确,然后再试")


def connect(where: PgLocation, *, read_only: bool = False) -> PgConnection:
    check_url(where)
    psycopg = _psycopg()
    try:
        raw = psycopg.connect(where.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                              application_name="jiandang")
    except psycopg.Error as exc:
        raise _connect_error(where, exc) from None
    return PgConnection(raw, where, read_only=read_only)


class _Rows:
    """A finished result (PRAGMA answers): the cursor methods the store uses."""

    rowcount = -1

    def __init__(self, rows: list):
        self._rows = list(rows)

    def fetchone(self):
        return self._rows.pop(0) if self._rows else None

    def fetchall(self):
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int = 1):
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def __iter__(self):
        while self._rows:
            yield self._rows.pop(0)


class _Later:
    """The result of a write statement queued in a transaction (PgConnection.send_queued): asking for
    its rowcount or rows sends the queue first, so the caller sees what sending it alone would give."""

    def __init__(self, conn: "PgConnection"):
        self.conn = conn
        self.cursor = None

    def _sent(self):
        if self.conn._pipe is not None:  # streamed and perhaps not yet answered
            self.conn._settle()
        if self.cursor is None:
            self.conn.send_queued()
        return self.cursor if self.cursor is not None else _Rows([])  # None: rolled back unsent

    @property
    def rowcount(self) -> int:
        cursor = self._sent()
        return cursor.rowcount if cursor.rowcount is not None else -1

    def fetchone(self):
        return self._sent().fetchone()

    def fetchall(self):
        return self._sent().fetchall()

    def fetchmany(self, size: int = 1):
        return self._sent().fetchmany(size)

    def __iter__(self):
        return iter(self._sent())


class PgConnection:
    """A psycopg connection spoken to in the store's (SQLite) SQL. Thread use: one statement at a
    time (psycopg serialises), as the store's sqlite3 connection with check_same_thread=False."""

    dialect = "postgresql"

    def __init__(self, raw, where: PgLocation, *, read_only: bool = False):
        self.raw = raw
        self.where = where
        self.read_only = read_only
        self._sql: dict[str, str] = {}
        self._keys: dict[str, list[str]] = {}
        self._multi: dict[str, dialect.MultiRow | None] = {}
        self._native: dict[str, str] = {}  # psycopg's %s form -> PostgreSQL's own $n form
        self._prepare: dict[str, bool | None] = {}  # False: never prepared on the server (_planned_each_time)
        self._raw_cursor = _psycopg().RawCursor
        self._changes = 0
        self._lock = threading.RLock()
        # multi-row INSERTs and SAVEPOINTs of an open transaction, sent with the next statement
        self._queued: list[tuple[str, list | None, _Later | None]] = []
        # streaming (see `streaming`): the open psycopg pipeline and the statements sent in it
        self._streaming = False
        self._pipe = None
        self._streamed: list[tuple[str, object]] = []
        self._failed = ""  # why streaming failed, until the transaction is rolled back

    # the sqlite3.Connection surface the store uses --------------------------------------------

    def execute(self, sql: str, params=()):
        name = dialect.pragma(sql)
        if name is not None:
            return _Rows([("ok",)] if name in _CHECKS else [])
        if self._failed and self._pipe is None and not self.in_transaction:
            self._failed = ""  # that transaction is over (rolled back, or its connection lost)
        if self._failed:  # a streamed statement failed: only the whole transaction's ROLLBACK goes on
            if not re.match(r"^\s*ROLLBACK\s*;?\s*$", sql, re.I):
                raise RetryAlone(self._failed)
            self._failed = ""
        if re.match(r"^\s*BEGIN\s*;?\s*$", sql, re.I) and self.read_only:
            sql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            return self._run(sql, None)
        if self._pipe is not None and re.match(r"^\s*ROLLBACK\b", sql, re.I):
            # ROLLBACK TO a part: what was streamed before it must have gone through (an earlier part's
            # failure is raised here: RetryAlone); a whole ROLLBACK undoes it all, failed or not
            whole = not re.match(r"^\s*ROLLBACK\s+TO\b", sql, re.I)
            self._settle(quiet=whole)
            if whole:
                self._failed = ""
        if self._queued and re.match(r"^\s*ROLLBACK\b", sql, re.I):
            # undone unsent: every statement sends the queue first, so what is queued came after the
            # last statement sent; ROLLBACK TO a savepoint still queued keeps that savepoint
            marks = [i for i, (query, *_) in enumerate(self._queued) if query.startswith("SAVEPOINT ")]
            self._queued = self._queued[:marks[-1] + 1] if marks and re.match(r"^\s*ROLLBACK\s+TO\b", sql, re.I) else []
        elif self.in_transaction and _SAVEPOINT.match(sql):
            if self._streaming:
                self._stream(sql.strip(), None)
            else:
                self._queued.append((sql.strip(), None, None))  # sent with the part's first statement
            return _Rows([])
        query = self._translate(sql)
        if _WRITE.match(query) and not self.read_only and "RETURNING" not in query.upper() and self.in_transaction:
            later = _Later(self)  # its rowcount (or rows) sends the queue when asked for
            if self._streaming:
                later.cursor = self._stream(query, params)
            else:
                self._queued.append((query, params, later))
            return later
        if re.match(r"^\s*BEGIN\s+(IMMEDIATE|EXCLUSIVE)\b", sql, re.I):
            # the transaction and its write lock in one round trip (two statements, no parameters)
            return self._run(f"BEGIN; SELECT pg_advisory_xact_lock({int(WRITE_LOCK)})", None)
        return self._run(query, params)

    def executemany(self, sql: str, seq_of_params):
        rows = [tuple(p) for p in seq_of_params]
        if not rows:
            return _Rows([])
        query = self._translate(sql)
        shape = self._multi.get(query, False)
        if shape is False:
            shape = self._multi[query] = dialect.multi_row(query)
        if shape is not None and len(rows) > 1:
            return self._insert_rows(query, shape, rows)
        return self._executemany(query, rows)

    def _executemany(self, query: str, rows: list):
        """psycopg's executemany: one statement per row (pipelined)."""
        psycopg = _psycopg()
        with self._lock:
            self._settle()
            if self._queued:
                self.send_queued()
            try:
                cursor = self.raw.cursor()
                cursor.executemany(query, rows)
            except psycopg.OperationalError as exc:
                raise self._lost(exc) from None
        if cursor.rowcount and cursor.rowcount > 0:
            self._changes += cursor.rowcount
        return cursor

    def _insert_rows(self, query: str, shape: dialect.MultiRow, rows: list) -> _Rows:
        """An INSERT of many rows as few multi-row statements (a merge's change, record and index rows:
        one round trip each instead of a statement per row; the rows keep their order, so `pos` does).
        A batch where two rows have the same conflict key goes row by row, as SQLite would take it."""
        per = max(1, MAX_PARAMETERS // max(1, len(rows[0])))
        result = _Rows([])
        result.rowcount = 0
        for start in range(0, len(rows), per):
            batch = rows[start:start + per]
            if shape.key is not None and len({tuple(r[i] for i in shape.key) for r in batch}) < len(batch):
                cursor = self._executemany(query, batch)
            elif self.in_transaction:
                # write-behind: nothing of the transaction reads the result; the statement goes to the
                # server with the next one, in one round trip (send_queued), or at once when streaming
                if self._streaming:
                    self._stream(shape.statement(len(batch)), [v for r in batch for v in r])
                else:
                    self._queued.append((shape.statement(len(batch)), [v for r in batch for v in r], None))
                result.rowcount = -1  # known when sent (total_changes counts it then)
                continue
            else:
                cursor = self._run(shape.statement(len(batch)), [v for r in batch for v in r])
            if result.rowcount >= 0:
                result.rowcount += max(0, cursor.rowcount or 0)
        return result

    def send_queued(self, then: tuple[str, object] | None = None):
        """Send the queued multi-row INSERTs, and the statement `then` (query, params) after them, in
        pipeline mode: one round trip for all. An error of any of them is raised here (the
        transaction is then failed, as if the statement had been sent alone). Returns the cursor of
        `then`. The store calls this at the end of each savepoint, so that a part's error is raised
        inside that part (Store.savepoint)."""
        psycopg = _psycopg()
        with self._lock:
            if then is not None:  # streaming: a statement that needs its answer waits for what went before
                self._settle()
            queued, self._queued = self._queued, []
            if not queued:
                return self._run(*then) if then else None
            cursors, last = [], None
            try:
                with self.raw.pipeline():
                    for query, params, later in queued:
                        if params is None:  # a SAVEPOINT
                            self.raw.execute(query)
                            continue
                        cursor = self._send(query, params)
                        cursors.append((query, cursor))
                        if later is not None:
                            later.cursor = cursor
                    if then:
                        last = self._send(*then)
            except psycopg.OperationalError as exc:
                raise self._lost(exc) from None
        for query, cursor in cursors:
            self._count(query, cursor)
        if last is not None:
            self._count(then[0], last)
        return last

    @contextlib.contextmanager
    def streaming(self):
        """Inside a write transaction: send every write (INSERT, UPDATE, DELETE, SAVEPOINT) to the
        server at once, in one psycopg pipeline, without waiting for it, so that the server executes
        them while this program goes on (the county service's group of uploads: the server inserts
        one bundle's rows while the worker merges the next). A statement that needs its answer (a
        SELECT, a rowcount asked for, COMMIT) first waits for everything streamed before it; a SELECT
        sent with `execute_deferred` does not. A streamed statement that fails has made the server
        skip everything after it, so it cannot be undone part by part: the failure is raised as
        RetryAlone when it is found, and the caller rolls the whole transaction back and does it
        again the careful way (a part at a time, write-behind)."""
        self.send_queued()
        self._streaming = True
        try:
            yield self
            self._settle()
        except BaseException:
            self._settle(quiet=True)
            raise
        finally:
            self._streaming = False

    def execute_deferred(self, sql: str, params=(), *, planned_each_time: bool = False):
        """A SELECT whose rows are asked for later: while streaming it goes to the server now, after
        the writes before it, and its rows wait there until asked for (asking waits for everything
        streamed so far). Otherwise it runs as `execute`. `planned_each_time`: never prepared on the
        server, planned for its values and the table as it is at every call (a read run for every
        bundle whose best plan changes as its table grows: the county's duplicate check, whose
        generic plan, made while the blind index was small, read the whole table at every call)."""
        if planned_each_time:
            self._prepare[self._translate(sql)] = False
        if not self._streaming:
            return self.execute(sql, params)
        later = _Later(self)
        later.cursor = self._stream(self._translate(sql), params)
        return later

    def _stream(self, query: str, params):
        """Send one statement in the open pipeline (opened here if need be), not waiting for it."""
        psycopg = _psycopg()
        with self._lock:
            if self._pipe is None:
                pipe = self.raw.pipeline()
                pipe.__enter__()
                self._pipe = pipe
            try:
                if params is None:
                    cursor = self.raw.execute(query)
                else:
                    cursor = self._send(query, params)
            except psycopg.Error as exc:  # the pipeline was aborted by a statement streamed earlier
                raise self._stream_failed(exc) from exc
            self._streamed.append((query, cursor))
            return cursor

    def _settle(self, quiet: bool = False) -> None:
        """Wait for everything streamed (leave the pipeline): its errors are raised here (RetryAlone),
        or swallowed when `quiet` (the transaction is being rolled back)."""
        pipe, self._pipe = self._pipe, None
        if pipe is None:
            return
        psycopg = _psycopg()
        streamed, self._streamed = self._streamed, []
        try:
            pipe.__exit__(None, None, None)
        except psycopg.Error as exc:
            failure = self._stream_failed(exc)
            if not quiet:  # quiet: rolled back next (until then nothing else may go on: `_failed`)
                raise failure from exc
            return
        for query, cursor in streamed:
            self._count(query, cursor)

    def _stream_failed(self, exc) -> Exception:
        """What a streamed statement's error becomes: the lost connection (PgUnavailable), or
        RetryAlone, remembered (`_failed`) until the transaction is rolled back."""
        if isinstance(exc, _psycopg().OperationalError) and (self.raw.closed or self.raw.broken):
            return self._lost(exc)
        self._failed = str(exc) or type(exc).__name__
        return RetryAlone(self._failed)

    def batches(self, sql: str, params, size: int):
        """The rows of a SELECT, `size` at a time, from a server-side cursor (the server holds the
        result; this program one batch). WITH HOLD, so it reads on whether or not a transaction is
        open, and outlives one the caller commits meanwhile; the connection stays free for other
        statements between batches. Closed when the rows end or the caller stops early."""
        psycopg = _psycopg()
        query = self._translate(sql)
        with self._lock:
            self._settle()
            if self._queued:
                self.send_queued()
            try:
                cursor = self.raw.cursor(name=f"jd_rows_{next(_cursor_numbers)}", withhold=True)
                cursor.execute(query, params)
            except psycopg.OperationalError as exc:
                raise self._lost(exc) from None
        try:
            while True:
                with self._lock:
                    try:
                        rows = cursor.fetchmany(size)
                    except psycopg.OperationalError as exc:
                        raise self._lost(exc) from None
                if not rows:
                    return
                yield rows
        finally:
            with self._lock:
                if not self.raw.closed:
                    try:
                        cursor.close()
                    except psycopg.Error:  # the connection is gone or its transaction failed: nothing held
                        pass

    @property
    def total_changes(self) -> int:
        self._settle()
        if self._queued:
            self.send_queued()
        return self._changes

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != 0  # psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self._queued = []  # a transaction left open is rolled back by the server
        self._streaming, self._pipe, self._streamed, self._failed = False, None, [], ""
        self.raw.close()

    # ------------------------------------------------------------------------------------------

    def _run(self, query: str, params):
        """One statement (after the queued writes, if any: send_queued). With parameters it goes in
        PostgreSQL's own `$n` form through a RawCursor: psycopg parses a `%s` statement's text again
        at every call when it is long or has more than 50 parameters (a merge's multi-row INSERTs
        and IN lists: about 1 ms of processor each)."""
        psycopg = _psycopg()
        with self._lock:
            if self._queued or self._pipe is not None:
                return self.send_queued((query, params))
            try:
                cursor = self._send(query, params)
            except psycopg.OperationalError as exc:
                raise self._lost(exc) from None
        self._count(query, cursor)
        return cursor

    def _send(self, query: str, params):
        """Send one statement now (the caller holds the lock): without parameters as it is, with them
        in the `$n` form through a RawCursor. Returns its cursor."""
        if params is None:
            return self.raw.execute(query)
        prepare = self._prepare.get(query, True)
        if prepare is True:  # not yet judged (True is never stored: None lets psycopg decide)
            prepare = self._prepare[query] = False if _planned_each_time(query) else None
        cursor = self._raw_cursor(self.raw)
        cursor.execute(self._native_form(query), params, prepare=prepare)
        return cursor

    def _count(self, query: str, cursor) -> None:
        if cursor.rowcount and cursor.rowcount > 0 and query.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self._changes += cursor.rowcount

    def _native_form(self, query: str) -> str:
        native = self._native.get(query)
        if native is None:
            if len(self._native) >= NATIVE_KEPT:
                self._native.clear()  # multi-row statements of many sizes: start again
                self._prepare.clear()
            native = self._native[query] = dialect.native_placeholders(query)
        return native

    def _lost(self, exc) -> StoreError:
        if self.raw.closed or self.raw.broken:
            return PgUnavailable(f"与 PostgreSQL 数据库 {self.where.masked} 的连接中断了:未保存的修改没有写入。"
                                 "请检查网络和服务器后重新打开")
        return StoreError(f"PostgreSQL 数据库 {self.where.masked} 出错:{exc}")

    def _translate(self, sql: str) -> str:
        query = self._sql.get(sql)
        if query is None:
            query = self._sql[sql] = dialect.to_postgres(sql, self.primary_key)
        return query

    def primary_key(self, table: str) -> list[str]:
        key = self._keys.get(table)
        if key is None:
            rows = self.raw.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
                "ORDER BY array_position(i.indkey::int2[], a.attnum)", (table,)).fetchall()
            key = self._keys[table] = [r[0] for r in rows]
        return key

    def table_names(self) -> list[str]:
        return [r[0] for r in self.raw.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "ORDER BY table_name").fetchall()]


class PgDatabase:
    """What the store and its migrations use of a sqlite_utils Database: `conn`, `table_names()`."""

    def __init__(self, conn: PgConnection):
        self.conn = conn

    def table_names(self) -> list[str]:
        return self.conn.table_names()
