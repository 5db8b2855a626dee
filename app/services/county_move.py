"""Moving a county database from its SQLite file onto a PostgreSQL server (`jiandang county migrate`).

Everything is copied as stored: records, changes, blind index, certificates, peers, receipts,
conflicts, attachment blobs and their sync rows, reference tables, operator and recovery wraps,
secrets and meta. Sealed columns stay sealed (the ciphertexts are copied, nothing is decrypted to
move it) and the database id moves with meta, so the associated data every sealed value is bound to
(`jd1|db_id|kind|id|key_version`, app/store/crypto.py) and the wraps (bound to the database id)
stay valid. Each row keeps its position (SQLite's rowid becomes PostgreSQL's `pos`): the change
log's position is the cursor laptops and the county keep for downstream sync (`down_acked`,
`sync_down_rowid`), so sync continues where it stood.

One transaction on the destination (with the write lock of app/store/postgres.py): schema, rows,
identity counters, then per table the row count and a SHA-256 over its rows in position order are
compared with the source's; any difference or failure rolls everything back. After the commit the
destination is opened as a program would, unlocked with the operator's passphrase, and checked in
full (app/services/integrity.py: every record and change decrypts, the log matches the records, the
blind index matches); if that fails, the tables just made are dropped again. The destination must
be an empty database (no table at all), the source a county database file."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.store import Store, StoreError
from app.store.locations import PgLocation, is_url, location
from app.store.db import MOVED_ON, MOVED_TO, write_transaction

BATCH = 2000


class MigrateError(StoreError):
    """The county could not be moved; the destination is left as it was (empty)."""


@dataclass
class TableCopy:
    name: str
    rows: int
    digest: str


@dataclass
class MigrateReport:
    source: Path
    destination: PgLocation
    db_id: str
    tables: list[TableCopy] = field(default_factory=list)
    records: int = 0
    changes: int = 0
    seconds: float = 0.0
    marked: bool = False  # the source file now says it was moved (refused for writing)

    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


# ---------------------------------------------------------------------- digests


def table_digest(cursor) -> tuple[int, str]:
    """(rows, SHA-256) over the rows of a cursor (position first, then the columns), in its order:
    each row's Python repr (None, int, float, str and bytes each print unambiguously), one per line."""
    digest, count = hashlib.sha256(), 0
    update = digest.update
    while rows := cursor.fetchmany(BATCH):
        update("\n".join(map(repr, rows)).encode("utf-8", "surrogatepass"))
        update(b"\n")
        count += len(rows)
    return count, digest.hexdigest()


def _source_tables(conn) -> dict[str, list[str]]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')] for name in names}


def _destination_columns(raw) -> dict[str, dict[str, str]]:
    """table -> column -> data type, of the destination's tables."""
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in raw.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
        out.setdefault(table, {})[column] = kind
    return out


def _source_select(name: str, columns: list[str], types: dict[str, str]) -> str:
    """The source rows in rowid order, position first. A BYTEA column is read as a BLOB: SQLite lets
    a BLOB column hold text (certificates are stored as JSON text), which PostgreSQL holds as its
    UTF-8 bytes, as a county made there does."""
    cols = ", ".join(f'CAST("{c}" AS BLOB)' if types.get(c) == "bytea" else f'"{c}"' for c in columns)
    return f'SELECT rowid, {cols} FROM "{name}" ORDER BY rowid'


def source_digests(conn, types: dict[str, dict[str, str]]) -> dict[str, tuple[int, str]]:
    """Per table of a SQLite database: (rows, digest) in rowid order. `types`: the destination's
    column types."""
    return {name: table_digest(conn.execute(_source_select(name, columns, types.get(name, {}))))
            for name, columns in _source_tables(conn).items()}


