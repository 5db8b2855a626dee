"""Merge of changes received from other sites, and conflict review.

Per field, the last writer wins by (hybrid logical clock, site id), at every site alike, so every
database ends with the same values whatever order changes arrive in.

Conflicts are recorded where they are reviewed: at the county, once. Every change passes through the
county, so every two writes made without seeing each other meet there. An incoming change whose
"seen" clock for a field differs from the county's clock of that field (and whose value differs) did
not see the county's value: the winner is applied and both sides are kept in the conflicts table
(values sealed, both sites named). A change whose "seen" equals the local clock saw the local value
and simply applies. A delete and an edit made without seeing each other (edit later by clock than the
delete, from another site) go to review too. A device applies the changes of a downstream bundle by
the same rule without recording conflicts: the county has recorded them (or will, when the device's
own concurrent edit reaches it), and its decision comes back as an ordinary change. See docs/sync.md.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from app.core import clock
from app.core.clock import ZERO
from app.store import Change, Record, Store, StoreError

DELETED = "__deleted"
VILLAGE = "__village_code"


def change_to_wire(c: Change) -> dict:
    return {"s": c.site_id, "n": c.seq, "r": c.record_id, "k": c.kind, "v": c.village_code, "p": c.parent_id,
            "t": c.hlc, "o": c.op, "new": c.new, "old": c.old, "seen": c.seen, "by": c.operator, "why": c.reason}


_OPS = frozenset(("create", "update", "delete", "restore"))


def change_from_wire(d: dict) -> Change:
    try:
        new, old, seen = d.get("new") or {}, d.get("old") or {}, d.get("seen") or {}
        if not (type(new) is dict and type(old) is dict and type(seen) is dict):
            raise TypeError("new/old/seen 应为对象")
        c = Change(str(d["s"]), int(d["n"]), str(d["r"]), str(d["k"]), d.get("v"), d.get("p"), str(d["t"]), d["o"],
                   new, old, seen, str(d.get("by") or ""), d.get("why"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"更改记录格式不对:{exc}") from None
    # the change's own stamp moves the receiving site's clock, so it must be well formed; the clocks in
    # `seen` are only compared with the record's (conflict detection) and never observed
    if c.op not in _OPS or not clock.is_valid(c.hlc) or c.seq < 1:
        raise StoreError(f"更改记录格式不对:{c.site_id}#{c.seq}")
    return c


def _sealer(store: Store):
    return store.sealer()


def _field_value(rec: Record, key: str):
    if key == VILLAGE:
        return rec.village_code
    if key == DELETED:
        return rec.deleted
    return rec.fields.get(key)


class Merger:
    """Applies changes to a store inside the caller's transaction. Records touched are cached and
    written once at `flush`, change rows are written as they come. `review`: record conflicts
    (default: at the county only, see the module doc)."""

    def __init__(self, store: Store, *, review: bool | None = None):
        self.store = store
        self.review = store.role == "county" if review is None else review
        self.cache: dict[str, Record] = {}
        self.dirty: dict[str, None] = {}  # insertion order = order records were first touched
        self.conflicts = 0
        self.applied = 0
        self.pending: list[Change] = []
        self.held: set[tuple[str, int]] = set()
        self.missing: set[str] = set()  # ids prefetch found absent
        # the blind index digest of every record written (ID number, 户编号; None when it has none
        # after the write): what the county's duplicate check looks for (exchange._county_duplicates)
        self.digests: dict[str, bytes | None] = {}

    def _write_pending(self) -> None:
        if self.pending:
            self.store.write_changes_raw(self.pending)
            self.pending = []

    def prefetch(self, record_ids, absent: set[str] | frozenset = frozenset()) -> None:
        """Load the records a batch of changes touches in a few queries. `absent`: ids the caller has
        just found not held (in the same transaction): not looked up again."""
        wanted = [r for r in dict.fromkeys(record_ids) if r not in self.cache]
        if absent:
            self.missing |= {r for r in wanted if r in absent}
            wanted = [r for r in wanted if r not in absent]
        found = self.store.get_many(wanted) if wanted else {}
        self.cache.update(found)
        self.missing |= set(wanted) - set(found)

    def _record(self, c: Change) -> Record:
        rec = self.cache.get(c.record_id)
        if rec is None:
            rec = None if c.record_id in self.missing else self.store.get(c.record_id)
            if rec is None:
                rec = Record(c.record_id, c.kind, c.village_code, c.parent_id, ZERO, False, {}, {"*": ZERO})
            self.cache[c.record_id] = rec
        return rec

    def _writer_site(self, rec: Record, hlc: str, key: str) -> str:
        """The site whose change wrote `key` with this clock on this record (needed when two sites'
        clocks tie, and to name the other side of a conflict). Several sites may have written it at
        the same clock: the state holds the highest site id's value, so that site is the writer."""
        if hlc == ZERO:
            return ""
        self._write_pending()
        rows = self.store.conn.execute(
            "SELECT site_id, seq, record_id, kind, village_code, parent_id, hlc, payload FROM changes "
            "WHERE record_id = ? AND hlc = ?", (rec.id, hlc)).fetchall()
        writers, others = [], []
        for row in rows:
            ch = self.store.decode_change(row)
            wrote = (key in ch.new or (key == DELETED and ch.op in ("delete", "restore"))
                     or (ch.op == "create" and key not in rec.clocks))
            (writers if wrote else others).append(ch.site_id)
        return max(writers or others or [""])

    def _local_stamp(self, rec: Record, key: str, incoming_hlc: str) -> tuple[str, str]:
        if key == DELETED:
            clock = rec.clocks.get(DELETED, ZERO)
        elif key == VILLAGE:
            clock = rec.clocks.get(VILLAGE, rec.clocks.get("*", ZERO))
        else:
            clock = rec.clock_of(key)
        site = self._writer_site(rec, clock, key) if clock == incoming_hlc else ""
        return clock, site

    def _set(self, rec: Record, key: str, value, hlc: str) -> None:
        if key == VILLAGE:
            rec.village_code = value
        elif key == DELETED:
            rec.deleted = bool(value)
        elif value is None:
            rec.fields.pop(key, None)
        else:
            rec.fields[key] = value
        rec.clocks[key] = hlc

    def apply(self, c: Change, *, known_new: bool = False) -> bool:
        """Apply one change; False when this site already holds it. `known_new` skips the lookup
        when the caller already knows the change is new (the county's per-site sequence)."""
        store = self.store
        ident = (c.site_id, c.seq)
        if ident in self.held:
            return False
        if not known_new and store.conn.execute("SELECT 1 FROM changes WHERE site_id = ? AND seq = ?",
                                                ident).fetchone():
            return False
        self.held.add(ident)
        hlc, site, op = c.hlc, c.site_id, c.op
        store.clock.observe(hlc)
        rec = self.cache.get(c.record_id)
        if rec is None:
            rec = self._record(c)
        if rec.kind != c.kind:
            raise StoreError(f"记录 {c.record_id} 是 {rec.kind},更改却按 {c.kind} 写入")
        stamp = (hlc, site)
        if op == "create" and rec.hlc == ZERO and not rec.fields:
            rec.fields = {k: v for k, v in c.new.items() if v is not None and not k.startswith("__")}
            rec.clocks = {"*": hlc}
            rec.village_code, rec.parent_id = c.village_code, c.parent_id
        elif op == "delete":
            if stamp > self._local_stamp(rec, DELETED, hlc):
                self._set(rec, DELETED, True, hlc)
            if self.review:
                self._delete_vs_edits(rec, c)
        else:
            if op == "restore" and stamp > self._local_stamp(rec, DELETED, hlc):
                self._set(rec, DELETED, False, hlc)
            if self.review and op == "update" and rec.deleted and hlc > rec.clocks.get(DELETED, ZERO):
                deleter = self._writer_site(rec, rec.clocks.get(DELETED, ZERO), DELETED)
                if deleter != site:
                    self._conflict(rec, DELETED, (rec.clocks[DELETED], deleter), (hlc, site), True, False)
            # the common case inline (one field of one record per change): no per-field calls
            seen = c.seen if self.review and op != "create" else None
            fields, clocks = rec.fields, rec.clocks
            star = clocks.get("*", ZERO)
            for key, value in c.new.items():
                if key.startswith("__"):
                    if key != VILLAGE:
                        continue
                    clock, before = clocks.get(VILLAGE, star), rec.village_code
                else:
                    clock, before = clocks.get(key, star), fields.get(key)
                other = self._writer_site(rec, clock, key) if clock == hlc else ""
                # concurrent: the writer did not see the value held here (a change that saw it, such as
                # the county's decision on a conflict, carries this value's clock as "seen")
                concurrent = seen is not None and key in seen and seen[key] != clock and before != value
                if concurrent and not other:
                    other = self._writer_site(rec, clock, key)  # name the other side
                if hlc > clock or (hlc == clock and site > other):
                    if key == VILLAGE:
                        rec.village_code = value
                    elif value is None:
                        fields.pop(key, None)
                    else:
                        fields[key] = value
                    clocks[key] = hlc
                    if concurrent:
                        self._conflict(rec, key, stamp, (clock, other), value, before)
                elif concurrent:
                    self._conflict(rec, key, (clock, other), stamp, before, value)
        if hlc > rec.hlc:
            rec.hlc = hlc
        self.pending.append(c)
        self.dirty[rec.id] = None
        self.applied += 1
        return True

    def _delete_vs_edits(self, rec: Record, c: Change) -> None:
        self._write_pending()
        rows = self.store.conn.execute(
            "SELECT site_id, seq, record_id, kind, village_code, parent_id, hlc, payload FROM changes "
            "WHERE record_id = ? AND site_id != ? AND hlc > ?", (rec.id, c.site_id, c.hlc)).fetchall()
        for row in rows:
            edit = self.store.decode_change(row)
            if edit.op == "update":
                self._conflict(rec, DELETED, (c.hlc, c.site_id), (edit.hlc, edit.site_id), True, False)
                return

    def _conflict(self, rec: Record, key: str, winner: tuple, loser: tuple, winner_value, loser_value) -> None:
        sealer = _sealer(self.store)
        cid = uuid.uuid4().hex[:12]
        payload = sealer.seal("conflict", cid, json.dumps({"winner": winner_value, "loser": loser_value},
                                                           ensure_ascii=False).encode())
        cur = self.store.conn.execute(
            "INSERT OR IGNORE INTO conflicts(id, record_id, kind, field, winner_site, winner_hlc, loser_site, loser_hlc, "
            "created, payload) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (cid, rec.id, rec.kind, key, winner[1], winner[0], loser[1], loser[0],
             dt.datetime.now().astimezone().isoformat(timespec="seconds"), payload))
        self.conflicts += cur.rowcount

    def flush(self) -> None:
        self._write_pending()
        written = self.store.write_records_raw([self.cache[rid] for rid in self.dirty], new=self.missing)
        self.digests.update(dict.fromkeys(self.dirty))  # a record written without a row (deleted, no number) has none now
        self.digests.update((record_id, digest) for record_id, _, digest in written)
        self.dirty.clear()

    CHUNK = 5000

    def apply_all(self, changes: list[Change], *, known_new: bool = False, skip_site: str | None = None,
                  absent: set[str] | frozenset = frozenset()) -> None:
        """Apply changes in order, a chunk at a time: records of a chunk are fetched together, written
        at its end and then forgotten, so a county-sized bundle does not keep every record it touched
        (a later chunk reads the record as written). Changes of `skip_site` are passed over.
        `absent`: record ids the caller found not held in this transaction (not looked up again)."""
        for i in range(0, len(changes), self.CHUNK):
            part = changes[i:i + self.CHUNK]
            self.prefetch((c.record_id for c in part), absent if i == 0 else frozenset())
            for c in part:
                if c.site_id != skip_site:
                    self.apply(c, known_new=known_new)
            self.flush()
            self.cache.clear()
            self.missing.clear()  # records first made in this chunk exist now


