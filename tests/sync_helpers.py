"""Helpers for the sync tests: a county with enrolled laptops, and moving bundles between them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from app.services import demo
from app.store import Store
from app.sync import exchange, identity

PASSPHRASE = "correct horse battery"
VILLAGE = "522634101201"
OTHER_VILLAGE = "522634101202"
FAR_VILLAGE = "522634102201"


def county_location(tmp: Path, name: str):
    """Where make_county puts a county: a file in tmp; a fresh PostgreSQL database in the county
    variant of modules with COUNTY_BACKENDS (tests/conftest.py replaces this for the test)."""
    return tmp / name


def address(store_or_place) -> str:
    """The database as a command line names it: a file path, or the full PostgreSQL URL (with its
    password, which `store.path` masks)."""
    place = getattr(store_or_place, "path", store_or_place)
    return getattr(place, "url", None) or str(place)


def copy_of(store_or_place, tmp: Path, name: str):
    """A copy of a closed database: the file copied, or a new PostgreSQL database made from it."""
    import shutil

    source = address(store_or_place)
    if "://" in source:
        from tests import pg

        return pg.copy_database(source)
    shutil.copy(source, tmp / name)
    return tmp / name


def make_county(tmp: Path, name: str = "county.db") -> Store:
    county = Store.create(county_location(tmp, name), role="county", site_name="雷山县扶贫办", operator="admin", passphrase=PASSPHRASE,
                          recovery_public_key=X25519PrivateKey.generate().public_key())
    identity.setup_county(county)
    demo.install_reference_data(county)
    return county


def make_device(tmp: Path, county: Store, name: str, villages=(VILLAGE,), role: str = "village", days: int = 365) -> Store:
    result = identity.enroll(county, site_name=name, role=role, villages=list(villages), days=days)
    contents = identity.open_enrollment(result.package, result.code)
    return identity.create_from_enrollment(tmp / f"{name}.db", contents, operator="admin", passphrase=PASSPHRASE)


def up(device: Store, county: Store):
    """Export the device's bundle and import it at the county; returns the report."""
    name, data = exchange.export_upstream(device)
    return exchange.import_bundle(county, data, name)


def down(county: Store, device: Store):
    name, data = exchange.export_downstream(county, device.site_id)
    return exchange.import_bundle(device, data, name)


def state(store: Store) -> dict:
    """What a user sees: every record's kind, village, parent, deleted flag, fields and each field's clock."""
    out = {}
    for r in store.records(include_deleted=True):
        out[r.id] = (r.kind, r.village_code, r.parent_id, r.deleted, r.fields,
                     {k: r.clock_of(k) for k in r.fields})
    return out


def change_ids(store: Store) -> set:
    return {tuple(r) for r in store.conn.execute("SELECT site_id, seq FROM changes")}


def digest(store: Store) -> str:
    return exchange.store_digest(store)


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


PART_HEADS = ["欧阳明远", "诸葛长青", "上官玉梅", "司马安邦", "东方红霞", "慕容春生"]


def laptop_with_work(tmp: Path, county: Store, name: str = "甲队", photo_count: int = 0) -> Store:
    """A laptop enrolled in `county` that has typed a household for each of PART_HEADS (compound
    surnames) and, when asked, taken `photo_count` visit photos of the first one."""
    from app.services import attachments, households
    from tests import factories, photos

    laptop = make_device(tmp, county, name)
    for i, head in enumerate(PART_HEADS):
        households.save(laptop, factories.household(head, seq=i + 1))
    if photo_count:
        house = next(r for r in laptop.records("household") if r.fields.get("head_name") == PART_HEADS[0])
        folder = tmp / "photos"
        folder.mkdir()
        for i in range(photo_count):
            (folder / f"IMG_{i:04d}.jpg").write_bytes(photos.photo(640, 480, seed=i))
        assert len(attachments.add_files(laptop, house, [folder], kind="走访").added) == photo_count
    return laptop