def destination_digests(raw, tables: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """The same for a PostgreSQL database, in `pos` order, over the source's columns."""
    out = {}
    for name, columns in tables.items():
        cols = ", ".join(f'"{c}"' for c in columns)
        # a server-side cursor (inside the copy's transaction): rows come a batch at a time, not the
        # whole table into memory; binary: bytes as they are, not hex text
        with raw.cursor(name=f"digest_{name}", binary=True) as cursor:
            cursor.itersize = BATCH
            cursor.execute(f'SELECT pos, {cols} FROM "{name}" ORDER BY pos')
            out[name] = table_digest(cursor)
    return out


# ---------------------------------------------------------------------- the move


def check_source(path) -> None:
    """Refuse a source that cannot be a county's SQLite file before anything is asked or opened."""
    if is_url(path):
        raise MigrateError(f"迁移的来源应是县级数据库的 SQLite 文件(例如 县级.db),而 {location(path)} 是 PostgreSQL 地址")
    path = Path(path)
    if not path.exists():
        raise MigrateError(f"找不到县级数据库文件 {path}:请核对文件名和所在文件夹")


def _open_source(path) -> Store:
    check_source(path)
    path = Path(path)
    try:
        store = Store.open(path)
    except StoreError as exc:
        raise MigrateError(f"无法迁移:{exc}") from None
    if store.role != "county":
        store.close()
        place = {"village": "村级", "township": "乡镇级"}.get(store.role, store.role)
        raise MigrateError(f"{path} 是{place}数据库(站点“{store.site_name}”),不是县级数据库:"
                           "只有县级数据库可以迁移到 PostgreSQL,村级和乡镇级数据库留在本机的 SQLite 文件中")
    return store


def _refuse_non_empty(conn, where: PgLocation, db_id: str) -> None:
    names = conn.table_names()
    if not names:
        return
    if "meta" in names:
        row = conn.raw.execute("SELECT value FROM meta WHERE key = 'db_id'").fetchone()
        if row and row[0] == db_id:
            raise MigrateError(f"PostgreSQL 数据库 {where.masked} 中已经是这个县级数据库(编号 {db_id[:8]}):"
                               "迁移已经做过了,没有再次写入。请让服务和各位同事改用这个地址")
    raise MigrateError(f"PostgreSQL 数据库 {where.masked} 不是空的(已有数据表 {'、'.join(names[:5])}"
                       f"{' 等' if len(names) > 5 else ''}):迁移只写入新建的空数据库,没有改动它。"
                       "请在服务器上新建一个空数据库(例如 createdb 新名字)再迁移")


def _copy_table(raw, name: str, columns: list[str], rows_of, done: int, total: int, progress) -> int:
    """COPY a table's rows (position first) into the destination; the running row count."""
    cols = ", ".join(["pos", *(f'"{c}"' for c in columns)])
    with raw.cursor().copy(f'COPY "{name}" ({cols}) FROM STDIN') as copy:
        for batch in rows_of:
            for row in batch:
                copy.write_row(row)
            done += len(batch)
            if progress:
                progress(done, total)
    return done


def _reset_identities(raw) -> None:
    """Identity counters (`pos`, recovery.id) continue after the copied rows."""
    for table, column in raw.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES'").fetchall():
        top = raw.execute(f'SELECT max("{column}") FROM "{table}"').fetchone()[0]
        raw.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                    (f'"{table}"', column, top or 1, top is not None))


def _drop_all(conn) -> None:
    """Leave the destination empty again (after a failed check of a committed copy)."""
    with write_transaction(conn):
        for name in conn.table_names():
            conn.raw.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')


def _server_reason(exc) -> str:
    import logging  # noqa: PLC0415

    logging.getLogger(__name__).info("county migrate: %s", exc)
    text = str(exc).lower()
    if "permission denied" in text or "must be owner" in text:
        return "该用户没有在此数据库中建表的权限:请用数据库的所有者登录,或请管理员授权 GRANT CREATE ON SCHEMA public"
    if "no space" in text or "disk full" in text:
        return "服务器磁盘空间已满"
    return str(exc).strip().splitlines()[0][:200]