# ---------------------------------------------------------------------- conflict review


@dataclass
class Conflict:
    id: str
    record_id: str
    kind: str
    field: str
    winner_site: str
    winner_hlc: str
    loser_site: str
    loser_hlc: str
    created: str
    status: str
    winner_value: object
    loser_value: object
    current_value: object = None  # the record's value now (a later change may have replaced the winner)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


STATUS_LABELS = {"open": "待处理", "restored": "已恢复另一方的值", "kept": "已保留现值"}


def conflicts(store: Store, status: str | None = "open") -> list[Conflict]:
    sealer = _sealer(store)
    sql = ("SELECT id, record_id, kind, field, winner_site, winner_hlc, loser_site, loser_hlc, created, status, payload "
           "FROM conflicts")
    args = []
    if status:
        sql += " WHERE status = ?"
        args.append(status)
    rows = store.conn.execute(sql + " ORDER BY created, id", args).fetchall()
    records = store.get_many(list(dict.fromkeys(row[1] for row in rows)))
    out = []
    for row in rows:
        values = json.loads(sealer.open("conflict", row[0], row[10]))
        rec = records.get(row[1])
        out.append(Conflict(*row[:10], values["winner"], values["loser"], _field_value(rec, row[3]) if rec else None))
    return out


def site_names(store: Store) -> dict[str, str]:
    """Site id -> site name: this database's own site, every site with a certificate here (at the
    county: every enrolled device) and, on a laptop, its county (`county_name`, or 县扶贫办 when the
    enrollment package predates the name)."""
    from app.sync import identity

    names = {c["site_id"]: c["site_name"] for c in identity.certificates(store)}
    county = store.meta("county_site_id")
    if county and county != store.site_id:  # a laptop: its county, by the name the enrollment or service gave
        names.setdefault(county, store.meta("county_name") or "县扶贫办")
    names[store.site_id] = store.site_name
    return names


