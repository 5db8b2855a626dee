"""Export and import of sync bundles (library functions: bytes in, report out).

Upstream (device -> county): every change of the device the county has not acknowledged, and the
highest county number the device has received. Downstream (county -> one device): the changes in the
device's villages from other sites since the device's last acknowledgement (county numbering = the
rowid of the county's change log), the acknowledgement of the device's own changes, and reference
data (divisions of the device's area, poverty lines, revocation list, dictionary version), with an expiry.

Import of one bundle is one transaction: verify (size, framing, signature), sender certificate and
revocation, recipient, decrypt, sequence (duplicates, gaps, rollback), authorise every change,
merge, receipt. A refused bundle changes nothing. The county service merges the uploads that queue up
together (`import_bundles`: one transaction, a savepoint per bundle; the checks and decryption done
before the write lock is taken)."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app import fileio
from app.core import clock, procedures
from app.core.text import printable
from app.core.validation import household_label
from app.store import Store, StoreError
from app.store.base import gc_paused
from app.store.db import short_id
from app.store.postgres import PgUnavailable, RetryAlone
from app.sync import attachments as attachment_sync
from app.sync import county_merge, identity, numbers, overlapping, refdata, status, wire
from app.sync.merge import Merger, change_to_wire

SUFFIX = ".jdb"
DOWN_DAYS = 30


@dataclass
class Report:
    """What happened to one bundle."""

    name: str
    status: str  # "accepted" | "duplicate" | "refused" | "held" | "skipped" (files a folder import left out)
    message: str = ""
    sender: str = ""
    seq: int = 0
    changes: int = 0
    applied: int = 0
    conflicts: int = 0
    duplicates: list = field(default_factory=list)  # [(household id, other household id, member ids)]
    household_labels: dict = field(default_factory=dict)  # household id -> 户主“…”(户编号 …), for `duplicates`
    warnings: list = field(default_factory=list)
    reference: list = field(default_factory=list)  # reference data the bundle changed (divisions, poverty lines)
    seconds_crypto: float = 0.0
    seconds_total: float = 0.0
    attachments: int = 0  # images the bundle brought that were stored here
    more: bool = False  # the sender has more images for this database (they follow in later bundles)
    more_changes: bool = False  # the sender's export continues with more changes in its next bundle

    @property
    def refused(self) -> bool:
        return self.status in ("refused", "held")

    def line(self, sender_label: str = "") -> str:
        """The report in one line (plus notes). `sender_label`: the sender as named to the reader
        (app.sync.status.site_label), else its site id."""
        if self.status == "accepted":
            text = (f"{printable(self.name)}: 已接收(来自 {sender_label or self.sender} 第 {self.seq} 号包,更改 {self.changes} 条,"
                    f"新应用 {self.applied} 条,冲突 {self.conflicts} 条)")
        elif self.status == "duplicate":
            text = f"{printable(self.name)}: 重复(此包已导入过,未作任何改动)"
        elif self.status == "skipped":
            text = f"{printable(self.name)}: 已跳过 {printable(self.message)}"
        else:
            text = f"{printable(self.name)}: 已拒收:{printable(self.message)}"
        if self.status == "accepted" and self.more_changes:
            text += "\n  其余更改在同一次导出的后续同步包中"
        if self.attachments or self.more:
            text += f"\n  照片:收到 {self.attachments} 张" + (",其余照片在后续同步包中" if self.more else "")
        if self.reference:
            text += f"\n  参考数据:{';'.join(self.reference)}"
        for w in self.warnings:
            text += f"\n  注意:{w}"
        for dup in self.duplicates:
            text += f"\n  {self.duplicate_text(dup)}"
        return text

    def duplicate_text(self, dup) -> str:
        """One pair of households with a member of the same ID number, named by 户主 and 户编号."""
        first, second = (self.household_labels.get(h) or f"户 {h}" for h in dup[:2])
        return f"重复身份证号:{first}与{second}有相同身份证号的成员,请核实"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


# ---------------------------------------------------------------------- export


class Exported(tuple):
    """(file name, bytes) of an exported bundle, with the images it carries (`sent`, already marked
    as sent unless the export was asked not to), whether more follow in later bundles of the same
    export (`more`: changes or images; `more_changes`: changes), `last`, the number of the last
    own change it carried (or that the one before it carried): the next bundle continues after it, and
    `part_of`, the number of the export's first bundle."""

    def __new__(cls, name: str, data: bytes, sent=(), more: bool = False, peer: str = "", seq: int = 0,
                last: int = 0, more_changes: bool = False, part_of: int = 0):
        self = super().__new__(cls, (name, data))
        self.sent, self.more, self.peer, self.seq = list(sent), more, peer, seq
        self.last, self.more_changes, self.part_of = last, more_changes, part_of or seq
        return self

    def mark_sent(self, store: Store) -> None:
        """Remember the images as sent (after an upload the county accepted)."""
        with store.transaction():
            attachment_sync.mark_sent(store, self.peer, self.sent, self.seq)


CHANGES_PER_BUNDLE = 10_000  # own changes in one upstream bundle: export and import memory stay small


def export_upstream(store: Store, *, budget: int = attachment_sync.DEFAULT_BUDGET, after: int | None = None,
                    part_of: int | None = None, mark: bool = True, limit: int | None = None) -> Exported:
    """A device's bundle for the county: (file name, bytes). Increments the bundle number. The first
    bundle of an export (`after` None) carries the changes the county has not acknowledged, at most
    `limit` of them; the next bundle of the same export (`after` = the previous one's `last`)
    continues after the last change that one carried, and says so in its header (`continues`: the
    number of the export's first bundle, `part_of`; the county takes it only after bundle seq - 1). Images ride in the bundle that carries the last change
    (and in further bundles after it), up to `budget` bytes each. With `mark` the images are
    remembered as sent in the same transaction (for a file written inside the caller's transaction);
    without, the caller calls `mark_sent` once the county has them (upload)."""
    cert = identity.device_certificate(store)
    limit = max(1, limit or CHANGES_PER_BUNDLE)
    acked = int(store.meta("sync_acked_seq", 0))
    start = acked if after is None else int(after)
    rows = list(store.changes(site_id=store.site_id, after_seq=start, limit=limit + 1))
    more_changes = len(rows) > limit
    changes = [change_to_wire(c) for c in rows[:limit]]
    del rows
    county = store.meta("county_site_id")
    with store.transaction():
        if more_changes:  # images go after the records they belong to: none until the last change
            images, sent, more = [], [], False
        else:
            images, sent, more = attachment_sync.outgoing(store, county, None, budget)
        seq = int(store.meta("sync_out_seq", 0)) + 1
        now = _utcnow()
        header = {
            "format": wire.FORMAT, "type": "up", "sender": store.site_id, "recipient": store.meta("county_site_id"),
            "seq": seq, "prev": store.meta("sync_out_prev", ""), "created": identity.iso(now), "expires": None,
            "counts": {"changes": len(changes), "first": changes[0]["n"] if changes else start + 1,
                       "last": changes[-1]["n"] if changes else start},
        }
        if after is not None:
            header["continues"] = int(part_of or seq - 1)  # the county must hold bundle seq - 1 first
            header["format"] = wire.PARTS_FORMAT  # a reader that knows no parts refuses it
        if images:
            header["counts"]["attachments"] = len(images)
        payload = {"changes": changes, "down_rowid": int(store.meta("sync_down_rowid", 0)),
                   "down_seq": int(store.meta("sync_down_seq", 0)), "certificate": cert.body["site_id"],
                   "dictionary_version": _dictionary_version()}
        if more_changes:
            payload["more_changes"] = True
        _attachment_payload(payload, images, more, attachment_sync.wanted(store))
        body = wire.seal_payload(payload, identity.county_enc_public(store), header)
        del payload
        data = wire.pack(identity.device_signing_key(store), header, body)
        del body
        store.set_meta("sync_out_seq", str(seq))
        store.set_meta("sync_out_prev", wire.digest(data))
        last = changes[-1]["n"] if changes else start
        if changes:  # the newest change any bundle has carried (for "N 条上次已发出" in the next one)
            store.set_meta("sync_out_last", str(max(int(store.meta("sync_out_last", 0) or 0), last)))
        if mark:
            attachment_sync.mark_sent(store, county, sent, seq)
    return Exported(f"{store.site_id}-up-{seq:06d}{SUFFIX}", data, sent, more or more_changes, county, seq,
                    last, more_changes, part_of or seq)


