"""Sync benchmark: 100 laptops' upstream bundles carrying 200,000 field changes in total.

Workload: a county enrolls 100 laptops (one village each of six); each laptop creates 100
households of 10 fields (1,000 field changes) and makes 1,000 single-field edits, then exports
one bundle. Figures (median of RUNS): export time for all bundles, import+merge throughput at the
county in changes (rows) and field changes per second, the share of import time spent on the
signature check and decryption, and the ratio of merge throughput against inserting the same
change rows into a plain SQLite table with executemany in the same process.

    python bench/sync.py [--laptops 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _throwaway  # noqa: E402,F401 - a cheap key-derivation profile for throwaway databases
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.services import demo  # noqa: E402
from app.store import Store  # noqa: E402
from app.sync import exchange, identity  # noqa: E402

PASS = "bench-passphrase"
VILLAGE_CODES = ["522699101201", "522699101202", "522699101203", "522699102201", "522699102202", "522699102203"]
FIELDS = ["head_name", "phone", "bank_name", "bank_account", "group", "address_note", "note", "attribute_note",
          "remark", "contact"]


def make_laptops(folder: Path, county: Store, n: int, per_laptop_creates: int, per_laptop_edits: int):
    rng = random.Random(7)
    laptops = []
    for i in range(n):
        village = VILLAGE_CODES[i % len(VILLAGE_CODES)]
        result = identity.enroll(county, site_name=f"工作队{i:03d}", role="village", villages=[village])
        contents = identity.open_enrollment(result.package, result.code)
        laptop = identity.create_from_enrollment(folder / f"laptop{i:03d}.db", contents, operator="admin", passphrase=PASS)
        with laptop.transaction():
            changes = laptop.create_many(
                ("household", {f: f"{f}-{i}-{j}" for f in FIELDS}, village, None) for j in range(per_laptop_creates))
            ids = [c.record_id for c in changes]
            for k in range(per_laptop_edits):
                laptop.put("household", {rng.choice(FIELDS): f"edit-{k}"}, record_id=rng.choice(ids))
        laptops.append(laptop)
    return laptops


def run_once(laptops, county_template: Path, folder: Path, run: int):
    t0 = time.perf_counter()
    bundles = [exchange.export_upstream(laptop) for laptop in laptops]
    export_seconds = time.perf_counter() - t0
    # import into a fresh copy of the county (same enrolled certificates)
    target = folder / f"county-run{run}.db"
    import shutil

    shutil.copy(county_template, target)
    county = Store.open(target)
    county.unlock("admin", PASS)
    t1 = time.perf_counter()
    rows = crypto = 0.0
    for name, data in bundles:
        report = exchange.import_bundle(county, data, name)
        assert report.status == "accepted", report.message
        rows += report.applied
        crypto += report.seconds_crypto
    import_seconds = time.perf_counter() - t1
    changes = county.conn.execute("SELECT site_id, seq, record_id, kind, village_code, parent_id, hlc, key_version, "
                                  "payload FROM changes").fetchall()  # the same rows, sealed payloads included
    county.close()
    for laptop in laptops:  # the next run exports the same changes again as bundle n+1
        laptop.set_meta("sync_out_prev", "")
    return export_seconds, import_seconds, int(rows), crypto, changes


def raw_insert(rows, folder: Path, run: int) -> float:
    """executemany of the same change rows into a plain table of a file database with the store's
    settings (WAL, synchronous=NORMAL), in one transaction."""
    conn = sqlite3.connect(folder / f"raw-{run}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE changes (site_id TEXT, seq INTEGER, record_id TEXT, kind TEXT, village_code TEXT, "
                 "parent_id TEXT, hlc TEXT, key_version INTEGER, payload BLOB, PRIMARY KEY (site_id, seq))")
    t = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO changes VALUES (?,?,?,?,?,?,?,?,?)", rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t
    conn.close()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--laptops", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    creates, edits = 100, 1000  # per laptop: 100 x 10 fields + 1000 = 2000 field changes
    field_changes = args.laptops * (creates * len(FIELDS) + edits)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        county = Store.create(folder / "county.db", role="county", site_name="县", operator="admin", passphrase=PASS,
                              recovery_public_key=X25519PrivateKey.generate().public_key())
        identity.setup_county(county)
        demo.install_reference_data(county)
        t = time.perf_counter()
        laptops = make_laptops(folder, county, args.laptops, creates, edits)
        setup = time.perf_counter() - t
        county.close()
        print(f"workload: {args.laptops} laptops, {field_changes:,} field changes "
              f"({args.laptops * (creates + edits):,} change rows), set-up {setup:.1f} s")
        exports, imports, rates, shares, raws = [], [], [], [], []
        for run in range(args.runs):
            export_s, import_s, rows, crypto_s, raw_rows = run_once(laptops, folder / "county.db", folder, run)
            raw_s = raw_insert(raw_rows, folder, run)
            exports.append(export_s)
            imports.append(import_s)
            rates.append(rows / import_s)
            shares.append(crypto_s / import_s)
            raws.append(len(raw_rows) / raw_s)
            print(f"  run {run + 1}: export {export_s:.2f} s, import {import_s:.2f} s ({rows / import_s:,.0f} rows/s), "
                  f"signature+decryption {crypto_s:.2f} s, raw executemany {len(raw_rows) / raw_s:,.0f} rows/s")
        for laptop in laptops:
            laptop.close()
    rows_total = args.laptops * (creates + edits)
    rate = statistics.median(rates)
    raw = statistics.median(raws)
    print(f"export of {args.laptops} bundles (median of {args.runs}): {statistics.median(exports):.2f} s")
    print(f"import+merge: {statistics.median(imports):.2f} s = {rate:,.0f} changes/s "
          f"({rate * field_changes / rows_total:,.0f} field changes/s)")
    print(f"signature check + decryption: {statistics.median(shares) * 100:.1f}% of import time (target < 10%)")
    print(f"baseline executemany of the same rows into a plain table (file, WAL): {raw:,.0f} rows/s")
    print(f"ratio merge / raw insert: {rate / raw:.3f} (target >= 0.25)")


if __name__ == "__main__":
    main()
