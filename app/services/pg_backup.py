"""Backups of a county database on PostgreSQL (`jiandang backup postgresql://… --to DIR`) and their
restore into a new, empty database (`jiandang restore DUMP --to postgresql://…`).

A backup is PostgreSQL's own dump (`pg_dump --format=custom`) of the database. What the database
holds is already sealed (records, changes, conflicts, photos under the data key; the key wrapped per
operator and to the county's recovery key), so the dump is exactly as encrypted as the database:
nothing is decrypted to make it and no passphrase is needed. pg_dump reads one consistent snapshot
while the service and staff keep writing.

Writing is atomic (app/fileio.py: a temporary file beside the final name, fsync, rename): the dump is
written to the temporary file, then read back with `pg_restore` (its table of contents must list the
store's tables with their data, and its meta table the database id of the database dumped), and only
then renamed to `<database>-<first 8 of the database id>-<YYYYMMDD-HHMMSS>.jdpgdump`.

Restore refuses a target database that holds any table (restore into a newly created database, then
point the service at it), runs `pg_restore --single-transaction`, then opens the result with the
operator's passphrase (or the county's recovery key) and checks it in full (app/services/integrity.py);
a restore that fails any step leaves the target database empty.

pg_dump and pg_restore come with PostgreSQL (on Windows in `C:\\Program Files\\PostgreSQL\\<version>\\bin`,
on Debian in the `postgresql-client` package); pg_dump must be of the server's major version or newer."""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from app import fileio
from app.services.backup import BackupError, BackupInfo, RestoreResult
from app.store import Store, StoreError
from app.store.crypto import DecryptionError
from app.store.locations import PgLocation, location

log = logging.getLogger(__name__)

SUFFIX = ".jdpgdump"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<short>[0-9a-f]{8})-(?P<stamp>\d{8}-\d{6})" + re.escape(SUFFIX) + "$")
_STAMP = "%Y%m%d-%H%M%S"
TABLES_WITH_DATA = ("meta", "operators", "recovery", "secrets", "records", "changes")


# ---------------------------------------------------------------------- the tools


def find_tool(name: str) -> str:
    """The path of pg_dump / pg_restore: on PATH, else (Windows) in PostgreSQL's install folders."""
    found = shutil.which(name)
    if found:
        return found
    if sys.platform == "win32":
        programs = os.environ.get("ProgramFiles", r"C:\Program Files")
        candidates = sorted(glob.glob(os.path.join(programs, "PostgreSQL", "*", "bin", name + ".exe")),
                            key=_version_in_path, reverse=True)
        if candidates:
            return candidates[0]
    raise BackupError(f"本机没有找到 PostgreSQL 的 {name} 程序,无法{'备份' if name == 'pg_dump' else '恢复'} PostgreSQL 数据库。"
                      "请安装 PostgreSQL 客户端工具(Windows:PostgreSQL 安装程序,其 bin 文件夹加入 PATH;"
                      "Debian/Ubuntu:apt install postgresql-client),版本不低于服务器的版本,然后再试")


def _version_in_path(path: str) -> int:
    m = re.search(r"PostgreSQL[\\/](\d+)", path)
    return int(m.group(1)) if m else 0


def _no_window() -> dict:
    return {"creationflags": subprocess.CREATE_NO_WINDOW} if sys.platform == "win32" else {}


def tool_major(tool: str) -> int:
    """The major version of a PostgreSQL client program (`pg_dump (PostgreSQL) 15.18` -> 15)."""
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60, **_no_window())
    m = re.search(r"(\d+)(?:\.\d+)?", done.stdout or "")
    if done.returncode != 0 or not m:
        raise BackupError(f"无法运行 {tool}({(done.stderr or done.stdout).strip()[:200]}):请重新安装 PostgreSQL 客户端工具")
    return int(m.group(1))


def server_major(where: PgLocation) -> int:
    from app.store import postgres  # noqa: PLC0415

    conn = postgres.connect(where)
    try:
        return conn.raw.info.server_version // 10000
    finally:
        conn.close()


def _connection(where: PgLocation) -> tuple[str, dict]:
    """The database for `--dbname` without its password, and the environment carrying it
    (PGPASSWORD: a password on a command line is visible to every user of the machine)."""
    from psycopg import conninfo  # noqa: PLC0415

    params = conninfo.conninfo_to_dict(where.url)
    secret = params.pop("password", None)
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    if secret:
        env["PGPASSWORD"] = str(secret)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return conninfo.make_conninfo(**params), env