def _attachment_payload(payload: dict, images: list, more: bool, wanted: list) -> None:
    """The attachment keys of a payload, only when there is something to say (a bundle without
    images reads exactly as before)."""
    if images:
        payload["attachments"] = images
    if more:
        payload["more_attachments"] = True
    if wanted:
        payload["attachments_wanted"] = wanted


def _village_clause(villages: list[str]) -> tuple[str, list]:
    parts = " OR ".join("village_code LIKE ?" for _ in villages)
    return f"({parts})", [v + "%" for v in villages]


def export_downstream(store: Store, site_id: str, days: int = DOWN_DAYS, *,
                      budget: int = attachment_sync.DEFAULT_BUDGET, follow_up: bool = False,
                      after: int | None = None, part_of: int | None = None, limit: int | None = None) -> Exported:
    """The county's bundle for one device: (file name, bytes). The first bundle of an export (`after`
    None) carries the changes in the device's villages from other sites after the device's
    acknowledgement, at most `limit` (CHANGES_PER_BUNDLE) of them; the next bundle of the same export
    (`after` = the previous one's `last`, the county number of the last change it carried) continues
    after it and says so in its header (`continues`: the number of the export's first bundle, `part_of`;
    the device takes it only after bundle seq - 1). Images of the device's villages, up to `budget`
    bytes, ride in the bundle that carries the last change and in the bundles after it. The reference
    data, the 户编号 top-ups and the images the county lacks go in an export's first bundle only. A `follow_up`
    bundle carries images only and does not move the device's acknowledgement of county changes on."""
    found = identity.certificate_of(store, site_id)
    if found is None:
        raise StoreError(f"没有站点 {site_id} 的证书")
    cert, revoked = found
    if revoked:
        raise StoreError(f"站点 {site_id} 已吊销,不再向它发包")
    sign = identity.county_signing_key(store)
    limit = max(1, limit or CHANGES_PER_BUNDLE)
    with store.transaction():
        peer = store.conn.execute("SELECT have_seq, down_seq, down_acked, bundle_seq FROM peers WHERE site_id = ?",
                                  (site_id,)).fetchone()
        have_seq, down_seq, down_acked, bundle_seq = peer or (0, 0, 0, 0)
        last_up = store.conn.execute("SELECT digest FROM receipts WHERE sender = ? AND seq = ? AND kind = 'up'",
                                     (site_id, bundle_seq)).fetchone()
        clause, args = _village_clause(cert.villages)
        start = down_acked if after is None else max(int(after), down_acked)
        top = store.conn.execute("SELECT coalesce(max(rowid), 0) FROM changes").fetchone()[0]
        more_changes = False
        if follow_up:
            top, changes = start, []
        else:  # one part at a time: never the whole first copy of a village in memory
            rows = store.conn.execute(
                f"SELECT rowid, {store.CHANGE_COLUMNS} FROM changes WHERE rowid > ? AND rowid <= ? AND site_id != ? "
                f"AND {clause} ORDER BY rowid LIMIT ?", [start, top, site_id, *args, limit + 1]).fetchall()
            more_changes = len(rows) > limit
            if more_changes:
                top = rows[limit - 1][0]  # the device acknowledges up to the last change this part carries
            changes = [change_to_wire(store.decode_change(r[1:])) for r in rows[:limit]]
            del rows
        if more_changes:  # images go after the records they belong to: none until the last change
            images, sent, more = [], [], False
        else:
            images, sent, more = attachment_sync.outgoing(store, site_id, cert.villages, budget)
        seq = down_seq + 1
        now = _utcnow()
        header = {
            "format": wire.FORMAT, "type": "down", "sender": store.site_id, "recipient": site_id, "seq": seq,
            "prev": "", "created": identity.iso(now), "expires": identity.iso(now + dt.timedelta(days=days)),
            "counts": {"changes": len(changes), "rowid": top, "ack_seq": have_seq, "after": start},
        }
        if after is not None:
            header["continues"] = int(part_of or seq - 1)  # the device must hold bundle seq - 1 first
            header["format"] = wire.PARTS_FORMAT  # a reader that knows no parts refuses it
        if images:
            header["counts"]["attachments"] = len(images)
        payload = {
            "changes": changes, "ack_seq": have_seq, "rowid": top, "revoked": identity.revoked_sites(store),
            "up_seq": bundle_seq, "up_digest": last_up[0] if last_up else "",  # the device's last bundle the county holds
            "dictionary_version": _dictionary_version(),
        }
        del changes
        if after is None:  # once an export, in its first bundle (top_up reads every household of the villages)
            payload.update(refdata.outgoing(store, cert.villages))  # divisions of its area, poverty lines with sources
            payload["number_topups"] = numbers.top_up(store, cert)  # more 户编号 when it has used most of its block
        if more_changes:
            payload["more_changes"] = True
        _attachment_payload(payload, images, more, attachment_sync.wanted(store, cert.villages) if after is None else [])
        payload["attachment_policy"] = {"keep_gps": store.meta(attachment_sync.KEEP_GPS_META, "0") == "1"}
        body = wire.seal_payload(payload, cert.enc_public, header)
        del payload
        data = wire.pack(sign, header, body)
        del body
        store.conn.execute("INSERT OR IGNORE INTO peers(site_id) VALUES (?)", (site_id,))
        store.conn.execute("UPDATE peers SET down_seq = ? WHERE site_id = ?", (seq, site_id))
        attachment_sync.mark_sent(store, site_id, sent, seq)
    return Exported(f"{site_id}-down-{seq:06d}{SUFFIX}", data, sent, more or more_changes, site_id, seq,
                    top, more_changes, part_of or seq)


def _dictionary_version() -> str:
    from app.core.dictionary import default

    return str(getattr(default(), "version", ""))


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in str(version).replace("-", ".").split("."))


def dictionary_warning(theirs, *, from_county: bool, site: str = "") -> str | None:
    """What to tell when the other side's program uses another data dictionary (fields and code
    lists) than this one: the older side should be upgraded. None when the same, or not said (a
    bundle from an older program)."""
    ours = _dictionary_version()
    if not theirs or not ours or str(theirs) == ours:
        return None
    try:
        newer = _version_key(theirs) > _version_key(ours)
    except TypeError:  # a version of another shape: only say they differ
        newer = None
    if from_county:
        if newer:
            return (f"县里的数据字典已更新为 {theirs}(本机为 {ours}):请尽快升级本机的建档程序,"
                    "才能录入新增的字段和代码。本次数据已导入")
        return f"本机的数据字典为 {ours},县里为 {theirs}:请告知县扶贫办升级县里的建档程序"
    if newer:
        return f"站点 {site} 的数据字典为 {theirs},比县里的 {ours} 新:请升级县里的建档程序"
    return (f"站点 {site} 的程序使用较旧的数据字典 {theirs}(县里为 {ours}):请为该电脑升级建档程序,"
            "否则新增的字段和代码它无法录入")


def upstream_outlook(store: Store) -> tuple[int, int]:
    """(changes the next upstream bundle will carry, how many of them an earlier bundle already
    carried): every change the county has not acknowledged is sent again until it has."""
    acked = int(store.meta("sync_acked_seq", 0) or 0)
    sent = int(store.meta("sync_out_last", 0) or 0)
    total, resent = store.conn.execute(
        "SELECT count(*), count(CASE WHEN seq <= ? THEN 1 END) FROM changes WHERE site_id = ? AND seq > ?",
        (sent, store.site_id, acked)).fetchone()
    return total, resent


