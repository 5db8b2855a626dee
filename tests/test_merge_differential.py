"""The county's one-pass merge of upstream bundles (app/sync/county_merge.py) against the per-change
reference path (exchange._authorise and merge.Merger.apply for every change): many random bundles,
made by laptops working as people do (new households and members, edits, deletes, restores, moves,
concurrent edits of one household, the county's own edits) and by laptops sending what they may not
(edits outside their villages, county-only fields, children of foreign households, records made
twice, clocks far ahead, numbers outside their blocks, malformed changes, proposals and risks), are
imported in the same order into two copies of one county, one with each path. Every report and
everything the counties hold (records, change log in its order, conflicts, receipts, peers, blind
index, clock, search index) must be the same."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from app.core import clock, idnumber
from app.store import Change, Store
from app.sync import county_merge, exchange, identity, merge, numbers, wire
from tests.sync_helpers import FAR_VILLAGE, OTHER_VILLAGE, PASSPHRASE, VILLAGE, copy_of, make_county, make_device

COUNTY_BACKENDS = ("sqlite", "postgresql")

THIRD_VILLAGES = ["522634101203", "522634102202"]
NAMES = ["邵成德", "王秀英", "李建国", "张桂兰", "刘德华", "陈志强", "杨丽", "黄小明"]
FIELDS = ["head_name", "phone", "note", "address_note", "bank_name"]
MEMBER_FIELDS = ["name", "note", "phone"]


class Rollback(Exception):
    pass


def _wall(start: float):
    """A county's wall clock that moves 1 ms per reading, the same in both copies."""
    now = [start]

    def wall() -> float:
        now[0] += 0.001
        return now[0]
    return wall


class Counties:
    """Two copies of one county: `ref` imports through the reference path, `new` through the fused one."""

    def __init__(self, ref: Store, new: Store, now: dt.datetime):
        self.ref, self.new, self.now = ref, new, now
        self.imports = 0
        self.seen: dict[str, int] = {}  # report status (and what it held) -> how many
        self.refusals: list[str] = []

    def import_both(self, name: str, data: bytes, monkeypatch) -> exchange.Report:
        monkeypatch.setattr(county_merge, "FUSED", False)
        expected = exchange.import_bundle(self.ref, data, name, now=self.now)
        monkeypatch.setattr(county_merge, "FUSED", True)
        got = exchange.import_bundle(self.new, data, name, now=self.now)
        assert report_of(got) == report_of(expected), name
        self.imports += 1
        for what, happened in (("conflicts", expected.conflicts), ("duplicates", expected.duplicates),
                               ("warnings", expected.warnings), (expected.status, True)):
            if happened:
                self.seen[what] = self.seen.get(what, 0) + 1
        if expected.refused:
            self.refusals.append(expected.message[:50])
        return expected

    def both(self, fn) -> None:
        fn(self.ref)
        fn(self.new)


def report_of(report: exchange.Report) -> dict:
    out = dict(report.__dict__)
    out.pop("seconds_crypto")
    out.pop("seconds_total")
    return out


def two_copies(county: Store, tmp_path) -> tuple[list[Store], Counties]:
    """Two unlocked copies of a (closed) county: the reference (per-change code) and the new (one pass)."""
    opened = []
    for name in ("ref.db", "new.db"):
        store = Store.open(copy_of(county, tmp_path, name))
        store.unlock("admin", PASSPHRASE)
        opened.append(store)
    return opened, Counties(*opened, dt.datetime.now(dt.timezone.utc).replace(microsecond=0))


