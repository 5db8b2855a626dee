"""A county day under load (issue #23), shared by tests/test_county_concurrency.py and bench/county.py:
laptops upload over the network through `jiandang serve` (its own process, N workers) while a USB
`jiandang sync import` (its own process) and a staff member's edit (a Store of its own) run on the
same county database, then every laptop pulls and everything is compared.

The county (a file or a postgresql:// URL) makes a few households of one village; every laptop (of
that village) receives them first, then for each round creates one household and edits one of the
county's households' phone number, and exports a bundle (cumulative: a bundle carries every change
since the county last acknowledged, so later bundles repeat earlier changes and the county must
apply each exactly once). The USB folder holds one bundle of each of two more laptops and a copy of
one network laptop's bundle, which therefore reaches the county both ways. Loopback only; every loop
is bounded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from app.server import client, protocol
from app.core import idnumber
from app.services import demo, households, monitoring, reference
from app.store import Store
from app.sync import exchange, identity, wire
from tests import factories

PASSPHRASE = "correct horse battery"
OPERATOR = "admin"
VILLAGE = factories.VILLAGE
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Day:
    folder: Path
    county: str  # a database file or a postgresql:// URL
    laptops: list[Path]  # the network laptops' databases
    bundles: list[list[tuple[str, bytes]]]  # per network laptop, its bundles in order
    usb: Path  # the folder `sync import` reads
    usb_laptops: list[Path]
    seeded: list[str]  # the county's own households (edited by laptops and by staff)
    both_ways: tuple[int, int] = (0, 0)  # (laptop, round) of the bundle that also travels by USB
    staff_phone: str = "13700000000"


def _open(location) -> Store:
    store = Store.open(location)
    store.unlock(OPERATOR, PASSPHRASE)
    return store


def _device(folder: Path, county: Store, name: str, village: str = VILLAGE) -> Store:
    result = identity.enroll(county, site_name=name, role="village", villages=[village], days=365)
    contents = identity.open_enrollment(result.package, result.code)
    return identity.create_from_enrollment(folder / f"{name}.db", contents, operator=OPERATOR, passphrase=PASSPHRASE)


def _pull_first(county: Store, laptop: Store) -> None:
    name, data = exchange.export_downstream(county, laptop.site_id)
    report = exchange.import_bundle(laptop, data, name)
    assert report.status == "accepted", report.line()


def household(head: str, spouse: str, seq: int, village: str = VILLAGE) -> dict:
    """factories.household with ID numbers unique up to seq 12,499 (250 households per birth year)."""
    doc = factories.household(head, spouse, village_code=village)
    year = 1950 + seq // 250
    for k, (member, birth) in enumerate(zip(doc["members"], (dt.date(year, 5, 6), dt.date(year + 2, 8, 9)))):
        member["birth_date"] = birth.isoformat()
        member["id_number"] = idnumber.make("522634", birth, (seq % 250) * 2 + k, member["sex"])
    return doc


def _round(laptop: Store, index: int, round_: int, rounds: int, seeded: list[str], seq_base: int = 1,
           size: int = 1, village: str = VILLAGE, edit_seeded: bool = True) -> tuple[str, bytes]:
    for j in range(size):
        seq = seq_base + (index * rounds + round_) * size + j
        made = households.save(laptop, household(f"户主{index}之{round_}之{j}", f"配偶{index}之{round_}之{j}", seq,
                                                 village)).household_id
        laptop.put("household", {"phone": f"139{index:04d}{round_ * size + j:04d}"},
                   record_id=seeded[(index + round_ + j) % len(seeded)] if edit_seeded else made)
    return exchange.export_upstream(laptop)


def prepare(folder: Path, county_location: str, *, laptops: int = 20, rounds: int = 10, usb_laptops: int = 2,
            seeded: int = 5, size: int = 1, villages: list[str] | None = None, edit_seeded: bool = True) -> Day:
    """Create the county, its households and laptops, and every bundle of the day (before any clock).
    Each round a laptop creates `size` households and makes `size` edits: of the county's households
    (`edit_seeded`: the laptops of a village then edit the same ones, and the county resolves a
    conflict for nearly every edit) or of the household it just made (no conflicts). Laptop i works in
    `villages[i % len(villages)]` (default: one village; a village's 户编号 run out after about 35
    laptops), the USB laptops in the first; the county makes `seeded` households in each. The county
    is left as one in use is: its data upgrades done (the first command after `jiandang init` does
    them once; without this every copy's USB import did, in a write transaction of its own)."""
    villages = villages or [VILLAGE]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    county = Store.create(county_location, role="county", site_name="雷山县扶贫办", operator=OPERATOR,
                          passphrase=PASSPHRASE, recovery_public_key=X25519PrivateKey.generate().public_key())
    try:
        identity.setup_county(county)
        demo.install_reference_data(county)
        known = {d["code"] for d in county.divisions("village")}
        for code in villages:  # a village holds about 33 laptops' 户编号 blocks: more villages for more laptops
            if code not in known:
                reference.add_division(county, code, f"第{code[-3:]}村")
        by_village = {v: [households.save(county, household(f"县户{n}之{k}", f"县户妻{n}之{k}", 12_000 + n * 50 + k, v)
                                          ).household_id for k in range(seeded)] for n, v in enumerate(villages)}
        own = by_village[villages[0]]
        network = [_device(folder, county, f"网络队{i}", villages[i % len(villages)]) for i in range(laptops)]
        offline = [_device(folder, county, f"U盘队{i}") for i in range(usb_laptops)]
        for laptop in network + offline:
            _pull_first(county, laptop)
        monitoring.ensure_migrated(county)
    finally:
        county.close()
    bundles: list[list[tuple[str, bytes]]] = [[] for _ in network]
    for r in range(rounds):
        for i, laptop in enumerate(network):
            village = villages[i % len(villages)]
            bundles[i].append(_round(laptop, i, r, rounds, by_village[village], size=size, village=village,
                                     edit_seeded=edit_seeded))
    usb = folder / "usb"
    usb.mkdir(exist_ok=True)
    for i, laptop in enumerate(offline):
        name, data = _round(laptop, i, 0, 1, own, seq_base=1 + laptops * rounds * size + i * size, size=size)
        wire.write_atomic(usb / name, data)
    both_ways = (0, rounds // 2)
    name, data = bundles[both_ways[0]][both_ways[1]]
    wire.write_atomic(usb / name, data)
    for s in network + offline:
        s.close()
    return Day(folder, county_location, [Path(s.path) for s in network], bundles, usb,
               [Path(s.path) for s in offline], own, both_ways)


# ---------------------------------------------------------------------- processes


def env(folder: Path, extra: dict | None = None) -> dict:
    """The environment of the program's processes: the passphrase as a service manager gives it."""
    try:  # in the tests: the test hooks (a cheap key derivation for new wraps) in every process
        from tests.support.jiandang_test_hooks import subprocess_env  # noqa: PLC0415

        base = subprocess_env()
    except ImportError:
        base = dict(os.environ)
    base.update(JIANDANG_PASSPHRASE=PASSPHRASE, JIANDANG_OPERATOR=OPERATOR, JIANDANG_HOME=str(folder / "home"),
                JIANDANG_WAIT="600", PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p))
    base.update(extra or {})
    return base


class Service:
    """`python -m app serve COUNTY --workers N` in its own process; the URL from its start line."""

    def __init__(self, day: Day, workers: int = 1, *args: str):
        self.log_path = day.folder / f"serve-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "wb")
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" else {}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", day.county, "--port", "0", "--quiet", "--uploads-per-minute", "0",
             "--max-uploads", "512", "--workers", str(workers), *args],
            env=env(day.folder), stdout=subprocess.PIPE, stderr=self.log, text=True, encoding="utf-8", **group)
        line = self.start_line = self.proc.stdout.readline()
        if "县同步服务已启动" not in line:
            self.proc.kill()
            self.proc.wait(30)
            raise RuntimeError(f"service did not start: {line!r}\n{self.log_text()}")
        self.url = line.split(":", 1)[1].split("(")[0].strip()

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        import signal  # noqa: PLC0415

        self.proc.send_signal(signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGTERM)
        code = self.proc.wait(180)
        self.log.close()
        return code


