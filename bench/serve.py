"""County sync service benchmark: 50 laptops uploading their bundles at once over loopback.

Workload: a county enrolls LAPTOPS laptops (one village each of six); each laptop creates 100
households of 10 fields and makes 1,000 single-field edits, then exports one bundle (1,100 change rows,
2,000 field changes). Per run, the same bundles are imported twice into fresh copies of the county:

- baseline: `exchange.import_paths` on the folder of bundles, in this process (what `jiandang sync
  import` does);
- service: `python -m app serve` in its own process on 127.0.0.1; LAPTOPS client threads start
  together (a barrier) and each uploads its bundle with app.server.client (HTTP, no TLS).

Figures (median of RUNS): bundles per second through the service, p50/p99 upload latency (request
sent -> report received; imports are serialised, so a late upload waits for the ones before it),
the service's merge throughput (change rows applied per second of the burst) and its ratio to the
baseline. Both copies of the county must end with the same records (checked).

    python bench/serve.py [--laptops 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _throwaway  # noqa: E402,F401 - a cheap key-derivation profile for throwaway databases
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.server import client  # noqa: E402
from app.services import demo  # noqa: E402
from app.store import Store  # noqa: E402
from app.sync import exchange, identity, wire  # noqa: E402

# the same laptops as bench/sync.py: 100 new households of 10 fields and single-field edits each
from bench.sync import FIELDS, PASS, make_laptops  # noqa: E402


def records(path: Path) -> dict:
    with Store.open(path) as s:
        s.unlock("admin", PASS)
        return {r.id: (r.village_code, r.fields, r.clocks) for r in s.records()}


def baseline(template: Path, folder: Path, bundles: Path) -> tuple[float, int]:
    """The CLI's import of the folder, in this process."""
    target = folder / "county-cli.db"
    shutil.copy(template, target)
    with Store.open(target) as county:
        county.unlock("admin", PASS)
        t = time.perf_counter()
        reports = exchange.import_paths(county, [bundles])
        seconds = time.perf_counter() - t
    assert all(r.status == "accepted" for r in reports), [r.line() for r in reports if r.refused]
    return seconds, sum(r.applied for r in reports)


def through_service(template: Path, folder: Path, bundles: list[tuple[str, bytes]]) -> tuple[float, list, int]:
    """Start the service on a copy of the county, upload every bundle at once, stop it."""
    target = folder / "county-svc.db"
    shutil.copy(template, target)
    env = dict(os.environ, JIANDANG_PASSPHRASE=PASS, JIANDANG_OPERATOR="admin", JIANDANG_HOME=str(folder / "home"),
               PYTHONPATH=str(ROOT))
    with open(folder / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(target), "--port", "0", "--quiet",
                                 "--uploads-per-minute", "0",  # every client is 127.0.0.1 here: one address
                                 "--uploads-per-address", str(len(bundles)), "--max-uploads", str(len(bundles))], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = proc.stdout.readline()
            if "县同步服务已启动" not in line:
                raise SystemExit(f"service did not start: {line}\n{(folder / 'serve.log').read_text()}")
            url = line.split(":", 1)[1].split("(")[0].strip()
            latencies = [0.0] * len(bundles)
            reports = [None] * len(bundles)
            barrier = threading.Barrier(len(bundles) + 1)

            def upload(i: int) -> None:
                c = client.Client(url, retries=0, import_timeout=600)
                name, data = bundles[i]
                barrier.wait()
                t = time.perf_counter()
                reports[i] = c.upload(name, data)
                latencies[i] = time.perf_counter() - t

            threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bundles))]
            for t in threads:
                t.start()
            barrier.wait()
            started = time.perf_counter()
            for t in threads:
                t.join()
            wall = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(60)
    bad = [r.line() for r in reports if r is None or r.status != "accepted"]
    assert not bad, bad
    return wall, latencies, sum(r.applied for r in reports)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--laptops", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--creates", type=int, default=100, help="households per laptop (10 fields each)")
    ap.add_argument("--edits", type=int, default=1000, help="single-field edits per laptop")
    args = ap.parse_args()
    rows_per_laptop = args.creates + args.edits
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        county = Store.create(folder / "county.db", role="county", site_name="县", operator="admin", passphrase=PASS,
                              recovery_public_key=X25519PrivateKey.generate().public_key())
        identity.setup_county(county)
        demo.install_reference_data(county)
        t = time.perf_counter()
        laptops = make_laptops(folder, county, args.laptops, args.creates, args.edits)
        setup = time.perf_counter() - t
        county.close()
        total_rows = args.laptops * rows_per_laptop
        field_changes = args.laptops * (args.creates * len(FIELDS) + args.edits)
        print(f"workload: {args.laptops} laptops uploading at once over loopback, one bundle each, "
              f"{total_rows:,} change rows ({field_changes:,} field changes) in all; set-up {setup:.1f} s")
        rates, p50s, p99s, svc, cli, sizes = [], [], [], [], [], []
        for run in range(args.runs):
            out = folder / f"bundles{run}"
            out.mkdir()
            bundles = []
            for laptop in laptops:
                name, data = exchange.export_upstream(laptop)
                wire.write_atomic(out / name, data)
                bundles.append((name, data))
                laptop.set_meta("sync_out_prev", "")  # the next run sends the same changes as bundle n+1
            sizes.append(sum(len(d) for _, d in bundles))
            cli_s, cli_rows = baseline(folder / "county.db", folder, out)
            wall, latencies, svc_rows = through_service(folder / "county.db", folder, bundles)
            assert cli_rows == svc_rows == total_rows, (cli_rows, svc_rows, total_rows)
            assert records(folder / "county-cli.db") == records(folder / "county-svc.db")
            rates.append(len(bundles) / wall)
            p50s.append(percentile(latencies, 0.50))
            p99s.append(percentile(latencies, 0.99))
            svc.append(svc_rows / wall)
            cli.append(cli_rows / cli_s)
            print(f"  run {run + 1}: service {wall:.2f} s for {len(bundles)} uploads ({len(bundles) / wall:.1f} bundles/s, "
                  f"{svc_rows / wall:,.0f} rows/s), p50 {p50s[-1] * 1000:.0f} ms, p99 {p99s[-1] * 1000:.0f} ms; "
                  f"CLI import {cli_s:.2f} s ({cli_rows / cli_s:,.0f} rows/s)")
            (folder / "county-cli.db").unlink()
            (folder / "county-svc.db").unlink()
        for laptop in laptops:
            laptop.close()
    rate, svc_rate, cli_rate = statistics.median(rates), statistics.median(svc), statistics.median(cli)
    print(f"bundle size: {statistics.median(sizes) / args.laptops / 1024:.0f} KB on average")
    print(f"service (median of {args.runs}): {rate:.1f} bundles/s, latency p50 {statistics.median(p50s) * 1000:.0f} ms, "
          f"p99 {statistics.median(p99s) * 1000:.0f} ms")
    print(f"merge throughput: service {svc_rate:,.0f} rows/s "
          f"({svc_rate * field_changes / total_rows:,.0f} field changes/s), "
          f"CLI import of the same bundles {cli_rate:,.0f} rows/s")
    print(f"ratio service / CLI import: {svc_rate / cli_rate:.2f}")


if __name__ == "__main__":
    main()
