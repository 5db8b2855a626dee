"""Benchmark: the encrypted store against plain sqlite-utils tables of the same JSON, in one run.

Workload (issue 2): insert N households (default 10,000; about 3.5 members each), update 10% of all
stored field values, unlock and load everything, and search by a name substring.
The encrypted side writes every record sealed with AES-256-GCM plus its change-log row (and the blind
index for ID numbers); the plain side inserts the same dicts with sqlite-utils `insert_all`.
Each phase runs --runs times on fresh databases; medians are printed with the ratio encrypted/plain,
and for the load also each run's own ratio (median and range), in wall time and in processor time
(which other programs on a shared machine disturb less).

    python bench/store.py [--households 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gc  # noqa: E402

import sqlite_utils  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.core import demo  # noqa: E402
from app.store import Store, crypto  # noqa: E402
from app.store.db import new_record_id  # noqa: E402

PASS = "benchmark passphrase"


def workload(households: int):
    per_village = max(1, households // len(demo.village_codes()))
    docs = demo.households(per_village=per_village)[:households]
    for doc in docs:
        for key in ("incomes", "helpers", "measures", "plans", "visits"):
            doc.pop(key)
    return docs


def split(doc):
    house = {k: v for k, v in doc.items() if k != "members"}
    return house, doc["members"]


def updates_for(records: list[tuple[str, dict]], rng: random.Random) -> list[tuple[str, str, dict]]:
    """(table, id, {field: new}) touching 10% of all stored field values."""
    pairs = [(rid, table, key) for table, rid, fields in records for key in fields if key not in ("village_code",)]
    chosen = rng.sample(pairs, len(pairs) // 10)
    grouped: dict[tuple[str, str], dict] = {}
    for rid, table, key in chosen:
        grouped.setdefault((table, rid), {})[key] = f"改{rng.randint(0, 999)}"
    return [(table, rid, fields) for (table, rid), fields in grouped.items()]


def run_encrypted(folder: Path, docs, rng_seed: int, queries: list[str]) -> dict:
    key = X25519PrivateKey.generate().public_key()
    path = folder / "enc.db"
    store = Store.create(path, role="village", site_name="bench", operator="admin", passphrase=PASS,
                         recovery_public_key=key, kdf=crypto.DEFAULT_KDF)
    out = {}
    records = []
    t = time.perf_counter()
    with store.transaction():
        batch = []
        for i, doc in enumerate(docs):
            house, members = split(doc)
            village = house.pop("village_code")
            hid = new_record_id()  # what the store itself gives new records
            batch.append(("household", house, village, None, hid))
            batch += [("member", m, village, hid) for m in members]
            if len(batch) >= 500 or i == len(docs) - 1:
                for change, item in zip(store.create_many(batch), batch):
                    records.append((item[0], change.record_id, item[1]))
                batch = []
    out["insert"] = time.perf_counter() - t
    changes = updates_for(records, random.Random(rng_seed))
    t = time.perf_counter()
    with store.transaction():
        for table, rid, fields in changes:
            store.put(table, fields, record_id=rid)
    out["update"] = time.perf_counter() - t
    out["updated_fields"] = sum(len(f) for _, _, f in changes)
    store.close()
    t = time.perf_counter()
    store = Store.open(path)
    store.unlock("admin", PASS)
    out["unlock"] = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    loaded = list(store.records())
    out["load"] = time.perf_counter() - t
    out["load_cpu"] = time.process_time() - cpu
    out["loaded"] = len(loaded)
    t = time.perf_counter()
    store.build_search_index()
    out["index"] = time.perf_counter() - t
    times = []
    for q in queries:
        t = time.perf_counter()
        store.search(q)
        times.append(time.perf_counter() - t)
    out["search"] = statistics.median(times)
    store.close()
    out["size"] = path.stat().st_size
    return out


def run_plain(folder: Path, docs, rng_seed: int, queries: list[str]) -> dict:
    path = folder / "plain.db"
    db = sqlite_utils.Database(path)
    db.conn.execute("PRAGMA journal_mode=WAL")
    out = {}
    records = []
    house_rows, member_rows = [], []
    t = time.perf_counter()
    for i, doc in enumerate(docs):
        house, members = split(doc)
        hid = f"h{i}"
        house_rows.append({"id": hid, **house})
        records.append(("households", hid, house))
        for j, m in enumerate(members):
            mid = f"{hid}m{j}"
            member_rows.append({"id": mid, "household_id": hid, **m})
            records.append(("members", mid, m))
    with db.conn:
        db["households"].insert_all(house_rows, pk="id", alter=True, batch_size=500)
        db["members"].insert_all(member_rows, pk="id", alter=True, batch_size=500)
    out["insert"] = time.perf_counter() - t
    changes = updates_for(records, random.Random(rng_seed))
    t = time.perf_counter()
    with db.conn:
        for table, rid, fields in changes:
            db[table].update(rid, fields, alter=True)
    out["update"] = time.perf_counter() - t
    db.close()
    t = time.perf_counter()
    db = sqlite_utils.Database(path)
    out["unlock"] = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    loaded = list(db["households"].rows) + list(db["members"].rows)
    out["load"] = time.perf_counter() - t
    out["load_cpu"] = time.process_time() - cpu
    out["loaded"] = len(loaded)
    times = []
    for q in queries:
        t = time.perf_counter()
        hits = {r["id"] for r in db["households"].rows_where("head_name LIKE ?", [f"%{q}%"])}
        hits |= {r["household_id"] for r in db["members"].rows_where("name LIKE ?", [f"%{q}%"])}
        times.append(time.perf_counter() - t)
    out["search"] = statistics.median(times)
    db.close()
    out["size"] = path.stat().st_size
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    docs = workload(args.households)
    members = sum(len(d["members"]) for d in docs)
    queries = ["王", "李明", "张伟", "芳", "刘", "陈静", "不存在的名字", "杨"] * 5
    print(f"workload: {len(docs)} households, {members} members; update 10% of field values; "
          f"load all; {len(queries)} name-substring searches; {args.runs} runs each, medians")
    print(f"both sides run in this process under the program's garbage-collection thresholds {gc.get_threshold()} "
          f"(app/__init__.py)")
    results = {"encrypted": [], "plain": []}
    for run in range(args.runs):
        for name, fn in (("plain", run_plain), ("encrypted", run_encrypted)):
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(fn(Path(tmp), docs, run, queries))
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in results.items()}
    e, p = med["encrypted"], med["plain"]
    rows = [
        ("insert", "s"), ("update", "s"), ("load", "s"), ("search", "ms"),
    ]
    print(f"{'phase':<8}{'encrypted':>14}{'plain':>14}{'ratio':>8}")
    for key, unit in rows:
        scale = 1000 if unit == "ms" else 1
        print(f"{key:<8}{e[key] * scale:>12.3f}{unit:>2}{p[key] * scale:>12.3f}{unit:>2}{e[key] / p[key]:>8.2f}")
    ratios = sorted(enc["load"] / plain["load"] for enc, plain in zip(results["encrypted"], results["plain"]))
    cpu = sorted(enc["load_cpu"] / plain["load_cpu"] for enc, plain in zip(results["encrypted"], results["plain"]))
    print(f"load ratio per run (each run's encrypted / plain): median {statistics.median(ratios):.2f}, "
          f"{ratios[0]:.2f}-{ratios[-1]:.2f}; in processor time: median {statistics.median(cpu):.2f}, {cpu[0]:.2f}-{cpu[-1]:.2f}")
    print(f"updated field values: {int(e['updated_fields'])}; records loaded: {int(e['loaded'])} (plain {int(p['loaded'])})")
    print(f"unlock (Argon2id {crypto.DEFAULT_KDF.memory_kib // 1024} MiB, t={crypto.DEFAULT_KDF.iterations}): "
          f"{e['unlock'] * 1000:.0f} ms; building the in-memory search index: {e['index'] * 1000:.0f} ms")
    print(f"inserts/s encrypted {(len(docs) + members) / e['insert']:.0f}, plain {(len(docs) + members) / p['insert']:.0f}; "
          f"file size encrypted {e['size'] / 1e6:.1f} MB, plain {p['size'] / 1e6:.1f} MB")
    print(f"targets: insert and load ratio <= 1.3 -> insert {'met' if e['insert'] / p['insert'] <= 1.3 else 'NOT met'}, "
          f"load {'met' if e['load'] / p['load'] <= 1.3 else 'NOT met'}; "
          f"search < 5 ms -> {'met' if e['search'] < 0.005 else 'NOT met'}")


if __name__ == "__main__":
    main()