def start_usb_import(day: Day, county=None) -> subprocess.Popen:
    """`jiandang sync import COUNTY USB_FOLDER` in its own process (stdout: one line per bundle)."""
    return subprocess.Popen([sys.executable, "-m", "app", "sync", "import", str(county or day.county), str(day.usb)],
                            env=env(day.folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8")


def staff_edit(day: Day, done: dict) -> None:
    """A staff member at the county: opens the county database with a Store of its own and edits one
    household of the county's (a file waits its turn while the service holds it)."""
    t = time.perf_counter()
    store = Store.open(day.county, wait=600)
    try:
        store.unlock(OPERATOR, PASSPHRASE)
        change = store.put("household", {"phone": day.staff_phone, "note": "县里核实"}, record_id=day.seeded[0])
        done["change"] = (change.site_id, change.seq) if change else None
    finally:
        store.close()
        done["seconds"] = time.perf_counter() - t


# ---------------------------------------------------------------------- the network load


def upload(url: str, name: str, data: bytes, source: str | None = None) -> tuple[int, dict, float]:
    """One upload (HTTP, from the loopback address `source`): status, answer, seconds."""
    host, port = url.split("//")[1].rsplit(":", 1)
    t = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=600, source_address=(source, 0) if source else None)
    try:
        conn.request("POST", protocol.BUNDLES, body=data,
                     headers={protocol.NAME_HEADER: name, "Content-Type": "application/octet-stream"})
        answer = conn.getresponse()
        body = answer.read()
    finally:
        conn.close()
    seconds = time.perf_counter() - t
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"raw": body[:200]}
    return answer.status, payload, seconds


