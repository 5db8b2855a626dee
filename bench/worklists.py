"""Benchmark: building the work lists (工作清单) of a township-sized database, against loading the
same household documents alone, in one run.

Workload: the demo county with --per-village households in each of its 6 villages (default 500, so
3,000 households with members, incomes, helpers, measures, plans and visits) and an exit proposal for
every tenth household. The figure is the median of --runs builds of all four lists (missing helper,
no visit in 90 days, waiting per stage, failing exits with the live exit criteria); the baseline is the
median of loading every household document (`households.documents`), the decryption the lists cannot
avoid. The ratio says what the lists cost on top of reading the data.

    python bench/worklists.py [--per-village 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import _throwaway  # noqa: E402,F401 - a cheap key-derivation profile for throwaway databases

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.services import demo, households, proposals, worklists  # noqa: E402
from app.store import Store  # noqa: E402


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-village", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "t.db", role="township", site_name="bench", operator="bench",
                             passphrase="benchmark passphrase", recovery_public_key=X25519PrivateKey.generate().public_key())
        demo.fill(store, per_village=args.per_village)
        store.set_poverty_line(2025, 4000)
        proposed = 0
        with store.transaction():
            for i, record in enumerate(store.records("household")):
                if i % 10 == 0 and record.fields.get("status") in ("1", "4"):
                    try:
                        proposals.propose(store, record.id, "exit", reasons="bench", food_secure=True,
                                          clothing_secure=True, justification="bench")
                        proposed += 1
                    except proposals.ProcedureError:
                        pass
        n = store.count("household")
        print(f"workload: {n} households, {store.count('member')} members, {proposed} exit proposals, "
              f"{args.runs} runs each")
        base = median_time(lambda: households.documents(store), args.runs)
        lists = {}
        figure = median_time(lambda: lists.setdefault("x", worklists.build(store, visit_days=90)), args.runs)
        built = lists["x"]
        print(f"baseline  load all household documents: {base:.3f} s (median)")
        print(f"figure    build the four work lists:    {figure:.3f} s (median); "
              f"{len(built.missing_helper)} missing helper, {len(built.no_recent_visit)} not visited, "
              f"{sum(len(v) for v in built.waiting.values())} waiting, {len(built.failing_exits)} failing exits")
        print(f"ratio     lists / load: {figure / base:.2f}")
        store.close()


if __name__ == "__main__":
    main()