def contents(store: Store) -> dict:
    """Everything an import writes, decrypted (sealed blobs carry random nonces)."""
    conn = store.conn
    records = {}
    for rid, kind, village, parent, hlc, deleted, version in conn.execute(
            "SELECT id, kind, village_code, parent_id, hlc, deleted, key_version FROM records ORDER BY id"):
        r = store.get(rid)
        records[rid] = (kind, village, parent, hlc, deleted, version, r.kind, r.village_code, r.parent_id, r.hlc,
                        r.deleted, r.fields, r.clocks)
    changes = [c.__dict__ for c in store.changes()]  # log order (rowid)
    columns = conn.execute("SELECT site_id, seq, record_id, kind, village_code, parent_id, hlc, key_version "
                           "FROM changes ORDER BY rowid").fetchall()
    conflicts = sorted((c.record_id, c.kind, c.field, c.winner_site, c.winner_hlc, c.loser_site, c.loser_hlc, c.status,
                        repr(c.winner_value), repr(c.loser_value)) for c in merge.conflicts(store, None))
    receipts = conn.execute("SELECT sender, seq, kind, digest, received, changes, applied FROM receipts "
                            "ORDER BY sender, seq, kind").fetchall()
    peers = conn.execute("SELECT site_id, have_seq, down_seq, down_acked, bundle_seq FROM peers ORDER BY site_id").fetchall()
    blind = conn.execute("SELECT record_id, field, digest FROM blind_index ORDER BY record_id, field").fetchall()
    blind = [(r, f, bytes(d)) for r, f, d in blind]
    return {"records": records, "changes": changes, "change_columns": [tuple(r) for r in columns],
            "conflicts": conflicts, "receipts": [tuple(r) for r in receipts], "peers": [tuple(r) for r in peers],
            "blind": blind, "clock": store.meta("clock"), "search": dict(store._search or {})}


class Laptop:
    def __init__(self, store: Store, villages: list[str], rng: random.Random):
        self.store, self.villages, self.rng = store, villages, rng
        self.held: list[str] = []  # bundles exported but not yet imported (out of order imports)

    def live(self, kind: str) -> list:
        return list(self.store.records(kind))

    def deleted(self) -> list:
        return [r for r in self.store.records(include_deleted=True) if r.deleted]


def _id_number(rng: random.Random, pool: list[str]) -> str:
    if pool and rng.random() < 0.15:  # the same person registered in two households
        return rng.choice(pool)
    number = idnumber.make("522634", dt.date(1950 + rng.randrange(60), 1 + rng.randrange(12), 1 + rng.randrange(28)),
                           rng.randrange(500), rng.choice("12"))
    pool.append(number)
    return number


def work(lap: Laptop, rng: random.Random, pool: list[str]) -> None:
    """A few ordinary edits, as the window would make them."""
    s = lap.store
    for _ in range(rng.randrange(1, 9)):
        roll = rng.random()
        households = lap.live("household")
        members = lap.live("member")
        if roll < 0.25 or not households:
            village = rng.choice(lap.villages)
            fields = {f: f"{rng.choice(NAMES)}{rng.randrange(100)}" for f in rng.sample(FIELDS, rng.randrange(1, 4))}
            if rng.random() < 0.5:
                try:
                    fields["household_number"] = numbers.next_number(s, village)
                except numbers.NumbersExhausted:
                    pass
            with s.transaction():
                h = s.put("household", fields, village_code=village)
                for _m in range(rng.randrange(0, 3)):
                    s.put("member", {"name": rng.choice(NAMES), "id_number": _id_number(rng, pool)},
                          village_code=village, parent_id=h.record_id)
        elif roll < 0.55:
            h = rng.choice(households)
            fields = {f: (None if rng.random() < 0.15 else f"{rng.choice(NAMES)}{rng.randrange(100)}")
                      for f in rng.sample(FIELDS, rng.randrange(1, 3))}
            s.put("household", fields, record_id=h.id)
        elif roll < 0.7 and members:
            m = rng.choice(members)
            if rng.random() < 0.3:
                s.put("member", {"id_number": _id_number(rng, pool)}, record_id=m.id)
            else:
                s.put("member", {rng.choice(MEMBER_FIELDS): f"{rng.choice(NAMES)}{rng.randrange(10)}"}, record_id=m.id)
        elif roll < 0.78:
            h = rng.choice(households)
            s.put("member", {"name": rng.choice(NAMES), "id_number": _id_number(rng, pool)},
                  village_code=h.village_code, parent_id=h.id)
        elif roll < 0.86:
            target = rng.choice(members or households)
            s.delete(target.id, reason="测试删除")
        elif roll < 0.92:
            gone = lap.deleted()
            if gone:
                r = rng.choice(gone)
                s.put(r.kind, {"note": f"恢复{rng.randrange(100)}"}, record_id=r.id)
        elif len(lap.villages) > 1:  # a household moved to the laptop's other village
            h = rng.choice(households)
            other = [v for v in lap.villages if v != h.village_code]
            s.put("household", rng.choice([{}, {"note": f"搬迁{rng.randrange(100)}"}]), record_id=h.id,
                  village_code=other[0])
        else:
            h = rng.choice(households)
            s.put("household", {"phone": f"139{rng.randrange(10 ** 8):08d}"}, record_id=h.id)


