"""The county sync service under abuse: junk uploads, slow clients and valid laptops at the same time.

Workload (loopback only; every client binds its own 127.0.x.y source address so that per-address
limits see one machine per laptop, as on the county LAN; on a system without the 127/8 range the
clients all use 127.0.0.1):

- JUNK clients (default 200, from 10 addresses) each POST JUNK_MB (default 30) MB of random bytes
  to /api/v1/bundles with a Content-Length, all at once;
- SLOW clients (default 20, one address each) trickle a real laptop's bundle, one byte every 2 s
  (the lock-out of issue #22; a real bundle's first bytes pass every check made before the rest);
- LAPTOPS (default 50, one address each) start 1 s later, together: each uploads its upstream bundle
  (made before the clock starts) and fetches its downstream bundle with a signed challenge, as
  `jiandang sync now` does (app.server.client, with its retries). A laptop's day: 10 new households
  and 100 edits (--creates, --edits; bench/serve.py's 100 and 1,000 make every fetch carry ~9,000
  changes of the other laptops in its village, and 50 of those exports in a row take longer than 2 s
  on their own, attack or not).

Before that, on a fresh service: --sequential (default 100) junk uploads of JUNK_MB one after the
other, and the service's RSS before and after (the first finding of issue #22).

The service is `python -m app serve` in its own process (`--code DIR` runs another checkout, e.g.
the code before a change). Figures: valid sync latency p50/p99 (upload + fetch), how many failed,
what the junk and slow clients got, peak RSS of the service (VmHWM / PeakWorkingSetSize) and its
idle RSS before and after. Baseline in the same invocation: the same laptops syncing the same bundles
to a fresh copy of the county with no attack (quiet p50/p99), and the ratio attack/quiet.

Bounded: every socket has a time-out, slow clients stop after --deadline seconds at the latest,
the service is stopped at the end (or as soon as its RSS passes --rss-cap-mb, reported as such).

    python bench/serve_abuse.py [--junk 200 --junk-mb 30 --slow 20 --laptops 50]
                                                  [--runs 1] [--code /tmp/other-checkout]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import _throwaway  # noqa: E402,F401 - a cheap key-derivation profile for throwaway databases

import http.client  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.server import client, protocol  # noqa: E402
from app.services import demo  # noqa: E402
from app.store import Store  # noqa: E402
from app.sync import exchange, identity  # noqa: E402
from bench.procmem import MIB, rss  # noqa: E402
from bench.sync import PASS, make_laptops  # noqa: E402

HOST = "127.0.0.1"


def source_addresses() -> bool:
    """True when this system lets a client bind 127.0.x.y (Linux, Windows)."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.3.3", 0))
        return True
    except OSError:
        return False


class Address:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __call__(self, group: int, i: int) -> str:
        return f"127.0.{group}.{1 + i % 250}" if self.enabled else HOST


class LaptopClient(client.Client):
    """The laptop client, connecting from its own loopback address."""

    def __init__(self, url: str, source: str, **kw):
        super().__init__(url, **kw)
        self.source = source

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout, source_address=(self.source, 0))


class Service:
    def __init__(self, db: Path, code: Path, folder: Path, extra: list[str]):
        env = dict(os.environ, JIANDANG_PASSPHRASE=PASS, JIANDANG_OPERATOR="admin", JIANDANG_HOME=str(folder / "home"),
                   PYTHONPATH=str(code))
        self.log = open(folder / f"serve-{db.stem}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(db), "--port", "0", "--quiet",
                                      "--uploads-per-minute", "0", *extra], env=env, cwd=str(code),
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if "县同步服务已启动" not in line:
            self.stop()
            raise SystemExit(f"service did not start: {line}\n{Path(self.log.name).read_text()}")
        self.url = line.split(":", 1)[1].split("(")[0].strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        self.samples: list[int] = []
        self.over_cap = False
        self._stop = threading.Event()

    def watch(self, cap: int) -> threading.Thread:
        """Sample RSS every 50 ms; stop the service when it passes `cap` bytes (protects the machine)."""
        def run():
            while not self._stop.is_set() and self.proc.poll() is None:
                try:
                    now, _ = rss(self.proc.pid)
                except (OSError, KeyError):
                    return
                self.samples.append(now)
                if now > cap:
                    self.over_cap = True
                    self.proc.kill()
                    return
                time.sleep(0.05)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def rss(self) -> tuple[int, int]:
        return rss(self.proc.pid)

    def settle(self, seconds: float = 10) -> int:
        """RSS once it stops falling (at most `seconds`)."""
        last, end = self.rss()[0], time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(1)
            now = self.rss()[0]
            if now >= last - MIB:
                return now
            last = now
        return last

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.log.close()