def conflict_texts(store: Store, items: list[Conflict]) -> list[dict]:
    """What a person reads about each conflict, in Chinese: `kind` (贫困户, 家庭成员 …), `field` (its
    label), `current`, `winner` and `other` (values as displayed), `winner_site`, `loser_site` (site
    names), `status` (待处理 …) and `replaced` (a later change has replaced the winner value)."""
    from app.core.dictionary import default

    d = default()
    names = site_names(store)

    def show(c: Conflict, value) -> str:
        if c.field == DELETED:
            return "已删除" if value else "未删除"
        if value is None or value == "" or value == []:
            return "(空)"
        if c.field == VILLAGE:
            return store.division_name(value)
        return d.display_masked(c.kind, c.field, value)  # bank accounts partly hidden, as in 修改记录

    out = []
    for c in items:
        if c.field in (DELETED, VILLAGE):
            label = "删除" if c.field == DELETED else "所在村"
        else:
            label = d.field_label(c.kind, c.field) if c.kind in d.kinds else c.field
        out.append({
            "kind": d.kinds[c.kind].label if c.kind in d.kinds else c.kind,
            "field": label,
            "current": show(c, c.current_value),
            "winner": show(c, c.winner_value),
            "other": show(c, c.loser_value),
            "winner_site": names.get(c.winner_site) or c.winner_site or "未知站点",
            "loser_site": names.get(c.loser_site) or c.loser_site or "未知站点",
            "status": STATUS_LABELS.get(c.status, c.status),
            "replaced": c.current_value != c.winner_value,  # later edited, or restored at review
        })
    return out