def _run(args: list[str], where: PgLocation, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, timeout=None, env=_connection(where)[1], **_no_window())
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").replace(where.url, where.masked)
        log.info("%s failed (%s): %s", Path(args[0]).name, done.returncode, detail)
        raise BackupError(f"{what}失败({_reason(detail)})。{where.masked} 未改动;详细原因已写入日志")
    return done


def _sentence(text) -> str:
    """`text` ended with one full stop (a message that already ends with one gets no second)."""
    text = str(text).rstrip()
    return text if text.endswith(("。", "!", "?", "!", "?")) else text + "。"


def _reason(detail: str) -> str:
    lowered = detail.lower()
    if "server version mismatch" in lowered or "aborting because of server version" in lowered:
        return "pg_dump 的版本比服务器旧:请安装与服务器同一大版本的 PostgreSQL 客户端工具"
    if "password authentication failed" in lowered:
        return "用户名或密码不正确"
    if "could not connect" in lowered or "connection refused" in lowered or "connection to server" in lowered:
        return "连接不上 PostgreSQL 服务器"
    if "permission denied" in lowered:
        return "该用户没有读取全部数据表的权限"
    if "no space" in lowered:
        return "磁盘空间已满"
    return detail.strip().splitlines()[-1][:200] if detail.strip() else "原因不明"


def dump_contents(path, pg_restore: str | None = None) -> tuple[dict, set[str]]:
    """(meta, tables with data) of a dump, read with pg_restore (no server needed)."""
    tool = pg_restore or find_tool("pg_restore")
    path = Path(path)
    listing = subprocess.run([tool, "--list", str(path)], capture_output=True, **_no_window())
    whole = subprocess.run([tool, f"--file={os.devnull}", str(path)], capture_output=True, **_no_window())
    if listing.returncode != 0 or whole.returncode != 0:  # every table's data must read to its end
        raise BackupError(f"{path} 不是完整的 PostgreSQL 备份(pg_restore 无法读取,文件可能被截断或损坏)")
    tables = set(re.findall(r"TABLE DATA \S+ (\w+) ", listing.stdout.decode("utf-8", "replace")))
    data = subprocess.run([tool, "--data-only", "--table=meta", "--file=-", str(path)], capture_output=True,
                          **_no_window())
    meta = {}
    in_copy = False
    for line in data.stdout.decode("utf-8", "replace").splitlines():
        if re.match(r"^COPY (\w+\.)?meta \(", line):
            in_copy = True
        elif in_copy and line == "\\.":
            in_copy = False
        elif in_copy:
            key, _, value = line.partition("\t")
            meta[key] = value.split("\t")[0]
    if meta.get("app") != "jiandang" or "db_id" not in meta:
        raise BackupError(f"{path} 不是建档县级数据库的 PostgreSQL 备份")
    return meta, tables


# ---------------------------------------------------------------------- backup


def backup_name(where: PgLocation, db_id: str, when: dt.datetime) -> str:
    stem = re.sub(r"[^\w.-]+", "_", where.database) or "county"
    return f"{stem}-{db_id[:8]}-{when.strftime(_STAMP)}{SUFFIX}"


def backup(url, folder, *, now: dt.datetime | None = None) -> BackupInfo:
    """A pg_dump of the county database at `url` into `folder`, atomically; BackupError otherwise."""
    where = location(url)
    folder = Path(folder)
    now = now or dt.datetime.now()
    try:
        with Store.open(where, read_only=True) as store:  # a county database of this program, reachable
            db_id = store.db_id
    except StoreError as exc:
        raise BackupError(str(exc)) from None
    pg_dump, pg_restore = find_tool("pg_dump"), find_tool("pg_restore")
    mine, theirs = tool_major(pg_dump), server_major(where)
    if mine < theirs:
        raise BackupError(f"本机的 pg_dump 是 PostgreSQL {mine},服务器是 PostgreSQL {theirs}:pg_dump 不能备份更新版本的服务器。"
                          f"请安装 PostgreSQL {theirs} 的客户端工具再备份(没有写入任何文件)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"无法创建备份文件夹 {folder}:{exc.strerror or exc}") from None
    final = folder / backup_name(where, db_id, now)
    dbname = _connection(where)[0]

    def build(tmp: Path) -> None:
        _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--file={tmp}", f"--dbname={dbname}"],
             where, "备份 PostgreSQL 数据库")
        meta, tables = dump_contents(tmp, pg_restore)
        missing = [t for t in TABLES_WITH_DATA if t not in tables]
        if meta["db_id"] != db_id or missing:
            raise BackupError(f"备份写入后与数据库不一致({'缺少表 ' + '、'.join(missing) if missing else '数据库编号不同'}),请重试")

    try:
        fileio.write_atomic(final, build=build)
    except OSError as exc:
        if isinstance(exc, BackupError):
            raise
        raise BackupError(f"无法写入备份到 {folder}:{exc.strerror or exc}。请检查磁盘空间或是否写保护") from None
    info = BackupInfo(final, db_id, now.replace(microsecond=0), final.stat().st_size)
    log.info("PostgreSQL backup written: %s (%d bytes)", final.name, info.size)
    return info


