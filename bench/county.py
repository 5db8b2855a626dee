"""County server benchmark (issue #23): the same upload load against a SQLite county (the service with
1 worker, the only way it can run there) and a PostgreSQL county (4 workers), and a USB import at the
county while the service is under load.

Workload (tests/county_day.py): a county with LAPTOPS laptops over ten villages; each laptop has ONE
bundle to upload (SIZE new households of 8 records each and SIZE edits of its own households:
SIZE x 9 change rows; --cross-edits: edits of the county's households instead, every laptop of a
village editing the same five, so that nearly every edit is a conflict the county resolves); a USB folder of 2 more laptops' bundles and a copy of one network bundle.
For each county and each concurrency C (50, 200): a fresh copy of the county (a file copy; PostgreSQL:
CREATE DATABASE … TEMPLATE), `jiandang serve` in its own process, then all LAPTOPS bundles uploaded by C
client threads at once over loopback (each from its own 127.0.x.y address), each thread taking the
next bundle. Figures per run: p50 and p99 of the upload latency (request sent -> report received) and
bundles per second over the burst. Medians of RUNS.

Two loads, as the issue (#23) names them:
1. the upload load alone, at every C: p50, p99, bundles/s (the target: p99 < 500 ms at 200 at once);
2. the same burst at the highest C with a `jiandang sync import` of the USB folder (its own process)
   started with it: the import's time under load, against the same import on an idle county (the
   target: it never waits for the service; SQLite: it waits until the service stops, which happens
   right after the burst), and the burst's p50, p99 and bundles/s with the import in it, reported
   beside the first. On a machine whose cores the burst already fills, the import's own process
   (Python's start and the program's modules: about 0.2 s of processor before it reads a bundle)
   takes its share of them, and the burst's last answers wait for it.
The program's bytecode is compiled first (compileall of app/), as an installed program has it (a
wheel, the PyInstaller build): a process started in the burst (the USB import) then does not compile
its modules, which it would do at every start where Python may not write bytecode
(PYTHONDONTWRITEBYTECODE, set on the development machine), about 0.1 s of processor.

    python bench/county.py [--laptops 200] [--concurrency 50 200] [--runs 3] [--workers 4]
                           [--size 5] [--pg-url postgresql://ADMIN@127.0.0.1/postgres] [--no-pg]

--pg-url names a role that may CREATE DATABASE (default: the tests' server, see tests/pg.py); the
bench creates and drops its own databases there. Targets: p99 < 500 ms at 200 concurrent uploads
(the upload load), and a USB import that never waits for the service (the second load).
"""

from __future__ import annotations

import argparse
import compileall
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import _throwaway  # noqa: F401 - a cheap key-derivation profile for throwaway databases

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import county_day  # noqa: E402

# the demo county's six villages and four more (a village's 户编号 blocks hold about 33 laptops)
VILLAGES = [f"52263410{t}20{v}" for t in (1, 2) for v in (1, 2, 3)] + [f"52263410120{v}" for v in range(4, 8)]
DEFAULT_PG = "postgresql://jiandang_test:jiandang-test@127.0.0.1:5432/postgres"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class Pg:
    """Databases on a PostgreSQL server: a template county, one fresh copy per run."""

    def __init__(self, admin_url: str):
        import psycopg  # noqa: PLC0415

        self.admin_url = admin_url
        self.conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
        self.made: list[str] = []

    def new_name(self) -> str:
        name = f"jd_bench_{secrets.token_hex(4)}"
        self.made.append(name)
        return name

    def url(self, name: str) -> str:
        return _with_database(self.admin_url, name)

    def create(self) -> str:
        name = self.new_name()
        self.conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def copy(self, template: str) -> str:
        name = self.new_name()
        self.conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def vacuum(self, name: str) -> None:
        """VACUUM ANALYZE a database, as autovacuum keeps a county database in use: its planner
        statistics and its rows' visibility are then known, and each copy made from it inherits
        them (a copy of a template made seconds before would start with neither)."""
        import psycopg  # noqa: PLC0415

        with psycopg.connect(self.url(name), autocommit=True, connect_timeout=5) as conn:
            conn.execute("VACUUM (ANALYZE)")

    def drop(self, url: str) -> None:
        """Drop a run's copy once the run is done: its server sessions end, and autovacuum does not
        go on to analyse its new rows during the next runs."""
        name = urlsplit(url).path.lstrip("/")
        self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.remove(name)

    def drop_all(self) -> None:
        for name in self.made:
            self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.conn.close()


