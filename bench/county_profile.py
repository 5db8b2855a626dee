"""Where an upload's time goes at the county service (issue #23): a per-bundle profile.

Workload: bench/county.py's (LAPTOPS laptops over ten villages, one bundle each of SIZE new
households and SIZE edits of its own: SIZE x 9 change rows), on a SQLite county and a PostgreSQL
county. Three views per backend:

1. in the benchmark's process, without HTTP: each bundle spooled to a file and handed to the
   service's import step (`Service._upload`: map, signature, certificate, rate limit, decrypt, merge,
   report) one after another: processor and wall time per bundle, time under the write lock, and on
   PostgreSQL statements (round trips) per bundle; `--cprofile N` prints the top N functions,
   `--statements` each statement's round trips, wall time and the server's processor time for it
   (its session's /proc/PID/schedstat, to the nanosecond: what it did for the statement and for the
   queued writes sent with it);
2. through `jiandang serve` in its own process (1 worker on SQLite, --workers on PostgreSQL) with
   all bundles uploaded at once by CONCURRENCY client threads (bench/county.py's load): the server's
   processor time per bundle (its processes, read from /proc: Linux only) and the client's
   (this process), beside the wall time per bundle, and each worker's share of the workers'
   processor time (how evenly the uploads reached them);
3. the ratio of (1) to (2): how much of the service's processor time per bundle is the import step;
4. all in during the burst: the PostgreSQL server's processes (and of them the county database's
   sessions) and the whole machine's busy processor
   time per bundle (/proc/stat: every process and the kernel's loopback network work), and the rate
   those allow on this machine's cores if nothing ever waited: the floor under the figure.

    python bench/county_profile.py [--laptops 200] [--size 5] [--concurrency 200] [--workers 4]
                                   [--cprofile 25] [--statements] [--no-pg] [--no-http]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

import _throwaway  # noqa: F401 - a cheap key-derivation profile for throwaway databases

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from county import DEFAULT_PG, VILLAGES, Pg  # noqa: E402

from app.server import app as server_app  # noqa: E402
from app.server.limits import Limits  # noqa: E402
from app.server.receive import Spool  # noqa: E402
from app.store import Store  # noqa: E402
from tests import county_day  # noqa: E402


class Counting:
    """Counts statements (round trips) on a PostgreSQL connection and times its write transactions."""

    def __init__(self, conn, backend: int | None = None):
        self.conn, self.statements, self.locked, self._began = conn, 0, 0.0, None
        # per statement: [count, wall seconds, the server's processor seconds] (its session's schedstat)
        server = (lambda: _schedstat(backend)) if backend else (lambda: 0.0)
        self.by_statement: dict[str, list] = {}
        # psycopg's executemany (one round trip, a statement per row); multi-row INSERTs go through _run
        many_name = "_executemany" if hasattr(conn, "_executemany") else "executemany"
        raw_run, raw_many = conn._run, getattr(conn, many_name)
        counter = self

        def run(query, params):
            counter.statements += 1
            if query.strip().upper().startswith("BEGIN"):
                counter._began = time.perf_counter()
            t, s0 = time.perf_counter(), server()
            result = raw_run(query, params)
            seen = counter.by_statement.setdefault(" ".join(query.split())[:90], [0, 0.0, 0.0])
            seen[0] += 1
            seen[1] += time.perf_counter() - t
            seen[2] += server() - s0
            if query.strip().upper() in ("COMMIT", "ROLLBACK") and counter._began is not None:
                counter.locked += time.perf_counter() - counter._began
                counter._began = None
            return result

        def many(sql, rows):
            counter.statements += 1  # psycopg 3 pipelines executemany: one round trip
            t, s0 = time.perf_counter(), server()
            result = raw_many(sql, rows)
            seen = counter.by_statement.setdefault("MANY " + " ".join(sql.split())[:85], [0, 0.0, 0.0])
            seen[0] += 1
            seen[1] += time.perf_counter() - t
            seen[2] += server() - s0
            return result

        conn._run = run
        setattr(conn, many_name, many)
        raw_send = getattr(conn, "send_queued", None)
        if raw_send is not None:  # write-behind: the queued statements go with the next one, or alone
            def send(then=None):
                if conn._queued and then is None:
                    counter.statements += 1  # a round trip of its own (the end of a savepoint)
                    seen = counter.by_statement.setdefault("(queued writes sent alone)", [0, 0.0, 0.0])
                    seen[0] += 1
                    t, s0 = time.perf_counter(), server()
                    result = raw_send(then)
                    seen[1] += time.perf_counter() - t
                    seen[2] += server() - s0
                    return result
                return raw_send(then)

            conn.send_queued = send


class SqliteLockTimer:
    """Times BEGIN IMMEDIATE .. COMMIT on a sqlite3 connection (wrapped: sqlite3's is read-only)."""

    def __init__(self, store):
        self.locked, self.statements, self._began = 0.0, 0, None
        inner, timer = store.conn, self

        class Wrapped:
            def __getattr__(self, name):
                return getattr(inner, name)

            def execute(self, sql, params=()):
                timer.statements += 1
                head = sql.lstrip()[:6].upper()
                if head == "BEGIN ":
                    timer._began = time.perf_counter()
                result = inner.execute(sql, params)
                if head in ("COMMIT", "ROLLBA") and timer._began is not None:
                    timer.locked += time.perf_counter() - timer._began
                    timer._began = None
                return result

            def executemany(self, sql, rows):
                timer.statements += 1
                return inner.executemany(sql, rows)

        store.conn = Wrapped()


def direct(day: county_day.Day, top: int, group: int = 1, statements: bool = False) -> dict:
    """Every bundle through the service's import step in this process, one after another (`group`
    at a time handed to the database thread's group merge)."""
    store = Store.open(day.county)
    store.unlock(county_day.OPERATOR, county_day.PASSPHRASE)
    spool_dir = Path(tempfile.mkdtemp())
    app = server_app.create_app(store, Limits(uploads_per_minute=0), spool_dir=spool_dir)
    service = app.state.service
    backend = store.conn.raw.info.backend_pid if store.shared else None  # the PostgreSQL server's process
    counter = Counting(store.conn, backend) if store.shared else SqliteLockTimer(store)
    bundles = [b[0] for b in day.bundles]
    profiler = cProfile.Profile(time.process_time) if top else None  # processor time, not waits
    db0 = _process_cpu(backend, children=False) if backend else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    statuses = []
    for start in range(0, len(bundles), group):
        items = []
        for name, data in bundles[start:start + group]:
            spool = Spool(spool_dir)
            spool.write(data)
            spool.close()
            items.append((spool, name))
        if profiler:
            profiler.enable()
        if hasattr(service, "_upload"):  # the code before group commit (a bundle at a time)
            statuses += [service._upload(spool, name)[0] for spool, name in items]
        else:
            waiting = [server_app._Waiting(spool, name) for spool, name in items]
            service.waiting.extend(waiting)
            service._merge_waiting()
            statuses += [w.answer[0] if w.answer else w.error for w in waiting]
        if profiler:
            profiler.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    db = _process_cpu(backend, children=False) - db0 if backend else 0.0
    service.close()
    store.close()
    assert all(s == 200 for s in statuses), statuses[:5]
    n = len(bundles)
    if (top or statements) and getattr(counter, "by_statement", None):
        print("statements per bundle, ms of wall time per bundle, ms of the server's processor per bundle (what "
              "it did for the statement and the writes sent with it):")
        for sql, (count, seconds, server) in sorted(counter.by_statement.items(), key=lambda kv: -kv[1][1]):
            print(f"  {count / n:5.2f} {seconds / n * 1000:6.2f} {server / n * 1000:6.2f}  {sql}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(top)
    return {"group": group, "cpu": cpu / n, "db": db / n, "wall": wall / n, "locked": counter.locked / n, "statements": counter.statements / n}


def _schedstat(pid: int) -> float:
    """Processor seconds of a process to the nanosecond (/proc/PID/schedstat; Linux only), where
    /proc/PID/stat counts in ticks of 10 ms: fine enough to time one statement on the server."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def _process_cpu(pid: int, children: bool = True) -> float:
    """Processor seconds of a process (and of its live children: the service's workers) from /proc
    (Linux only; the PostgreSQL server's processes are readable by every user)."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    pids = [pid]
    if children:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if int(stat(entry)[1]) == pid:
                        pids.append(int(entry))
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            fields = stat(p)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _postgres_cpu(database: str | None = None) -> float:
    """Processor seconds of every PostgreSQL server process on this machine (its sessions, WAL writer
    …; on a shared server, other users' too), or with `database` of the sessions of that database
    only (their command lines name it)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if Path(f"/proc/{entry}/comm").read_text().strip().startswith("postgres"):
                    if database is not None:
                        words = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").split()
                        if database.encode() not in words:
                            continue
                    total += _process_cpu(int(entry), children=False)
    return total


def _children_cpu(pid: int) -> list[float]:
    """Processor seconds of each live child process of `pid` (the service's workers), by process id."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def _machine_busy() -> float:
    """Processor seconds the whole machine spent not idle (every process, the kernel's network work)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def over_http(day: county_day.Day, workers: int, concurrency: int) -> dict:
    service = county_day.Service(day, workers)
    try:
        time.sleep(1)
        database = day.county.rsplit("/", 1)[-1] if "://" in day.county else None
        server0, client0 = _process_cpu(service.proc.pid), time.process_time()
        pg0, busy0 = _postgres_cpu(), _machine_busy()
        mine0, workers0 = (_postgres_cpu(database) if database else 0.0), _children_cpu(service.proc.pid)
        load = county_day.run_load(service.url, day.bundles, concurrency, threading.Event())
        server1, client1 = _process_cpu(service.proc.pid), time.process_time()
        pg1, busy1 = _postgres_cpu(), _machine_busy()
        mine1, workers1 = (_postgres_cpu(database) if database else 0.0), _children_cpu(service.proc.pid)
    finally:
        service.stop()
    n = len(load.results)
    bad = [s for *_, s, a, _ in ((r[0], r[1], r[2], r[3], r[4]) for r in load.results) if s != 200]
    assert not bad, bad[:5]
    latencies = [r[4] for r in load.results]
    return {"server_cpu": (server1 - server0) / n, "client_cpu": (client1 - client0) / n, "wall": load.wall / n,
            "postgres_cpu": (pg1 - pg0) / n, "busy": (busy1 - busy0) / n, "sessions_cpu": (mine1 - mine0) / n,
            # each worker's share of the workers' processor time over the burst (an even spread: 1/N each)
            "spread": sorted(workers1[p] - workers0.get(p, 0.0) for p in workers1 if workers1[p] - workers0.get(p, 0.0) > 0),
            "p50": county_day.percentile(latencies, 0.5), "p99": county_day.percentile(latencies, 0.99)}


def report(label: str, d: dict | None, h: dict | None) -> None:
    print(f"{label}: load average {os.getloadavg()[0]:.2f}")
    if d:
        print(f"  (import step: {d['group']} bundle(s) at a time)")
    if d:
        print(f"  import step alone (no HTTP): {d['cpu'] * 1000:.2f} ms processor"
              + (f" + {d['db'] * 1000:.2f} ms of the PostgreSQL server's" if d["db"] else "")
              + f", {d['wall'] * 1000:.2f} ms wall, "
              f"{d['locked'] * 1000:.2f} ms under the write lock, {d['statements']:.1f} statements per bundle")
    if h:
        print(f"  through the service: server {h['server_cpu'] * 1000:.2f} ms processor per bundle, client "
              f"{h['client_cpu'] * 1000:.2f} ms, wall {h['wall'] * 1000:.2f} ms per bundle "
              f"({1 / h['wall']:.0f} bundles/s), p50 {h['p50'] * 1000:.0f} ms, p99 {h['p99'] * 1000:.0f} ms")
        cores = os.cpu_count() or 1
        if len(h["spread"]) > 1:
            total = sum(h["spread"]) or 1.0
            print("  the workers' shares of their processor time: " + ", ".join(f"{t / total:.0%}" for t in h["spread"]))
        print(f"  all in, per bundle: PostgreSQL's processes {h['postgres_cpu'] * 1000:.2f} ms"
              + (f" (the county database's sessions {h['sessions_cpu'] * 1000:.2f} ms)" if h["sessions_cpu"] else "")
              + "; the machine busy "
              f"{h['busy'] * 1000:.2f} ms of processor ({h['busy'] / h['wall'] / cores:.0%} of its {cores} cores over the "
              f"burst): at most {cores / h['busy']:.0f} bundles/s on these cores even if nothing waited")
    if d and h:
        print(f"  import step / service processor time: {d['cpu'] / h['server_cpu']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--laptops", type=int, default=200)
    ap.add_argument("--size", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cprofile", type=int, default=0, help="print the top N functions of the import step")
    ap.add_argument("--statements", action="store_true",
                    help="PostgreSQL: print each statement's round trips, wall time and the server's processor time")
    ap.add_argument("--group", type=int, default=1, help="bundles merged together in the import step (group commit)")
    ap.add_argument("--pg-url", default=DEFAULT_PG)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--no-http", action="store_true")
    args = ap.parse_args()
    print(f"workload: {args.laptops} laptops, one bundle each of {args.size * 9} change rows; "
          f"{args.concurrency} client threads at once through the service")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        if not args.no_sqlite:
            base = folder / "sqlite" / "county.db"
            day = county_day.prepare(folder / "sqlite", str(base), laptops=args.laptops, rounds=1, size=args.size,
                                     villages=VILLAGES, edit_seeded=False)
            copies = iter(range(100))

            def copy() -> str:
                import shutil  # noqa: PLC0415

                target = folder / "sqlite" / f"run{next(copies)}.db"
                shutil.copy(base, target)
                return str(target)

            d = direct(county_day.Day(**{**day.__dict__, "county": copy()}), args.cprofile, args.group)
            h = None if args.no_http else over_http(county_day.Day(**{**day.__dict__, "county": copy()}), 1,
                                                   args.concurrency)
            report("SQLite (1 worker)", d, h)
        if not args.no_pg:
            pg = Pg(args.pg_url)
            try:
                template = pg.create()
                day = county_day.prepare(folder / "pg", pg.url(template), laptops=args.laptops, rounds=1,
                                         size=args.size, villages=VILLAGES, edit_seeded=False)
                d = direct(county_day.Day(**{**day.__dict__, "county": pg.url(pg.copy(template))}), args.cprofile,
                           args.group, args.statements)
                h = None if args.no_http else over_http(
                    county_day.Day(**{**day.__dict__, "county": pg.url(pg.copy(template))}), args.workers,
                    args.concurrency)
                report(f"PostgreSQL ({args.workers} workers through the service)", d, h)
            finally:
                pg.drop_all()


if __name__ == "__main__":
    main()