def raw_change(lap: Laptop, record_id: str, kind: str, village, parent, op: str, new: dict, *, old=None, seen=None,
               hlc: str | None = None, site: str | None = None, reason: str | None = None) -> None:
    s = lap.store
    s.write_change_raw(Change(site or s.site_id, s._next_sequence(), record_id, kind, village, parent,
                              hlc or s.clock.now(), op, new, old or {}, seen or {}, "admin", reason))


def foreign(counties: Counties, lap: Laptop, kind: str):
    """A record the county holds outside the laptop's villages (or None)."""
    for r in counties.ref.records(kind):
        if r.village_code not in lap.villages:
            return r
    return None


def mischief(counties: Counties, lap: Laptop, laptops: list[Laptop], rng: random.Random, kept: bool = False) -> None:
    """One change the laptop may or may not send (written straight into its change log). `kept`: one
    the county takes (with a conflict), so that the laptop's later bundles are not all refused."""
    households = lap.live("household")
    h = rng.choice(households) if households else None
    village = rng.choice(lap.villages)
    roll = rng.choice([11, 12, 16, 17]) if kept else rng.randrange(20)
    if roll == 19:  # a household made in a village outside the certificate
        raw_change(lap, exchange_id(rng), "household", FAR_VILLAGE, None, "create", {"head_name": "外村新户"})
    elif roll == 0:
        far = foreign(counties, lap, "household")
        if far:  # in the county's village, or claiming the laptop's own
            raw_change(lap, far.id, "household", rng.choice([far.village_code, village]), None, "update", {"note": "越权"})
    elif roll == 17:  # an edit of a household another laptop of the village deleted meanwhile
        gone = [r for r in counties.ref.records("household", include_deleted=True) if r.deleted
                and r.village_code in lap.villages]
        if gone:
            r = rng.choice(gone)
            raw_change(lap, r.id, "household", r.village_code, None, "update", {"note": "删后再改"})
    elif roll == 18:  # a child record sent as another kind of child of the same household
        members = [m for m in counties.ref.records("member") if m.village_code in lap.villages]
        if members:
            m = rng.choice(members)
            others = [r for r in counties.ref.records("household") if r.village_code == m.village_code]
            what = rng.randrange(3)
            if what == 0:
                raw_change(lap, m.id, rng.choice(["income", "visit"]), m.village_code, m.parent_id, "update", {"note": "错种类"})
            elif what == 1:  # a child hung under a member
                raw_change(lap, exchange_id(rng), "member", m.village_code, m.id, "create", {"name": "挂错"})
            else:  # a member said to be of another household than the county holds it in
                raw_change(lap, m.id, "member", m.village_code, rng.choice(others).id, "update", {"note": "换户"})
    elif roll == 1 and h:
        raw_change(lap, h.id, "household", h.village_code, None, "update", {rng.choice(["status", "household_type",
                                                                                      "monitoring_type"]): "2"})
    elif roll == 2:
        raw_change(lap, exchange_id(rng), "household", village, None, "create",
                   {"head_name": "新户", "status": rng.choice(["1", "2", "4"])})
    elif roll == 3:
        far = foreign(counties, lap, "household")
        if far:
            raw_change(lap, exchange_id(rng), "member", rng.choice([village, far.village_code]), far.id, "create",
                       {"name": "外村成员"})
    elif roll == 4:
        raw_change(lap, exchange_id(rng), "member", village, None, "create", {"name": "无户成员"})
    elif roll == 5 and h:
        raw_change(lap, h.id, "household", h.village_code, None, "create", {"head_name": "重建"})
    elif roll == 6 and h:
        ahead = clock.pack(int((dt.datetime.now().timestamp() + 30 * 86400) * 1000), 0)
        raw_change(lap, h.id, "household", h.village_code, None, "update", {"note": "未来"}, hlc=ahead)
    elif roll == 7 and h:  # changed on the wire (tamper): another site's id, a seq as text or bool ...
        raw_change(lap, h.id, "household", h.village_code, None, "update", {"note": "改线"})
    elif roll == 8:
        raw_change(lap, exchange_id(rng), "household", village, None, "create",
                   {"head_name": "编号", "household_number": village + rng.choice(["9999", "0001", "12"])})
    elif roll == 9 and h:
        raw_change(lap, exchange_id(rng), "proposal", h.village_code, h.id, "create",
                   rng.choice([{"proposal_kind": "1", "stage": "nominate", "nominate_outcome": "pass"},
                               {"proposal_kind": "1"}, {"stage": "approve", "approve_outcome": "pass"}]))
    elif roll == 10 and h:
        raw_change(lap, exchange_id(rng), "risk", h.village_code, h.id, "create",
                   rng.choice([{"state": "open"}, {"state": "eliminated", "eliminated_date": "2026-01-01"}, {}]))
    elif roll == 11 and h:  # a stale edit: it did not see the value the county holds
        raw_change(lap, h.id, "household", h.village_code, None, "update", {"head_name": "旧值"},
                   seen={"head_name": "0000000000001.0000"})
    elif roll == 12 and h:  # the same clock as the field's (ties broken by site id)
        rec = counties.ref.get(h.id)
        if rec is not None:
            key = rng.choice(list(rec.fields) or ["note"])
            raw_change(lap, h.id, "household", h.village_code, None, "update", {key: "同时"}, hlc=rec.clock_of(key))
    elif roll == 13 and h:
        raw_change(lap, h.id, "household", h.village_code, None, "frobnicate", {"note": "x"})
    elif roll == 14 and h:
        raw_change(lap, h.id, "member", h.village_code, None, "update", {"name": "错种类"})
    elif roll == 15 and h:  # moved outside the certificate
        raw_change(lap, h.id, "household", h.village_code, None, "update", {"__village_code": FAR_VILLAGE})
    elif h:  # an edit of a record the laptop deleted, made concurrently
        raw_change(lap, h.id, "household", h.village_code, None, "delete", {}, seen={"__deleted": clock.ZERO})


