"""Attachments benchmark: phone photos added to a village, and the bundles that carry them.

Workload: a county enrolls one village laptop; the laptop has 100 households (`--households`); N phone
photos (`--photos`, default 1,000; 4000x3000 JPEG of about 3 MB, generated with Pillow, each different)
are added to them, 10 a household, through `attachments.add_files` (read, check, EXIF, resize to 1600,
re-encode at quality 80, seal, content-address, write the record and its change). Figures:

- time per photo (median over the photos) against Pillow's own resize of the same file in the same
  process (open, `Image.thumbnail((1600, 1600))`, which also decodes JPEG at a reduced scale, save as
  JPEG quality 80 into memory), measured photo by photo alternately, and the ratio of the medians;
- disk per photo: growth of the database file (after a WAL checkpoint) divided by N, against the mean
  size of the re-encoded JPEGs Pillow produced;
- bundle time: `sync export` of everything (changes, then images over several bundles of the 16 MB
  budget) and the county's import of those bundles.

    python bench/attachments.py [--photos 1000] [--quick]

`--quick` is 60 photos in 6 households.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _throwaway  # noqa: E402,F401 - a cheap key-derivation profile for throwaway databases

from PIL import Image, ImageDraw  # noqa: E402

from app import settings as app_settings  # noqa: E402
from app.services import attachments  # noqa: E402
from app.store import Store  # noqa: E402
from app.sync import exchange, identity  # noqa: E402

PASS = "bench-passphrase"
VILLAGE = "522634101201"
CONF = app_settings.Settings(photo_max_side=1600, photo_quality=80)


def make_photos(folder: Path, count: int) -> list[Path]:
    """Distinct 4000x3000 phone-like JPEGs: a gradient with sensor-like noise and a unique mark."""
    base = Image.linear_gradient("L").resize((4000, 3000))
    noise = Image.effect_noise((4000, 3000), 24)
    green = Image.blend(base, noise, 0.35)
    exif = Image.Exif()
    exif[0x010F] = "BenchPhone"
    exif.get_ifd(0x8769)[0x9003] = "2025:06:01 09:00:00"
    out = []
    for i in range(count):
        img = Image.merge("RGB", (noise if i % 2 else base, green, base.rotate(180)))
        draw = ImageDraw.Draw(img)
        draw.rectangle([100 + (i % 30) * 120, 100 + (i // 30) % 20 * 140, 400 + (i % 30) * 120, 380 + (i // 30) % 20 * 140],
                       fill=((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        path = folder / f"IMG_{i:05d}.jpg"
        img.save(path, "JPEG", quality=90, exif=exif.tobytes())
        out.append(path)
    return out


def pillow_resize(path: Path) -> int:
    with Image.open(path) as img:
        img.thumbnail((1600, 1600))
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=80)
    return len(buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="60 photos in 6 households")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.households = 60, 6
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        from app.services import demo, households

        county = Store.create(folder / "county.db", role="county", site_name="雷山县扶贫办", operator="admin",
                              passphrase=PASS, recovery_public_key=X25519PrivateKey.generate().public_key())
        identity.setup_county(county)
        demo.install_reference_data(county)
        result = identity.enroll(county, site_name="工作队", role="village", villages=[VILLAGE])
        laptop = identity.create_from_enrollment(folder / "laptop.db", identity.open_enrollment(result.package, result.code),
                                                 operator="admin", passphrase=PASS)
        with laptop.transaction():  # numbers from the laptop's own block
            for i in range(1, args.households + 1):
                laptop.put("household", {"household_number": households.next_household_number(laptop, VILLAGE),
                                         "head_name": f"户主{i}"}, village_code=VILLAGE)
        houses = list(laptop.records("household"))
        photo_dir = folder / "DCIM"
        photo_dir.mkdir()
        t0 = time.perf_counter()
        photos = make_photos(photo_dir, args.photos)
        made = time.perf_counter() - t0
        sizes = [p.stat().st_size for p in photos]
        print(f"workload: {len(photos)} photos 4000x3000 JPEG (median {statistics.median(sizes) / 1e6:.2f} MB, "
              f"generated in {made:.0f} s) added to {len(houses)} households of one village, "
              f"{len(photos) // len(houses)} each; longest side {CONF.photo_max_side}, quality {CONF.photo_quality}")
        laptop.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = laptop.path.stat().st_size
        ours, pillow, out_sizes = [], [], []
        for i, path in enumerate(photos):
            t = time.perf_counter()
            out_sizes.append(pillow_resize(path))
            pillow.append(time.perf_counter() - t)
            t = time.perf_counter()
            report = attachments.add_files(laptop, houses[i % len(houses)], [path], kind="住房", conf=CONF)
            ours.append(time.perf_counter() - t)
            assert len(report.added) == 1, report.lines()
        laptop.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        grown = laptop.path.stat().st_size - before
        m_ours, m_pillow = statistics.median(ours), statistics.median(pillow)
        print(f"add: {m_ours * 1000:.0f} ms per photo (median; total {sum(ours):.1f} s); "
              f"Pillow resize alone {m_pillow * 1000:.0f} ms; ratio {m_ours / m_pillow:.2f}")
        print(f"disk: {grown / len(photos) / 1024:.0f} KB per photo in the database "
              f"(re-encoded JPEG {statistics.mean(out_sizes) / 1024:.0f} KB, original {statistics.mean(sizes) / 1024:.0f} KB; "
              f"database/JPEG {grown / len(photos) / statistics.mean(out_sizes):.2f})")
        usb = folder / "usb"
        usb.mkdir()
        t = time.perf_counter()
        written = exchange.export_to(laptop, usb)
        export = time.perf_counter() - t
        total = sum(p.stat().st_size for p in written)
        t = time.perf_counter()
        reports = exchange.import_paths(county, [usb])
        imported = time.perf_counter() - t
        assert all(r.status == "accepted" for r in reports), [r.line() for r in reports]
        got = sum(r.attachments for r in reports)
        assert got == len(photos), got
        images = sum(row["size"] for row in attachments.listing(laptop))
        print(f"bundles: export {export:.1f} s into {len(written)} bundles of {total / 1e6:.0f} MB "
              f"({export / len(photos) * 1000:.1f} ms a photo); county import {imported:.1f} s "
              f"({imported / len(photos) * 1000:.1f} ms a photo); bundle bytes / image bytes {total / images:.2f}")
        laptop.close()
        county.close()


if __name__ == "__main__":
    main()
