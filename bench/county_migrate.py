"""Benchmark: `jiandang county migrate` of a county database file onto PostgreSQL.

Workload: a county SQLite file with N demo households (default 10,000: members, incomes, helpers,
measures, visits, risks; every record with its change row and blind index), moved into a fresh
PostgreSQL database. Figures: seconds for the whole migration (copy in one transaction, per-table
counts and SHA-256 digests, then the full decrypting check of the destination), split by stage; the
baseline, run in the same process on the same file, is a bare COPY of the same rows into the same
schema with no verification (what any copy costs). Median of RUNS.

    python bench/county_migrate.py [--households 10000] [--runs 3] [--url postgresql://…admin URL]

The admin URL (default the tests' role, tests/pg.py) must be allowed to create databases.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _throwaway  # noqa: F401 - a cheap key-derivation profile for throwaway databases

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.core import demo as generator  # noqa: E402
from app.services import county_move, demo  # noqa: E402
from app.store import Store, postgres  # noqa: E402
from app.store.locations import location  # noqa: E402
from app.store.migrations import migrate as make_schema  # noqa: E402

PASS = "bench-passphrase"
ADMIN = "postgresql://jiandang_test:jiandang-test@127.0.0.1:5432/postgres"


def make_county(path: Path, n: int) -> None:
    county = Store.create(path, role="county", site_name="县", operator="admin", passphrase=PASS,
                          recovery_public_key=X25519PrivateKey.generate().public_key())
    demo.install_reference_data(county)
    per_village = max(1, n // len(generator.village_codes()))
    with county.transaction():
        for doc in generator.iter_households(per_village, 2026, monitoring=True):
            demo._save(county, doc)  # as tests/conftest.py fill_demo: the demo ledger in a county
    county.close()


def fresh_database(admin: str, name: str) -> str:
    drop(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    return f"{base}/{name}"


def bare_copy(path: Path, url: str) -> None:
    """The same rows COPYed into the same schema, nothing verified (the baseline)."""
    import sqlite3

    src = sqlite3.connect(path)
    conn = postgres.connect(location(url))
    conn.execute("BEGIN IMMEDIATE")
    make_schema(postgres.PgDatabase(conn))
    conn.raw.execute("DELETE FROM meta")
    for name, columns in county_move._source_tables(src).items():
        cols = ", ".join(columns)
        with conn.raw.cursor().copy(f"COPY {name} (pos, {cols}) FROM STDIN") as copy:
            for row in src.execute(f"SELECT rowid, {cols} FROM {name}"):
                copy.write_row([v.encode() if isinstance(v, str) and name == "certificates" else v for v in row])
    conn.execute("COMMIT")
    conn.close()
    src.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--url", default=ADMIN)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "county.db"
        started = time.perf_counter()
        make_county(path, args.households)
        with Store.open(path) as s:
            records, changes = s.conn.execute("SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM changes)").fetchone()
            households_n = s.count("household")
        print(f"workload: county file of {households_n:,} households, {records:,} records, {changes:,} changes, "
              f"{path.stat().st_size / 1e6:.0f} MB (made in {time.perf_counter() - started:.0f} s); runs: {args.runs}")
        full, bare, stages = [], [], []
        for run in range(args.runs):
            url = fresh_database(args.url, f"jd_bench_migrate_{run}")
            seen: dict[str, float] = {}
            t0 = time.perf_counter()

            def progress(stage, done, total, seen=seen, t0=t0):
                seen.setdefault(stage, time.perf_counter() - t0)

            county_move.migrate(path, url, operator="admin", passphrase=PASS, progress=progress)
            full.append(time.perf_counter() - t0)
            stages.append(seen)
            url = fresh_database(args.url, f"jd_bench_bare_{run}")
            t0 = time.perf_counter()
            bare_copy(path, url)
            bare.append(time.perf_counter() - t0)
    m_full, m_bare = statistics.median(full), statistics.median(bare)
    print(f"migrate (copy + digests + decrypting check): median {m_full:.1f} s  runs {', '.join(f'{x:.1f}' for x in full)}")
    print(f"bare COPY of the same rows (baseline):        median {m_bare:.1f} s  runs {', '.join(f'{x:.1f}' for x in bare)}")
    print(f"ratio migrate / bare copy: {m_full / m_bare:.2f}")
    last = stages[len(stages) // 2]
    print("stage starts in the median-order run (s): " + ", ".join(f"{k} {v:.1f}" for k, v in last.items()))
    print(f"per household: {m_full / households_n * 1000:.2f} ms")
    for run in range(args.runs):
        for prefix in ("jd_bench_migrate_", "jd_bench_bare_"):
            drop(args.url, f"{prefix}{run}")
    return 0


def drop(admin: str, name: str) -> None:
    """DROP DATABASE, waiting for autovacuum (which FORCE may not end for us) to leave it."""
    for _ in range(30):
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except psycopg.errors.ObjectInUse:
            time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
