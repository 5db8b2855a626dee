"""Sync between laptops and the county: merge, conflicts, convergence, crash safety, recovery,
county duplicates and the CLI contract."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli.main import main
from app.services import households
from app.store import Store, StoreError
from app.sync import exchange, identity, merge
from tests import factories
from tests.support.jiandang_test_hooks import subprocess_env
from tests.sync_helpers import (
    OTHER_VILLAGE, PASSPHRASE, VILLAGE, address, change_ids, copy_of, digest, down, make_county, make_device, state, up,
)

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub(tmp_path):
    """A county and two laptops of the same village that both hold one household from laptop A."""
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    result = households.save(a, factories.household())
    assert up(a, county).status == "accepted"
    assert down(county, b).status == "accepted"
    assert down(county, a).status == "accepted"
    yield county, a, b, result.household_id
    for s in (a, b, county):
        s.close()


def test_a_household_travels_from_one_laptop_to_another_through_the_county(hub):
    county, a, b, hid = hub
    assert households.document(b, hid) == households.document(a, hid) == households.document(county, hid)
    # the household number came from laptop A's certificate block
    block = identity.device_certificate(a).body["number_block"]
    number = int(households.document(a, hid)["household_number"][len(VILLAGE):])
    assert block[0] <= number <= block[1]


def test_two_laptops_editing_one_field_give_one_conflict_whose_loser_can_be_restored(hub):
    county, a, b, hid = hub
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    time.sleep(0.005)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    assert up(a, county).status == "accepted"
    report = up(b, county)
    assert report.status == "accepted" and report.conflicts == 1
    [c] = merge.conflicts(county)
    assert (c.field, c.winner_value, c.loser_value) == ("phone", "13900000002", "13800000001")
    assert county.get(hid).fields["phone"] == "13900000002"
    # nothing is lost, and the resolution syncs to the laptops
    merge.resolve(county, c.id, "other")
    assert county.get(hid).fields["phone"] == "13800000001"
    assert merge.conflicts(county) == []
    assert down(county, a).status == "accepted"
    assert down(county, b).status == "accepted"
    assert a.get(hid).fields["phone"] == b.get(hid).fields["phone"] == "13800000001"


def test_keeping_the_winner_closes_the_conflict_without_a_change(hub):
    county, a, b, hid = hub
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    up(a, county), up(b, county)
    [c] = merge.conflicts(county)
    count = county.change_count()
    assert merge.resolve(county, c.id, "winner") is None
    assert county.change_count() == count and merge.conflicts(county) == []
    assert merge.conflicts(county, "kept")[0].id == c.id


def test_resolving_a_conflict_twice_says_in_chinese_how_it_was_resolved(hub):
    county, a, b, hid = hub
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    b.put("household", {"phone": "13900000002"}, record_id=hid)
    up(a, county), up(b, county)
    [c] = merge.conflicts(county)
    merge.resolve(county, c.id, "other")
    before = digest(county)
    for keep in ("other", "winner"):
        with pytest.raises(StoreError) as refused:
            merge.resolve(county, c.id, keep)
        assert f"冲突 {c.id} 已处理过(已恢复另一方的值)" in str(refused.value)
        assert "restored" not in str(refused.value)
        assert f"jiandang conflicts {county.path.name} --all" in str(refused.value)
    assert digest(county) == before


def test_init_from_a_township_package_names_the_township_as_such(tmp_path, monkeypatch, capsys):
    from app.services import demo

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county_db, package = tmp_path / "county.db", tmp_path / "town.jde"
    assert main(["init", str(county_db), "--role", "county", "--site-name", "雷山县扶贫办"]) == 0
    with Store.open(county_db) as county:
        county.unlock("admin", PASSPHRASE)
        demo.install_reference_data(county)
    assert main(["enroll", str(county_db), "--site-name", "西江镇扶贫站", "--role", "township", "--villages",
                 f"{VILLAGE[:9]},{OTHER_VILLAGE}", "--out", str(package)]) == 0
    code = next(line.split(":", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("登记码"))
    monkeypatch.setenv("JIANDANG_ENROLLMENT_CODE", code)
    assert main(["init", str(tmp_path / "town.db"), "--enrollment", str(package)]) == 0
    out = capsys.readouterr().out
    assert f"乡镇 西江镇({VILLAGE[:9]})、村 石桥村({OTHER_VILLAGE})" in out
    assert f"村 {VILLAGE[:9]}" not in out
    # the certificate's expiry in local date and time, as the window shows it (not 2029-11-28T09:44:13Z)
    assert main(["devices", str(county_db), "--json"]) == 0
    not_after = json.loads(capsys.readouterr().out)[0]["not_after"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", not_after)
    expiry = identity.parse_iso(not_after).astimezone().strftime("%Y-%m-%d %H:%M")
    assert f"证书有效至 {expiry}," in out and not_after not in out
    assert main(["devices", str(county_db)]) == 0
    listing = capsys.readouterr().out
    assert f"\t{expiry}\t" in listing and not_after not in listing


def test_edits_of_different_fields_merge_without_conflict(hub):
    county, a, b, hid = hub
    a.put("household", {"phone": "13800000001"}, record_id=hid)
    b.put("household", {"bank_account": "6222000011112222"}, record_id=hid)
    up(a, county), up(b, county)
    assert merge.conflicts(county) == []
    fields = county.get(hid).fields
    assert fields["phone"] == "13800000001" and fields["bank_account"] == "6222000011112222"


def test_a_delete_concurrent_with_an_edit_goes_to_review(hub):
    county, a, b, hid = hub
    member = next(iter(a.records("member", parent_id=hid)))
    a.delete(member.id, reason="2")
    time.sleep(0.005)
    b.put("member", {"phone": "13700000000"}, record_id=member.id)
    up(a, county), up(b, county)
    conflicts = merge.conflicts(county)
    assert [c.field for c in conflicts] == ["__deleted"]
    assert county.get(member.id).deleted
    merge.resolve(county, conflicts[0].id, "other")
    assert not county.get(member.id).deleted
    assert county.get(member.id).fields["phone"] == "13700000000"


# ---------------------------------------------------------------------- convergence (property test)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """County, three laptops of one village and a household they all hold (closed files to copy)."""
    folder = tmp_path_factory.mktemp("template")
    county = make_county(folder)
    laptops = [make_device(folder, county, name) for name in ("甲", "乙", "丙")]
    hid = households.save(laptops[0], factories.household()).household_id
    up(laptops[0], county)
    for laptop in laptops:
        down(county, laptop)
    members = [m.id for m in laptops[0].records("member", parent_id=hid)]
    names = [Path(s.path).name for s in (county, *laptops)]
    for s in (county, *laptops):
        s.close()
    return folder, names, hid, members


def _open_copy(folder: Path, name: str, into: Path, wall=time.time) -> Store:
    shutil.copy(folder / name, into / name)
    s = Store.open(into / name, wall=wall)
    s.unlock("admin", PASSPHRASE)
    return s


EDIT = st.tuples(st.integers(0, 2), st.integers(0, 2), st.sampled_from(["phone", "note", "delete", "restore"]),
                 st.integers(0, 3), st.booleans())


@settings(max_examples=int(os.environ.get("JIANDANG_SYNC_EXAMPLES", "15")), deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=st.lists(EDIT, min_size=1, max_size=12), seed=st.integers(0, 10_000))
def test_any_import_order_with_duplicates_converges(template, tmp_path_factory, edits, seed):
    folder, names, hid, members = template
    work = tmp_path_factory.mktemp("run")
    frozen = time.time() + 1000  # every laptop's wall clock stands still: their clocks tie often
    laptops = [_open_copy(folder, n, work, wall=lambda: frozen) for n in names[1:]]
    targets = [hid, *members]
    bundles = []
    for who, target, action, value, export in edits:
        laptop, rid = laptops[who], targets[target]
        record = laptop.get(rid)
        if action == "delete":
            if rid != hid:
                laptop.delete(rid, reason="2")
        elif action == "restore":
            if record.deleted:
                laptop.put(record.kind, {}, record_id=rid)
        else:
            laptop.put(record.kind, {action if record.kind == "household" or action == "phone" else "phone":
                                     f"1380000000{value}"}, record_id=rid)
        if export:
            bundles.append(exchange.export_upstream(laptop))
    for laptop in laptops:
        bundles.append(exchange.export_upstream(laptop))
        laptop.close()
    rng = random.Random(seed)
    results = []
    for run in range(2):
        into = work / f"county{run}"
        into.mkdir()
        county = _open_copy(folder, names[0], into)
        order = bundles + rng.sample(bundles, k=min(3, len(bundles)))
        rng.shuffle(order)
        for name, data in order:
            report = exchange.import_bundle(county, data, name)
            assert report.status in ("accepted", "duplicate"), report.message
        results.append((state(county), change_ids(county)))
        county.close()
    assert results[0] == results[1]


def test_equal_clocks_from_three_sites_resolve_by_site_id_in_any_order(template, tmp_path):
    """X writes phone, Y writes note, Z writes phone, all at the same clock (site ids X < Z < Y):
    Z's phone wins whatever the order, because the tie is broken by the site that wrote that field."""
    folder, names, hid, _ = template
    frozen = time.time() + 2000
    laptops = [_open_copy(folder, n, tmp_path, wall=lambda: frozen) for n in names[1:]]
    x, z, y = sorted(laptops, key=lambda s: s.site_id)
    x.put("household", {"phone": "13800000001"}, record_id=hid)
    y.put("household", {"note": "乙的备注"}, record_id=hid)
    z.put("household", {"phone": "13800000003"}, record_id=hid)
    assert len({s.get(hid).clock_of(f) for s, f in ((x, "phone"), (y, "note"), (z, "phone"))}) == 1
    bundles = {s.site_id: exchange.export_upstream(s) for s in laptops}
    for s in laptops:
        s.close()
    results = []
    for run, order in enumerate(([x, y, z], [z, y, x], [y, x, z])):
        into = tmp_path / f"county{run}"
        into.mkdir()
        county = _open_copy(folder, names[0], into)
        for s in order:
            name, data = bundles[s.site_id]
            assert exchange.import_bundle(county, data, name).status == "accepted"
        results.append(state(county))
        assert county.get(hid).fields["phone"] == "13800000003"
        county.close()
    assert results[0] == results[1] == results[2]