def backups(folder, db_id: str | None = None) -> list[BackupInfo]:
    """PostgreSQL backups in a folder (of one database when given), newest first, by their names."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in folder.iterdir():
        m = _NAME.match(path.name)
        if m and (not db_id or m["short"] == db_id[:8]):
            out.append(BackupInfo(path, db_id or m["short"], dt.datetime.strptime(m["stamp"], _STAMP),
                                  path.stat().st_size))
    out.sort(key=lambda b: b.created, reverse=True)
    return out


def prune(folder, db_id: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` PostgreSQL backups of one database in `folder`."""
    gone = fileio.clean_stale(folder)
    for info in backups(folder, db_id)[max(1, int(keep)):]:
        with contextlib.suppress(OSError):
            info.path.unlink()
            gone.append(info.path)
    return gone


# ---------------------------------------------------------------------- restore


def _drop_all(where: PgLocation) -> None:
    from app.store import postgres  # noqa: PLC0415

    conn = postgres.connect(where)
    try:
        for name in conn.table_names():
            conn.raw.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    finally:
        conn.close()


def _analyze(where: PgLocation) -> None:
    from app.store import postgres  # noqa: PLC0415

    conn = postgres.connect(where)
    try:
        conn.raw.execute("ANALYZE")
    finally:
        conn.close()


def restore(dump, url, *, operator: str | None = None, passphrase: str | None = None,
            recovery_key=None) -> RestoreResult:
    """Restore a PostgreSQL backup into the empty database at `url` and check it in full."""
    from app.services import integrity  # noqa: PLC0415
    from app.store import postgres  # noqa: PLC0415

    dump, where = Path(dump), location(url)
    if not dump.exists():
        raise BackupError(f"找不到备份文件 {dump}")
    if fileio.is_own_temp(dump.name) or not dump.name.endswith(SUFFIX):
        raise BackupError(f"{dump.name} 不是完成的 PostgreSQL 备份(应以 {SUFFIX} 结尾)")
    pg_restore = find_tool("pg_restore")
    meta, _ = dump_contents(dump, pg_restore)
    conn = postgres.connect(where)
    try:
        names = conn.table_names()
    finally:
        conn.close()
    if names:
        raise BackupError(f"PostgreSQL 数据库 {where.masked} 不是空的(已有数据表 {'、'.join(names[:5])}):恢复只写入新建的空数据库,"
                          "没有改动它。请在服务器上新建一个空数据库(例如 createdb 新名字),恢复到其中,核对无误后再让服务改用它")
    _run([pg_restore, "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
          f"--dbname={_connection(where)[0]}", str(dump)], where, "恢复 PostgreSQL 备份")
    try:
        _analyze(where)  # pg_restore leaves the planner without statistics of the restored tables
        with Store.open(where) as store:
            if store.db_id != meta["db_id"]:
                raise BackupError("恢复后的数据库编号与备份不同")
            if recovery_key is not None:
                store.unlock_with_recovery(recovery_key)
            else:
                store.unlock(operator or store.operators()[0], passphrase or "")
            report = integrity.check(store)
        if not report.ok:
            lines = "\n".join(p.line() for p in report.problems[:10])
            raise BackupError(f"备份 {dump} 已损坏,不能用来恢复:\n{lines}\n请换一份较早的备份")
    except BaseException as exc:
        _drop_all(where)
        if isinstance(exc, BackupError):
            raise BackupError(f"{_sentence(exc)}{where.masked} 已恢复为空数据库") from None
        if isinstance(exc, (StoreError, DecryptionError)):
            how = "恢复私钥与此数据库不匹配" if isinstance(exc, DecryptionError) else exc
            raise BackupError(f"备份 {dump} 无法解锁:{_sentence(how)}{where.masked} 已恢复为空数据库") from None
        raise
    log.info("restored PostgreSQL backup %s (%d records, %d changes)", dump.name, report.records, report.changes)
    return RestoreResult(where, None, report.records, report.changes)
