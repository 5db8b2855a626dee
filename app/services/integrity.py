"""The integrity check of a database (`jiandang check DB`, and the window after an unclean shutdown).

It verifies that
- SQLite's own `PRAGMA integrity_check` passes (a county on PostgreSQL, which has none: its tables,
  columns, primary keys and indexes are all there and valid, app/services/structure.py),
- every record decrypts (its sealed blob authenticates under the data key, bound to its id and kind),
  and its plain routing columns (village, parent, clock) agree with the sealed ones,
- every change row decrypts,
- the change log matches the records: replaying each record's changes in (hlc, site_id) order gives
  the record's current fields, village and deleted flag, and every record has changes,
- the blind index used to find duplicate ID numbers matches the members' ID numbers,
- every stored photo or scan opens and matches its content address.

Problems are reported by record id (never by name or other personal data), so the report may be
shown, logged or sent to the county as it is.

Also the clean/unclean shutdown marker: `mark_session_open` when the window unlocks a database,
`mark_session_closed` when it closes it; `previous_session_unclean` at the next start says whether
the last session ended without closing (power cut, crash), so the window can run the check.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core import idnumber
from app.store import Store, StoreError, bodies, search
from app.store.crypto import DecryptionError
from app.store.db import held_by_another, sqlite_reason
from app.store.locations import is_url

log = logging.getLogger(__name__)

SESSION_KEY = "session_open"


@dataclass(frozen=True)
class Problem:
    what: str  # "sqlite" (the database's own structure) | "record" | "change" | "log" | "index" | "attachment"
    record_id: str | None
    message: str

    def line(self) -> str:
        return f"记录 {self.record_id}:{self.message}" if self.record_id else self.message


@dataclass
class Report:
    records: int = 0
    changes: int = 0
    sqlite: str = "ok"
    problems: list[Problem] = field(default_factory=list)
    in_use: bool = False  # another program had the database open for writing while it was checked
    backend: str = "sqlite"  # or "postgresql"

    @property
    def ok(self) -> bool:
        return not self.problems

    def damaged_ids(self) -> set[str]:
        return {p.record_id for p in self.problems if p.record_id}

    def summary(self) -> str:
        busy = ("(数据库正由另一个建档程序使用,检查的是检查开始时已保存的内容;那个程序正在做的修改不受影响)"
                if self.in_use else "")
        if self.backend == "postgresql":
            busy = "(检查的是检查开始时已保存的内容;其他程序此后的修改不受影响)"
        structure = "PostgreSQL 数据表和索引齐全" if self.backend == "postgresql" else "SQLite 校验通过"
        if self.ok:
            return busy + f"数据库完好:{self.records} 条记录、{self.changes} 条修改记录均可解密,修改记录与数据一致,{structure}"
        return busy + (f"发现 {len(self.problems)} 处问题(共 {self.records} 条记录、{self.changes} 条修改记录)。"
                "请从最近的备份恢复(jiandang restore),或联系县扶贫办")


def _replay(changes: list[tuple[str, str, str | None, dict]]) -> tuple[dict, str | None, bool]:
    """Fields, village and deleted flag after applying (hlc, site_id, village, body) in order."""
    fields: dict = {}
    village = None
    deleted = False
    for i, (_, _, change_village, body) in enumerate(changes):
        op = body.get("op")
        if i == 0 or op == "create":
            village = change_village
        if op == "delete":
            deleted = True
            continue
        if op == "restore":
            deleted = False
        for key, value in (body.get("new") or {}).items():
            if key == "__village_code":
                village = value
            elif key.startswith("__"):
                continue
            elif value is None:
                fields.pop(key, None)
            else:
                fields[key] = value
    return fields, village, deleted


CHECK_BATCH = 2000


def _check_record(store: Store, sealer, report: Report, expected_index: dict, rid: str, kind: str, village, parent,
                  hlc, deleted, blob, log_rows: list, bad_changes: bool) -> None:
    """One record: it decrypts, its plain routing columns agree with the sealed ones, and replaying its
    changes gives its fields, village and deleted flag."""
    try:
        sealed = bodies.decode(sealer.open(kind, rid, blob), rid, kind, deleted)
        current = sealed.fields
        sealed_place = (sealed.village_code, sealed.parent_id, sealed.hlc)
    except (DecryptionError, ValueError, TypeError, KeyError):
        report.problems.append(Problem("record", rid, f"{kind} 记录无法解密,已损坏或被改动"))
        return
    if sealed_place != (village, parent, hlc):  # the plain columns are what queries choose records by
        report.problems.append(Problem("record", rid, "记录的明文列(所在村、所属户或时间)与加密内容不一致,文件被改动过"))
    if kind == "member" and not deleted and current.get("id_number"):
        expected_index["id_number", rid] = store.blind("id_number", idnumber.normalise(current["id_number"]))
    elif kind == "household" and not deleted and search.number_key(current.get("household_number")):
        expected_index["household_number", rid] = store.blind("household_number",
                                                             search.number_key(current["household_number"]))
    if bad_changes:
        return
    if not log_rows:
        report.problems.append(Problem("log", rid, "记录没有任何修改记录(不是通过正常保存写入的)"))
        return
    fields, log_village, log_deleted = _replay(sorted(log_rows, key=lambda c: (c[0], c[1])))
    if fields != current:
        keys = sorted(k for k in set(fields) | set(current) if fields.get(k) != current.get(k))
        report.problems.append(Problem("log", rid, f"记录的字段与修改记录不一致(字段:{'、'.join(keys)})"))
    if log_village != village:
        report.problems.append(Problem("log", rid, "记录所在村与修改记录不一致"))
    if bool(deleted) != log_deleted:
        report.problems.append(Problem("log", rid, "记录的删除状态与修改记录不一致"))


def check(store: Store, progress: Callable[[int, int], None] | None = None) -> Report:
    """Check an unlocked store in full. Never raises for damaged data: it reports it. A county on
    PostgreSQL is read at one moment (`Store.one_moment`): records and change log batch by batch, while
    the service and staff write, must not be compared across two states."""
    with store.one_moment():
        return _check(store, progress)


def _check(store: Store, progress: Callable[[int, int], None] | None) -> Report:
    sealer = store.sealer()
    report = Report()
    if getattr(store.conn, "dialect", "sqlite") == "postgresql":
        from app.services import structure  # noqa: PLC0415

        report.backend = "postgresql"
        missing = structure.postgres_problems(store.conn.raw)
        if missing:
            report.sqlite = "; ".join(missing[:5])
            report.problems += [Problem("sqlite", None, f"PostgreSQL 数据库 {store.path}:{m}") for m in missing]
    else:
        rows = store.conn.execute("PRAGMA integrity_check").fetchall()
        if rows != [("ok",)]:
            report.sqlite = "; ".join(r[0] for r in rows[:5])
            report.problems.append(Problem("sqlite", None, sqlite_reason(report.sqlite)))

    # records a batch at a time (by position), each batch with its changes: memory stays flat in the
    # size of the county (all changes decoded at once took about 2 GB for 50,000 households)
    total = store.conn.execute("SELECT (SELECT count(*) FROM records) + (SELECT count(*) FROM changes)").fetchone()[0]
    state = {"done": 0, "told": 0}
    expected_index: dict[tuple[str, str], bytes] = {}  # (field, record id) -> blind index digest

    def tell(count: int) -> None:
        state["done"] += count
        if progress and state["done"] - state["told"] >= 2000:
            state["told"] = state["done"]
            progress(state["done"], total)

    def decoded_changes(rows) -> tuple[dict[str, list], set[str]]:
        by_record: dict[str, list] = defaultdict(list)
        bad: set[str] = set()
        for site, seq, rid, village, hlc, payload in rows:
            report.changes += 1
            try:
                body = json.loads(sealer.open("change", f"{site}:{seq}", payload))
            except (DecryptionError, ValueError, TypeError):
                report.problems.append(Problem("change", rid, f"修改记录(站点 {site} 第 {seq} 条)无法解密,已损坏或被改动"))
                bad.add(rid)
                continue
            by_record[rid].append((hlc, site, village, body))
        return by_record, bad

    changes_sql = "SELECT site_id, seq, record_id, village_code, hlc, payload FROM changes"
    last = 0
    while True:
        batch = store.conn.execute(
            "SELECT rowid, id, kind, village_code, parent_id, hlc, deleted, blob FROM records WHERE rowid > ? ORDER BY rowid "
            "LIMIT ?",
            (last, CHECK_BATCH)).fetchall()
        if not batch:
            break
        last = batch[-1][0]
        rows = []
        for i in range(0, len(batch), 500):
            ids = [r[1] for r in batch[i:i + 500]]
            rows += store.conn.execute(f"{changes_sql} WHERE record_id IN ({','.join('?' * len(ids))})", ids).fetchall()
        by_record, bad_change_records = decoded_changes(rows)
        tell(len(rows))
        del rows
        for _, rid, kind, village, parent, hlc, deleted, blob in batch:
            report.records += 1
            _check_record(store, sealer, report, expected_index, rid, kind, village, parent, hlc, deleted, blob,
                          by_record.get(rid, []), rid in bad_change_records)
        tell(len(batch))
    # changes whose record is missing
    orphans, _ = decoded_changes(store.conn.execute(
        f"{changes_sql} c WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = c.record_id)").fetchall())
    for rid in sorted(orphans):
        report.problems.append(Problem("log", rid, "有修改记录,但记录本身不存在"))
    # the blind index (duplicate ID number detection) must match the members' ID numbers
    # and the 户编号 (once written: a database from before them gets them at its writer's unlock)
    fields = ("id_number",) if search.number_index_pending(store.conn) else ("id_number", "household_number")
    indexed = {(field, rid): bytes(digest) for rid, field, digest in store.conn.execute(
        f"SELECT record_id, field, digest FROM blind_index WHERE field IN ({','.join('?' * len(fields))})", fields)}
    expected_index = {key: digest for key, digest in expected_index.items() if key[0] in fields}
    damaged = {p.record_id for p in report.problems if p.what == "record"}
    for field, rid in sorted(set(indexed) | set(expected_index)):
        if rid not in damaged and indexed.get((field, rid)) != expected_index.get((field, rid)):
            what = "证件号码查重索引" if field == "id_number" else "户编号索引"
            report.problems.append(Problem("index", rid, f"{what}与记录不一致(查重可能漏报)"))
    from app.store import attachments  # noqa: PLC0415 - photos and scans (docs/attachments.md)

    for digest in attachments.damaged_blobs(store):
        report.problems.append(Problem("attachment", None, f"照片 {digest[:12]} 无法解密或内容与编号不符,已损坏或被改动"))
    if progress:
        progress(total, total)
    log.info("integrity check: %d records, %d changes, %d problems", report.records, report.changes, len(report.problems))
    return report


def verify_file(path, operator: str | None, passphrase: str | None, label: str | None = None,
                recovery_key=None) -> tuple[int, int]:
    """Open a database file, unlock it (with an operator's passphrase, or the county's recovery
    private key) and check it in full. Returns (records, changes); raises
    app.services.backup.BackupError naming the file and the damaged records."""
    from app.services.backup import BackupError  # noqa: PLC0415

    label = label or str(path)
    try:
        store = Store.open(path, moved_ok=True)  # a backup of a county file from before its move is checked too
    except StoreError as exc:
        raise BackupError(f"{label} 无法打开:{exc}") from None
    with store:
        try:
            if recovery_key is not None:
                store.unlock_with_recovery(recovery_key)
            else:
                store.unlock(operator or store.operators()[0], passphrase or "")
        except (StoreError, DecryptionError) as exc:
            how = "恢复私钥与此数据库不匹配" if recovery_key is not None and isinstance(exc, DecryptionError) else exc
            raise BackupError(f"{label} 无法解锁:{how}") from None
        report = check(store)
    if not report.ok:
        lines = "\n".join(p.line() for p in report.problems[:10])
        more = f"\n……共 {len(report.problems)} 处" if len(report.problems) > 10 else ""
        raise BackupError(f"{label} 已损坏,不能用来恢复:\n{lines}{more}\n请换一份较早的备份")
    return report.records, report.changes


# ---------------------------------------------------------------------- shutdown marker


def previous_session_unclean(store: Store) -> bool:
    """True when the last session that unlocked this database did not close it (crash, power cut):
    the window should then run `check` before work continues. Call before `mark_session_open`.
    A county on PostgreSQL has several sessions at once and a server that keeps its own pages: no
    marker there."""
    if getattr(store, "shared", False):
        return False
    return store.meta(SESSION_KEY) is not None


def mark_session_open(store: Store) -> None:
    """Record that a session is working on this database (the window calls this after unlocking)."""
    if getattr(store, "shared", False):
        return
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    store.set_meta(SESSION_KEY, json.dumps({"since": stamp, "pid": os.getpid()}))


def mark_session_closed(store: Store) -> None:
    """Record a clean end of the session (the window calls this when it closes the database)."""
    if getattr(store, "shared", False):
        return
    store.conn.execute("DELETE FROM meta WHERE key = ?", (SESSION_KEY,))


def open_and_check(path, operator: str | None, passphrase: str,
                   progress: Callable[[int, int], None] | None = None) -> Report:
    """Open, unlock and check a database file (the CLI's `jiandang check`). A file SQLite cannot
    read at all is reported as a problem rather than raised. A county on PostgreSQL (a URL) is read
    as one snapshot beside the programs writing it; a server that cannot be reached raises."""
    if is_url(path):
        with Store.open(path, read_only=True) as store:
            store.unlock(operator or store.operators()[0], passphrase)
            store.snapshot()
            return check(store, progress)
    in_use = held_by_another(path)
    try:  # a reader beside the window or a command: never mistake "in use" for damage
        store = Store.open(path, read_only=True)
    except StoreError as exc:
        if in_use and "需要升级" not in str(exc):
            raise StoreError(f"{path} 正被另一个建档程序使用,此刻无法检查:请稍后再试,或关闭那个程序后再检查"
                             "(这不是数据损坏,不要从备份恢复)") from None
        return Report(sqlite=str(exc), problems=[Problem("sqlite", None, str(exc))])
    except sqlite3.DatabaseError as exc:
        return Report(sqlite=str(exc), problems=[Problem("sqlite", None, f"{path} 无法读取:{sqlite_reason(exc)}")])
    with store:
        store.unlock(operator or store.operators()[0], passphrase)
        store.snapshot()  # changes and records read as of one moment, whatever is written meanwhile
        report = check(store, progress)
        report.in_use = in_use or held_by_another(path)
        return report