def tamper(county: Store, lap: Laptop, data: bytes, rng: random.Random, laptops: list[Laptop]) -> bytes:
    """The bundle with its last change altered on the wire, signed again by the laptop (a laptop whose
    program was changed)."""
    verified, _ = wire.verify(data, exchange._signer_lookup(county))
    payload = wire.inflate_payload(wire.decrypt_body(verified, identity.county_encryption_key(county)))
    last = payload["changes"][-1]
    other = rng.choice([x for x in laptops if x is not lap]).store.site_id
    key, value = rng.choice([("s", other), ("n", str(last["n"])), ("n", float(last["n"])), ("n", True), ("r", 7),
                             ("k", None), ("t", last["t"] + "\n"), ("new", []), ("seen", None), ("by", ""),
                             ("o", ["update"]), ("v", 522634101201), ("p", last["r"]), ("why", {"x": 1})])
    last[key] = value
    header = json.loads(verified.header_bytes)
    body = wire.seal_payload(payload, identity.county_enc_public(lap.store), header)
    return wire.pack(identity.device_signing_key(lap.store), header, body)


def exchange_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}-test"


def round_trip(counties: Counties, lap: Laptop, laptops: list[Laptop], rng: random.Random, pool, monkeypatch) -> None:
    work(lap, rng, pool)
    if rng.random() < 0.7:  # a bundle carrying something doubtful: the laptop forgets it when refused
        try:
            with lap.store.transaction():
                mischief(counties, lap, laptops, rng)
                name, data = exchange.export_upstream(lap.store)
                if rng.random() < 0.15:
                    data = tamper(counties.ref, lap, data, rng, laptops)
                if counties.import_both(name, data, monkeypatch).status != "accepted":
                    raise Rollback
        except Rollback:
            pass
    if rng.random() < 0.25:  # kept: the doubtful change stays in the laptop's log
        with lap.store.transaction():
            mischief(counties, lap, laptops, rng, kept=True)
    name, data = exchange.export_upstream(lap.store)
    if rng.random() < 0.2:
        lap.held.append((name, data))  # carried later, after a newer one
        return
    counties.import_both(name, data, monkeypatch)
    if rng.random() < 0.2:
        counties.import_both(name, data, monkeypatch)  # the same file again
    while lap.held and rng.random() < 0.7:
        counties.import_both(*lap.held.pop(0), monkeypatch)
    if rng.random() < 0.6:
        for county in (counties.new, counties.ref):  # both export (peers.down_seq); the laptop takes the reference's
            down = exchange.export_downstream(county, lap.store.site_id)
        exchange.import_bundle(lap.store, down[1], down[0])