def source_address(i: int) -> str:
    """A loopback address of its own for client i (a machine of its own for the per-address limits)."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


@dataclass
class Load:
    results: list = field(default_factory=list)  # (laptop, round, status, answer, seconds)
    wall: float = 0.0


def run_load(url: str, bundles: list[list[tuple[str, bytes]]], concurrency: int | None = None,
             started: threading.Event | None = None) -> Load:
    """Every laptop's bundles, each laptop's in order; `concurrency` client threads at once (default:
    one per laptop), each from its own loopback address, all starting together."""
    queue = [(i, list(enumerate(b))) for i, b in enumerate(bundles)]
    threads_n = min(concurrency or len(queue), len(queue))
    lock = threading.Lock()
    load = Load()
    barrier = threading.Barrier(threads_n + 1)

    def work(k: int) -> None:
        barrier.wait()
        while True:
            with lock:
                if not queue:
                    return
                i, mine = queue.pop(0)
            for r, (name, data) in mine:
                status, answer, seconds = upload(url, name, data, source_address(k))
                with lock:
                    load.results.append((i, r, status, answer, seconds))

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(threads_n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    if started is not None:
        started.set()
    for t in threads:
        t.join(1800)
    load.wall = time.perf_counter() - t0
    return load


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def pull_all(day: Day, url: str) -> None:
    """Every laptop syncs (`sync now`: upload what is left, fetch until nothing more)."""
    for path in day.laptops + day.usb_laptops:
        laptop = _open(path)
        try:
            client.sync_now(laptop, url, retries=2)
        finally:
            laptop.close()


# ---------------------------------------------------------------------- what must hold afterwards


def records_digest(store: Store) -> str:
    """A digest of the decrypted records: kind, village, parent, deleted, fields and each field's clock."""
    rows = sorted((r.id, r.kind, r.village_code, r.parent_id, r.deleted, sorted(r.fields.items()),
                   sorted((k, r.clock_of(k)) for k in r.fields)) for r in store.records(include_deleted=True))
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def own_changes(store: Store) -> set:
    return {tuple(r) for r in store.conn.execute("SELECT site_id, seq FROM changes WHERE site_id = ?", (store.site_id,))}


def check_day(day: Day) -> dict:
    """Every change applied exactly once and everything converged; raises AssertionError saying what
    did not. Returns the figures (changes, digests) for a report."""
    county = _open(day.county)
    try:
        rows = county.conn.execute("SELECT site_id, seq FROM changes").fetchall()
        at_county = {tuple(r) for r in rows}
        assert len(rows) == len(at_county)
        applied = county.conn.execute("SELECT sum(applied) FROM receipts WHERE kind = 'up'").fetchone()[0]
        receipts = county.conn.execute("SELECT sender, seq, count(*) FROM receipts WHERE kind = 'up' "
                                       "GROUP BY sender, seq").fetchall()
        assert all(n == 1 for _, _, n in receipts)
        county_digest = records_digest(county)
        note = county.get(day.seeded[0]).fields.get("note")
        assert note == "县里核实", note
        devices = 0
        for path in day.laptops + day.usb_laptops:
            laptop = _open(path)
            try:
                mine = own_changes(laptop)
                devices += len(mine)
                assert mine <= at_county, f"{path.name}: {len(mine - at_county)} changes never reached the county"
                assert records_digest(laptop) == county_digest, f"{path.name} did not converge with the county"
            finally:
                laptop.close()
        from_devices = sum(1 for site, _ in at_county if site != county.site_id)
        assert from_devices == devices, (from_devices, devices)
        assert applied == devices, f"changes applied {applied} times for {devices} changes"
        return {"changes": len(at_county), "from_devices": devices, "digest": county_digest,
                "bundles": len(receipts)}
    finally:
        county.close()