def one_run(day: county_day.Day, location: str, workers: int, concurrency: int, with_usb: bool) -> dict:
    run = county_day.Day(**{**day.__dict__, "county": location})
    service = county_day.Service(run, workers)
    usb = usb_seconds = None
    started = threading.Event()
    box: dict = {}
    loader = threading.Thread(target=lambda: box.setdefault("load", county_day.run_load(
        service.url, day.bundles, concurrency, started)))
    loader.start()
    started.wait(300)
    if with_usb:
        t_usb = time.perf_counter()
        usb = county_day.start_usb_import(run)
    loader.join()
    if usb is not None and usb.poll() is None and workers == 1:
        pass  # SQLite: the import is waiting for the service's lock; it runs once the service stops
    service.stop()
    if usb is not None:
        out, err = usb.communicate(timeout=600)
        usb_seconds = time.perf_counter() - t_usb
        if usb.returncode != 0:
            raise SystemExit(f"USB import failed: {err}")
    load = box["load"]
    # the one bundle that also travels by USB may be taken from the USB folder first: then it is a duplicate here
    bad = [(s, a.get("error")) for i, r, s, a, _ in load.results
           if s != 200 or a["report"]["status"] not in (("accepted", "duplicate") if (i, r) == day.both_ways else ("accepted",))]
    if bad:
        raise SystemExit(f"{len(bad)} uploads not accepted, e.g. {bad[:3]}\n{service.log_text()[-2000:]}")
    latencies = [r[4] for r in load.results]
    return {"p50": county_day.percentile(latencies, 0.50), "p99": county_day.percentile(latencies, 0.99),
            "rate": len(latencies) / load.wall, "usb": usb_seconds}


def usb_alone(day: county_day.Day, location: str) -> float:
    run = county_day.Day(**{**day.__dict__, "county": location})
    t = time.perf_counter()
    proc = county_day.start_usb_import(run)
    out, err = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"USB import failed: {err}")
    return time.perf_counter() - t


