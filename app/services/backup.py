"""Backups of a database to a chosen folder (a USB stick), daily automatic backups with retention,
and restore.

A backup is a copy of the SQLite file made with SQLite's online backup API. The database's contents
are already sealed (records and changes under the data key, the data key wrapped per operator and to
the county's recovery key), so the backup is exactly as encrypted as the database and opens with the
same passphrases or the county's recovery key. Nothing is decrypted to make it.

Writes are atomic: the copy goes to a temporary file in the target folder, is checked (SQLite's
integrity check, the same database id, the same number of records and changes), flushed to disk and
only then renamed to its final name, so a pulled stick never leaves a half backup that looks whole.

Restore opens a temporary copy of the backup with the operator's passphrase and checks every record
and change decrypts and the change log matches the records (app.services.integrity) before it
replaces anything. It refuses a backup of another database or a damaged file with a message saying
which file and what to do, and keeps the current database aside (copied, never half-overwritten).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app import fileio
from app.store import Store, StoreError
from app.store.db import APP_ID, FileLock, sqlite_reason
from app.store.locations import PgLocation, is_url
from app.core.oserrors import os_reason

log = logging.getLogger(__name__)

SUFFIX = ".jdbak"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<short>[0-9a-f]{8})-(?P<stamp>\d{8}-\d{6})" + re.escape(SUFFIX) + "$")
_STAMP = "%Y%m%d-%H%M%S"


class BackupError(OSError):
    """A backup or restore could not be done; the message is Chinese and says what to do.
    (An OSError, so callers that guard file work with `except OSError` also catch it.)"""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    db_id: str
    created: dt.datetime
    size: int


# ---------------------------------------------------------------------- file helpers


_fsync_file = fileio.fsync_file
_fsync_dir = fileio.fsync_dir


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _sidecars(path: Path) -> list[Path]:
    return [Path(str(path) + "-wal"), Path(str(path) + "-shm"), Path(str(path) + "-journal")]


def read_meta(path: Path) -> dict:
    """The plain meta table of a database or backup file, without opening it as a Store.
    Raises BackupError when the file is not a complete jiandang database."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            header = fh.read(16)
    except OSError as exc:
        raise BackupError(f"无法读取 {path}:{exc.strerror}") from None
    if header != b"SQLite format 3\x00":
        raise BackupError(f"{path} 不是建档数据库或备份(文件格式不对,或文件已损坏)")
    try:
        conn = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} 已损坏,无法读取({sqlite_reason(exc, what=str(path))})") from None
    if meta.get("app") != APP_ID or "db_id" not in meta:
        raise BackupError(f"{path} 不是建档数据库或备份")
    return meta


