"""Benchmark: the same county store on SQLite (a file) and on PostgreSQL (app/store/postgres.py), in
one run.

Workload: N demo households saved one transaction each (`households.save`: sealed records, change
rows, blind index), then N/10 single-field edits each in its own transaction (`Store.put`: on
PostgreSQL each takes the write lock and refreshes the caches), then loading every record and a
name-substring search. Each phase runs --runs times on fresh databases; medians are printed with the
ratio PostgreSQL/SQLite. The PostgreSQL server is JIANDANG_BENCH_PG_URL (an administrator URL that may
create databases; default the test role of .ci/postgres).

    python bench/backends.py [--households 500] [--runs 3]

`--load-memory N` instead: a county of N households (default 10,000; records written with
`create_many`) on PostgreSQL and in a SQLite file; each loaded whole (`list(store.records())`) in a
fresh child process, which prints the peak resident memory of the load above what the process held
after unlocking, and the load's time. On PostgreSQL twice: as the store reads now (a server-side cursor,
a batch at a time) and, as the baseline in the same run, as it read before (psycopg's ordinary cursor,
which receives the whole result at once: `PgConnection.batches` switched off in that child).

    python bench/backends.py --load-memory 10000 [--runs 3]
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


_CHILD = """
import gc, sys, time
sys.path.insert(0, {root!r})
from bench import procmem
from app.store import Store
if {whole!r}:
    from app.store.postgres import PgConnection
    PgConnection.batches = None  # the store's reading before: the whole result in psycopg's cursor
store = Store.open({place!r})
store.unlock("admin", {passphrase!r})
gc.collect()
before = procmem.own()[0]
t = time.perf_counter()
count = sum(1 for _ in store.records())
took = time.perf_counter() - t
print(count, took, procmem.own()[1] - before, before)
"""


def load_memory(households: int, runs: int) -> None:
    import subprocess

    import psycopg

    from bench import store as store_bench

    admin = psycopg.connect(ADMIN, autocommit=True)
    docs = store_bench.workload(households)
    name = "jd_bench_" + secrets.token_hex(4)
    admin.execute(f'CREATE DATABASE "{name}"')
    root = str(Path(__file__).resolve().parent.parent)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            places = {"sqlite": str(Path(tmp) / "county.db"), "postgresql": _database_url(name)}
            for place in places.values():
                records = _fill_docs(place, docs)
            results: dict[str, list] = {"sqlite": [], "postgresql, server-side cursor": [],
                                        "postgresql, whole result (before)": []}
            for _ in range(runs):
                for label, place, whole in (("sqlite", places["sqlite"], False),
                                            ("postgresql, server-side cursor", places["postgresql"], False),
                                            ("postgresql, whole result (before)", places["postgresql"], True)):
                    code = _CHILD.format(root=root, whole=whole, place=place, passphrase=PASS)
                    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                    count, took, peak, base = out.stdout.split()
                    results[label].append((int(count), float(took), int(peak), int(base)))
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    print(f"workload: {len(docs)} households, {records} records (households and members, create_many); each load "
          f"list(store.records()) in a fresh process; {runs} runs each, medians")
    print(f"{'how':36} {'records':>8} {'load':>8} {'peak RSS above unlocked':>24}")
    for label, rows in results.items():
        took = statistics.median(r[1] for r in rows)
        peak = statistics.median(r[2] for r in rows) / 2 ** 20
        print(f"{label:36} {rows[0][0]:>8} {took:7.2f}s {peak:21.0f} MiB")
    now = statistics.median(r[2] for r in results["postgresql, server-side cursor"])
    before = statistics.median(r[2] for r in results["postgresql, whole result (before)"])
    print(f"PostgreSQL load's extra memory: {now / 2 ** 20:.0f} MiB against {before / 2 ** 20:.0f} MiB before "
          f"(ratio {now / before:.2f}); SQLite {statistics.median(r[2] for r in results['sqlite']) / 2 ** 20:.0f} MiB")


def _fill_docs(place, docs) -> int:
    crypto.use_kdf_in_this_process(crypto.KdfParams(memory_kib=8192, iterations=1, lanes=1))  # unlock is not measured
    store = Store.create(place, role="county", site_name="基准县", operator="admin", passphrase=PASS,
                         recovery_public_key=X25519PrivateKey.generate().public_key())
    from bench import store as store_bench
    from app.store.db import new_record_id

    count = 0
    with store.transaction():
        batch = []
        for i, doc in enumerate(docs):
            house, members = store_bench.split(doc)
            village = house.pop("village_code")
            hid = new_record_id()
            batch.append(("household", house, village, None, hid))
            batch += [("member", m, village, hid) for m in members]
            if len(batch) >= 500 or i == len(docs) - 1:
                count += len(store.create_many(batch))
                batch = []
    store.close()
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load-memory", type=int, nargs="?", const=10_000, default=None, metavar="N")
    args = parser.parse_args()
    if args.load_memory:
        load_memory(args.load_memory, args.runs)
        return
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