def bench(label: str, day: county_day.Day, fresh, done, workers: int, args) -> dict:
    """The upload load alone at each concurrency, then the top one with the USB import started in it.
    `fresh()`: a new copy of the county; `done(location)`: removes it after its run."""

    def run_on_copy(measure, *a, **kw):
        location = fresh()
        try:
            return measure(day, location, *a, **kw)
        finally:
            done(location)

    figures: dict = {}
    top = max(args.concurrency)

    def runs_of(c: int, with_usb: bool) -> dict:
        runs = []
        for r in range(args.runs):
            runs.append(run_on_copy(one_run, workers, c, with_usb=with_usb))
            print(f"  {label}, {workers} worker(s), {c} at once{' + USB import' if with_usb else ''}, run {r + 1}: "
                  f"p50 {runs[-1]['p50'] * 1000:.0f} ms, p99 {runs[-1]['p99'] * 1000:.0f} ms, {runs[-1]['rate']:.1f} bundles/s"
                  + (f", USB import {runs[-1]['usb']:.2f} s" if runs[-1]["usb"] else ""), flush=True)
        out = {k: statistics.median(x[k] for x in runs) for k in ("p50", "p99", "rate")}
        if with_usb:
            out["usb"] = statistics.median(x["usb"] for x in runs)
        return out

    for c in args.concurrency:
        figures[c] = runs_of(c, with_usb=False)
    figures["with_usb"] = runs_of(top, with_usb=True)
    figures["usb_loaded"] = figures["with_usb"]["usb"]
    figures["usb_alone"] = statistics.median(run_on_copy(usb_alone) for _ in range(args.runs))
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--laptops", type=int, default=200)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4, help="worker processes on the PostgreSQL county")
    ap.add_argument("--size", type=int, default=5, help="households created (and edits made) per bundle")
    ap.add_argument("--pg-url", default=DEFAULT_PG, help="an administrator URL that may CREATE DATABASE")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--cross-edits", action="store_true",
                    help="edits of the county's households (a conflict for nearly every edit) instead of the laptop's own")
    args = ap.parse_args()
    compiled = compileall.compile_dir(ROOT / "app", quiet=1)  # as installed (see the module's doc)
    print(f"bytecode of app/ compiled: {'yes' if compiled else 'NO (the processes compile at start)'}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        day = county_day.prepare(folder / "sqlite", str(folder / "sqlite" / "county.db"), laptops=args.laptops,
                                 rounds=1, size=args.size, villages=VILLAGES,
                                 edit_seeded=args.cross_edits)
        rows = args.size * 9
        whose = "the county's" if args.cross_edits else "its own"
        print(f"workload: {args.laptops} laptops over {len(VILLAGES)} villages, one bundle each ({args.size} new households of 8 "
              f"records and {args.size} edits of {whose} households: {rows} change rows, {statistics.median(len(b[0][1]) for b in day.bundles) / 1024:.0f} KB), "
              f"uploaded over loopback by {' and '.join(map(str, args.concurrency))} client threads at once; "
              f"USB folder: 2 laptops' bundles + 1 also uploaded; {args.runs} runs each; set-up {time.perf_counter() - t:.0f} s",
              flush=True)
        copies = iter(range(10_000))

        def sqlite_copy() -> str:
            target = folder / "sqlite" / f"run{next(copies)}.db"
            shutil.copy(day.county, target)
            return str(target)

        results["SQLite"] = bench("SQLite", day, sqlite_copy, _remove_file_copy, 1, args)
        if not args.no_pg:
            try:
                pg = Pg(args.pg_url)
            except Exception as exc:  # noqa: BLE001 - said, and the SQLite figures still stand
                print(f"PostgreSQL not reachable at {county_day_mask(args.pg_url)} ({type(exc).__name__}): SQLite only")
            else:
                try:
                    template = pg.create()
                    t = time.perf_counter()
                    pg_day = county_day.prepare(folder / "pg", pg.url(template), laptops=args.laptops, rounds=1,
                                                size=args.size, villages=VILLAGES, edit_seeded=args.cross_edits)
                    pg.vacuum(template)
                    print(f"PostgreSQL county set up in {time.perf_counter() - t:.0f} s (then VACUUM ANALYZE, as "
                          "autovacuum keeps a county database in use)", flush=True)
                    results["PostgreSQL"] = bench("PostgreSQL", pg_day, lambda: pg.url(pg.copy(template)), pg.drop,
                                                  args.workers, args)
                finally:
                    pg.drop_all()
    print()
    top = max(args.concurrency)
    print("| county | workers | at once | p50 ms | p99 ms | bundles/s |")
    print("|---|---|---|---|---|---|")
    for label, figures in results.items():
        workers = 1 if label == "SQLite" else args.workers
        for c in args.concurrency:
            f = figures[c]
            print(f"| {label} | {workers} | {c} | {f['p50'] * 1000:.0f} | {f['p99'] * 1000:.0f} | {f['rate']:.1f} |")
        f = figures["with_usb"]
        print(f"| {label} | {workers} | {top} + USB import | {f['p50'] * 1000:.0f} | {f['p99'] * 1000:.0f} | {f['rate']:.1f} |")
    for label, figures in results.items():
        print(f"USB import ({label}): alone {figures['usb_alone']:.2f} s, during the {top}-upload burst "
              f"{figures['usb_loaded']:.2f} s")
    if len(results) == 2:
        s, p = results["SQLite"], results["PostgreSQL"]
        for c in args.concurrency:
            print(f"ratio PostgreSQL/SQLite at {c} at once: p50 {p[c]['p50'] / s[c]['p50']:.2f}, "
                  f"p99 {p[c]['p99'] / s[c]['p99']:.2f}, bundles/s {p[c]['rate'] / s[c]['rate']:.2f}")
        print(f"ratio PostgreSQL/SQLite, USB import during the burst: {p['usb_loaded'] / s['usb_loaded']:.2f}")
    if "PostgreSQL" in results:
        p = results["PostgreSQL"]
        print(f"target p99 < 500 ms at {top} at once (the upload load): PostgreSQL {p[top]['p99'] * 1000:.0f} ms "
              f"({'met' if p[top]['p99'] < 0.5 else 'not met'}); with the USB import started in the same burst: "
              f"{p['with_usb']['p99'] * 1000:.0f} ms")
        print(f"target USB import never waits for the service: {p['usb_loaded']:.2f} s under load vs "
              f"{p['usb_alone']:.2f} s alone (it takes its turns at the write lock; SQLite: "
              f"{results['SQLite']['usb_loaded']:.2f} s, it waits for the service to stop)")


def _remove_file_copy(location: str) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(location + suffix).unlink(missing_ok=True)


def county_day_mask(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.hostname}:{parts.port or ''}"))
    return url


if __name__ == "__main__":
    main()