def _sqlite_check(path: Path) -> str:
    """SQLite's full integrity check of a file: 'ok' or the first problem."""
    try:
        conn = sqlite3.connect(f"file:{path.as_posix()}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return "ok" if rows == [("ok",)] else "; ".join(r[0] for r in rows[:3])


def _counts(conn: sqlite3.Connection) -> tuple[int, int]:
    return (conn.execute("SELECT count(*) FROM records").fetchone()[0],
            conn.execute("SELECT count(*) FROM changes").fetchone()[0])


# ---------------------------------------------------------------------- backup


def backup_name(store: Store, when: dt.datetime) -> str:
    stem = re.sub(r"[^\w.-]+", "_", store.path.stem) or "jiandang"
    return f"{stem}-{store.db_id[:8]}-{when.strftime(_STAMP)}{SUFFIX}"


def backup(store: Store, folder, *, now: dt.datetime | None = None) -> BackupInfo:
    """Write an encrypted backup of an open store (locked or unlocked) into `folder` atomically.
    Returns the backup's BackupInfo; raises BackupError (nothing left behind) when it cannot.
    A county on PostgreSQL is dumped with pg_dump (app/services/pg_backup.py)."""
    if isinstance(store.path, PgLocation):
        from app.services import pg_backup  # noqa: PLC0415

        return pg_backup.backup(store.path.url, folder, now=now)
    folder = Path(folder)
    if getattr(store, "shared", False):
        raise BackupError(f"{store.path} 是 PostgreSQL 上的县级数据库:请在服务器上用 pg_dump 备份"
                          "(见 docs/serve.md),不能另存为一个备份文件")
    if getattr(store, "_depth", 0):
        raise BackupError("正在保存数据,请稍后再备份")
    now = now or dt.datetime.now()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"无法创建备份文件夹 {folder}:{os_reason(exc)}。请换一个文件夹或检查U盘是否写保护") from None
    final = folder / backup_name(store, now)
    if final.resolve() == store.path.resolve():
        raise BackupError("备份不能覆盖数据库本身,请选择另一个文件夹")
    tmp = folder / (final.name + ".tmp")
    clean_leftovers(folder)  # of backups cut off earlier (only the names a backup makes)
    try:
        _remove(tmp)
        fileio.create_private(tmp).close()  # SQLite gives its journal the same owner-only mode
        dest = sqlite3.connect(str(tmp))
        try:
            store.conn.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")  # a backup is one self-contained file
            copied = _counts(dest)
        finally:
            dest.close()
        for extra in _sidecars(tmp):
            _remove(extra)
        problem = _sqlite_check(tmp)
        if problem != "ok":
            raise BackupError(f"备份写入后校验失败({sqlite_reason(problem, what=str(tmp))}):请检查U盘或换一个文件夹再试")
        if read_meta(tmp)["db_id"] != store.db_id or copied != _counts(store.conn):
            raise BackupError("备份写入后与数据库不一致,请重试")
        _fsync_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(folder)
    except BackupError:
        _remove(tmp)
        raise
    except OSError as exc:
        _remove(tmp)
        raise BackupError(f"无法写入备份到 {folder}:{exc.strerror or exc}。请检查U盘空间或是否写保护") from None
    except sqlite3.Error as exc:
        _remove(tmp)
        raise BackupError(f"无法写入备份到 {folder}:{exc}") from None
    except BaseException:
        _remove(tmp)
        raise
    info = BackupInfo(final, store.db_id, now.replace(microsecond=0), final.stat().st_size)
    log.info("backup written: %s (%d bytes)", final.name, info.size)
    return info


def backup_file(db_path, folder, *, now: dt.datetime | None = None) -> BackupInfo:
    """Back up a database file that is not open in this process (no passphrase needed). It reads
    beside a program that has the file open (the window): the backup is the database as saved when
    the backup began. A `postgresql://` URL is dumped with pg_dump (app/services/pg_backup.py)."""
    if is_url(db_path):
        from app.services import pg_backup  # noqa: PLC0415

        return pg_backup.backup(db_path, folder, now=now)
    try:
        store = Store.open(db_path, read_only=True)
    except StoreError as exc:
        raise BackupError(str(exc)) from None
    with store:
        store.snapshot()
        return backup(store, folder, now=now)


def backups(folder, db_id: str | None = None) -> list[BackupInfo]:
    """Backups in a folder (of one database when db_id is given), newest first. Files are recognised
    by their name; the name carries the first 8 characters of the database id, which is then checked
    against the file's own meta."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.iterdir():
        m = _NAME.match(path.name)
        if not m or (db_id and m["short"] != db_id[:8]):
            continue
        try:
            meta_id = read_meta(path)["db_id"]
        except BackupError:
            continue
        if db_id and meta_id != db_id:
            continue
        created = dt.datetime.strptime(m["stamp"], _STAMP)
        out.append(BackupInfo(path, meta_id, created, path.stat().st_size))
    out.sort(key=lambda b: b.created, reverse=True)
    return out


def is_leftover(name: str) -> bool:
    """A temporary file of a backup that never finished (stick pulled, power lost, killed):
    NAME.jdbak.tmp and SQLite's NAME.jdbak.tmp-journal / -wal / -shm beside it."""
    return any(name.endswith(SUFFIX + ".tmp" + tail) for tail in ("", "-journal", "-wal", "-shm"))


def clean_leftovers(folder, older_than: float = fileio.STALE_SECONDS) -> list[Path]:
    """Remove leftovers of unfinished backups in a folder (only the names a backup makes), older than
    `older_than` seconds: a younger one may be a backup being written right now."""
    return fileio.clean_stale(folder, extra=is_leftover, older_than=older_than)