def valid_sync(url: str, source: str, bundle: tuple[str, bytes], fetch: tuple[str, str, object]) -> tuple[float, str, float]:
    """Upload then fetch, as `sync now` does; (seconds, outcome, seconds of the upload alone)."""
    name, data = bundle
    county, site, key = fetch
    c = LaptopClient(url, source, retries=4, backoff=1.0, timeout=60, import_timeout=120)
    t = time.perf_counter()
    uploaded = float("nan")
    try:
        report = c.upload(name, data)
        uploaded = time.perf_counter() - t
        if report.status != "accepted":
            return time.perf_counter() - t, f"upload {report.status}: {report.message[:60]}", uploaded

        def attempt():
            got = c.request("GET", protocol.CHALLENGE)
            if got.status != 200:
                return got
            challenge = str(got.json().get("challenge", ""))
            signature = key.sign(protocol.fetch_message(county, site, challenge)).hex()
            body = json.dumps({"site": site, "challenge": challenge, "signature": signature}).encode()
            answer = c.request("POST", protocol.DOWNSTREAM, body, {"Content-Type": "application/json"}, 120)
            if answer.status == 401:
                raise client._Retry("challenge expired", 0)
            return answer

        answer = c.call("fetch", attempt)
        outcome = "ok" if answer.status == 200 else f"fetch HTTP {answer.status}"
    except client.SyncError as exc:
        outcome = f"failed: {str(exc)[:80]}"
    return time.perf_counter() - t, outcome, uploaded


