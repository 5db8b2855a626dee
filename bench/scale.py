"""Benchmark: county scale. Time per household and peak memory of each everyday step as the database
grows, and whether the cost is linear and the memory flat.

Sizes: 1,000 / 10,000 / 50,000 households (--quick: 1,000 / 5,000), the demo county's six villages.
Steps, each in its own process (so that each has its own peak resident memory):

    demo            jiandang demo: generate and save every household (one transaction)
    list --json     jiandang list --json of the whole database (to a file)
    validate        jiandang validate of the whole database
    print register  jiandang print register of one village (a sixth of the households)
    print cards     jiandang print card --village of that village
    township book   jiandang print book --township of the first township (乡有簿: three villages, half
                    the households)
    sync            a laptop's upstream bundles of every household written to a folder (export: one
                    bundle per exchange.CHANGES_PER_BUNDLE changes), the folder imported by the county
    sync-down       after `sync`, the county's downstream export (every enrolled laptop's bundles written
                    to a folder) for a newly enrolled laptop of the same villages: its first full copy
                    of every household, one bundle per exchange.CHANGES_PER_BUNDLE changes; then that
                    laptop imports the folder (export and import each in its own process)
    import-table    a one-sheet ledger (one row per member) imported into a fresh database
    import-into     the demo database's own export (export-table of every village, not timed) imported
                    back into a copy of it: every household of the sheet matched with a stored one by its
                    户编号 (through the blind index), nothing changed

--keep DIR keeps what the run generates in DIR/<size>/ and reuses it on the next run: the demo
database (demo.db, made again when the demo step runs; with --skip demo the steps that read it use the
kept one), the sync step's county and laptop as set up (sync-setup/, copied before each run, which
changes its copy) the ledger sheet (ledger.xlsx) and the demo database's export (export.xlsx). Generating 50,000 households takes long.

Figures: seconds, milliseconds per household (of the whole database, or of the village printed) and
the peak resident memory (MB) of the step's process; also the step's processor time per household
(`time.process_time`, all its threads), which the machine's load (and `nice`) does not inflate.
Every step unlocks a database with the default Argon2id profile (64 MiB), so no step's peak is below that of a process that imports the program and
derives one key ("idle", the floor). Verdict per step: linear when ms per household at the largest size is
within 20% of the smallest, memory flat when the peak grows by less than 25% from the smallest size
to the largest. The machine is shared: quote medians of several runs where it matters.

    python bench/scale.py [--quick] [--sizes 1000 10000 50000] [--skip cards import-table] [--keep DIR]
    python bench/scale.py --sizes 50000 --keep /tmp/scale --skip demo sync sync-down   # reuse the kept demo.db
    python bench/scale.py --sizes 1000 10000 --skip demo list validate register cards import-table   # sync only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEPS = ["demo", "list", "validate", "register", "cards", "book", "sync", "sync-down", "import-table", "import-into"]
READ_DEMO = ("list", "validate", "register", "cards", "book", "import-into")  # the steps that read the demo database
LABELS = {"idle": "idle (imports + 1 Argon2id)", "demo": "demo", "list": "list --json", "validate": "validate",
          "register": "print register (1 village)", "cards": "print cards (1 village)",
          "book": "print township book (1 of 2)",
          "sync": "sync export + county import", "sync-down": "county export + laptop import",
          "import-table": "import-table", "import-into": "import-table into demo db"}
VILLAGE = "522634101201"
TOWNSHIP = VILLAGE[:9]
PASS = "scale-bench-passphrase"


def peak_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def cli(args: list[str], stdout=None, ok=(0,)) -> None:
    from app.cli.main import main

    saved = sys.stdout
    sys.stdout = stdout or open(os.devnull, "w", encoding="utf-8")
    try:
        code = main(args)
    finally:
        sys.stdout.close()
        sys.stdout = saved
    if code not in ok:  # a refused command must not pass for a fast one
        raise SystemExit(f"jiandang {' '.join(args)} failed ({code})")


# ---------------------------------------------------------------------- steps (run in a child process)


def setup_sync(folder: Path, n: int) -> None:
    """A county and an enrolled laptop holding n households (not timed)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from app.core import demo as demo_core
    from app.core import procedures
    from app.services import demo, households
    from app.store import Store
    from app.sync import identity

    county = Store.create(folder / "county.db", role="county", site_name="县", operator="admin", passphrase=PASS,
                          recovery_public_key=X25519PrivateKey.generate().public_key())
    identity.setup_county(county)
    demo.install_reference_data(county)
    villages = demo_core.village_codes()
    result = identity.enroll(county, site_name="乡工作站", role="township", villages=villages)
    contents = identity.open_enrollment(result.package, result.code)
    county.close()
    laptop = identity.create_from_enrollment(folder / "laptop.db", contents, operator="admin", passphrase=PASS)
    with laptop.transaction():  # as a laptop types them: 未脱贫 一般农户, numbers from its own blocks
        for doc in demo_core.iter_households(max(1, n // len(villages))):
            for key in ("household_number", "risks") + procedures.MONITORING_FIELDS:
                doc.pop(key, None)
            households.save(laptop, {**doc, "status": "1"}, allow_errors=True)
    laptop.close()


def setup_table(folder: Path, n: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from table import workbook  # bench/table.py

    data, _ = workbook(n)
    (folder / "ledger.xlsx").write_bytes(data)


def unlocked(path: Path, operator: str = "admin"):
    """The benchmark's database at `path`, opened and unlocked with its passphrase."""
    from app.store import Store  # noqa: PLC0415 - each step runs in a child process of its own

    store = Store.open(path)
    store.unlock(operator, PASS)
    return store


def run_step(step: str, folder: Path, n: int) -> dict:
    os.environ.setdefault("JIANDANG_PASSPHRASE", PASS)
    db = str(folder / "demo.db")
    per_village = max(1, n // 6)
    out: dict = {}
    t, cpu = time.perf_counter(), time.process_time()
    if step == "idle":  # the floor of every step: the program's modules and one unlock's Argon2id (64 MiB)
        import app.cli.main  # noqa: F401
        import app.reports.card  # noqa: F401
        from app.store import crypto

        crypto.derive_key(PASS, b"0" * 16, crypto.DEFAULT_KDF)
    elif step == "demo":
        for old in (Path(db), *(Path(db + tail) for tail in ("-wal", "-shm", ".lock", ".recovery-key.pem"))):  # --keep
            old.unlink(missing_ok=True)
        (folder / "export.xlsx").unlink(missing_ok=True)  # a kept run's export of the former demo.db
        cli(["demo", db, "--per-village", str(per_village)])
    elif step == "list":
        with open(folder / "list.json", "w", encoding="utf-8") as fh:
            cli(["list", db, "--json"], stdout=fh)
        out["bytes"] = (folder / "list.json").stat().st_size
    elif step == "validate":
        cli(["validate", db], ok=(0, 1))  # validate exits 1 when it finds errors
    elif step == "register":
        cli(["print", "register", db, "--village", VILLAGE, "--out", str(folder / "register.pdf")])
    elif step == "cards":
        cli(["print", "card", db, "--village", VILLAGE, "--out", str(folder / "cards.pdf")])
    elif step == "book":
        cli(["print", "book", db, "--township", TOWNSHIP, "--out", str(folder / "book.pdf")])
        out["bytes"] = (folder / "book.pdf").stat().st_size
    elif step == "prepare":  # a kept demo database (--keep): upgraded now, if older, not in a timed step
        from app.cli.common import DEMO_OPERATOR
        from app.store import Store

        with Store.open(db) as store:
            store.unlock(DEMO_OPERATOR, PASS)
    elif step == "setup-sync":
        setup_sync(folder, n)
    elif step == "sync":  # the USB day: every bundle of one export written to a folder, the folder imported
        from app.sync import exchange

        stick = folder / "usb"
        stick.mkdir(exist_ok=True)
        laptop = unlocked(folder / "laptop.db")
        files = exchange.export_to(laptop, stick)
        laptop.close()
        out["export"] = time.perf_counter() - t
        out["export_peak_mb"] = peak_mb()
        out["bundles"] = len(files)
        county = unlocked(folder / "county.db")
        t2 = time.perf_counter()
        reports = exchange.import_paths(county, [stick])
        out["import"] = time.perf_counter() - t2
        assert all(r.status == "accepted" for r in reports), [r.line() for r in reports if r.status != "accepted"]
        out["changes"] = sum(r.applied for r in reports)
        county.close()
    elif step == "setup-down":  # a new laptop enrolled for the same villages (not timed)
        from app.core import demo as demo_core
        from app.sync import identity

        county = unlocked(folder / "county.db")
        result = identity.enroll(county, site_name="新工作站", role="township", villages=demo_core.village_codes())
        county.close()
        contents = identity.open_enrollment(result.package, result.code)
        identity.create_from_enrollment(folder / "new-laptop.db", contents, operator="admin", passphrase=PASS).close()
    elif step == "down-export":  # the county's USB export for every enrolled laptop
        from app.sync import exchange

        stick = folder / "usb-down"
        stick.mkdir(exist_ok=True)
        county = unlocked(folder / "county.db")
        files = exchange.export_to(county, stick)
        county.close()
        out["bundles"] = len(files)
    elif step == "down-import":  # the new laptop imports the folder (its bundles; the others' are left out)
        from app.sync import exchange

        laptop = unlocked(folder / "new-laptop.db")
        reports = [r for r in exchange.import_paths(laptop, [folder / "usb-down"]) if r.status != "skipped"]
        assert all(r.status == "accepted" for r in reports), [r.line() for r in reports if r.status != "accepted"]
        out["changes"] = sum(r.applied for r in reports)
        out["bundles"] = len(reports)
        laptop.close()
    elif step == "setup-table":
        setup_table(folder, n)
    elif step == "setup-into":  # the demo database's households as export-table writes them
        from app.cli.common import DEMO_OPERATOR
        from app.tables import exporter

        store = unlocked(Path(db), DEMO_OPERATOR)
        (folder / "export.xlsx").write_bytes(exporter.xlsx_bytes(store, exporter.collect(store)))
        store.close()
    elif step == "import-table":
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        from app.services import demo
        from app.store import Store
        from app.tables import importer

        (folder / "imported.db").unlink(missing_ok=True)  # a kept run's (--keep)
        store = Store.create(folder / "imported.db", role="county", site_name="县", operator="admin", passphrase=PASS,
                             recovery_public_key=X25519PrivateKey.generate().public_key())
        demo.install_reference_data(store)
        plan = importer.analyse(store, folder / "ledger.xlsx")
        report = importer.commit(store, plan)
        out["created"] = report.created
        store.close()
    elif step == "import-into":  # the ledger again, into the demo database's copy (its households stored)
        from app.tables import importer

        for tail in ("", "-wal", "-shm", ".lock"):
            (folder / f"into.db{tail}").unlink(missing_ok=True)
        shutil.copyfile(db, folder / "into.db")
        from app.cli.common import DEMO_OPERATOR

        store = unlocked(folder / "into.db", DEMO_OPERATOR)
        plan = importer.analyse(store, folder / "export.xlsx")
        report = importer.commit(store, plan)
        out.update(created=report.created, updated=report.updated, unchanged=report.unchanged,
                   rejected=report.rejected_households)
        store.close()
    else:
        raise SystemExit(f"unknown step {step}")
    out["seconds"] = time.perf_counter() - t
    out["cpu_seconds"] = time.process_time() - cpu  # processor time of the step (all its threads)
    out["peak_mb"] = peak_mb()
    return out


# ---------------------------------------------------------------------- the parent


def child(step: str, folder: Path, n: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JIANDANG_PASSPHRASE=PASS)
    proc = subprocess.run([sys.executable, __file__, "--step", step, "--n", str(n), "--dir", str(folder)],
                          capture_output=True, text=True, encoding="utf-8", env=env)
    if proc.returncode != 0:
        raise SystemExit(f"step {step} at {n} households failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fresh_sync(folder: Path, n: int) -> None:
    """folder/sync: a copy of the county and laptop as set up (folder/sync-setup, made once and kept
    with --keep), which the sync steps change."""
    setup = folder / "sync-setup"
    if not (setup / "laptop.db").exists():
        shutil.rmtree(setup, ignore_errors=True)
        setup.mkdir()
        child("setup-sync", setup, n)
    work = folder / "sync"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    for name in ("county.db", "laptop.db"):
        shutil.copyfile(setup / name, work / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 households")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS)
    parser.add_argument("--keep", metavar="DIR", help="keep the generated databases and sheet in DIR/<size>/ "
                        "and reuse them on the next run")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:  # a child process: one step, its figures as the last line
        print(json.dumps(run_step(args.step, Path(args.dir), args.n)))
        return 0
    sizes = args.sizes or ([1000, 5000] if args.quick else [1000, 10000, 50000])
    steps = [s for s in STEPS if s not in args.skip]
    print(f"workload: demo county, 6 villages; sizes {' / '.join(f'{n:,}' for n in sizes)} households; "
          f"steps: {', '.join(LABELS[s] for s in steps)}; each step in its own process; "
          f"{os.cpu_count()} CPUs (shared: figures are noisy)")
    results: dict[str, dict[int, dict]] = {s: {} for s in ["idle", *steps]}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(args.keep) / str(n) if args.keep else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            results["idle"][n] = child("idle", folder, n)
            if "demo" in args.skip and (folder / "demo.db").exists():
                child("prepare", folder, n)
            for step in steps:
                if step in READ_DEMO and "demo" in args.skip and not (folder / "demo.db").exists():
                    continue
                where = folder
                if step in ("sync", "sync-down"):
                    where = folder / "sync"
                    if step == "sync" or "sync" in args.skip:  # the county must hold the households first
                        fresh_sync(folder, n)
                    if step == "sync-down":
                        if "sync" in args.skip:
                            child("sync", where, n)
                        child("setup-down", where, n)
                if step == "import-table" and not (folder / "ledger.xlsx").exists():
                    child("setup-table", folder, n)
                if step == "import-into" and not (folder / "export.xlsx").exists():
                    child("setup-into", folder, n)
                if step == "sync-down":  # two processes: each its own peak
                    export, imported = child("down-export", where, n), child("down-import", where, n)
                    r = results[step][n] = {
                        "seconds": export["seconds"] + imported["seconds"],
                        "cpu_seconds": export["cpu_seconds"] + imported["cpu_seconds"],
                        "peak_mb": max(export["peak_mb"] or 0, imported["peak_mb"] or 0) or None,
                        "export": export["seconds"], "export_peak_mb": export["peak_mb"], "import": imported["seconds"],
                        "export_cpu": export["cpu_seconds"], "import_cpu": imported["cpu_seconds"],
                        "import_peak_mb": imported["peak_mb"], "changes": imported["changes"],
                        "bundles": imported["bundles"]}
                else:
                    r = results[step][n] = child(step, where, n)
                households = {"register": n // 6, "cards": n // 6, "book": n // 6 * 3}.get(step, n // 6 * 6)
                r["ms_per_household"] = r["seconds"] * 1000 / households
                r["cpu_ms_per_household"] = r["cpu_seconds"] * 1000 / households
                extra = ""
                if step == "sync":
                    extra = (f" (export {r['export']:.1f} s, peak {fmt_mb(r['export_peak_mb'])}; import {r['import']:.1f} s;"
                             f" {r['changes']:,} changes in {r['bundles']} bundles)")
                if step == "import-into":
                    extra = (f" ({r['updated']:,} updated, {r['unchanged']:,} unchanged, {r['created']:,} created,"
                             f" {r['rejected']:,} rejected)")
                if step == "sync-down":
                    extra = (f" (county export {r['export']:.1f} s, processor {r['export_cpu']:.1f} s, peak"
                             f" {fmt_mb(r['export_peak_mb'])}; laptop import {r['import']:.1f} s, processor"
                             f" {r['import_cpu']:.1f} s, peak {fmt_mb(r['import_peak_mb'])}; {r['changes']:,} changes in"
                             f" {r['bundles']} bundles)")
                print(f"  {n:>6,} households  {LABELS[step]:<28} {r['seconds']:8.1f} s  "
                      f"{r['ms_per_household']:7.2f} ms/household (processor {r['cpu_ms_per_household']:.2f})  "
                      f"peak {fmt_mb(r['peak_mb'])}{extra}", flush=True)
    print()
    print(f"{'step':<30}" + "".join(f"{f'{n:,}: ms/hh  MB':>22}" for n in sizes) + "   verdict")
    for step, by_size in results.items():
        if not by_size:
            continue
        cells = "".join(f"{by_size[n].get('ms_per_household', 0):>12.2f}{fmt_mb(by_size[n]['peak_mb']):>10}"
                        if step != "idle" else f"{'':>12}{fmt_mb(by_size[n]['peak_mb']):>10}" for n in sizes)
        print(f"{LABELS[step]:<30}{cells}   {verdict(step, by_size, sizes)}")
    return 0


def fmt_mb(value) -> str:
    return "n/a" if value is None else f"{value:.0f} MB"


def verdict(step: str, by_size: dict, sizes: list[int]) -> str:
    if step == "idle" or len(sizes) < 2:
        return ""
    first, last = by_size[sizes[0]], by_size[sizes[-1]]
    cost = last["ms_per_household"] / first["ms_per_household"]
    words = [f"cost x{cost:.2f} per household ({'linear' if cost <= 1.2 else 'NOT linear'})"]
    if first.get("cpu_ms_per_household") and last.get("cpu_ms_per_household"):
        cpu = last["cpu_ms_per_household"] / first["cpu_ms_per_household"]
        words.append(f"processor time x{cpu:.2f} per household ({'linear' if cpu <= 1.2 else 'NOT linear'})")
    if first["peak_mb"] and last["peak_mb"]:
        grow = last["peak_mb"] / first["peak_mb"]
        words.append(f"memory x{grow:.2f} ({'flat' if grow <= 1.25 else 'grows'})")
    return "; ".join(words)


if __name__ == "__main__":
    sys.exit(main())
