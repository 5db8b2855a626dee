"""Peak memory of `jiandang sync import` at the county for a bundle that inflates far beyond its size.

Workload: an enrolled laptop signs and seals an upstream bundle whose payload is its changes plus
PAD_MB (default 200) MB of zeros: about 204 KB on disk (a "zip bomb" made by a device that holds a
real key). `python -m app sync import` runs in a child process (`--code DIR` for another checkout,
e.g. the code before a change) and reports its own peak RSS; baseline in the same invocation: the
same import of the laptop's ordinary bundle. Figures: median of RUNS peak RSS for each, the ratio,
and what the import said.

    python bench/import_bomb.py [--pad-mb 200] [--runs 3] [--code DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import _throwaway  # noqa: E402,F401 - a cheap key-derivation profile for throwaway databases

from app.services import households  # noqa: E402
from app.sync import exchange, identity, wire  # noqa: E402
from tests import factories  # noqa: E402
from tests.sync_helpers import PASSPHRASE, make_county, make_device  # noqa: E402

CHILD = """
import sys
from app.cli.main import main
code = main(["sync", "import", sys.argv[1], sys.argv[2]])
from bench.procmem import own
print("PEAK", own()[1], code)
"""


def bomb(laptop, pad_mb: int) -> bytes:
    seq = int(laptop.meta("sync_out_seq", 0)) + 1
    header = {"format": wire.FORMAT, "type": "up", "sender": laptop.site_id, "recipient": laptop.meta("county_site_id"),
              "seq": seq, "prev": "", "created": identity.iso(exchange._utcnow()), "expires": None,
              "counts": {"changes": 0, "first": 0, "last": 0}}
    payload = {"certificate": laptop.site_id, "changes": [], "down_rowid": 0, "down_seq": 0, "pad": "0" * (pad_mb * 1024 * 1024)}
    body = wire.seal_payload(payload, identity.county_enc_public(laptop), header)
    return wire.pack(identity.device_signing_key(laptop), header, body)


def peak(code: Path, county_db: Path, bundle: Path, folder: Path) -> tuple[int, str]:
    target = folder / "county-run.db"
    shutil.copy(county_db, target)
    env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}{ROOT}", JIANDANG_PASSPHRASE=PASSPHRASE,
               JIANDANG_OPERATOR="admin", JIANDANG_HOME=str(folder / "home"))
    out = subprocess.run([sys.executable, "-c", CHILD, str(target), str(bundle)], env=env, cwd=str(folder),
                         capture_output=True, text=True, timeout=600)
    target.unlink()
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PEAK")), None)
    if line is None:
        raise SystemExit(f"import failed: {out.stdout}\n{out.stderr}")
    said = next((ln for ln in out.stdout.splitlines() if ".jdb" in ln), "").split(":", 1)[-1][:70]
    return int(line.split()[1]), said


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pad-mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--code", type=Path, default=ROOT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        county = make_county(folder)
        laptop = make_device(folder, county, "甲队")
        households.save(laptop, factories.household())
        name, data = exchange.export_upstream(laptop)
        (folder / "normal").mkdir()
        normal = folder / "normal" / name
        normal.write_bytes(data)
        (folder / "bomb").mkdir()
        big = folder / "bomb" / f"{laptop.site_id}-up-000002.jdb"
        big.write_bytes(bomb(laptop, args.pad_mb))
        county_db = Path(county.path)
        laptop.close()
        county.close()
        print(f"workload: `sync import` at the county of one upstream bundle of {big.stat().st_size / 1024:.0f} KB whose "
              f"payload inflates to {args.pad_mb} MB (signed by an enrolled laptop), in a child process; "
              f"baseline: the laptop's ordinary {len(data) / 1024:.1f} KB bundle; code {args.code}")
        bombs, normals = [], []
        for run in range(args.runs):
            b, said_b = peak(args.code, county_db, big, folder)
            n, said_n = peak(args.code, county_db, normal, folder)
            bombs.append(b)
            normals.append(n)
            print(f"  run {run + 1}: bomb peak {b / 2**20:.0f} MB ({said_b.strip()}); ordinary peak {n / 2**20:.0f} MB")
    b, n = statistics.median(bombs), statistics.median(normals)
    print(f"peak RSS (median of {args.runs}): bomb {b / 2**20:.0f} MB, ordinary bundle {n / 2**20:.0f} MB, ratio {b / n:.2f}")


if __name__ == "__main__":
    main()