class ExportInterrupted(StoreError):
    """Writing stopped part-way (stick pulled or full): `written` are whole and count as sent; the
    images of the rest go with the next export."""

    def __init__(self, message: str, written: list):
        super().__init__(message)
        self.written = written


MAX_BUNDLES_PER_EXPORT = 200  # per device, of bundles that carry images only: a stick of 16 MB bundles fills long before


def export_to(store: Store, folder, progress: Callable[[int, int], None] | None = None, *,
              budget: int = attachment_sync.DEFAULT_BUDGET, max_bundles: int = MAX_BUNDLES_PER_EXPORT,
              changes_per_bundle: int | None = None) -> list[Path]:
    """Write bundles atomically into a folder: a device writes its upstream bundles (every change the
    county has not acknowledged, `changes_per_bundle` a bundle, named in order: the county imports
    them in order), the county its downstream bundles for each enrolled, unrevoked device (the changes
    for it, `changes_per_bundle` a bundle, named in order: the device imports them in order); when images
    remain beyond the budget, more bundles follow (images only) until all are written or
    `max_bundles` of them. Each bundle is written inside its export's transaction: a stick pulled or
    full mid-way leaves the images of the bundles not written unsent (they go next time), and those
    written are never sent again."""
    folder = Path(folder)
    if not folder.is_dir():
        raise StoreError(f"文件夹 {folder} 不存在(U盘是否已插好?)")
    # a bundle write cut off earlier (only names export makes; .part from older versions)
    fileio.clean_stale(folder, extra=lambda name: name.endswith(SUFFIX + ".part"))
    out = []

    def write(make) -> None:
        previous, image_rounds = None, 0
        while True:
            exported = None
            try:
                with store.transaction():
                    exported = make(*previous) if previous else make(None, None, False)
                    wire.write_atomic(folder / exported[0], exported[1])
            except OSError as exc:
                if exported is not None:  # a half-written temporary file (write_atomic's .part)
                    with contextlib.suppress(OSError):
                        (folder / (exported[0] + ".part")).unlink(missing_ok=True)
                if not out:
                    raise
                raise ExportInterrupted(
                    f"写入 {folder} 时出错({exc.strerror or exc}),U盘可能已拔出或已满:已写好的 {len(out)} 个包完整可用,"
                    "其余的更改和照片没有发出,下次导出时接着发送", out) from None
            out.append(folder / exported[0])
            if not exported.more:
                break
            if not exported.more_changes:
                image_rounds += 1
                if image_rounds >= max(1, max_bundles):
                    break
            # the bytes of a written bundle are not kept
            previous = (exported.last, exported.part_of, exported.more_changes)

    if store.role == "county":
        sites = [c["site_id"] for c in identity.certificates(store, include_revoked=False)]
        for i, site in enumerate(sites, 1):
            write(lambda after, part_of, changes_follow, site=site: export_downstream(
                store, site, budget=budget, after=after, part_of=part_of, limit=changes_per_bundle,
                follow_up=after is not None and not changes_follow))
            if progress:
                progress(i, len(sites))
    else:
        write(lambda after, part_of, _: export_upstream(store, budget=budget, after=after, part_of=part_of,
                                                     limit=changes_per_bundle))
        if progress:
            progress(1, 1)
    return out


# ---------------------------------------------------------------------- import


def store_digest(store: Store) -> str:
    """A digest of the records, changes, conflicts and receipts tables (tests compare it)."""
    import hashlib

    h = hashlib.sha256()
    for table, order in (("records", "id"), ("changes", "site_id, seq"), ("conflicts", "id"), ("receipts", "sender, seq")):
        cursor = store.conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
        own = [i for i, d in enumerate(cursor.description) if d[0] != "pos"]  # PostgreSQL's order column
        for row in cursor:
            h.update(repr(tuple(row[i] for i in own)).encode())
    return h.hexdigest()


def import_bundle(store: Store, data: bytes, name: str = "同步包", *, now: dt.datetime | None = None,
                  verified: tuple | None = None) -> Report:
    """Verify and import one bundle in one transaction. Never raises for bad input: the report says.
    `verified`: what `wire.verify(data, …)` returned for it already (the county service checks the
    signature before its rate limit), so that it is not checked twice."""
    return import_bundles(store, [(data, name, verified)], now=now)[0]


def import_bundles(store: Store, bundles, *, now: dt.datetime | None = None) -> list[Report]:
    """Import several bundles (data, name, verified or None) in ONE transaction, each in a savepoint of
    its own (the county service's group commit: one write lock and one commit for the uploads that
    queued up meanwhile). A bundle that is refused rolls back its own savepoint only; the others
    stay. The reports are final only when this returns: nothing is committed before, and when the
    commit itself fails every bundle merged here is reported refused (nothing of them was kept).
    Never raises for bad input."""
    with gc_paused():  # a bundle's thousands of short-lived change objects hold no cycles
        return _import_group(store, bundles, now)


def _import_group(store: Store, bundles, now: dt.datetime | None) -> list[Report]:
    reports: list[Report | None] = [None] * len(bundles)
    opened: list[tuple[int, _Opened, float]] = []
    receipts = _Receipts(store, [verified[0] for _, _, verified in bundles if verified is not None])
    for i, (data, name, verified) in enumerate(bundles):
        started = time.perf_counter()
        outcome = _refusing(name, lambda: _open(store, data, name, now or _utcnow(), verified, receipts))
        if isinstance(outcome, Report):
            outcome.seconds_total = time.perf_counter() - started
            reports[i] = outcome
        else:
            opened.append((i, outcome, time.perf_counter() - started))
    if not opened:
        return reports
    if store.role == "county":  # read the forms now, not under the write lock (once per process: 7-18 ms)
        _parent_kinds()
    t0 = time.perf_counter()
    try:
        if not (overlapping.possible(store, [bundle for _, bundle, _ in opened])
                and _merged_overlapping(store, opened, reports)):
            with store.transaction():
                for i, bundle, _ in opened:
                    reports[i] = _refusing(bundle.report.name, lambda: _merge_in_savepoint(store, bundle))
    except Exception as exc:  # noqa: BLE001 - the commit (or the connection) failed: nothing of the group was kept
        failed = (str(exc) if isinstance(exc, StoreError) else
                  f"导入时出错({type(exc).__name__}),未导入任何内容,请重试")
        for i, bundle, _ in opened:
            reports[i] = Report(bundle.report.name, "refused", failed)
    share = (time.perf_counter() - t0) / len(opened)
    for i, bundle, seconds in opened:
        reports[i].seconds_total = seconds + share
    return reports


def _refusing(name: str, step) -> "Report | _Opened":
    """`step()`, with bad input turned into a refusal (never a crash of the day)."""
    try:
        return step()
    except (PgUnavailable, RetryAlone):
        raise  # the connection broke (the whole group fails) / streaming failed (done again: _merged_overlapping)
    except (wire.BundleError, StoreError) as exc:
        return Report(name, "refused", str(exc))
    except Exception as exc:  # noqa: BLE001 - malformed content from a signed bundle
        return Report(name, "refused", f"包内容无法处理({type(exc).__name__}),未导入任何内容。请在发件电脑上重新导出,"
                                       "仍不行请联系技术支持")


def _merged_overlapping(store: Store, opened: list, reports: list) -> bool:
    """Merge the group with its writes streamed (app/sync/overlapping.py): True when done, False when
    streaming failed and the caller must merge it again the careful way (nothing of it was kept)."""
    fresh = [(i, bundle, copy.copy(bundle.report)) for i, bundle, _ in opened]
    for _, bundle, report in fresh:
        report.warnings = list(report.warnings)
    try:
        with store.transaction(), store.conn.streaming():
            ahead = overlapping.Ahead(store, [bundle for _, bundle, _ in opened])
            for i, bundle, _ in opened:
                reports[i] = _refusing(bundle.report.name, lambda: _merge_in_savepoint(store, bundle, ahead))
            for i, bundle, _ in opened:  # the first answer waits for all that was streamed
                if bundle.duplicates_later is not None and reports[i].status == "accepted":
                    _name_duplicates(store, reports[i], bundle.duplicates_later())
    except RetryAlone:
        for _, bundle, report in fresh:
            bundle.report, bundle.duplicates_later = report, None
        return False
    return True