def migrate(source, url, *, operator: str | None, passphrase: str,
            progress: Callable[[str, int, int], None] | None = None) -> MigrateReport:
    """Move the county database file `source` into the empty PostgreSQL database `url`.
    Raises MigrateError (or StoreError for an unreachable server) with the destination left empty.
    `progress(stage, done, total)` hears each stage: 复制 (rows), 核对 (tables), 解密检查 (rows)."""

    def stage(name: str):
        return (lambda done, total: progress(name, done, total)) if progress else None

    from app.services import integrity  # noqa: PLC0415
    import psycopg  # noqa: PLC0415 - only a county moving to PostgreSQL loads it

    from app.store import postgres  # noqa: PLC0415
    from app.store.migrations import migrate as make_schema  # noqa: PLC0415

    started = time.perf_counter()
    where = location(url)
    if not isinstance(where, PgLocation):
        raise MigrateError(f"迁移的目的地应是 PostgreSQL 数据库地址(postgresql://用户名:密码@服务器:5432/数据库名),"
                           f"而不是 {url}")
    postgres.check_url(where)
    source_store = _open_source(source)
    try:
        login = operator or source_store.operators()[0]
        source_store.unlock(login, passphrase)  # a wrong passphrase stops here, before anything is written
        source_store.snapshot()
        db_id = source_store.db_id
        src = source_store.conn
        tables = _source_tables(src)
        counts = {name: src.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
        total = sum(counts.values())
        conn = postgres.connect(where)
        try:
            _refuse_non_empty(conn, where, db_id)
            with write_transaction(conn):
                _refuse_non_empty(conn, where, db_id)  # holding the write lock: nobody else began meanwhile
                make_schema(postgres.PgDatabase(conn))
                conn.raw.execute("DELETE FROM meta")  # the source's meta (same schema version) replaces it
                types = _destination_columns(conn.raw)
                for name, columns in tables.items():
                    missing = [c for c in columns if c not in types.get(name, {})]
                    if missing:
                        raise MigrateError(f"PostgreSQL 中的表 {name} 缺少列 {'、'.join(missing)}:"
                                           "请用同一版本的建档程序迁移")
                done = 0
                for name, columns in tables.items():
                    cursor = src.execute(_source_select(name, columns, types[name]))
                    done = _copy_table(conn.raw, name, columns, iter(lambda c=cursor: c.fetchmany(BATCH), []),
                                       done, total, stage("复制"))
                _reset_identities(conn.raw)
                conn.raw.execute("ANALYZE")  # the planner's statistics of the new tables (else it guesses)
                check_tables = stage("核对")
                if check_tables:
                    check_tables(0, 2)
                before = source_digests(src, types)
                if check_tables:
                    check_tables(1, 2)
                after = destination_digests(conn.raw, tables)
                if check_tables:
                    check_tables(2, 2)
                report = MigrateReport(Path(source), where, db_id)
                for name in tables:
                    if before[name] != after[name]:
                        raise MigrateError(
                            f"迁移后核对不一致:表 {name} 在县级数据库中 {before[name][0]} 行,"
                            f"在 PostgreSQL 中 {after[name][0]} 行"
                            f"{'(内容摘要不同)' if before[name][0] == after[name][0] else ''}。"
                            "已全部撤销,PostgreSQL 数据库仍是空的")
                    report.tables.append(TableCopy(name, *before[name]))
        except psycopg.Error as exc:  # refused by the server: rolled back above
            raise MigrateError(f"写入 PostgreSQL 数据库 {where.masked} 时被服务器拒绝({_server_reason(exc)}):"
                               "已全部撤销,PostgreSQL 数据库仍是空的") from None
        finally:
            conn.close()
    finally:
        source_store.close()
    # the destination as a program opens it: unlock with the passphrase, decrypt and check everything
    try:
        with Store.open(where) as moved:
            moved.unlock(login, passphrase)
            checked = integrity.check(moved, stage("解密检查"))
    except StoreError as exc:
        checked, failure = None, str(exc)
    if checked is None or not checked.ok:
        if checked is not None:
            lines = [p.line() for p in checked.problems[:5]]
            failure = "\n".join(lines) + (f"\n……共 {len(checked.problems)} 处" if len(checked.problems) > 5 else "")
        cleanup = postgres.connect(where)
        try:
            _drop_all(cleanup)
        finally:
            cleanup.close()
        raise MigrateError(f"迁移后在 PostgreSQL 中打开并逐条解密检查未通过,已删除写入的数据表,PostgreSQL 数据库仍是空的:\n"
                           f"{failure}\n请先用 jiandang check {source} 检查县级数据库(损坏时从备份恢复)再迁移")
    report.records, report.changes = checked.records, checked.changes
    report.marked = _mark_moved(Path(source), where)
    report.seconds = time.perf_counter() - started
    return report


def _mark_moved(path: Path, where: PgLocation) -> bool:
    """Mark the source file as moved (its meta names the address, the password masked), so that
    a window, `sync import`, `enroll`, `serve` or a second `county migrate` opening it for writing is
    refused with the new address, instead of going on in a copy nobody else sees. It stays readable
    (a read-only open). False when the file could not be written (said by the command)."""
    try:
        with Store.open(path) as store, write_transaction(store.conn):
            store.set_meta(MOVED_TO, where.masked)
            store.set_meta(MOVED_ON, dt.date.today().isoformat())
    except (StoreError, OSError, sqlite3.Error):
        return False
    return True