class AlreadyResolved(StoreError):
    """The conflict was resolved already (by another staff member, or twice from a script). The
    message names the command that lists resolved conflicts; the window says it in its own words
    from `status_label`."""

    def __init__(self, conflict_id: str, status_label: str, database_name: str):
        super().__init__(f"冲突 {conflict_id} 已处理过({status_label}),无需再处理。"
                         f"用 jiandang conflicts {database_name} --all 查看已处理的冲突")
        self.status_label = status_label


def resolve(store: Store, conflict_id: str, keep: str) -> Change | None:
    """Keep the winner, or restore the other value. Restoring writes an ordinary change that syncs."""
    if keep not in ("winner", "other"):
        raise StoreError("--keep 应为 winner(保留现值)或 other(恢复另一方的值)")
    found = [c for c in conflicts(store, None) if c.id == conflict_id]
    if not found:
        raise StoreError(f"没有编号为 {conflict_id} 的冲突。用 jiandang conflicts 查看未处理的冲突")
    c = found[0]
    if c.status != "open":
        raise AlreadyResolved(conflict_id, STATUS_LABELS.get(c.status, c.status), store.path.name)
    change = None
    with store.transaction():
        rec = store.get(c.record_id)
        if rec is None:
            raise StoreError(f"找不到冲突所涉记录 {c.record_id}")
        if keep == "other":
            reason = f"冲突 {c.id} 审核:恢复另一方的值"
            if c.field == DELETED:
                if c.loser_value is False or c.loser_value is None:
                    change = store.put(rec.kind, {}, record_id=rec.id, reason=reason) if rec.deleted else None
                else:
                    change = store.delete(rec.id, reason=reason)
            elif c.field == VILLAGE:
                change = store.put(rec.kind, {}, record_id=rec.id, village_code=c.loser_value, reason=reason)
            else:
                change = store.put(rec.kind, {c.field: c.loser_value}, record_id=rec.id, reason=reason)
        store.conn.execute("UPDATE conflicts SET status = ?, resolved_by = ? WHERE id = ?",
                           ("restored" if keep == "other" else "kept", store.operator, c.id))
    return change