def _merge_in_savepoint(store: Store, bundle: "_Opened", ahead=None) -> Report:
    try:
        with store.savepoint():
            return _merge(store, bundle, ahead)
    except _Duplicate:
        bundle.report.status = "duplicate"
        return bundle.report


COUNTY_OWN_BUNDLE = ("这是本县自己签发的包(发给笔记本电脑的县级包或登记包),不是电脑导出的上传包:县里只接收电脑导出的"
                     "同步包。县级包应在笔记本电脑上导入(同步 › 从U盘导入,或 jiandang sync import)")


def _signer_lookup(store: Store):
    if store.role == "county":
        county = identity.county_sign_public(store)

        def lookup(raw: bytes):
            if raw == county:
                raise wire.BundleError(COUNTY_OWN_BUNDLE)
            return identity.certificate_by_key(store, raw)
    else:
        county = identity.county_sign_public(store)

        def lookup(raw: bytes):
            return "county" if raw == county else None
    return lookup


@dataclass
class _Opened:
    """A bundle verified, decrypted and parsed, waiting for its merge (`_merge`, in a transaction)."""

    report: Report
    header: dict
    kind: str
    digest: str
    cert: object
    changes: list
    payload: dict
    now: dt.datetime
    duplicates_later: object = None  # streamed: the duplicate check's answer, asked for after the group


class _Duplicate(Exception):
    """Another program (or an earlier bundle of the same group) took this very bundle meanwhile."""


class _Receipts:
    """The receipts a group of bundles already verified (the county service's) is checked against
    before its merge, read in ONE statement for the group (on PostgreSQL one round trip instead of one
    or two per bundle): each bundle's own number and the one before it (`prev`, `continues`). Any
    other question, or a bundle verified later, goes to the database as before. The merge checks its
    bundle's receipt again under the write lock (`_merge`): this only answers a duplicate early."""

    def __init__(self, store: Store, verified: list):
        self.store, self.known = store, {}
        wanted = []
        for v in verified:
            with contextlib.suppress(wire.BundleError, AttributeError, TypeError, ValueError):
                header = v.header
                sender, seq = header.get("sender"), header.get("seq")
                if type(sender) is str and type(seq) is int and seq >= 1:
                    wanted += [(sender, seq), (sender, seq - 1)]
        wanted = list(dict.fromkeys(wanted))
        for start in range(0, len(wanted), 200):
            part = wanted[start:start + 200]
            rows = store.conn.execute(
                "SELECT sender, seq, kind, digest FROM receipts WHERE "
                + " OR ".join(["(sender = ? AND seq = ?)"] * len(part)),
                [value for pair in part for value in pair]).fetchall()
            for pair in part:
                self.known[pair] = {}
            for sender, seq, kind, digest in rows:
                self.known[(sender, seq)][kind] = digest

    def digest(self, sender, seq: int, kind) -> str | None:
        """The digest of the receipt (sender, seq, kind), None when there is none."""
        held = self.known.get((sender, seq))
        if held is None:
            row = self.store.conn.execute("SELECT digest FROM receipts WHERE sender = ? AND seq = ? AND kind = ?",
                                          (sender, seq, kind)).fetchone()
            return row[0] if row else None
        return held.get(kind)


def _open(store: Store, data, name: str, now: dt.datetime, verified_as: tuple | None = None,
          receipts: _Receipts | None = None) -> "_Opened | Report":
    """Everything of an import that needs no write lock: signature, header, certificate, the receipt
    seen so far, decryption, parsing. A Report when that already decides (a duplicate)."""
    receipts = receipts or _Receipts(store, [])
    t0 = time.perf_counter()
    verified, who = verified_as or wire.verify(data, _signer_lookup(store))
    crypto_seconds = time.perf_counter() - t0
    header = verified.header
    sender, kind = header.get("sender"), header.get("type")
    try:
        seq = int(header.get("seq"))
    except (TypeError, ValueError):
        raise wire.BundleError("包头缺少包序号") from None
    if type(header.get("seq")) is not int or seq < 1:
        raise wire.BundleError(f"包头的包序号({printable(str(header.get('seq'))[:20])})不是正整数:不是本系统导出的同步包,已拒收")
    if header.get("recipient") != store.site_id:
        raise wire.BundleError(f"此包是发给站点 {header.get('recipient')} 的,不是本数据库({store.site_id}),请导入到正确的电脑")
    cert = None
    receipt = receipts.digest(sender, seq, kind)
    receipt = (receipt,) if receipt is not None else None
    if store.role == "county":
        cert, revoked = who
        if kind != "up":
            raise wire.BundleError("县级只接收设备上传的同步包")
        if sender != cert.site_id:
            raise wire.BundleError(f"包头写的发件站点 {sender} 与签名者 {cert.site_id} 不符,已拒收")
        if receipt and receipt[0] == verified.digest:
            # this very file was imported before the device was revoked or its certificate expired:
            # a drawer of old files is still "nothing to do", not a refusal
            return Report(name, "duplicate", sender=sender, seq=seq)
        if revoked:
            raise wire.BundleError(f"站点 {sender}({cert.body['site_name']})的证书已于 {status.local_time_text(revoked)} 吊销,其数据不再接收。若这台电脑仍由本村工作队使用(例如误吊销),请为它重新登记,并在重新登记后的电脑上核对、补录吊销后的修改")
        if cert.expired(now):
            raise wire.BundleError(f"站点 {sender}({cert.body['site_name']})的证书已于 {status.local_time_text(cert.body['not_after'])} 过期,"
                                   "请为该电脑重新登记")
        identity.check_certificate(store, cert)
    else:
        if kind != "down" or sender != store.meta("county_site_id"):
            raise wire.BundleError("本机只接收县扶贫办发来的同步包")
    report = Report(name, "accepted", sender=sender, seq=seq)
    if receipt:
        if receipt[0] == verified.digest:
            report.status = "duplicate"
            return report
        raise wire.BundleError(f"站点 {sender} 的第 {seq} 号包已收过另一个不同的版本,此文件已拒收")
    if kind == "up" and (header.get("prev") or header.get("continues")):
        before = receipts.digest(sender, seq - 1, "up")
        before = (before,) if before is not None else None
        if before and header.get("prev") and before[0] != header["prev"]:
            raise wire.BundleError(f"此包声明的上一个包与县里收到的第 {seq - 1} 号包不一致:该电脑的数据可能被替换过,请联系县扶贫办")
        if header.get("continues") and not before:  # the next part of one export: never before the part it follows
            raise wire.BundleError(missing_part_message(store, sender, seq, header["continues"]))
    if kind == "down":
        last = int(store.meta("sync_down_seq", 0))
        if seq < last:
            raise wire.BundleError(f"这是较旧的县级包(第 {seq} 号,本机已有第 {last} 号),已拒收以防数据回退")
        if header.get("continues"):  # the next part of one export: never before the part it follows
            before = store.conn.execute("SELECT 1 FROM receipts WHERE sender = ? AND seq = ? AND kind = 'down'",
                                        (sender, seq - 1)).fetchone()
            if not before:
                raise wire.BundleError(missing_part_message(store, sender, seq, header["continues"], "down"))
            after, have = (header.get("counts") or {}).get("after"), int(store.meta("sync_down_rowid", 0) or 0)
            if type(after) is int and after > have:
                raise wire.BundleError(f"此包接着县里第 {after} 号更改之后的内容,本机只收到第 {have} 号:中间的内容缺失,"
                                       "此包未导入任何内容。请到县扶贫办为本机重新导出下发包(或用“立即同步”)")
    private = identity.county_encryption_key(store) if store.role == "county" else identity.device_encryption_key(store)
    t1 = time.perf_counter()
    compressed = wire.decrypt_body(verified, private)
    crypto_seconds += time.perf_counter() - t1
    up = kind == "up"
    raw, long_number = wire.inflate(compressed, scan=not up)  # None for an upload: parse looks if it must
    del compressed
    fast = county_merge.decode_payload(raw) if up else None
    if fast is not None:
        payload, changes = fast
    else:
        payload = wire.parse(raw, long_number)
        wired = payload.get("changes", [])
        payload["changes"] = None  # the Change objects hold what is needed of them
        try:
            changes = county_merge.changes_from_wire(wired)
        except (AttributeError, TypeError) as exc:
            raise wire.BundleError(f"包内容格式不对:{exc}") from None
        del wired
    del raw
    report.changes = len(changes)
    report.seconds_crypto = crypto_seconds
    return _Opened(report, header, kind, verified.digest, cert, changes, payload, now)


