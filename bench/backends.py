"""Benchmark: the same county store on SQLite (a file) and on PostgreSQL (app/store/postgres.py), in
one run.

Workload: N demo households saved one transaction each (`households.save`: sealed records, change
rows, blind index), then N/10 single-field edits each in its own transaction (`Store.put`: on
PostgreSQL each takes the write lock and refreshes the caches), then loading every record and a
name-substring search. Each phase runs --runs times on fresh databases; medians are printed with the
ratio PostgreSQL/SQLite. The PostgreSQL server is JIANDANG_BENCH_PG_URL (an administrator URL that may
create databases; default the test role of .ci/postgres).

    python bench/backends.py [--households 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.core import demo  # noqa: E402
from app.services import demo as demo_service  # noqa: E402
from app.services import households  # noqa: E402
from app.store import Store, crypto  # noqa: E402

PASS = "benchmark passphrase"
ADMIN = os.environ.get("JIANDANG_BENCH_PG_URL", "postgresql://jiandang_test:jiandang-test@127.0.0.1:5432/postgres")


def _database_url(name: str) -> str:
    parts = urlsplit(ADMIN)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def run_once(place, docs: list[dict]) -> dict:
    crypto.use_kdf_in_this_process(crypto.KdfParams(memory_kib=8192, iterations=1, lanes=1))  # unlock is not measured
    store = Store.create(place, role="county", site_name="基准县", operator="admin", passphrase=PASS,
                         recovery_public_key=X25519PrivateKey.generate().public_key())
    demo_service.install_reference_data(store)
    out = {}
    t = time.perf_counter()
    ids = [households.save(store, dict(doc), allow_errors=True).household_id for doc in docs]
    out["save (1 household per transaction)"] = time.perf_counter() - t
    t = time.perf_counter()
    for i, hid in enumerate(ids[: max(1, len(ids) // 10)]):
        store.put("household", {"phone": f"138{i:08d}"}, record_id=hid)
    out["edit (1 field per transaction)"] = time.perf_counter() - t
    t = time.perf_counter()
    loaded = sum(1 for _ in store.records())
    out["load all records"] = time.perf_counter() - t
    t = time.perf_counter()
    store.search(docs[len(docs) // 2]["head_name"][1:])
    out["search (index built)"] = time.perf_counter() - t
    out["records"] = loaded
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import psycopg

    admin = psycopg.connect(ADMIN, autocommit=True)
    per_village = max(1, args.households // len(demo.village_codes()) + 1)
    docs = list(demo.iter_households(per_village, 2026))[: args.households]
    results: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite"].append(run_once(Path(tmp) / "county.db", docs))
        name = "jd_bench_" + secrets.token_hex(4)
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            results["postgresql"].append(run_once(_database_url(name), docs))
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    print(f"workload: {len(docs)} households ({results['sqlite'][0]['records']} records), "
          f"{max(1, len(docs) // 10)} edits, load, search; {args.runs} runs each, medians")
    print(f"{'phase':40} {'SQLite':>10} {'PostgreSQL':>11} {'ratio':>7}")
    for phase in results["sqlite"][0]:
        if phase == "records":
            continue
        a = statistics.median(r[phase] for r in results["sqlite"])
        b = statistics.median(r[phase] for r in results["postgresql"])
        print(f"{phase:40} {a:9.3f}s {b:10.3f}s {b / a:7.2f}")


if __name__ == "__main__":
    main()
