"""Benchmark: importing a 20,000-household workbook (one sheet, one row per member, household fields
repeated: the common 台账 layout) into a fresh database, against openpyxl merely reading the same
workbook in read-only mode in the same run.

    python bench/table.py [--households 20000] [--runs 3]

Prints the workload, the median time of each, rows per second, the ratio import / read and the peak
resident memory of each (each read and each import runs in a fresh subprocess, so the peak covers that
work alone, not generating the workbook).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import resource
except ImportError:  # Windows
    resource = None

import _throwaway  # noqa: E402,F401 - a cheap key-derivation profile for throwaway databases
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from openpyxl import Workbook, load_workbook  # noqa: E402

from app.core import demo, idnumber  # noqa: E402
from app.core.dictionary import default  # noqa: E402
from app.services import demo as demo_service  # noqa: E402
from app.store import Store  # noqa: E402
from app.tables import importer  # noqa: E402


def workbook(n_households: int) -> tuple[bytes, int]:
    """A one-sheet ledger of n households built from the demo generator (code labels, 是/否)."""
    d = default()
    villages = demo.village_codes()
    per_village = -(-n_households // len(villages))
    docs = demo.households(per_village)[:n_households]
    house_keys = [k for k in d.kinds["household"].fields]
    member_keys = [k for k in d.kinds["member"].fields]
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("台账")
    ws.append(["村代码", *(d.field_label("household", k) for k in house_keys),
               *(d.field_label("member", k) for k in member_keys)])
    rows = 0
    seen: set[str] = set()
    for doc in docs:
        for m in doc["members"]:  # the demo generator's sequence numbers repeat past a few thousand households
            number, seq = m["id_number"], 0
            while number in seen and seq < 500:
                seq += 1
                number = idnumber.make(number[:6], dt.date.fromisoformat(m["birth_date"]), seq, m["sex"])
            seen.add(number)
            m["id_number"] = number
        house = [doc["village_code"], *(d.display("household", k, doc.get(k)) or None for k in house_keys)]
        for m in doc["members"]:
            ws.append([*house, *(d.display("member", k, m.get(k)) or None for k in member_keys)])
            rows += 1
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), rows


def read_only(path: Path) -> int:
    wb = load_workbook(path, read_only=True, data_only=True)
    n = sum(1 for ws in wb.worksheets for _ in ws.iter_rows(values_only=True))
    wb.close()
    return n


def import_once(path: Path, folder: Path, i: int, marks: dict | None = None) -> importer.Report:
    store = Store.create(folder / f"bench{i}.db", role="county", site_name="bench", operator="admin",
                         passphrase="bench-passphrase", recovery_public_key=X25519PrivateKey.generate().public_key())
    try:
        demo_service.install_reference_data(store)
        plan = importer.analyse(store, path)
        if marks is not None:
            marks["analysed_mb"] = peak_mb()
        return importer.commit(store, plan)
    finally:
        store.close()


def peak_mb() -> float | None:
    """This process's peak resident memory. On Linux from VmHWM: ru_maxrss would carry over the
    parent's peak (generating the workbook) across the exec of the subprocess."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


def child(what: str, path: Path, folder: Path, i: int) -> None:
    """One read or one import in this fresh process; prints its time, result and peak as JSON."""
    base, cpu = peak_mb(), time.process_time()
    t = time.perf_counter()
    if what == "read":
        result = {"rows": read_only(path)}
    else:
        result = {}
        report = import_once(path, folder, i, result)
        result.update(created=report.created, rejected=len(report.rejected_rows), summary=report.summary())
    print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - cpu, "peak_mb": peak_mb(),
                      "base_mb": base, **result}))


def run_child(what: str, path: Path, folder: Path, i: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", what, str(path), str(folder), str(i)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, path, folder, i = args.child
        child(what, Path(path), Path(folder), int(i))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, rows = workbook(args.households)
        path = folder / "ledger.xlsx"
        path.write_bytes(data)
        print(f"workload: {args.households} households, {rows} member rows, one sheet, "
              f"{len(data) / 1e6:.1f} MB .xlsx; median of {args.runs} runs")
        reads, imports, read_peaks, import_peaks, read_cpu, import_cpu, bases, analysed = [], [], [], [], [], [], [], []
        for i in range(args.runs):
            read = run_child("read", path, folder, i)
            assert read["rows"] == rows + 1
            reads.append(read["seconds"])
            read_cpu.append(read["cpu"])
            read_peaks.append(read["peak_mb"])
            result = run_child("import", path, folder, i)
            imports.append(result["seconds"])
            import_cpu.append(result["cpu"])
            bases.append(result["base_mb"])
            analysed.append(result.get("analysed_mb"))
            import_peaks.append(result["peak_mb"])
            assert result["created"] == args.households and not result["rejected"], result["summary"]
        read, imp = statistics.median(reads), statistics.median(imports)
        print(f"baseline openpyxl read-only read: {read:.2f} s ({rows / read:,.0f} rows/s)")
        print(f"import (analyse + one-transaction commit into a fresh database): {imp:.2f} s ({rows / imp:,.0f} rows/s)")
        print(f"ratio import / read-only read: {imp / read:.2f}x (CPU time of each process: "
              f"{statistics.median(import_cpu):.2f} s / {statistics.median(read_cpu):.2f} s = "
              f"{statistics.median(import_cpu) / statistics.median(read_cpu):.2f}x)")
        if read_peaks[0] is not None:
            print(f"peak resident memory, each in its own process: read-only read {statistics.median(read_peaks):.0f} MB, "
                  f"import {statistics.median(import_peaks):.0f} MB (ratio {statistics.median(import_peaks) / statistics.median(read_peaks):.1f}x); "
                  f"the import's process before the import {statistics.median(bases):.0f} MB, "
                  f"after the analysis {statistics.median(analysed):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