def _merge(store: Store, bundle: _Opened, ahead=None) -> Report:
    """The part of an import that writes, inside the caller's transaction (holding the write lock).
    `ahead`: what the group's merge read for all its bundles at once (overlapping.Ahead), or None."""
    report, kind, sender, seq = bundle.report, bundle.kind, bundle.report.sender, bundle.report.seq
    # another program on this county database, or an earlier bundle of the same group, may have taken it
    # meanwhile. At the county the same round trip reads what the merge needs of the device (on
    # PostgreSQL every statement under the write lock is a round trip to the server)
    county = store.role == "county"
    row = ahead.device_row(bundle) if ahead is not None else store.conn.execute(
        "SELECT (SELECT digest FROM receipts WHERE sender = ? AND seq = ? AND kind = ?), "
        "(SELECT have_seq FROM peers WHERE site_id = ?), (SELECT bundle_seq FROM peers WHERE site_id = ?), "
        "(SELECT value FROM meta WHERE key = ?)",
        (sender, seq, kind, sender, sender, f"number_topups:{sender}")).fetchone()
    again = row[0]
    if again is not None and again == bundle.digest:
        raise _Duplicate
    if again is not None:
        raise wire.BundleError(f"站点 {sender} 的第 {seq} 号包已收过另一个不同的版本,此文件已拒收")
    if county:
        peer = (row[1], row[2]) if row[1] is not None else None
        topups = {sender: numbers.parse_topups(row[3])}
        members = _import_upstream(store, bundle.cert, bundle.changes, bundle.payload, report, peer, topups,
                                   ahead)
    else:
        _import_downstream(store, bundle.header, bundle.changes, bundle.payload, report, bundle.now)
    _import_attachments(store, sender, bundle.changes, bundle.payload, report,
                        bundle.cert if store.role == "county" else None)
    store.conn.execute("INSERT INTO receipts(sender, seq, kind, digest, received, changes, applied) VALUES (?,?,?,?,?,?,?)",
                       (sender, seq, kind, bundle.digest, identity.iso(bundle.now), len(bundle.changes), report.applied))
    if county and ahead is not None:  # streamed after the bundle's writes, answered after the group's
        bundle.duplicates_later = _county_duplicates_later(store, members)
    elif county:  # a read last: on PostgreSQL the bundle's writes go to the server with it (write-behind)
        _name_duplicates(store, report, _county_duplicates(store, members))
    return report


def _name_duplicates(store: Store, report: Report, duplicates: list) -> None:
    report.duplicates = duplicates
    report.household_labels = {h: _household_label(store, h) for dup in duplicates for h in dup[:2]}


def missing_part_message(store: Store, sender: str, seq: int, part_of, kind: str = "up") -> str:
    """Why the next bundle of one export is refused: this database lacks the bundle before it (`kind`
    "up" at the county, "down" on a device). Names the first bundle of the export that is missing
    (those after it were refused for the same reason)."""
    first = part_of if type(part_of) is int and 1 <= part_of < seq else seq - 1
    held = store.conn.execute("SELECT max(seq) FROM receipts WHERE sender = ? AND kind = ? AND seq >= ? AND seq < ?",
                              (sender, kind, first, seq - 1)).fetchone()[0]
    missing = held + 1 if held else first
    if kind == "up":
        name = f"{sender}-up-{missing:06d}{SUFFIX}"
        here, again = "县里", "找不到该文件时请在该电脑上重新导出"
    else:  # a downstream bundle is named by its recipient, this device
        name = f"{store.site_id}-down-{missing:06d}{SUFFIX}"
        here, again = "本机", "找不到该文件时请到县扶贫办为本机重新导出下发包"
    if missing == seq - 1:
        return (f"此包接着同一次导出的第 {missing} 号包({name}),{here}还没有收到该包:请先导入 {name}"
                f"(它应与此包在同一个文件夹中),再导入此包;{again}。此包未导入任何内容")
    between = f"第 {seq - 1} 号包" if missing + 1 == seq - 1 else f"第 {missing + 1} 号到第 {seq - 1} 号包"
    return (f"此包是同一次导出的第 {seq} 号包,{here}缺少该次导出的第 {missing} 号包({name}),{between}也因此未导入:"
            f"请先导入 {name} 及其后的包(它们应与此包在同一个文件夹中,按编号顺序导入),再导入此包;"
            f"{again}。此包未导入任何内容")


def _import_attachments(store: Store, sender: str, changes, payload: dict, report: Report, cert) -> None:
    """Images after the changes (app/sync/attachments.py): store those that belong to attachments held
    here, send again those the sender lost, apply the county's photo policy on a laptop."""
    attachment_sync.drop_deleted(store, changes)
    covered: dict = {}
    covers = (lambda code: _covers(cert, covered, code)) if cert is not None else None
    report.attachments, _ = attachment_sync.receive(store, sender, payload.get("attachments"), covers)
    report.more = bool(payload.get("more_attachments"))
    # which of our bundles the sender holds: the device's last imported downstream bundle, or the
    # county's last upstream bundle of this device
    acknowledged = payload.get("down_seq") if cert is not None else payload.get("up_seq")
    try:
        acknowledged = int(acknowledged or 0)
    except (TypeError, ValueError):
        acknowledged = 0
    attachment_sync.handle_wanted(store, sender, payload.get("attachments_wanted"), acknowledged)
    policy = payload.get("attachment_policy")
    if cert is None and isinstance(policy, dict) and "keep_gps" in policy:
        store.set_meta(attachment_sync.KEEP_GPS_META, "1" if policy["keep_gps"] else "0")


def _covers(cert: identity.Certificate, covered: dict, code: str | None) -> bool:
    ok = covered.get(code)
    if ok is None:
        ok = covered[code] = cert.covers(code)
    return ok


def _held(store: Store, places: dict, record_id: str):
    """(kind, village, parent id) of the record as the county holds it, or None (memo in `places`)."""
    if record_id not in places:
        row = store.conn.execute("SELECT kind, village_code, parent_id FROM records WHERE id = ?", (record_id,)).fetchone()
        places[record_id] = tuple(row) if row else None
    return places[record_id]


@functools.cache
def _parent_kinds() -> dict[str, str]:
    """Kind of a child record -> the kind of record it must hang under (member ... visit, proposal: household)."""
    from app.core.dictionary import default

    out = {k.key: k.parent for k in default().kinds.values() if k.parent}
    out["proposal"] = "household"
    out["attachment"] = "household"  # photos and scans (app/store/attachments.py)
    return out


def _kind_label(kind: str | None) -> str:
    from app.core.dictionary import default

    kinds = default().kinds
    if kind == "proposal":
        return "申报"
    return kinds[kind].label if kind in kinds else str(kind)


def _village_label(store: Store, code: str | None) -> str:
    name = store.division_name(code) if code else None
    return f"{name}({code})" if name and name != code else str(code)


def _household_label(store: Store, record_id: str) -> str:
    rec = store.get(record_id)
    if rec is None or rec.kind != "household":
        return f"记录 {record_id}"
    return household_label(rec.fields)