def county_edit(counties: Counties, rng: random.Random) -> None:
    """The county's own edit of a household (conflicts with the laptops' concurrent edits)."""
    households = list(counties.ref.records("household"))
    if not households:
        return
    h = rng.choice(households)
    field, value = rng.choice(FIELDS[:3]), f"县改{rng.randrange(100)}"
    counties.both(lambda s: s.put("household", {field: value}, record_id=h.id))


ROUNDS = 12


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_one_pass_merge_matches_the_reference(tmp_path, seed, monkeypatch):
    rng = random.Random(seed)
    county = make_county(tmp_path)
    # 甲 and 乙 share a village (concurrent edits of the same households); 丁 moves its households
    # between its two villages
    specs = [("甲", [VILLAGE]), ("乙", [VILLAGE]), ("丙", [OTHER_VILLAGE]), ("丁", THIRD_VILLAGES)]
    devices = [make_device(tmp_path, county, name, villages=villages) for name, villages in specs]
    county.close()
    start = dt.datetime.now().timestamp()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    opened = []
    for name in ("ref.db", "new.db"):
        store = Store.open(copy_of(county, tmp_path, name), wall=_wall(start))
        store.unlock("admin", PASSPHRASE)
        store.build_search_index()
        opened.append(store)
    counties = Counties(*opened, now)
    laptops = [Laptop(d, villages, rng) for d, (_, villages) in zip(devices, specs)]
    pool: list[str] = []
    try:
        for _round in range(ROUNDS):
            for lap in rng.sample(laptops, len(laptops)):
                round_trip(counties, lap, laptops, rng, pool, monkeypatch)
            if rng.random() < 0.5:
                county_edit(counties, rng)
            assert contents(counties.new) == contents(counties.ref)
        for lap in laptops:
            while lap.held:
                counties.import_both(*lap.held.pop(0), monkeypatch)
        final = contents(counties.ref)
        assert contents(counties.new) == final
    finally:
        for store in (*opened, *devices):
            store.close()
    # the workload did what it is for: accepted, refused and duplicate bundles, conflicts, members
    # with the same ID number in two households
    assert len(final["records"]) > 30 and final["conflicts"] and final["blind"], (counties.seen, counties.refusals)
    assert {"accepted", "refused", "duplicate", "conflicts", "duplicates"} <= set(counties.seen), counties.seen