def junk_upload(port: int, source: str, body: bytes, stop: threading.Event) -> str:
    try:
        with socket.create_connection((HOST, port), timeout=60, source_address=(source, 0)) as sock:
            sock.sendall(f"POST {protocol.BUNDLES} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode())
            try:
                sock.sendall(body)
            except OSError:
                pass  # the answer may already be there
            head = sock.recv(64)
            return head.split(b"\r\n", 1)[0].decode("latin-1")[9:12] or "closed"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except (TimeoutError, socket.timeout):
        return "timeout"
    except OSError as exc:
        return type(exc).__name__


def slow_upload(port: int, source: str, bundle: bytes, stop: threading.Event, every: float = 2.0) -> tuple[float, str]:
    """Trickle a real laptop's bundle (its framing and enrolled key pass every check made from the first
    bytes), one byte every `every` seconds, until the service answers or closes."""
    t = time.monotonic()
    try:
        with socket.create_connection((HOST, port), timeout=10, source_address=(source, 0)) as sock:
            sock.sendall(f"POST {protocol.BUNDLES} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(bundle)}\r\n\r\n".encode())
            sock.settimeout(every)
            for i in range(len(bundle)):
                if stop.is_set():
                    break
                try:
                    sock.sendall(bundle[i: i + 1])
                except OSError:
                    return time.monotonic() - t, "closed"
                try:
                    head = sock.recv(64)
                except (TimeoutError, socket.timeout):
                    continue
                return time.monotonic() - t, head.split(b"\r\n", 1)[0].decode("latin-1")[9:12] or "closed"
            return time.monotonic() - t, "still held at the deadline"
    except OSError as exc:
        return time.monotonic() - t, type(exc).__name__


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def quiet(template: Path, folder: Path, code: Path, bundles, fetches, address: Address, extra) -> list[float]:
    db = folder / "county-quiet.db"
    shutil.copy(template, db)
    service = Service(db, code, folder, extra)
    try:
        results = [None] * len(bundles)
        barrier = threading.Barrier(len(bundles))

        def run(i):
            barrier.wait()
            results[i] = valid_sync(service.url, address(1, i), bundles[i], fetches[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bundles))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    finally:
        service.stop()
        db.unlink()
    bad = [o for _, o, _ in results if o != "ok"]
    assert not bad, bad[:3]
    return results


def attack(template: Path, folder: Path, code: Path, bundles, fetches, address: Address, args, extra) -> dict:
    db = folder / "county-attack.db"
    shutil.copy(template, db)
    service = Service(db, code, folder, extra)
    stop = threading.Event()
    out: dict = {}
    try:
        time.sleep(1)
        out["idle_before"] = service.settle(3)
        watcher = service.watch(args.rss_cap_mb * MIB)
        junk_body = os.urandom(args.junk_mb * MIB)
        junk = collections.Counter()
        slow = []
        valid = [None] * len(bundles)
        lock = threading.Lock()

        def run_junk(i):
            result = junk_upload(service.port, address(2, i % args.junk_addresses), junk_body, stop)
            with lock:
                junk[result] += 1

        def run_slow(i):
            result = slow_upload(service.port, address(3, i), bundles[i % len(bundles)][1], stop)
            with lock:
                slow.append(result)

        def run_valid(i):
            valid[i] = valid_sync(service.url, address(1, i), bundles[i], fetches[i])

        started = time.monotonic()
        threads = [threading.Thread(target=run_slow, args=(i,), daemon=True) for i in range(args.slow)]
        threads += [threading.Thread(target=run_junk, args=(i,), daemon=True) for i in range(args.junk)]
        for t in threads:
            t.start()
        time.sleep(1)  # the slow clients hold their connections, the junk is flowing
        laptops = [threading.Thread(target=run_valid, args=(i,), daemon=True) for i in range(len(bundles))]
        for t in laptops:
            t.start()
        for t in laptops:
            t.join(max(1, args.deadline - (time.monotonic() - started)))
        out["valid_done"] = time.monotonic() - started
        for t in threads:
            t.join(max(1, args.deadline - (time.monotonic() - started)))
        stop.set()
        for t in threads:
            t.join(30)
        out["wall"] = time.monotonic() - started
        out["over_cap"] = service.over_cap
        if not service.over_cap:
            out["idle_after"] = service.settle(15)
            out["peak"] = max(service.rss()[1], max(service.samples, default=0))
        else:
            out["peak"] = max(service.samples, default=0)
        watcher.join(5)
        out["valid"] = valid
        out["junk"] = junk
        out["slow"] = slow
    finally:
        stop.set()
        service.stop()
        db.unlink()
    return out


def sequential(template: Path, folder: Path, code: Path, args, extra) -> dict:
    """The first finding of issue #22: N junk POSTs of JUNK_MB one after the other (RSS grew ~29 MB each)."""
    db = folder / "county-seq.db"
    shutil.copy(template, db)
    service = Service(db, code, folder, extra)
    out: dict = {}
    try:
        time.sleep(1)
        out["idle_before"] = service.settle(3)
        watcher = service.watch(args.rss_cap_mb * MIB)
        body = os.urandom(args.junk_mb * MIB)
        answers = collections.Counter()
        started = time.monotonic()
        for _ in range(args.sequential):
            if service.over_cap or time.monotonic() - started > args.deadline:
                break
            answers[junk_upload(service.port, HOST, body, threading.Event())] += 1
        out["wall"] = time.monotonic() - started
        out["answers"] = answers
        out["over_cap"] = service.over_cap
        out["peak"] = max(service.samples, default=0) if service.over_cap else max(service.rss()[1], max(service.samples, default=0))
        out["idle_after"] = float("nan") if service.over_cap else service.settle(10)
        watcher.join(0.1)
    finally:
        service.stop()
        db.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--junk", type=int, default=200)
    ap.add_argument("--junk-mb", type=int, default=30)
    ap.add_argument("--junk-addresses", type=int, default=10)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--laptops", type=int, default=50)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--sequential", type=int, default=100, help="junk uploads one after the other, before the attack")
    ap.add_argument("--creates", type=int, default=10, help="households each laptop adds (10 fields each)")
    ap.add_argument("--edits", type=int, default=100, help="single-field edits each laptop makes")
    ap.add_argument("--deadline", type=float, default=150, help="seconds after which every client stops")
    ap.add_argument("--rss-cap-mb", type=int, default=4096, help="stop the service when its RSS passes this")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose `python -m app serve` is measured")
    ap.add_argument("serve_args", nargs="*", help="more options for `jiandang serve` (after --)")
    args = ap.parse_args()
    address = Address(source_addresses())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        county = Store.create(folder / "county.db", role="county", site_name="县", operator="admin", passphrase=PASS,
                              recovery_public_key=X25519PrivateKey.generate().public_key())
        identity.setup_county(county)
        demo.install_reference_data(county)
        laptops = make_laptops(folder, county, args.laptops, args.creates, args.edits)
        county_id = county.site_id
        county.close()
        bundles = [exchange.export_upstream(laptop) for laptop in laptops]
        fetches = [(county_id, laptop.site_id, identity.device_signing_key(laptop)) for laptop in laptops]
        for laptop in laptops:
            laptop.close()
        print(f"workload: {args.junk} junk uploads of {args.junk_mb} MB (random bytes, from {args.junk_addresses} "
              f"addresses) + {args.slow} slow clients (a real bundle, 1 byte every 2 s) + {args.laptops} laptops "
              f"(upload of a {statistics.median(len(d) for _, d in bundles) / 1024:.0f} KB bundle + signed fetch), "
              f"at once over loopback; code {args.code}; per-client addresses "
              f"{'127.0.x.y' if address.enabled else 'all 127.0.0.1'}")
        if args.sequential:
            seq = sequential(folder / "county.db", folder, args.code, args, args.serve_args)
            cap = " (STOPPED: over --rss-cap-mb)" if seq["over_cap"] else ""
            print(f"sequential: {sum(seq['answers'].values())} junk uploads of {args.junk_mb} MB one after the other in "
                  f"{seq['wall']:.0f} s, answers {dict(seq['answers'])}; service RSS idle before {seq['idle_before'] / MIB:.0f} MB, "
                  f"peak {seq['peak'] / MIB:.0f} MB{cap}, idle after {seq['idle_after'] / MIB:.0f} MB")
        figures = collections.defaultdict(list)
        for run in range(args.runs):
            quiet_results = quiet(folder / "county.db", folder, args.code, bundles, fetches, address, args.serve_args)
            out = attack(folder / "county.db", folder, args.code, bundles, fetches, address, args, args.serve_args)
            done = [v for v in out["valid"] if v is not None]
            missing = len(out["valid"]) - len(done)
            failed = [o for _, o, _ in done if o != "ok"] + [f"no answer within {args.deadline:g} s"] * missing
            # over every laptop: one that failed or never finished counts as the whole deadline
            syncs = [s if o == "ok" else args.deadline for s, o, _ in done] + [args.deadline] * missing
            uploads = [u if u == u else args.deadline for _, _, u in done] + [args.deadline] * missing
            run_figures = {
                "quiet sync p50": percentile([s for s, _, _ in quiet_results], 0.5),
                "quiet sync p99": percentile([s for s, _, _ in quiet_results], 0.99),
                "quiet upload p99": percentile([u for _, _, u in quiet_results], 0.99),
                "sync p50": percentile(syncs, 0.5), "sync p99": percentile(syncs, 0.99),
                "upload p50": percentile(uploads, 0.5), "upload p99": percentile(uploads, 0.99),
                "peak": out["peak"], "idle before": out["idle_before"],
                "idle after": out.get("idle_after", float("nan"))}
            for key, value in run_figures.items():
                figures[key].append(value)
            ms = {k: v * 1000 for k, v in run_figures.items() if "p50" in k or "p99" in k}
            print(f"  run {run + 1}: quiet: sync p50 {ms['quiet sync p50']:.0f} ms, p99 {ms['quiet sync p99']:.0f} ms "
                  f"(upload p99 {ms['quiet upload p99']:.0f} ms) | under attack: {len(done) - len(failed) + missing}/"
                  f"{len(out['valid'])} laptops synced; upload p50 {ms['upload p50']:.0f} ms, p99 {ms['upload p99']:.0f} ms; "
                  f"sync p50 {ms['sync p50']:.0f} ms, p99 {ms['sync p99']:.0f} ms (all valid done after {out['valid_done']:.1f} s)")
            if failed:
                print(f"    failed laptops: {collections.Counter(failed).most_common(3)}")
            slow_times = sorted(s for s, _ in out["slow"])
            print(f"    junk answers: {dict(out['junk'])}; slow clients: {dict(collections.Counter(o for _, o in out['slow']))}, "
                  f"held {slow_times[0] if slow_times else 0:.0f}–{slow_times[-1] if slow_times else 0:.0f} s")
            cap = " (STOPPED: over --rss-cap-mb)" if out["over_cap"] else ""
            print(f"    service RSS: idle before {out['idle_before'] / MIB:.0f} MB, peak {out['peak'] / MIB:.0f} MB{cap}, "
                  f"idle after {out.get('idle_after', float('nan')) / MIB:.0f} MB; wall {out['wall']:.0f} s")
    med = {k: statistics.median(v) for k, v in figures.items()}
    print(f"valid laptops under attack (median of {args.runs}): upload p50 {med['upload p50'] * 1000:.0f} ms, "
          f"p99 {med['upload p99'] * 1000:.0f} ms; whole sync (upload + fetch) p50 {med['sync p50'] * 1000:.0f} ms, "
          f"p99 {med['sync p99'] * 1000:.0f} ms")
    print(f"baseline, no attack: upload p99 {med['quiet upload p99'] * 1000:.0f} ms, sync p50 {med['quiet sync p50'] * 1000:.0f} ms, "
          f"p99 {med['quiet sync p99'] * 1000:.0f} ms; ratio attack/quiet: upload p99 "
          f"{med['upload p99'] / med['quiet upload p99']:.2f}, sync p99 {med['sync p99'] / med['quiet sync p99']:.2f}")
    print(f"service RSS (median of {args.runs}): idle before {med['idle before'] / MIB:.0f} MB, peak {med['peak'] / MIB:.0f} MB, "
          f"idle after {med['idle after'] / MIB:.0f} MB")
    print("targets: peak < 300 MB, idle after < 120 MB, valid p99 < 2000 ms")


if __name__ == "__main__":
    main()