def _authorise_parent(store: Store, cert: identity.Certificate, c, village: str | None, held, places: dict,
                      covered: dict, made: dict) -> str | None:
    """Why change `c` may not hang its record under its parent (None: it may). A child record (member,
    income ... visit, proposal) must name a parent household that the county holds or that the bundle
    created earlier, in a village the certificate covers, and the child must be in the parent's village."""
    expected = _parent_kinds().get(c.kind)
    what = f"{_kind_label(c.kind)} {c.record_id}"
    if held is not None and (held[2] or None) != (c.parent_id or None):
        return f"{what} 在县级属于 {held[2] or '(无所属记录)'},此更改却写为属于 {c.parent_id or '(无)'}"
    if c.parent_id is None:
        if expected is not None:
            return f"{what} 没有写明属于哪一户,无法接收"
        return None
    parent = made.get(c.parent_id) or _held(store, places, c.parent_id)
    if parent is None:
        return f"{what} 所属的户 {c.parent_id} 在县里和此包中都不存在"
    parent_kind, parent_village = parent[0], parent[1]
    if expected is not None and parent_kind != expected:
        return f"{what} 所属的记录 {c.parent_id} 是{_kind_label(parent_kind)},不是{_kind_label(expected)}"
    if not _covers(cert, covered, parent_village):
        # named by id only: the device may not learn who lives outside its villages (this text goes
        # back to it through the sync service and into the service's log)
        return (f"{what} 挂在户 {c.parent_id} 名下,该户在县级属于村 "
                f"{_village_label(store, parent_village)},不在该设备证书的村范围({'、'.join(cert.villages)})内")
    if village != parent_village:
        return (f"{what} 所在村 {_village_label(store, village)} 与其所属的{_household_label(store, c.parent_id)}"
                f"所在村 {_village_label(store, parent_village)} 不一致")
    return None


def _county_fields(store: Store, record_id: str, written: dict) -> dict:
    """The record's fields as the county holds them, with the values the bundle's earlier changes
    wrote over them (`written`: record id -> field -> value, None for a cleared field)."""
    record = store.get(record_id)
    fields = dict(record.fields) if record else {}
    for key, value in written.get(record_id, {}).items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


def _authorise(store: Store, cert: identity.Certificate, c, places: dict, covered: dict,
               made: dict | None = None, fields_now: dict | None = None, topups: dict | None = None) -> str | None:
    """Why the device may not send change `c` (None: it may). `places`: record id -> (kind, village,
    parent id) as the county holds it (None: not held); `covered`: village code -> whether the
    certificate covers it (memo); `made`: record id -> (kind, village) after the bundle's earlier
    changes (updated here, so a household created earlier in the same bundle is a valid parent)."""
    if made is None:
        made = {}
    if fields_now is None:
        fields_now = {}
    if c.site_id != cert.site_id:
        return f"更改 {c.site_id}#{c.seq} 不是发件站点自己的更改"
    new = c.new
    target = new.get("__village_code")
    if not _covers(cert, covered, c.village_code) or (target is not None and not _covers(cert, covered, target)):
        return f"记录 {c.record_id} 所在村 {target or c.village_code} 不在该设备证书的村范围({'、'.join(cert.villages)})内"
    held = _held(store, places, c.record_id)
    if held and held[1] and not _covers(cert, covered, held[1]):
        return f"记录 {c.record_id} 在县级属于村 {held[1]},不在该设备证书的村范围内"
    village = target or c.village_code
    if c.parent_id is not None or (held is not None and held[2]) or c.kind in _parent_kinds():
        reason = _authorise_parent(store, cert, c, village, held, places, covered, made)
        if reason:
            return reason
    for k in new:
        if k.startswith("__"):  # routing keys (a village move) are not fields
            new = {k: v for k, v in new.items() if not k.startswith("__")}
            break
    exists = held is not None or c.record_id in made
    if c.op == "create" and exists:
        return f"记录 {c.record_id}({c.kind})在县级已经存在,不能再次新建"
    controlled = _controlled(new) if c.kind == "household" else []
    # authorised against what the county holds (and the bundle's earlier changes), never against the
    # old values the change claims: those are the sender's word
    old: dict = {}
    if exists and (c.kind in ("proposal", "risk") or controlled):
        old = _county_fields(store, c.record_id, fields_now)
    creating = c.op == "create" and not exists
    if c.kind == "household" and "household_number" in new and new["household_number"] not in (None, ""):
        refusal = _number_refusal(store, cert, str(new["household_number"]), village or held_village(held, made, c),
                                  topups)
        if refusal:
            return f"记录 {c.record_id}(户):{refusal}"
    reason = procedures.authorize_change(c.kind, new, old, cert.role, op="create" if creating else "update",
                                         reason=c.reason)
    if reason:
        return f"记录 {c.record_id}({c.kind}):{reason}"
    # what later changes of the same bundle are judged against: a household's status, a proposal's fields
    if c.kind in ("proposal", "risk"):
        fields_now.setdefault(c.record_id, {}).update(new)
    elif controlled:
        fields_now.setdefault(c.record_id, {}).update({k: new[k] for k in controlled})
    before = made.get(c.record_id)
    made[c.record_id] = (c.kind, target or (before[1] if before else held[1] if held else c.village_code))
    return None


_CONTROLLED = ("status",) + procedures.MONITORING_FIELDS  # household fields only procedures change


_CONTROLLED_SET = frozenset(_CONTROLLED)


def _controlled(new: dict) -> list[str]:
    if _CONTROLLED_SET.isdisjoint(new):  # most changes: ordinary fields
        return []
    return [k for k in _CONTROLLED if k in new]


def held_village(held, made: dict, c) -> str | None:
    before = made.get(c.record_id)
    return before[1] if before else held[1] if held else c.village_code


def _number_refusal(store: Store, cert: identity.Certificate, number: str, village: str | None,
                    topups: dict | None = None) -> str | None:
    """Why the county does not take this 户编号 from this device (None: it does): it must be its
    village's code and a sequence number from one of the device's blocks."""
    from app.core.validation import number_fits_village  # noqa: PLC0415

    if not village or not number_fits_village(number, village):
        return f"户编号 {printable(number[:30])} 与所在村 {village} 不符(应为村代码加序号)"
    if topups is None:
        topups = {}
    if cert.site_id not in topups:  # read once per bundle (under the write lock: the county may top up)
        topups[cert.site_id] = numbers.county_topups(store, cert.site_id)
    blocks = numbers.blocks_for(cert.body.get("number_block"), topups[cert.site_id], village)
    if not numbers.in_blocks(int(number[len(village):]), blocks):
        return f"户编号 {number} 不在该设备的户编号段({numbers.describe(blocks)})内"
    return None


CLOCK_AHEAD_DAYS = 7  # how far ahead of the county's clock a change may be stamped


def _far_ahead(changes, now: float | None = None) -> str | None:
    """Why a bundle is refused for a change stamped far in the future (None: none is). Every site's
    clock moves past the latest stamp it has seen, so one such stamp would drag the whole county's
    clock along and win every later edit of its field."""
    limit = (now if now is not None else time.time()) + CLOCK_AHEAD_DAYS * 86400
    latest = clock.pack(int(limit * 1000), 9999)  # well-formed stamps order as text
    for c in changes:
        if c.hlc > latest:
            when = clock.wall_time(c.hlc)
            shown = dt.datetime.fromtimestamp(min(when, 253402214400)).strftime("%Y-%m-%d %H:%M")
            return (f"更改 {c.site_id}#{c.seq} 的时间是 {shown},比县里电脑的时钟快 {CLOCK_AHEAD_DAYS} 天以上:"
                    "该电脑(或县里电脑)的日期时间可能设错了。请核对两台电脑的日期和时间后再同步;"
                    "县里数据未改动。如该电脑的时间确实设错过,请联系县扶贫办")
    return None