def test_long_numbers_merge_exactly_and_alike_through_both_paths(tmp_path, monkeypatch):
    """Integers beyond 64 bits in an upload (a field a modified program filled with one, an old
    value) are read by the one-pass path too: the county holds, logs and sends them down exactly,
    the same as the per-change path does."""
    county = make_county(tmp_path)
    device = make_device(tmp_path, county, "甲")
    other = make_device(tmp_path, county, "乙")  # of the same village: takes the household from the county
    county.close()
    opened, counties = two_copies(county, tmp_path)
    big, small = 10 ** 30 + 7, -(2 ** 64) - 1
    lap = Laptop(device, [VILLAGE], random.Random(1))
    try:
        with device.transaction():
            hid = device.put("household", {"head_name": "邵成德"}, village_code=VILLAGE).record_id
            raw_change(lap, hid, "household", VILLAGE, None, "update", {"note": big, "codes": [small, 1.5]},
                       old={"note": 2 ** 64})
        name, data = exchange.export_upstream(device)
        verified, _ = wire.verify(data, exchange._signer_lookup(counties.new))
        text, _ = wire.inflate(wire.decrypt_body(verified, identity.county_encryption_key(counties.new)))
        assert county_merge.decode_payload(text) is not None  # read in one pass, long numbers and all
        assert counties.import_both(name, data, monkeypatch).status == "accepted"
        assert contents(counties.new) == contents(counties.ref)
        for county_copy in opened:
            assert county_copy.get(hid).fields["note"] == big and county_copy.get(hid).fields["codes"] == [small, 1.5]
            last = county_copy.history(hid)[-1]
            assert (last.new, last.old) == ({"note": big, "codes": [small, 1.5]}, {"note": 2 ** 64})
        down_name, down_data = exchange.export_downstream(counties.new, other.site_id)
        assert exchange.import_bundle(other, down_data, down_name).status == "accepted"
        assert other.get(hid).fields["note"] == big and other.history(hid)[-1].old == {"note": 2 ** 64}
    finally:
        for store in (*opened, device, other):
            store.close()


def test_routing_keys_among_many_fields_go_the_general_way(tmp_path, monkeypatch):
    """A change of many fields (four or more) is looked through for routing keys ("__…": a village move)
    in one pass over its keys joined (issue 16, seventh pass): a move among other fields, one as the
    first key of a new record, and a field whose name holds a newline before "__" come out of the
    one-pass path as from the per-change code."""
    county = make_county(tmp_path)
    device = make_device(tmp_path, county, "甲", villages=(VILLAGE, OTHER_VILLAGE))
    county.close()
    opened, counties = two_copies(county, tmp_path)
    lap = Laptop(device, [VILLAGE, OTHER_VILLAGE], random.Random(2))
    try:
        with device.transaction():
            hid = device.put("household", {"head_name": "邵成德", "phone": "13800000000"}, village_code=VILLAGE).record_id
            made = exchange_id(random.Random(3))
            raw_change(lap, made, "household", VILLAGE, None, "create",
                       {"__village_code": OTHER_VILLAGE, "head_name": "新户", "phone": None, "note": "甲", "remark": "乙"})
            raw_change(lap, hid, "household", VILLAGE, None, "update",
                       {"__village_code": OTHER_VILLAGE, "head_name": "迁户", "note": "迁", "remark": "出", "phone": "1"})
            raw_change(lap, hid, "household", OTHER_VILLAGE, None, "update",
                       {"contact": "丙", "note": "丁", "remark": "戊", "x\n__y": "换行"})
            member = exchange_id(random.Random(4))  # judged against where the move put the household
            raw_change(lap, member, "member", OTHER_VILLAGE, hid, "create", {"name": "邵小", "relation": "02"})
        name, data = exchange.export_upstream(device)
        report = counties.import_both(name, data, monkeypatch)
        assert report.status == "accepted", report.message
        assert contents(counties.new) == contents(counties.ref)
        assert counties.new.get(hid).village_code == OTHER_VILLAGE and counties.new.get(made).fields.get("note") == "甲"
        assert counties.new.get(member).parent_id == hid
    finally:
        for store in (*opened, device):
            store.close()