def prune(folder, db_id: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups of one database in `folder`, and leftovers of
    unfinished backups; returns what went."""
    keep = max(1, int(keep))
    gone = clean_leftovers(folder)
    for info in backups(folder, db_id)[keep:]:
        _remove(info.path)
        gone.append(info.path)
    if gone:
        log.info("pruned %d old backups", len(gone))
    return gone


def daily_backup(store: Store, folder=None, keep: int | None = None, *,
                 now: dt.datetime | None = None) -> BackupInfo | None:
    """The automatic backup the window calls at unlock and close: one backup per calendar day into
    the settings' backup folder (or `folder`), keeping the newest `keep`. Returns the new backup,
    or None when today's exists already or automatic backups are switched off in the settings.

    A county on PostgreSQL: None. Its backups are the server's, scheduled there (`jiandang backup
    postgresql://… --to DIR --keep N` from cron or the Task Scheduler, docs/backup.md), not a copy on
    each staff member's computer at each window's unlock."""
    if isinstance(store.path, PgLocation):
        return None
    from app import settings as app_settings  # noqa: PLC0415 - settings read at call time

    conf = app_settings.load()
    if folder is None and not conf.auto_backup:
        return None
    if getattr(store, "shared", False):  # a county on PostgreSQL is backed up on its server (pg_dump)
        return None
    folder = Path(folder) if folder is not None else app_settings.backup_folder(conf)
    keep = conf.backup_keep if keep is None else keep
    now = now or dt.datetime.now()
    existing = backups(folder, store.db_id)
    info = None
    if not any(b.created.date() == now.date() for b in existing):
        info = backup(store, folder, now=now)
    prune(folder, store.db_id, keep)
    return info


# ---------------------------------------------------------------------- restore


@dataclass(frozen=True)
class RestoreResult:
    target: Path
    kept_aside: Path | None
    records: int
    changes: int


def _aside_name(target: Path, now: dt.datetime) -> Path:
    return target.with_name(f"{target.name}.before-restore-{now.strftime(_STAMP)}")


def verify_backup(path, operator: str | None, passphrase: str | None, recovery_key=None) -> tuple[dict, int, int]:
    """Open a backup (a temporary copy, so the file itself is never touched) with an operator's
    passphrase and run the full integrity check. Returns (meta, records, changes); raises BackupError."""
    from app.services import integrity  # noqa: PLC0415

    path = Path(path)
    meta = read_meta(path)
    problem = _sqlite_check(path)
    if problem != "ok":
        raise BackupError(f"备份 {path} 已损坏({sqlite_reason(problem, what=str(path))}),不能用来恢复。"
                          "请换一份较早的备份")
    return meta, *integrity.verify_file(path, operator, passphrase, label=f"备份 {path}", recovery_key=recovery_key)


def _bundles_sent(path: Path) -> int | None:
    """How many upstream sync bundles the database at `path` has written (plain meta), or None when
    that cannot be read."""
    try:
        value = str(read_meta(path).get("sync_out_seq") or 0)
    except BackupError:
        return None
    return int(value) if value.isdigit() else 0


def restore(backup_path, target, *, operator: str | None = None, passphrase: str | None = None,
            recovery_key=None, now: dt.datetime | None = None, force: bool = False) -> RestoreResult:
    """Replace the database at `target` by a backup after checking the backup in full (unlocked with
    an operator's passphrase, or with the county's recovery private key when the passphrase is lost).

    Refuses a backup of another database (different db_id) and a damaged backup. The current
    database (if any) is copied aside to `<target>.before-restore-<time>` before the backup's
    checked copy is renamed over it, so at every moment a complete database is on disk.

    On an enrolled laptop that has sent sync bundles to the county after the backup was made, the
    backup lacks what those bundles carried while the county has it, and the laptop would go on
    numbering its changes and bundles from where the backup stood, which the county has already
    seen: the two would disagree without anyone being told. That restore is refused unless `force`;
    the safe way back is a replacement laptop enrolled for the same villages (it gets everything
    from the county)."""
    backup_path, target = Path(backup_path), Path(target)
    now = now or dt.datetime.now()
    if not backup_path.exists():
        raise BackupError(f"找不到备份文件 {backup_path}")
    if is_leftover(backup_path.name) or fileio.is_own_temp(backup_path.name):
        raise BackupError(f"{backup_path.name} 是一次没有完成的备份(U盘被拔出、断电或程序被关闭)留下的临时文件,"
                          "不是备份,不能用来恢复:请选择以 .jdbak 结尾的备份文件(jiandang backup 下次运行时会删除它)")
    meta = read_meta(backup_path)
    if target.exists():
        try:
            current = read_meta(target)["db_id"]
        except BackupError:
            current = None  # a damaged database: the backup replaces it, the file is kept aside
        if current is not None and current != meta["db_id"]:
            raise BackupError(
                f"备份 {backup_path.name} 属于另一个数据库(编号 {meta['db_id'][:8]},站点“{meta.get('site_name', '')}”),"
                f"而 {target} 的编号是 {current[:8]}。不会用它覆盖当前数据库;请选择本数据库的备份,"
                "或恢复到一个新的文件名。")
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(target.with_name(target.name + ".lock"))
    if not lock.acquire():
        raise BackupError(f"{target} 正被一个正在运行的建档程序打开,请先关闭它再恢复")
    tmp = target.with_name(target.name + ".restoring")
    aside = None
    try:
        for leftover in [tmp, *_sidecars(tmp)]:
            _remove(leftover)
        shutil.copyfile(backup_path, tmp)
        fileio.make_private(tmp)
        _fsync_file(tmp)
        try:
            _, records, changes = verify_backup(tmp, operator, passphrase, recovery_key)
        except BackupError as exc:  # name the file the user gave, not our working copy
            raise BackupError(str(exc).replace(str(tmp), str(backup_path)).replace(tmp.name, backup_path.name)) from None
        sent_now = _bundles_sent(target) if target.exists() else None
        sent_then = _bundles_sent(tmp) or 0
        enrolled = bool(meta.get("certificate"))
        if sent_now is None and enrolled and not force:
            place = "本乡镇" if meta.get("role") == "township" else "本村"
            state = "已损坏,无法读取" if target.exists() else "不存在"
            raise BackupError(
                f"{target} {state},无法确认备份 {backup_path.name} 之后本机是否又向县里发送过同步包。若发送过,"
                "那些修改不在备份中,恢复后本机会与县里的数据不一致。"
                + ("当前文件未改动。" if target.exists() else "没有创建任何文件。") +
                f"最稳妥的是到县扶贫办吊销本机并为{place}重新登记一台(会从县里取回{place}的全部数据);"
                "确认备份之后没有同步过,或确实要先用这份备份时,加 --force 恢复(本机第一次导入县级包时会检查并提示)。")
        if sent_now is not None and sent_now > sent_then and not force:
            numbers = f"第 {sent_now} 号" if sent_now == sent_then + 1 else f"第 {sent_then + 1}–{sent_now} 号"
            place = "本乡镇" if meta.get("role") == "township" else "本村"
            raise BackupError(
                f"{target} 在备份 {backup_path.name} 之后已向县里发送过同步包({numbers}),"
                "这些包里的修改不在备份中。用它恢复会让本机与县里的数据不一致,之后的修改也会被县里当作重复丢弃。"
                f"当前数据库未改动。请改用这些包之后的备份;若本机数据已损坏,请到县扶贫办吊销本机并为{place}重新登记一台"
                f"(新登记的机器会从县里取回{place}的全部数据)。确实要恢复时加 --force。")
        if target.exists():
            aside = _aside_name(target, now)
            with contextlib.suppress(sqlite3.Error):  # fold a leftover WAL into the current file first
                conn = sqlite3.connect(str(target))
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
            shutil.copyfile(target, aside)
            fileio.make_private(aside)
            _fsync_file(aside)
            wal = Path(str(target) + "-wal")
            if wal.exists() and wal.stat().st_size:
                shutil.copyfile(wal, Path(str(aside) + "-wal"))
                _fsync_file(Path(str(aside) + "-wal"))
            for extra in _sidecars(target):  # a stale WAL must never be replayed onto the restored file
                _remove(extra)
        for extra in _sidecars(tmp):
            _remove(extra)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BackupError:
        _remove(tmp)
        raise
    except OSError as exc:
        _remove(tmp)
        raise BackupError(f"恢复失败,当前数据库未改动:{exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise
    finally:
        for extra in _sidecars(tmp) + [tmp.with_name(tmp.name + ".lock")]:
            _remove(extra)
        lock.release()
        if not target.exists():  # a failed restore to a new file leaves nothing behind
            _remove(target.with_name(target.name + ".lock"))
    log.info("restored backup %s (%d records, %d changes)", backup_path.name, records, changes)
    return RestoreResult(target, aside, records, changes)