def _import_upstream(store: Store, cert, changes, payload: dict, report: Report, peer: tuple | None = None,
                     topups: dict | None = None, ahead=None) -> dict[str, bytes | None]:
    """`peer`: the device's (have_seq, bundle_seq) and `topups` (site -> its 户编号 top-ups) when the
    caller has read them in this transaction already; `ahead`: the records the group's merge read for
    all its bundles at once (overlapping.Ahead). Returns the ids of the member records the bundle wrote,
    each with its ID number's blind index digest as written (None: none), which the caller looks for
    in other households (_county_duplicates)."""
    site = cert.site_id
    row = peer or store.conn.execute("SELECT have_seq, bundle_seq FROM peers WHERE site_id = ?", (site,)).fetchone()
    if row is None:  # the device's first bundle
        store.conn.execute("INSERT OR IGNORE INTO peers(site_id) VALUES (?)", (site,))
        row = store.conn.execute("SELECT have_seq, bundle_seq FROM peers WHERE site_id = ?", (site,)).fetchone()
    have_seq, bundle_seq = row
    if [c.seq for c in changes] == list(range(have_seq + 1, have_seq + 1 + len(changes))):
        new = changes  # the usual bundle: every change new, in order, following on
    else:
        new = [c for c in changes if c.seq > have_seq]
    if new and new is not changes:
        expected = have_seq + 1
        seqs = sorted(c.seq for c in new)
        if seqs[0] != expected or seqs != list(range(seqs[0], seqs[0] + len(seqs))):
            if report.seq - 1 >= bundle_seq + 1:
                missing = (f"缺少第 {bundle_seq + 1} 号包" if report.seq - 1 == bundle_seq + 1
                           else f"缺少第 {bundle_seq + 1} 号到第 {report.seq - 1} 号包")
                missing += "中的内容:请先导入缺少的包,或在该电脑上重新导出(会包含所有未确认的更改)"
            else:  # no bundle is missing by number: the changes themselves do not follow on
                missing = ("此包中的更改与县里已收到的不衔接(包内更改序号有缺口或重复),已拒收:"
                           "请在该电脑上重新导出;仍不行请联系县扶贫办")
            raise wire.BundleError(
                f"序号不连续:县里已有站点 {site} 的更改到第 {have_seq} 条,此包从第 {seqs[0]} 条开始。{missing}")
    places: dict[str, tuple | None] = {}
    ids = list({c.record_id for c in new} | {c.parent_id for c in new if c.parent_id})
    if ahead is not None:
        places, ids = ahead.places_of(ids), []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        places.update({rid: None for rid in chunk})
        places.update((row[0], tuple(row[1:])) for row in store.conn.execute(
            f"SELECT id, kind, village_code, parent_id FROM records WHERE id IN ({','.join('?' * len(chunk))})", chunk))
    covered: dict[str | None, bool] = {}
    ahead = _far_ahead(new)
    if ahead:
        raise wire.BundleError(ahead)
    made: dict[str, tuple] = {}
    fields_now: dict[str, dict] = {}  # household and proposal fields the bundle's earlier changes wrote
    topups = {} if topups is None else topups
    refusal = county_merge.authorise_all(store, cert, new, places, covered, made, fields_now,
                                         lambda *args: _authorise(*args, topups), _parent_kinds())
    if refusal:
        raise wire.BundleError(f"包含未授权的更改,整包拒收:{refusal}")
    merger = Merger(store)
    if ahead is not None:
        merger.cache.update(ahead.records_of(c.record_id for c in new))
    county_merge.merge_all(merger, new, absent={rid for rid, place in places.items() if place is None})
    report.applied, report.conflicts = merger.applied, merger.conflicts
    report.more_changes = bool(payload.get("more_changes"))
    top = have_seq + len(new) if new is changes else max([c.seq for c in new], default=have_seq)
    down_rowid = int(payload.get("down_rowid") or 0)
    store.conn.execute("UPDATE peers SET have_seq = ?, bundle_seq = max(bundle_seq, ?), down_acked = max(down_acked, ?) "
                       "WHERE site_id = ?", (top, report.seq, down_rowid, site))
    warning = dictionary_warning(payload.get("dictionary_version"), from_county=False,
                                 site=f"{site}({cert.body.get('site_name', '')})")
    if warning:
        report.warnings.append(warning)
    report.warnings += _concurrent_proposal_warnings(store, new)
    return {c.record_id: merger.digests.get(c.record_id) for c in new if c.kind == "member"}


def _concurrent_proposal_warnings(store: Store, changes) -> list[str]:
    """Households that now have two pending proposals: two laptops offline each started one (each
    database refuses a second). Neither can pass another stage until one is returned."""
    households = {c.parent_id for c in changes if c.kind == "proposal" and c.op == "create" and c.parent_id}
    out = []
    for household_id in sorted(households):
        pending = procedures.concurrent_pending(
            [{**r.fields, "id": r.id} for r in store.records("proposal", parent_id=household_id)])
        if pending:
            named = "、".join(f"{procedures.KINDS.get(p.get('proposal_kind'), '')}申报 {short_id(p['id'])}"
                             f"({p.get('nominate_site') or '?'})" for p in pending)
            out.append(f"{_household_label(store, household_id)}同时有 {len(pending)} 份未办结的申报:{named}。"
                       "请与村里核实后退回其中一份(写明原因),另一份才能继续办理")
    return out


def _county_duplicates(store: Store, members: dict[str, bytes | None]) -> list[tuple]:
    """Pairs of households that hold a member with the same ID number as a member just received
    (`members`: their ids, each with its blind index digest as just written, or None). A few
    statements for the whole bundle (on PostgreSQL each is a round trip to the server)."""
    return _county_duplicates_later(store, members)()


def _county_duplicates_later(store: Store, members: dict[str, bytes | None]):
    """`_county_duplicates` in two steps: its first statement sent now (`execute_deferred`: while the
    group's writes stream, it goes after this bundle's), the answer when the returned function is
    called."""
    def rows(sql: str, values: list) -> list:
        out = []
        for start in range(0, len(values), 500):
            chunk = values[start:start + 500]
            out += store.conn.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return out

    # every index row with one of the members' digests (theirs too): one table read by its digest
    # index (it was the index joined with itself, a third of the server's time per bundle); planned
    # for the table as it is at every call (prepared once while the table was small, its plan read
    # the whole table at every bundle after)
    holders_of: dict[bytes, list[str]] = {}
    for member_id, digest in members.items():
        if digest is not None:
            holders_of.setdefault(bytes(digest), []).append(member_id)
    digests = sorted(holders_of)
    deferred = getattr(store.conn, "execute_deferred", None)
    sent = []
    for i in range(0, len(digests), 500):
        sql = f"SELECT digest, record_id FROM blind_index WHERE digest IN ({','.join('?' * len(digests[i:i + 500]))})"
        sent.append(deferred(sql, digests[i:i + 500], planned_each_time=True) if deferred
                    else store.conn.execute(sql, digests[i:i + 500]))

    def pairs(found: list) -> list[tuple]:
        joined = [(member_id, holder) for digest, holder in found for member_id in holders_of[bytes(digest)]]
        return _duplicate_pairs(store, set(members), joined, rows)

    if deferred is None:  # SQLite: its cursors step lazily, so the rows are read before anything else runs
        found = [row for cursor in sent for row in cursor.fetchall()]
        return lambda: pairs(found)
    return lambda: pairs([row for cursor in sent for row in cursor.fetchall()])


def _duplicate_pairs(store: Store, member_ids: set[str], joined: list, rows) -> list[tuple]:
    others_of: dict = {}
    for mid, holder in joined:
        others = others_of.setdefault(mid, [])
        if holder != mid:
            others.append(holder)
    if not others_of:
        return []
    involved = sorted({mid for mid, others in others_of.items() if others} | {r for o in others_of.values() for r in o})
    parent = dict(rows("SELECT id, parent_id FROM records WHERE id IN ({})", involved)) if involved else {}
    out = []
    for mid in member_ids:
        mine = parent.get(mid)
        for other in others_of.get(mid, []):
            theirs = parent.get(other)
            if theirs != mine:
                pair = (mine, theirs, (mid, other))
                if (theirs, mine, (other, mid)) not in out:
                    out.append(pair)
    return out


