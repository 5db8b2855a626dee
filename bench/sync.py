"""Sync benchmark: 100 laptops' upstream bundles carrying 200,000 field changes in total.

Workload: a county enrolls 100 laptops (one village each of six); each laptop creates 100
households of 10 fields (1,000 field changes) and makes 1,000 single-field edits, then exports
one bundle. Figures (median of RUNS): export time for all bundles, import+merge throughput at the
county in changes (rows) and field changes per second, the share of import time spent on the
signature check and decryption, and the ratio of merge throughput against the baseline, run in the
same process after each import:

- baseline (what the merge must at least do): executemany of the same rows the import wrote, the
  county's record rows and change rows (sealed blobs and payloads as stored), into tables of the
  store's own schema (the same primary keys and indexes), one transaction per bundle as the import
  does, in a file database with the store's settings (WAL, synchronous=NORMAL);
- the earlier baseline, for comparison with older figures: the change rows only, into one table
  with a primary key and no other index, in one transaction (it leaves out the record rows and the
  change log's record index, which any merge writes).

The ratio is taken per run (merge and baseline seconds of that run) and its median printed; the same
ratio in processor time is printed beside it (on a machine shared with other work, wall times also
count the time spent waiting for a processor).

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
VILLAGE_CODES = ["522634101201", "522634101202", "522634101203", "522634102201", "522634102202", "522634102203"]
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
    t1, cpu1 = time.perf_counter(), time.process_time()
    rows = crypto = 0.0
    for name, data in bundles:
        report = exchange.import_bundle(county, data, name)
        assert report.status == "accepted", report.message
        rows += report.applied
        crypto += report.seconds_crypto
    import_seconds = time.perf_counter() - t1
    import_cpu = time.process_time() - cpu1
    written = same_rows(county, [laptop.site_id for laptop in laptops])
    county.close()
    for laptop in laptops:  # the next run exports the same changes again as bundle n+1
        laptop.set_meta("sync_out_prev", "")
    return export_seconds, import_seconds, int(rows), crypto, written, import_cpu


CHANGE_COLUMNS = "site_id, seq, record_id, kind, village_code, parent_id, hlc, key_version, payload"
RECORD_COLUMNS = "id, kind, village_code, parent_id, hlc, deleted, key_version, blob"


def same_rows(county: Store, sites: list[str]) -> dict:
    """What the import wrote, as stored (sealed blobs and payloads): per bundle (one per laptop here),
    the change rows of its site and the record rows those changes made; and the schema of both tables
    with their indexes."""
    schema = [sql for (sql,) in county.conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name IN ('records', 'changes') AND sql IS NOT NULL ORDER BY type DESC")]
    bundles = []
    for site in sites:
        changes = county.conn.execute(f"SELECT {CHANGE_COLUMNS} FROM changes WHERE site_id = ? ORDER BY seq", (site,)).fetchall()
        records = county.conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM records WHERE id IN (SELECT record_id FROM changes WHERE site_id = ?) "
            "ORDER BY rowid", (site,)).fetchall()
        bundles.append((records, changes))
    return {"schema": schema, "bundles": bundles}


def _raw_db(folder: Path, name: str) -> sqlite3.Connection:
    path = folder / name
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def raw_insert(written: dict, folder: Path, run: int, cpu: list | None = None) -> float:
    """The baseline: executemany of the same record and change rows into the store's own tables
    (schema and indexes copied from the county), one transaction per bundle. `cpu`: the processor
    time it took is appended there."""
    conn = _raw_db(folder, f"raw-{run}.db")
    for sql in written["schema"]:
        conn.execute(sql)
    t, cpu0 = time.perf_counter(), time.process_time()
    for records, changes in written["bundles"]:
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO records({RECORD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", records)
        conn.executemany(f"INSERT INTO changes({CHANGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", changes)
        conn.execute("COMMIT")
    seconds = time.perf_counter() - t
    if cpu is not None:
        cpu.append(time.process_time() - cpu0)
    conn.close()
    return seconds


def raw_insert_changes_only(written: dict, folder: Path, run: int) -> float:
    """The earlier baseline: the change rows only, into a table with a primary key and no other index,
    in one transaction."""
    conn = _raw_db(folder, f"raw-changes-{run}.db")
    conn.execute("CREATE TABLE changes (site_id TEXT, seq INTEGER, record_id TEXT, kind TEXT, village_code TEXT, "
                 "parent_id TEXT, hlc TEXT, key_version INTEGER, payload BLOB, PRIMARY KEY (site_id, seq))")
    rows = [row for _, changes in written["bundles"] for row in changes]
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
        exports, imports, rates, shares, raws, ratios, olds, cpu_ratios = [], [], [], [], [], [], [], []
        for run in range(args.runs):
            export_s, import_s, rows, crypto_s, written, import_cpu = run_once(laptops, folder / "county.db", folder, run)
            raw_cpu: list = []
            raw_s = raw_insert(written, folder, run, raw_cpu)
            cpu_ratios.append(raw_cpu[0] / import_cpu)
            old_s = raw_insert_changes_only(written, folder, run)
            n_changes = sum(len(changes) for _, changes in written["bundles"])
            n_records = sum(len(records) for records, _ in written["bundles"])
            exports.append(export_s)
            imports.append(import_s)
            rates.append(rows / import_s)
            shares.append(crypto_s / import_s)
            raws.append(n_changes / raw_s)
            ratios.append(raw_s / import_s)
            olds.append(old_s / import_s)
            print(f"  run {run + 1}: export {export_s:.2f} s, import {import_s:.2f} s ({rows / import_s:,.0f} rows/s), "
                  f"signature+decryption {crypto_s:.2f} s; baseline {raw_s:.3f} s ({n_changes:,} change rows and "
                  f"{n_records:,} record rows), ratio {raw_s / import_s:.3f}; changes-only baseline {old_s:.3f} s, "
                  f"ratio {old_s / import_s:.3f}; processor time: import {import_cpu:.2f} s, baseline {raw_cpu[0]:.3f} s, "
                  f"ratio {raw_cpu[0] / import_cpu:.3f}")
        for laptop in laptops:
            laptop.close()
    rows_total = args.laptops * (creates + edits)
    rate = statistics.median(rates)
    raw = statistics.median(raws)
    ratio = statistics.median(ratios)
    print(f"export of {args.laptops} bundles (median of {args.runs}): {statistics.median(exports):.2f} s")
    print(f"import+merge: {statistics.median(imports):.2f} s = {rate:,.0f} changes/s "
          f"({rate * field_changes / rows_total:,.0f} field changes/s)")
    print(f"signature check + decryption: {statistics.median(shares) * 100:.1f}% of import time (target < 10%)")
    print(f"baseline: executemany of the same record and change rows into the store's tables, one transaction per "
          f"bundle: {raw:,.0f} change rows/s")
    print(f"ratio merge / baseline (median of the runs' ratios): {ratio:.3f} (target >= 0.5: "
          f"{'met' if ratio >= 0.5 else 'NOT met'}); against the earlier changes-only baseline: {statistics.median(olds):.3f}")
    print(f"the same ratio in processor time (median; on a loaded machine wall times wait for the processor): "
          f"{statistics.median(cpu_ratios):.3f}")


if __name__ == "__main__":
    main()