# ---------------------------------------------------------------------- crash safety


def _cli_env(**extra):
    return subprocess_env(JIANDANG_PASSPHRASE=PASSPHRASE, JIANDANG_OPERATOR="admin", **extra)


def test_killing_the_import_mid_transaction_then_rerunning_imports_everything_exactly_once(tmp_path):
    county = make_county(tmp_path)
    laptops = [make_device(tmp_path, county, name) for name in ("甲", "乙", "丙")]
    usb = tmp_path / "usb"
    usb.mkdir()
    for i, laptop in enumerate(laptops):
        households.save(laptop, factories.household(head=f"户主{i}", seq=2 * i + 1))
        exchange.export_to(laptop, usb)
        laptop.close()
    county.close()
    reference = copy_of(county, tmp_path, "reference.db")
    county_db = address(county)
    marker = tmp_path / "holding"
    proc = subprocess.Popen([sys.executable, "-m", "app", "sync", "import", county_db, str(usb)],
                            env=_cli_env(JIANDANG_TEST_HOLD_IMPORT=str(marker)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    for _ in range(600):
        if marker.exists():
            break
        time.sleep(0.05)
    assert marker.exists(), proc.communicate(timeout=5)
    proc.kill()  # SIGKILL on POSIX, TerminateProcess on Windows; inside the first bundle's open transaction
    proc.wait()
    after_kill = Store.open(county_db)
    after_kill.unlock("admin", PASSPHRASE)
    assert after_kill.count("household") == 0 and after_kill.conn.execute("SELECT count(*) FROM receipts").fetchone()[0] == 0
    after_kill.close()
    rerun = subprocess.run([sys.executable, "-m", "app", "sync", "import", county_db, str(usb)],
                           env=_cli_env(), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("已接收") == 3
    again = subprocess.run([sys.executable, "-m", "app", "sync", "import", county_db, str(usb)],
                           env=_cli_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count("重复") == 3
    # same result as an import that was never interrupted
    ref = Store.open(reference)
    ref.unlock("admin", PASSPHRASE)
    for report in exchange.import_paths(ref, [usb]):
        assert report.status == "accepted"
    final = Store.open(county_db)
    final.unlock("admin", PASSPHRASE)
    assert final.count("household") == 3
    total = final.conn.execute("SELECT count(*) FROM changes").fetchone()[0]
    assert total == len(change_ids(final)) == ref.change_count()
    assert state(final) == state(ref)
    final.close()
    ref.close()


# ---------------------------------------------------------------------- county duplicates, recovery, rebuild


def _two_households_sharing_an_id_number(tmp_path):
    """Two laptops of two villages, each with a household whose spouse has the same ID number; the
    first one's bundle already at the county. (county, a, b, first, second, the spouse's ID number)"""
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲", villages=(VILLAGE,))
    b = make_device(tmp_path, county, "乙", villages=(OTHER_VILLAGE,))
    first = households.save(a, factories.household())
    doc = dict(factories.household(head="另一户主", seq=5), village_code=OTHER_VILLAGE)
    doc["members"][1] = dict(factories.household()["members"][1])  # the same spouse ID number
    second = households.save(b, doc, allow_errors=True)
    assert up(a, county).status == "accepted"
    return county, a, b, first, second, doc["members"][1]["id_number"]


def test_the_same_id_number_in_two_households_is_reported_at_import_naming_both(tmp_path):
    county, a, b, first, second, _ = _two_households_sharing_an_id_number(tmp_path)
    report = up(b, county)
    assert report.status == "accepted"
    assert [(d[0], d[1]) for d in report.duplicates] == [(second.household_id, first.household_id)]
    # named as people know them (as `validate` does), not by internal record ids
    guo = county.get(first.household_id).fields["household_number"]
    other = county.get(second.household_id).fields["household_number"]
    assert (f"  重复身份证号:户主“另一户主”(户编号 {other})与户主“欧阳明远”(户编号 {guo})有相同身份证号的成员,请核实"
            in report.line().splitlines())
    assert first.household_id not in report.line()
    for s in (a, b, county):
        s.close()


def test_a_later_bundle_touching_the_member_names_the_duplicate_until_its_id_number_is_corrected(tmp_path):
    """The county looks again whenever a bundle writes the member: an edit of another field still
    names the shared ID number; once the number is corrected, nothing is named."""
    from app.core import idnumber

    county, a, b, first, second, shared = _two_households_sharing_an_id_number(tmp_path)
    assert up(b, county).duplicates
    spouse = next(r for r in b.records("member", parent_id=second.household_id) if r.fields["id_number"] == shared)
    b.put("member", {"phone": "13800001111"}, record_id=spouse.id)
    report = up(b, county)
    assert report.status == "accepted" and report.applied == 1
    assert [(d[0], d[1]) for d in report.duplicates] == [(second.household_id, first.household_id)]
    b.put("member", {"id_number": idnumber.make("522634", dt.date(1972, 8, 9), 77, "2")}, record_id=spouse.id)
    report = up(b, county)
    assert report.status == "accepted" and report.applied == 1
    assert report.duplicates == []
    for s in (a, b, county):
        s.close()


def test_a_member_made_and_deleted_in_one_large_bundle_is_no_duplicate(tmp_path, monkeypatch):
    """A bundle the county merges in several chunks (one change each here) that makes a member with an
    ID number held elsewhere and then deletes it names no duplicate: the member holds no number."""
    monkeypatch.setattr(merge.Merger, "CHUNK", 1)
    county, a, b, first, second, shared = _two_households_sharing_an_id_number(tmp_path)
    spouse = next(r for r in b.records("member", parent_id=second.household_id) if r.fields["id_number"] == shared)
    b.delete(spouse.id, reason="录重了")
    report = up(b, county)
    assert report.status == "accepted"
    assert report.duplicates == []
    assert county.get(spouse.id).deleted
    for s in (a, b, county):
        s.close()


def test_a_county_import_reads_the_forms_before_taking_the_write_lock(tmp_path, monkeypatch):
    """The merge needs the forms (which record hangs under which); a new process (each USB import,
    each service worker) reads them once, 7-18 ms, and not while every other writer of the county
    waits for its write lock."""
    from app.core import dictionary

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲")
    households.save(laptop, factories.household())
    name, data = exchange.export_upstream(laptop)
    exchange._parent_kinds.cache_clear()
    dictionary.default.cache_clear()
    real, seen = dictionary.load, []
    monkeypatch.setattr(dictionary, "load", lambda *a: seen.append(county.conn.in_transaction) or real(*a))
    assert exchange.import_bundle(county, data, name).status == "accepted"
    assert seen == [False]
    for s in (laptop, county):
        s.close()


def test_the_county_resets_a_laptop_passphrase_and_rebuilds_a_replacement_laptop(tmp_path, monkeypatch):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲")
    hid = households.save(laptop, factories.household()).household_id
    assert up(laptop, county).status == "accepted"
    laptop.close()
    county.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("JIANDANG_NEW_PASSPHRASE", "a brand new one")
    assert main(["recover", str(tmp_path / "甲.db"), "--county", address(county), "--login", "admin"]) == 0
    reopened = Store.open(tmp_path / "甲.db")
    reopened.unlock("admin", "a brand new one")
    reopened.close()
    # a replacement laptop for the same village gets everything from the county
    county = Store.open(address(county))
    county.unlock("admin", PASSPHRASE)
    replacement = make_device(tmp_path, county, "甲-新机")
    report = down(county, replacement)
    assert report.status == "accepted" and report.applied == report.changes > 0
    assert households.document(replacement, hid) == households.document(county, hid)
    replacement.close()
    county.close()


def test_the_cli_contract(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county_db, laptop_db, usb = tmp_path / "county.db", tmp_path / "laptop.db", tmp_path / "usb"
    usb.mkdir()
    assert main(["init", str(county_db), "--role", "county", "--site-name", "雷山县扶贫办"]) == 0
    assert main(["enroll", str(county_db), "--site-name", "龙井村工作队", "--role", "village", "--villages",
                 VILLAGE, "--out", str(usb / "laptop.jde")]) == 0
    out = capsys.readouterr().out
    code = next(line.split(":", 1)[1] for line in out.splitlines() if line.startswith("登记码"))
    monkeypatch.setenv("JIANDANG_ENROLLMENT_CODE", "WRONG-CODE")
    assert main(["init", str(laptop_db), "--enrollment", str(usb / "laptop.jde")]) == 1
    assert not laptop_db.exists()
    monkeypatch.setenv("JIANDANG_ENROLLMENT_CODE", code)
    assert main(["init", str(laptop_db), "--enrollment", str(usb / "laptop.jde")]) == 0
    with Store.open(laptop_db) as s:
        s.unlock("admin", PASSPHRASE)
        site = s.site_id
        hid = households.save(s, factories.household()).household_id
        s.put("household", {"phone": "13800000001"}, record_id=hid)
    assert main(["sync", "export", str(laptop_db), "--to", str(usb)]) == 0
    capsys.readouterr()
    assert main(["sync", "import", str(county_db), str(usb)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "已接收" in lines[0]
    bad = usb / "broken-up-000009.jdb"
    bad.write_bytes((usb / f"{site}-up-000001.jdb").read_bytes()[:-10])
    assert main(["sync", "import", str(county_db), str(usb)]) == 1
    out = capsys.readouterr().out
    assert "重复" in out and "broken-up-000009.jdb: 已拒收" in out
    bad.unlink()
    assert main(["conflicts", str(county_db), "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"
    assert main(["sync", "export", str(county_db), "--to", str(usb)]) == 0
    assert main(["sync", "import", str(laptop_db), str(usb)]) == 0
    assert main(["revoke", str(county_db), "--site", site]) == 0
    assert main(["sync", "export", str(laptop_db), "--to", str(usb)]) == 0
    capsys.readouterr()
    assert main(["sync", "import", str(county_db), str(usb / f"{site}-up-000002.jdb")]) == 1
    assert "吊销" in capsys.readouterr().out
    assert main(["conflicts", str(county_db), "--resolve", "nope", "--keep", "other"]) == 1


def test_a_folder_import_takes_every_bundle_in_subfolders_and_names_what_it_left_out(tmp_path, monkeypatch, capsys):
    """A drawer of sticks: `sync import county.db DRAWER` looks into subfolders, takes every *.jdb
    file (a renamed or damaged one is refused by name, not ignored), imports one sender's bundles in
    number order whatever folder they are in, and names the files clearly not for this database."""
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    drawer = tmp_path / "drawer"
    for sub in ("stickA", "stickB/old", ".Trashes"):
        (drawer / sub).mkdir(parents=True)
    households.save(a, factories.household())
    name1, data1 = exchange.export_upstream(a)
    households.save(a, factories.household(head="第二户", seq=2))
    name2, data2 = exchange.export_upstream(a)
    (drawer / "stickA" / name2).write_bytes(data2)
    (drawer / "stickB" / "old" / name1).write_bytes(data1)
    (drawer / ".Trashes" / name1).write_bytes(b"deleted")  # hidden folders are not searched
    (drawer / "bad.jdb").write_bytes(data1[:-10])
    (drawer / "notes.txt").write_text("not a bundle")
    down_name, down_data = exchange.export_downstream(county, b.site_id)
    (drawer / "stickA" / down_name).write_bytes(down_data)
    for s in (county, a):
        s.close()

    assert main(["sync", "import", address(county), str(drawer)]) == 1  # bad.jdb refused
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{drawer / 'stickB' / 'old' / name1}: 已接收")
    assert lines[1].startswith(f"{drawer / 'stickA' / name2}: 已接收")
    assert lines[2].startswith(f"{drawer / 'bad.jdb'}: 已拒收:同步包不完整")
    assert lines[3] == f"{drawer}: 已跳过 1 个县里导出的下发包,应带到各自的电脑上导入:stickA/{down_name}"
    assert len(lines) == 4

    # on a laptop: its own downstream bundle is taken; the others' and its own upload are named
    (drawer / "bad.jdb").unlink()
    b_db = b.path
    b.close()
    assert main(["sync", "import", str(b_db), str(drawer)]) == 0
    out = capsys.readouterr().out
    assert f"{drawer / 'stickA' / down_name}: 已接收" in out
    assert f"其他设备导出的上传包,应在县扶贫办导入:stickA/{name2}、stickB/old/{name1}" in out
    # nothing for this database at all: said so, after naming what was left out
    assert main(["sync", "import", str(b_db), str(drawer / "stickB")]) == 1
    captured = capsys.readouterr()
    assert f"已跳过 1 个其他设备导出的上传包,应在县扶贫办导入:old/{name1}" in captured.out
    assert "没有找到给本数据库的同步包" in captured.err


def test_enroll_refuses_codes_outside_the_county_and_never_overwrites_a_package(tmp_path, monkeypatch, capsys):
    """A typo in --villages would give a laptop a certificate for nowhere: codes not among the county's
    divisions (of the level their length says) are refused by name. Before the county has any
    divisions nothing can be checked: enroll works and says so. An existing package (perhaps another
    laptop's, whose code was already handed out) is not overwritten without --force."""
    from app.services import demo

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county_db = tmp_path / "county.db"
    assert main(["init", str(county_db), "--role", "county", "--site-name", "雷山县扶贫办"]) == 0
    assert main(["enroll", str(county_db), "--site-name", "早登记队", "--role", "village", "--villages", VILLAGE,
                 "--out", str(tmp_path / "early.jde")]) == 0
    assert "县里还没有导入行政区划,无法核对代码 522634101201" in capsys.readouterr().err
    with Store.open(county_db) as county:
        county.unlock("admin", PASSPHRASE)
        demo.install_reference_data(county)
    for codes in ("110101001001", f"{VILLAGE},522634109", "522634101999"):  # another county, no such township, village
        out = tmp_path / "x1.jde"
        assert main(["enroll", str(county_db), "--site-name", "错码队", "--role", "village", "--villages", codes,
                     "--out", str(out)]) == 1
        err = capsys.readouterr().err
        wrong = [c for c in codes.split(",") if c != VILLAGE]
        assert f"以下代码不在本县的行政区划中:{'、'.join(wrong)}" in err and "jiandang reference divisions" in err
        assert not out.exists()
    assert main(["enroll", str(county_db), "--site-name", "西江镇", "--role", "township", "--villages", "522634101",
                 "--out", str(tmp_path / "x1.jde")]) == 0
    assert "行政区划" not in capsys.readouterr().err
    first = (tmp_path / "x1.jde").read_bytes()
    assert main(["enroll", str(county_db), "--site-name", "龙井村工作队", "--role", "village", "--villages", VILLAGE,
                 "--out", str(tmp_path / "x1.jde")]) == 1
    assert "x1.jde 已存在:不会覆盖已有的登记包" in capsys.readouterr().err
    assert (tmp_path / "x1.jde").read_bytes() == first
    assert main(["enroll", str(county_db), "--site-name", "龙井村工作队", "--role", "village", "--villages", VILLAGE,
                 "--out", str(tmp_path / "x1.jde"), "--force"]) == 0
    assert (tmp_path / "x1.jde").read_bytes() != first
    capsys.readouterr()
    assert main(["devices", str(county_db), "--json"]) == 0
    import json
    assert sorted(d["site_name"] for d in json.loads(capsys.readouterr().out)) == ["早登记队", "西江镇", "龙井村工作队"]


def test_members_are_listed_in_the_order_they_were_entered_at_every_site(tmp_path):
    """Storage order differs between sites (the county inserts what it merges in bundle order);
    the household card, the register and the roster must not."""
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    doc = factories.household()
    hid = households.save(a, doc).household_id
    up(a, county)
    down(county, b)
    # 乙队 adds a child, then 甲队 adds a grandparent later: the county receives 甲队's bundle first
    b_doc = households.document(b, hid)
    b_doc["members"].append(factories.member("欧阳小明", "1", dt.date(2012, 3, 4), "03", 40))
    b_doc["family_size"] = 3
    households.save(b, b_doc)
    a_doc = households.document(a, hid)
    a_doc["members"].append(factories.member("欧阳老太", "2", dt.date(1945, 1, 2), "12", 41))
    a_doc["family_size"] = 3
    households.save(a, a_doc)
    up(a, county)
    up(b, county)
    down(county, a)
    down(county, b)
    orders = [[m["name"] for m in households.document(s, hid)["members"]] for s in (a, b, county)]
    assert orders[0] == orders[1] == orders[2]
    assert orders[0][:2] == [doc["members"][0]["name"], doc["members"][1]["name"]]
    assert set(orders[0][2:]) == {"欧阳小明", "欧阳老太"}
    for s in (a, b, county):
        s.close()


# ---------------------------------------------------------------------- conflicts are reviewed once, at the county


def _all_conflicts(store: Store) -> list:
    return merge.conflicts(store, None)


@pytest.fixture
def four(tmp_path):
    """A county, two village laptops and the township's database, all holding one household that
    laptop l1 entered (files on disk: the CLI can open them when the test closes them)."""
    county = make_county(tmp_path)
    l1 = make_device(tmp_path, county, "龙井村一队")
    l2 = make_device(tmp_path, county, "龙井村二队")
    township = make_device(tmp_path, county, "示范乡", villages=(VILLAGE[:9],), role="township")
    hid = households.save(l1, factories.household()).household_id
    assert up(l1, county).status == "accepted"
    for device in (l1, l2, township):
        assert down(county, device).status == "accepted"
    return county, l1, l2, township, hid


def _usb(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    return folder


def test_resolving_a_conflict_at_the_county_creates_no_conflict_on_any_database(four, tmp_path, monkeypatch, capsys):
    """The tester's report: l1 and l2 both change the phone, the county imports both bundles (one
    conflict), restores the other value with the CLI, exports downstream bundles, and l1, l2 and the
    township import them. No database may get a new conflict; all four show the restored value."""
    county, l1, l2, township, hid = four
    l1.put("household", {"phone": "13811111111"}, record_id=hid)
    time.sleep(0.005)
    l2.put("household", {"phone": "13822222222"}, record_id=hid)
    up_stick = _usb(tmp_path, "up")
    exchange.export_to(l1, up_stick)
    exchange.export_to(l2, up_stick)
    reports = exchange.import_paths(county, [up_stick])
    assert [r.status for r in reports] == ["accepted", "accepted"] and sum(r.conflicts for r in reports) == 1
    [c] = merge.conflicts(county)
    # both sides named: l2's later value won, l1's is the other one
    assert (c.winner_site, c.winner_value, c.loser_site, c.loser_value) == (
        l2.site_id, "13822222222", l1.site_id, "13811111111")
    paths = {s: address(s) for s in (county, l1, l2, township)}
    for s in paths:
        s.close()

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["conflicts", str(paths[county]), "--resolve", c.id[:6], "--keep", "other"]) == 0  # a short id will do
    capsys.readouterr()
    assert main(["conflicts", str(paths[county]), "--all"]) == 0
    line = capsys.readouterr().out
    assert "户编号 " in line and c.record_id not in line  # the reviewer sees which household
    assert "现值 13811111111" in line and "已恢复另一方的值" in line  # the value now, not the old winner
    down_stick = _usb(tmp_path, "down")
    assert main(["sync", "export", str(paths[county]), "--to", str(down_stick)]) == 0
    for device in (l1, l2, township):
        assert main(["sync", "import", str(paths[device]), str(down_stick)]) == 0
    out = capsys.readouterr().out
    assert out.count("冲突 0 条") == 3, out

    opened = {}
    for s, path in paths.items():
        opened[s] = Store.open(path)
        opened[s].unlock("admin", PASSPHRASE)
    try:
        c_county, c_l1, c_l2, c_township = (opened[s] for s in (county, l1, l2, township))
        for device in (c_l1, c_l2, c_township):
            assert _all_conflicts(device) == [], device.site_name
        [closed] = _all_conflicts(c_county)
        assert closed.id == c.id and closed.status == "restored" and merge.conflicts(c_county) == []
        for s in opened.values():
            assert s.get(hid).fields["phone"] == "13811111111", s.site_name
        # the four databases agree on every record, field and field clock, and hold the same changes
        assert state(c_county) == state(c_l1) == state(c_l2) == state(c_township)
        assert change_ids(c_county) == change_ids(c_l1) == change_ids(c_l2) == change_ids(c_township)
        # another round (the laptops acknowledge, the county answers) changes no value and adds no conflict
        for device in (c_l1, c_l2, c_township):
            assert up(device, c_county).conflicts == 0
        for device in (c_l1, c_l2, c_township):
            assert down(c_county, device).conflicts == 0
        assert all(_all_conflicts(s) == [] for s in (c_l1, c_l2, c_township)) and merge.conflicts(c_county) == []
        assert state(c_county) == state(c_l1) == state(c_l2) == state(c_township)
    finally:
        for s in opened.values():
            s.close()


def test_a_concurrent_edit_gives_exactly_one_conflict_in_the_whole_county(four):
    """Two laptops change one field without seeing each other: one conflict, at the county, naming
    both sites; the laptops and the township apply the winner without a conflict of their own. A
    later edit that saw the winner is no conflict anywhere."""
    county, l1, l2, township, hid = four
    l1.put("household", {"phone": "13811111111"}, record_id=hid)
    time.sleep(0.005)
    l2.put("household", {"phone": "13822222222"}, record_id=hid)
    assert up(l2, county).conflicts == 0
    assert up(l1, county).conflicts == 1  # arrives second: it did not see l2's value
    for device in (l1, l2, township):
        assert down(county, device).conflicts == 0
    sites = (county, l1, l2, township)
    everywhere = [c for s in sites for c in _all_conflicts(s)]
    assert len(everywhere) == 1
    [c] = everywhere
    assert (c.winner_site, c.loser_site) == (l2.site_id, l1.site_id)
    assert merge.conflicts(county) == everywhere
    assert {s.get(hid).fields["phone"] for s in sites} == {"13822222222"}
    # l1 now holds l2's value; its next edit saw it: no conflict at the county or anywhere else
    l1.put("household", {"phone": "13833333333"}, record_id=hid)
    assert up(l1, county).conflicts == 0
    for device in (l1, l2, township):
        assert down(county, device).conflicts == 0
    assert sum(len(_all_conflicts(s)) for s in sites) == 1
    assert {s.get(hid).fields["phone"] for s in sites} == {"13833333333"}
    assert state(county) == state(l1) == state(l2) == state(township)
    # the open conflict says the value was replaced after it was recorded
    [text] = merge.conflict_texts(county, merge.conflicts(county))
    assert text["replaced"] and text["current"] == "13833333333" and text["winner"] == "13822222222"
    for s in sites:
        s.close()


def test_a_laptops_own_edit_overtaken_downstream_is_reviewed_once_at_the_county(four, tmp_path):
    """l1 edits after its last upload; the downstream bundle brings l2's concurrent, later edit. l1
    applies it without recording anything; the conflict appears at the county when l1's edit
    arrives there, once, naming both sites."""
    county, l1, l2, township, hid = four
    l1.put("household", {"phone": "13811111111"}, record_id=hid)
    time.sleep(0.005)
    l2.put("household", {"phone": "13822222222"}, record_id=hid)
    assert up(l2, county).conflicts == 0
    assert down(county, l1).conflicts == 0
    assert _all_conflicts(l1) == [] and l1.get(hid).fields["phone"] == "13822222222"
    assert up(l1, county).conflicts == 1
    [c] = merge.conflicts(county)
    assert (c.winner_site, c.winner_value, c.loser_site, c.loser_value) == (
        l2.site_id, "13822222222", l1.site_id, "13811111111")
    for device in (l1, l2, township):
        assert down(county, device).conflicts == 0
    assert sum(len(_all_conflicts(s)) for s in (l1, l2, township)) == 0
    for s in (county, l1, l2, township):
        s.close()


def test_conflicts_and_devices_are_listed_in_chinese(four, tmp_path, monkeypatch, capsys):
    county, l1, l2, township, hid = four
    member = next(iter(l1.records("member", parent_id=hid)))
    l1.put("household", {"phone": "13811111111"}, record_id=hid)
    l1.delete(member.id, reason="2")
    time.sleep(0.005)
    l2.put("household", {"phone": "13822222222"}, record_id=hid)
    l2.put("member", {"phone": "13700000000"}, record_id=member.id)
    up(l1, county), up(l2, county)
    assert len(merge.conflicts(county)) == 2
    path = address(county)
    for s in (county, l1, l2, township):
        s.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["conflicts", str(path)]) == 0
    out = capsys.readouterr().out
    assert "贫困户" in out and "家庭成员" in out and "删除" in out and "已删除" in out and "待处理" in out
    assert "龙井村一队" in out and "龙井村二队" in out  # sites by name
    for english in ("household", "member", "open", "True", "False", "__deleted"):
        assert english not in out, english
    phone = next(c for c in json_conflicts(path, capsys) if c["field"] == "phone")
    assert main(["conflicts", str(path), "--resolve", phone["id"], "--keep", "other"]) == 0
    capsys.readouterr()
    assert main(["conflicts", str(path), "--all"]) == 0
    out = capsys.readouterr().out
    assert "已恢复另一方的值" in out and "restored" not in out
    assert main(["devices", str(path)]) == 0
    out = capsys.readouterr().out
    assert "村级" in out and "乡级" in out and "village" not in out and "township" not in out


def json_conflicts(path: Path, capsys) -> list:
    import json

    capsys.readouterr()
    assert main(["conflicts", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("township_first", [True, False])
def test_a_township_office_and_a_village_laptop_never_share_household_numbers(tmp_path, township_first):
    """A township certificate covers every village of the township: its number block must be clear
    of the village laptops' blocks there, whichever was enrolled first, and of villages added later."""
    county = make_county(tmp_path)
    township = VILLAGE[:9]
    order = [("乡", [township], "township"), ("村", [VILLAGE], "village")]
    if not township_first:
        order.reverse()
    blocks = {}
    for name, places, role in order:
        device = make_device(tmp_path, county, name, villages=places, role=role)
        blocks[name] = identity.device_certificate(device).body["number_block"]
        device.close()
    from app.services import reference

    reference.add_division(county, township + "299", "新设村")  # a village added after the township was enrolled
    later = make_device(tmp_path, county, "新村", villages=[township + "299"])
    blocks["新村"] = identity.device_certificate(later).body["number_block"]
    later.close()
    for village in ("村", "新村"):  # different villages may reuse a range: the village code differs
        t, v = blocks["乡"], blocks[village]
        assert t[1] < v[0] or v[1] < t[0], blocks
    county.close()


def test_a_program_with_another_data_dictionary_is_told_to_upgrade_on_both_sides(hub, monkeypatch):
    """Hundreds of laptops are never all upgraded on the same day: the side with the older fields
    and code lists is named at each sync, and the data still goes through."""
    county, a, _, hid = hub
    current = exchange._dictionary_version()
    assert [r.warnings for r in (up(a, county), down(county, a))] == [[], []]
    households.save(a, {**households.document(a, hid), "phone": "13900001111"})

    monkeypatch.setattr(exchange, "_dictionary_version", lambda: "2000.1")  # the laptop's old program
    name, data = exchange.export_upstream(a)
    monkeypatch.setattr(exchange, "_dictionary_version", lambda: current)
    report = exchange.import_bundle(county, data, name)
    assert report.status == "accepted" and report.changes == 1
    assert f"使用较旧的数据字典 2000.1(县里为 {current})" in report.line()
    assert a.site_id in report.line()

    monkeypatch.setattr(exchange, "_dictionary_version", lambda: "2999.1")  # the county upgraded first
    name, data = exchange.export_downstream(county, a.site_id)
    monkeypatch.setattr(exchange, "_dictionary_version", lambda: current)
    report = exchange.import_bundle(a, data, name)
    assert report.status == "accepted"
    assert f"县里的数据字典已更新为 2999.1(本机为 {current}):请尽快升级本机的建档程序" in report.line()


def test_two_laptops_proposing_for_one_household_offline_are_named_at_the_county(hub):
    from app.services import proposals

    county, a, b, hid = hub
    first = proposals.propose(a, hid, "natural", reasons="户主去世,家中无其他成员")
    second = proposals.propose(b, hid, "members", reasons="新生儿落户")  # b did not know of a's
    assert up(a, county).warnings == []
    report = up(b, county)
    assert report.status == "accepted"
    [warning] = [w for w in report.warnings if "未办结的申报" in w]
    number = households.document(county, hid)["household_number"]
    assert f"户主“欧阳明远”(户编号 {number})同时有 2 份未办结的申报" in warning
    assert first["id"][-8:] in warning and second["id"][-8:] in warning and "请与村里核实后退回其中一份" in warning
    assert "未办结的申报" in report.line()


def test_a_database_that_was_never_enrolled_is_told_how_to_sync_in_the_windows_words(make_store):
    store = make_store("alone.db")
    with pytest.raises(Exception, match=r"没有在县扶贫办登记.*窗口:新建数据库 › 用县扶贫办发的登记包新建;命令行:jiandang init --enrollment"):
        exchange.export_upstream(store)