def _catch_up_with_the_county(store: Store, ack: int, payload: dict, report: Report) -> None:
    """When the county holds more of this laptop's own changes or bundles than the laptop has (it was
    restored from an older backup with --force), number the next changes and bundles after the
    county's, so they are never taken for ones it already holds (they were silently dropped), and
    say that the missing changes are only at the county."""
    own = store.conn.execute("SELECT coalesce(max(seq), 0) FROM changes WHERE site_id = ?", (store.site_id,)).fetchone()[0]
    up_seq = int(payload.get("up_seq") or 0)
    sent = int(store.meta("sync_out_seq", 0))
    if ack <= own and up_seq <= sent:
        return
    if ack > own:
        store.raise_sequence_floor(ack)
    if up_seq > sent:
        store.set_meta("sync_out_seq", str(up_seq))
        store.set_meta("sync_out_prev", str(payload.get("up_digest") or ""))
    report.warnings.append(
        f"县里已收到本机的更改到第 {ack} 条(同步包到第 {up_seq} 号),本机只有到第 {own} 条(第 {sent} 号):"
        "本机可能恢复过较早的备份。之后的修改会接着县里的编号发送,不会再被当作重复丢弃;"
        "本机缺少的那些修改只在县里保存,请联系县扶贫办为本机重新登记以取回")


def _import_downstream(store: Store, header: dict, changes, payload: dict, report: Report, now: dt.datetime) -> None:
    merger = Merger(store)
    merger.apply_all(changes, skip_site=store.site_id)
    report.applied, report.conflicts = merger.applied, merger.conflicts
    report.more_changes = bool(payload.get("more_changes"))
    ack = int(payload.get("ack_seq") or 0)
    _catch_up_with_the_county(store, ack, payload, report)
    store.set_meta("sync_acked_seq", str(max(ack, int(store.meta("sync_acked_seq", 0)))))
    store.set_meta("sync_down_rowid", str(max(int(payload.get("rowid") or 0), int(store.meta("sync_down_rowid", 0)))))
    store.set_meta("sync_down_seq", str(report.seq))
    store.set_meta("sync_down_expires", header.get("expires") or "")
    store.set_meta("revoked_sites", ",".join(payload.get("revoked") or []))
    report.reference = refdata.install(store, payload)
    gained = numbers.install_topups(store, payload.get("number_topups"))
    if gained:
        numbered = _number_drafts(store, gained)
        report.warnings.append(f"县里发来新的户编号段({'、'.join(_village_label(store, v) for v in gained)})"
                               + (f",已给 {numbered} 户暂无户编号的草稿补上户编号" if numbered else ""))
    warning = dictionary_warning(payload.get("dictionary_version"), from_county=True)
    if warning:
        report.warnings.append(warning)
    expires = header.get("expires")
    if expires and identity.parse_iso(expires) < now:
        report.warnings.append(f"此县级包已于 {expires} 过期:数据已导入,但请尽快到县扶贫办取最新的包")


def _number_drafts(store: Store, villages: list[str]) -> int:
    """Give a 户编号 to this laptop's households that were saved without one (its blocks had run out)."""
    done = 0
    for village in villages:
        for record in list(store.records("household", village_code=village) if len(village) == 12 else
                           (r for r in store.records("household") if (r.village_code or "").startswith(village))):
            if record.fields.get("household_number"):
                continue
            first = next(iter(store.history(record.id)), None)
            if first is None or first.site_id != store.site_id:
                continue
            try:
                number = numbers.next_number(store, record.village_code)
            except numbers.NumbersExhausted:
                break
            store.put("household", {"household_number": number}, record_id=record.id, reason="补编户编号")
            done += 1
    return done


FOLDER_DEPTH = 4  # how many levels of subfolders a folder import looks into (a drawer: stickA/, stickB/ ...)
_BUNDLE_NAME = re.compile(r"^([0-9a-f]{16})-(up|down)-(\d+)\.jdb$")
_SYSTEM_FOLDERS = {"system volume information", "$recycle.bin", "lost+found"}


def _jdb_files(folder: Path, depth: int, unreadable: list) -> list[Path]:
    """Every *.jdb file in a folder and its subfolders (hidden and system folders left out)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        unreadable.append((folder, exc))
        return []
    out = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.lower() in _SYSTEM_FOLDERS:
            continue
        try:
            if entry.is_symlink():  # a link on a USB stick may point anywhere on this computer
                unreadable.append((entry, OSError("是一个链接(快捷方式),不会跟随它读取别处的文件")))
                continue
            if entry.is_dir():
                if depth < FOLDER_DEPTH:
                    out += _jdb_files(entry, depth + 1, unreadable)
            elif entry.suffix.lower() == SUFFIX and entry.is_file():
                out.append(entry)
        except OSError as exc:
            unreadable.append((entry, exc))
    return out


def _not_for_us(store: Store, name: str) -> str | None:
    """Why a file found in a folder, by its name, is clearly not for this database (None: try it).
    Names are those export gives: SITE-up-NNNNNN.jdb, SITE-down-NNNNNN.jdb; any other *.jdb is tried."""
    m = _BUNDLE_NAME.match(name)
    if not m:
        return None
    site, kind = m.group(1), m.group(2)
    if store.role == "county":
        if kind == "down":
            return "县里导出的下发包,应带到各自的电脑上导入"
        return None
    if kind == "down":
        return None if site == store.site_id else "发给其他设备的下发包,应在各自的电脑上导入"
    if site == store.site_id:
        return "本机导出的上传包,应带到县扶贫办导入"
    return "其他设备导出的上传包,应在县扶贫办导入"


def _order(path: Path) -> tuple:
    """Bundles of one sender in number order, whatever subfolder they are in; other names last."""
    m = _BUNDLE_NAME.match(path.name)
    return (0, m.group(1), m.group(2), int(m.group(3)), str(path)) if m else (1, "", "", 0, str(path))


def bundle_files(paths, store: Store) -> tuple[list[Path], list[Report]]:
    """The files to import, and what was left out. Files named on the command line are all taken.
    A folder is searched with its subfolders (FOLDER_DEPTH levels) for every *.jdb file; files whose
    names say they are clearly not for this database (the county's own downstream bundles at the
    county; another device's bundles or its own upstream bundles on a device) are left out and named,
    one "skipped" report per folder and reason. Files are taken in sequence order per sender."""
    out, skipped = [], []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        unreadable: list = []
        found = _jdb_files(p, 0, unreadable)
        left_out: dict[str, list[str]] = {}
        for f in found:
            why = _not_for_us(store, f.name)
            if why:
                left_out.setdefault(why, []).append(str(f.relative_to(p)))
            else:
                out.append(f)
        for why, names in left_out.items():
            skipped.append(Report(str(p), "skipped", f"{len(names)} 个{why}:{'、'.join(names)}"))
        for where, exc in unreadable:
            if Path(where).is_symlink():
                skipped.append(Report(str(where), "skipped", f"{exc},未导入"))
                continue
            skipped.append(Report(str(where), "refused", f"无法读取({exc.strerror or exc}),其中的同步包未导入:"
                                                         "请检查U盘或文件夹的权限后重试"))
    return sorted(dict.fromkeys(out), key=_order), skipped


def import_paths(store: Store, paths, progress: Callable[[int, int], None] | None = None) -> list[Report]:
    """Import files and folders of bundles, each in its own transaction, in sequence order. The
    reports of files a folder import left out (status "skipped") and of unreadable folders come last."""
    files, left_out = bundle_files(paths, store)
    reports = []
    for i, path in enumerate(files, 1):
        try:
            if path.stat().st_size > wire.MAX_BUNDLE:
                raise wire.BundleError(f"文件过大,不是本系统导出的同步包")
            data = path.read_bytes()
        except FileNotFoundError:
            reports.append(Report(str(path), "refused", "找不到此文件"))
            continue
        except (OSError, wire.BundleError) as exc:
            reports.append(Report(str(path), "refused", str(exc)))
            continue
        reports.append(import_bundle(store, data, str(path)))
        if progress:
            progress(i, len(files))
    return reports + left_out
