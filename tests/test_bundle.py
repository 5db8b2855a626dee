"""Bad bundles never change the county's data: each test compares a digest of the records, changes,
conflicts and receipts tables before and after."""

from __future__ import annotations

import datetime as dt
import re
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from app.core import procedures
from app.services import households
from app.sync import exchange, identity, wire
from tests import factories
from tests.sync_helpers import FAR_VILLAGE, VILLAGE, digest, down, make_county, make_device, up

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "bundle-format.md"


@pytest.fixture
def pair(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    yield county, laptop
    laptop.close()
    county.close()


def _bundle_with_household(laptop):
    households.save(laptop, factories.household())
    return exchange.export_upstream(laptop)


def test_a_good_bundle_is_accepted_and_a_replay_changes_nothing(pair):
    county, laptop = pair
    name, data = _bundle_with_household(laptop)
    report = exchange.import_bundle(county, data, name)
    assert report.status == "accepted", report.message
    assert report.applied == report.changes == laptop.change_count()
    assert county.count("household") == 1
    before = digest(county)
    again = exchange.import_bundle(county, data, name)
    assert again.status == "duplicate" and not again.refused
    assert digest(county) == before


def test_a_flipped_byte_anywhere_is_refused(pair):
    county, laptop = pair
    name, data = _bundle_with_household(laptop)
    before = digest(county)
    head_len = struct.unpack(">II", data[40:48])[0]
    positions = [0, 9, 41, 45, 48, 48 + head_len // 2, 48 + head_len + 10, len(data) // 2, len(data) - 70, len(data) - 1]
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x01
        report = exchange.import_bundle(county, bytes(bad), f"{name}@{pos}")
        assert report.status == "refused", pos
        assert report.message
        assert digest(county) == before, pos
    assert county.count("household") == 0


def test_a_truncated_bundle_is_refused_clearly(pair):
    county, laptop = pair
    name, data = _bundle_with_household(laptop)
    before = digest(county)
    for cut in (10, 60, len(data) // 2, len(data) - 1):
        report = exchange.import_bundle(county, data[:cut], name)
        assert report.refused
        assert "截断" in report.message or "不完整" in report.message, report.message
    assert digest(county) == before


def test_a_bundle_signed_by_an_unenrolled_key_is_refused(pair):
    county, laptop = pair
    households.save(laptop, factories.household())
    name, data = exchange.export_upstream(laptop)
    verified, _ = wire.verify(data, lambda raw: raw)
    stranger = Ed25519PrivateKey.generate()
    forged = wire.pack(stranger, verified.header, verified.body)
    before = digest(county)
    report = exchange.import_bundle(county, forged, name)
    assert report.refused and "已登记" in report.message
    assert digest(county) == before


def test_a_bundle_from_a_revoked_device_is_refused(pair):
    county, laptop = pair
    name, data = _bundle_with_household(laptop)
    identity.revoke(county, laptop.site_id)
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and "吊销" in report.message
    assert "请为它重新登记" in report.message  # what to do if the laptop is still in use
    assert digest(county) == before
    with pytest.raises(Exception):
        exchange.export_downstream(county, laptop.site_id)


def test_a_bundle_imported_before_its_device_was_revoked_is_a_duplicate_not_a_refusal(pair):
    """A drawer of old files keeps being imported: the very file the county imported before the
    revocation is recognised as already imported (exit status 0); anything else from the revoked
    device, even another file with the same number, is still refused."""
    county, laptop = pair
    name, data = _bundle_with_household(laptop)
    assert exchange.import_bundle(county, data, name).status == "accepted"
    households.save(laptop, factories.household(head="新户", seq=2))
    name2, data2 = exchange.export_upstream(laptop)
    identity.revoke(county, laptop.site_id)
    before = digest(county)
    again = exchange.import_bundle(county, data, name)
    assert again.status == "duplicate" and not again.refused, again.message
    assert "重复" in again.line()
    later = exchange.import_bundle(county, data2, name2)
    assert later.refused and "吊销" in later.message
    verified, _ = wire.verify(data, lambda raw: raw)
    other = wire.pack(identity.device_signing_key(laptop), dict(verified.header, created="2030-01-01T00:00:00Z"),
                      verified.body)
    same_number = exchange.import_bundle(county, other, name)
    assert same_number.refused and "吊销" in same_number.message
    assert digest(county) == before


def test_a_header_naming_another_sender_than_its_signer_is_refused(tmp_path):
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲")
    b = make_device(tmp_path, county, "乙")
    households.save(a, factories.household())
    _, data = exchange.export_upstream(a)
    verified, _ = wire.verify(data, lambda raw: raw)
    header = dict(verified.header, sender=b.site_id)
    payload = wire.open_payload(verified, identity.county_encryption_key(county))
    body = wire.seal_payload(payload, identity.county_enc_public(a), header)
    forged = wire.pack(identity.device_signing_key(a), header, body)
    before = digest(county)
    report = exchange.import_bundle(county, forged, "forged.jdb")
    assert report.refused and "不符" in report.message
    assert digest(county) == before
    for s in (a, b, county):
        s.close()


def test_a_bundle_for_another_recipient_is_refused(tmp_path):
    county = make_county(tmp_path)
    other = make_county(tmp_path, "other-county.db")
    laptop = make_device(tmp_path, county, "甲")
    name, data = _bundle_with_household(laptop)
    # the other county enrolled nobody: the signer is unknown there
    before = digest(other)
    report = exchange.import_bundle(other, data, name)
    assert report.refused
    assert digest(other) == before
    # a downstream bundle for laptop A taken to laptop B names the wrong recipient
    b = make_device(tmp_path, county, "乙")
    _, down_a = exchange.export_downstream(county, laptop.site_id)
    before_b = digest(b)
    report = exchange.import_bundle(b, down_a, "a-down.jdb")
    assert report.refused and "不是本数据库" in report.message
    assert digest(b) == before_b
    for s in (b, laptop, other, county):
        s.close()


def test_a_gap_in_sequence_is_refused_naming_the_missing_bundle(pair):
    county, laptop = pair
    assert up(laptop, county).status == "accepted"  # bundle 1 (empty)
    households.save(laptop, factories.household(head="甲一"))
    assert up(laptop, county).status == "accepted"  # bundle 2
    assert down(county, laptop).status == "accepted"  # acknowledges bundle 2's changes
    households.save(laptop, factories.household(head="甲二", seq=3))
    name3, data3 = exchange.export_upstream(laptop)
    households.save(laptop, factories.household(head="甲三", seq=5))
    name4, data4 = exchange.export_upstream(laptop)
    # bundle 4 carries only the changes after bundle 3 if the county acknowledged bundle 3; it did
    # not, so bundle 4 is cumulative and complete:
    assert exchange.import_bundle(county, data4, name4).status == "accepted"
    assert county.count("household") == 3
    assert exchange.import_bundle(county, data3, name3).status == "accepted"  # nothing new, nothing lost
    # now a real gap: after the county acknowledges, bundle 6 lacks bundle 5's changes
    assert down(county, laptop).status == "accepted"
    households.save(laptop, factories.household(head="甲四", seq=7))
    name5, data5 = exchange.export_upstream(laptop)
    assert down(county, laptop).status == "accepted"
    laptop.set_meta("sync_acked_seq", str(laptop.change_count()))  # as if bundle 5 had been acknowledged
    households.save(laptop, factories.household(head="甲五", seq=9))
    name6, data6 = exchange.export_upstream(laptop)
    before = digest(county)
    report = exchange.import_bundle(county, data6, name6)
    assert report.refused and "缺少第 5 号" in report.message, report.message
    assert digest(county) == before
    assert exchange.import_bundle(county, data5, name5).status == "accepted"
    assert exchange.import_bundle(county, data6, name6).status == "accepted"
    assert county.count("household") == 5


def test_changes_for_a_village_outside_the_certificate_refuse_the_whole_bundle(pair):
    county, laptop = pair
    households.save(laptop, factories.household())
    # the laptop's own program refuses a village outside its certificate, even as a draft
    with pytest.raises(households.InputError, match="不在本机的工作范围内"):
        households.save(laptop, dict(factories.household(head="外村户", seq=3), village_code=FAR_VILLAGE), allow_errors=True)
    # a modified program would write it anyway
    laptop.put("household", {"head_name": "外村户"}, village_code=FAR_VILLAGE)
    name, data = exchange.export_upstream(laptop)
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and FAR_VILLAGE in report.message
    assert digest(county) == before
    assert county.count("household") == 0


def test_an_unauthorised_status_change_refuses_the_bundle(pair):
    county, laptop = pair
    result = households.save(laptop, factories.household())
    assert up(laptop, county).status == "accepted"
    # write the status directly, bypassing households.save (which refuses it)
    laptop.put("household", {"status": "2"}, record_id=result.household_id)
    assert procedures.authorize_change("household", {"status": "2"}, {"status": "1"}, "village") is not None
    name, data = exchange.export_upstream(laptop)
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and "状态" in report.message
    assert digest(county) == before


def _refused_at_county(county, device, *expected):
    """Export the device's bundle, import it at the county: refused as a whole, nothing changed."""
    name, data = exchange.export_upstream(device)
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and report.message.startswith("包含未授权的更改,整包拒收"), report.message
    for text in expected:
        assert text in report.message, report.message
    assert digest(county) == before
    return report


def test_a_child_record_under_a_household_of_another_village_refuses_the_whole_bundle(tmp_path):
    """A laptop may only hang members, incomes ... proposals under households of its own villages:
    the county refuses a child whose own village is the laptop's but whose parent household the
    county holds in another village (a modified program, or a forged bundle)."""
    county = make_county(tmp_path)
    longjing = make_device(tmp_path, county, "龙井村工作队")
    guo = households.save(longjing, factories.household(head="郭涛")).household_id
    assert up(longjing, county).status == "accepted"
    number = county.get(guo).fields["household_number"]
    for kind, fields in (("member", {"name": "注入成员", "sex": "1", "relation": "05"}),
                         ("income", {"year": 2025, "wage_income": 99999}),
                         ("proposal", {"proposal_kind": "natural", "stage": "nominate", "reasons": "x",
                                       "nominate_outcome": "pass"})):
        shimen = make_device(tmp_path, county, f"石门村工作队{kind}", villages=(FAR_VILLAGE,))
        households.save(shimen, dict(factories.household(head="石门户", seq=5), village_code=FAR_VILLAGE))
        shimen.put(kind, fields, village_code=FAR_VILLAGE, parent_id=guo)
        report = _refused_at_county(county, shimen, f"挂在户 {guo} 名下", VILLAGE, "不在该设备证书的村范围")
        # named by id only: the refusal goes back to that device and into the service's log
        assert "郭涛" not in report.message and number not in report.message
        shimen.close()
    assert [m.fields["name"] for m in county.records("member", parent_id=guo)] == ["郭涛", "司马秀兰"]
    assert list(county.records("proposal")) == []
    for s in (county, longjing):
        s.close()


def test_a_child_must_name_an_existing_household_of_its_own_village(tmp_path):
    """The parent must exist (at the county, or created earlier in the same bundle), be a household,
    and be in the child's village, even when the certificate covers both villages."""
    from tests.sync_helpers import OTHER_VILLAGE

    county = make_county(tmp_path)
    both = make_device(tmp_path, county, "两村工作队", villages=(VILLAGE, OTHER_VILLAGE))
    # created in the same bundle, household first: accepted
    hid = households.save(both, factories.household(head="郭涛")).household_id
    assert up(both, county).status == "accepted"
    # a member in the other village of the certificate under that household
    both.put("member", {"name": "错村成员", "sex": "1", "relation": "05"}, village_code=OTHER_VILLAGE, parent_id=hid)
    _refused_at_county(county, both, "所在村", OTHER_VILLAGE, "郭涛", "不一致")
    both.close()
    for n, (parent, text) in enumerate(((None, "没有写明属于哪一户"), ("01a22698-0000-7000-8000-000000000000", "都不存在"))):
        device = make_device(tmp_path, county, f"工作队{n}")
        device.put("member", {"name": "无户成员", "sex": "1", "relation": "05"}, village_code=VILLAGE, parent_id=parent)
        _refused_at_county(county, device, text)
        device.close()
    # a child hung under a member instead of a household
    device = make_device(tmp_path, county, "工作队3")
    assert down(county, device).status == "accepted"
    member_id = next(county.records("member", parent_id=hid)).id
    device.put("income", {"year": 2025}, village_code=VILLAGE, parent_id=member_id)
    _refused_at_county(county, device, "不是贫困户")
    device.close()
    county.close()


def test_a_proposal_without_its_kind_refuses_the_bundle(pair):
    """A nomination must say which procedure it is (proposal_kind): one without it could never take
    effect. The laptop's own program always writes it; a forged one is refused."""
    county, laptop = pair
    hid = households.save(laptop, factories.household()).household_id
    assert up(laptop, county).status == "accepted"
    laptop.put("proposal", {"kind": "natural", "stage": "nominate", "reasons": "x", "nominate_date": "2026-11-01",
                            "nominate_outcome": "pass", "nominate_by": "x"}, village_code=VILLAGE, parent_id=hid)
    _refused_at_county(county, laptop, "没有写明类型", "natural(自然减少)")
    assert list(county.records("proposal")) == []


def test_an_older_downstream_bundle_is_refused_on_the_laptop(pair):
    county, laptop = pair
    _, first = exchange.export_downstream(county, laptop.site_id)
    name2, second = exchange.export_downstream(county, laptop.site_id)
    assert exchange.import_bundle(laptop, second, name2).status == "accepted"
    before = digest(laptop)
    report = exchange.import_bundle(laptop, first, "old.jdb")
    assert report.refused and "较旧" in report.message
    assert digest(laptop) == before


def test_an_expired_downstream_bundle_is_imported_with_a_warning(pair):
    county, laptop = pair
    name, data = exchange.export_downstream(county, laptop.site_id)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=exchange.DOWN_DAYS + 1)
    report = exchange.import_bundle(laptop, data, name, now=later)
    assert report.status == "accepted" and report.warnings and "过期" in report.warnings[0]


def test_an_expired_certificate_is_refused(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲", days=30)
    name, data = _bundle_with_household(laptop)
    before = digest(county)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    report = exchange.import_bundle(county, data, name, now=later)
    assert report.refused and "过期" in report.message
    assert digest(county) == before
    laptop.close()
    county.close()


def test_a_zip_bomb_payload_is_refused(pair, monkeypatch):
    county, laptop = pair
    monkeypatch.setattr(wire, "MAX_PAYLOAD", 4 * 1024 * 1024)
    header = {"format": 1, "type": "up", "sender": laptop.site_id, "recipient": county.site_id, "seq": 1, "prev": "",
              "created": "2026-01-01T00:00:00Z", "expires": None, "counts": {"changes": 0}}
    payload = {"changes": [], "pad": "0" * (64 * 1024 * 1024)}  # 64 MB of zeros compress to ~64 KB
    body = wire.seal_payload(payload, identity.county_enc_public(laptop), header)
    assert len(body) < 1024 * 1024
    data = wire.pack(identity.device_signing_key(laptop), header, body)
    before = digest(county)
    report = exchange.import_bundle(county, data, "bomb.jdb")
    assert report.refused and "解压" in report.message
    assert digest(county) == before


def test_an_oversized_file_is_refused_before_reading(pair, monkeypatch, tmp_path):
    county, laptop = pair
    monkeypatch.setattr(wire, "MAX_BUNDLE", 1000)
    name, data = _bundle_with_household(laptop)
    path = tmp_path / name
    path.write_bytes(data)
    before = digest(county)
    [report] = exchange.import_paths(county, [path])
    assert report.refused and "过大" in report.message
    assert digest(county) == before


def test_bundles_hold_no_personal_data_in_plain_text(pair):
    county, laptop = pair
    doc = factories.household()
    name, data = _bundle_with_household(laptop)
    for text in (doc["head_name"], doc["members"][0]["id_number"], doc["members"][1]["name"]):
        assert text.encode() not in data
    _, down_data = exchange.export_downstream(county, laptop.site_id)
    assert doc["head_name"].encode() not in down_data


def test_enrollment_package_needs_its_code_and_refuses_tampering(tmp_path):
    county = make_county(tmp_path)
    result = identity.enroll(county, site_name="甲", role="village", villages=[VILLAGE])
    with pytest.raises(wire.BundleError, match="登记码不对"):
        identity.open_enrollment(result.package, "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
    bad = bytearray(result.package)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(wire.BundleError):
        identity.open_enrollment(bytes(bad), result.code)
    contents = identity.open_enrollment(result.package, result.code_display.lower())
    assert contents.certificate.villages == [VILLAGE]
    assert contents.index_key == county.get_secret("index_key")
    doc = factories.household()
    assert doc["head_name"].encode() not in result.package
    county.close()


# ---------------------------------------------------------------------- test vectors in the spec


def _vector(name: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    m = re.search(rf"^{name}:\s*\n((?:[0-9a-f]+\n)+)", text, re.M)
    assert m, f"{name} missing from docs/bundle-format.md"
    return m.group(1).replace("\n", "")


@pytest.mark.parametrize("prefix", ["", "down-"])  # an upstream bundle; a downstream part (continues)
def test_the_spec_test_vectors_verify_and_open(prefix):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signer = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(_vector("signer-private")))
    recipient = X25519PrivateKey.from_private_bytes(bytes.fromhex(_vector("recipient-private")))
    bundle = bytes.fromhex(_vector(prefix + "bundle"))
    expected_payload = bytes.fromhex(_vector(prefix + "payload")).decode()
    verified, who = wire.verify(bundle, lambda raw: raw)
    assert who == wire.raw_public(signer.public_key())
    Ed25519PublicKey.from_public_bytes(who).verify(bundle[-64:], bundle[:-64])
    assert verified.header_bytes == bytes.fromhex(_vector(prefix + "header"))
    if prefix == "down-":
        assert verified.header["continues"] == 4 and verified.header["counts"]["after"] == 41
        assert verified.header["format"] == wire.PARTS_FORMAT == 2
    assert wire.open_payload(verified, recipient) == __import__("json").loads(expected_payload)
    assert wire.canonical(__import__("json").loads(expected_payload)).decode() == expected_payload
    tampered = bytearray(bundle)
    tampered[60] ^= 1
    with pytest.raises(wire.BundleError):
        wire.verify(bytes(tampered), lambda raw: raw)


def test_a_village_move_is_authorised_on_both_villages(tmp_path):
    """A move (new["__village_code"]) needs the certificate to cover the old and the new village,
    checked for every change of the bundle (the county remembers per bundle what a certificate covers)."""
    from tests.sync_helpers import OTHER_VILLAGE

    county = make_county(tmp_path)
    both = make_device(tmp_path, county, "两村工作队", villages=(VILLAGE, OTHER_VILLAGE))
    hid = households.save(both, factories.household()).household_id
    both.put("household", {"phone": "13800000001"}, record_id=hid, village_code=OTHER_VILLAGE)
    assert up(both, county).status == "accepted"
    assert county.get(hid).village_code == OTHER_VILLAGE and county.get(hid).fields["phone"] == "13800000001"
    one = make_device(tmp_path, county, "一村工作队", villages=(OTHER_VILLAGE,))
    assert down(county, one).status == "accepted"
    one.put("household", {"phone": "13800000002"}, record_id=hid)
    one.put("household", {}, record_id=hid, village_code=FAR_VILLAGE)  # a modified program would send this
    name, data = exchange.export_upstream(one)
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and FAR_VILLAGE in report.message
    assert digest(county) == before
    for s in (county, both, one):
        s.close()


def test_payload_json_is_read_exactly_as_the_standard_library_reads_it():
    """The payload parser (orjson for speed) gives the standard library's result: integers beyond
    64 bits stay exact, NaN and lone surrogates are read, broken text is refused."""
    import json
    import zlib

    texts = ['{"a":123456789012345678901234567890,"b":-9223372036854775809,"c":18446744073709551615}',
             '{"n":NaN,"s":"\\ud800","t":"贫困户 6222020200112233445"}',
             '{"changes":[{"new":{"income":1234.5,"size":3,"ok":true,"codes":["01","02"]}}]}']
    for text in texts:
        got = wire.inflate_payload(zlib.compress(text.encode("utf-8")))
        want = json.loads(text)
        assert repr(got) == repr(want)  # repr: nan != nan, and 1.0 == 1 would hide a float
    for bad in (b"\xff\xfe{}", b'{"a":', b"[1,2]]"):
        with pytest.raises(wire.BundleError):
            wire.inflate_payload(zlib.compress(bad))


def _forged_up(device, changes: list[dict]) -> tuple[str, bytes]:
    """An upstream bundle signed with the device's real key, carrying changes a modified program
    wrote (wire form, app.sync.merge.change_to_wire)."""
    seq = int(device.meta("sync_out_seq", 0)) + 1
    header = {"format": wire.FORMAT, "type": "up", "sender": device.site_id, "recipient": device.meta("county_site_id"),
              "seq": seq, "prev": device.meta("sync_out_prev", ""), "created": identity.iso(exchange._utcnow()),
              "expires": None, "counts": {"changes": len(changes), "first": changes[0]["n"], "last": changes[-1]["n"]}}
    payload = {"changes": changes, "down_rowid": 0, "down_seq": 0, "certificate": device.site_id}
    body = wire.seal_payload(payload, identity.county_enc_public(device), header)
    data = wire.pack(identity.device_signing_key(device), header, body)
    device.set_meta("sync_out_seq", str(seq))
    device.set_meta("sync_out_prev", wire.digest(data))
    return f"{device.site_id}-up-{seq:06d}.jdb", data


def _change(device, n, record_id, kind, op, new, old=None, hlc=None, village=VILLAGE, parent=None) -> dict:
    return {"s": device.site_id, "n": n, "r": record_id, "k": kind, "v": village, "p": parent,
            "t": hlc or device.clock.now(), "o": op, "new": new, "old": old or {}, "seen": {}, "by": "admin", "why": None}


def _next_seq(device) -> int:
    return device.conn.execute("SELECT coalesce(max(seq), 0) FROM changes WHERE site_id = ?", (device.site_id,)).fetchone()[0] + 1


def test_a_status_change_is_judged_against_the_county_record_not_the_old_value_the_change_claims(pair):
    county, laptop = pair
    hid = households.save(laptop, factories.household()).household_id
    assert up(laptop, county).status == "accepted"
    n = _next_seq(laptop)
    for label, change in (
        ("claims the status was already 2", _change(laptop, n, hid, "household", "update", {"status": "2"}, {"status": "2"})),
        ("creates the existing household again", _change(laptop, n, hid, "household", "create", {"status": "3"})),
    ):
        seq, prev = laptop.meta("sync_out_seq"), laptop.meta("sync_out_prev")
        name, data = _forged_up(laptop, [change])
        laptop.set_meta("sync_out_seq", seq)  # the county never takes it: the next one has the same number
        laptop.set_meta("sync_out_prev", prev)
        before = digest(county)
        report = exchange.import_bundle(county, data, name)
        assert report.refused and report.message.startswith("包含未授权的更改,整包拒收"), label
        assert ("脱贫状态" in report.message or "已经存在,不能再次新建" in report.message), report.message
        assert digest(county) == before and county.get(hid).fields["status"] == "1"


def test_a_change_for_a_village_code_that_only_starts_like_the_certificates_is_refused(pair):
    county, laptop = pair
    change = _change(laptop, _next_seq(laptop), "01a22698-0000-7000-8000-0000000000aa", "household", "create",
                     {"head_name": "前缀村户"}, village=VILLAGE + "9")
    name, data = _forged_up(laptop, [change])
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and f"{VILLAGE}9" in report.message
    assert digest(county) == before


@pytest.mark.parametrize("stamp, words", [
    ("abcdefghijklmnopqr", "更改记录格式不对"),
    ("9999999999999.9999", "比县里电脑的时钟快 7 天以上"),
])
def test_a_malformed_or_far_future_clock_is_refused_and_the_county_clock_stays_sane(pair, stamp, words):
    """One signed change with a bad clock must not stop the county: its clock moves past every stamp it
    accepts, and a broken or far-future one would break or win every later edit."""
    county, laptop = pair
    hid = households.save(laptop, factories.household()).household_id
    assert up(laptop, county).status == "accepted"
    clock_before = county.clock.last
    name, data = _forged_up(laptop, [_change(laptop, _next_seq(laptop), hid, "household", "update",
                                             {"phone": "13900000000"}, hlc=stamp)])
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and words in report.message, report.message
    assert digest(county) == before and county.clock.last == clock_before
    # the county goes on working: its own edits get well-formed stamps
    households.save(county, {**households.document(county, hid), "phone": "13700000000"})
    assert households.document(county, hid)["phone"] == "13700000000"


def test_the_clock_counter_never_grows_a_fifth_digit():
    from app.core.clock import HybridClock, is_valid

    c = HybridClock("1795942153020.9999", wall=lambda: 1000.0)  # the machine's clock is far behind
    stamp = c.now()
    assert stamp == "1795942153021.0000" and is_valid(stamp) and stamp > "1795942153020.9999"


def test_a_payload_inflating_far_beyond_its_size_is_stopped_early_and_a_large_one_is_held_once():
    """Issue #22: a 204 KB bundle inflating to 200 MB took 669 MB in `sync import`. The running limit
    is also 100 times the compressed size (past 16 MB), and the output goes into one buffer that is
    parsed as it is (no joined copy, no translated copy)."""
    import os
    import tracemalloc
    import zlib

    mb = 1024 * 1024
    bomb = zlib.compress(wire.canonical({"changes": [], "pad": "0" * (100 * mb)}))  # ~100 KB
    assert len(bomb) < 200 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(wire.BundleError, match="解压后内容超过上限.*100 倍"):
            wire.inflate_payload(bomb)
        bomb_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert bomb_peak < 24 * mb  # stopped at 16 MB of output, not 100 MB
    text = os.urandom(16 * mb).hex()  # 32 MB that compresses about 2 to 1: a large payload, not a bomb
    packed = zlib.compress(wire.canonical({"changes": [], "pad": text}), 1)
    tracemalloc.start()
    try:
        payload = wire.inflate_payload(packed)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert payload["pad"] == text
    assert peak < 3.5 * len(text)  # the inflated text, orjson's working copy, the parsed string; before: 4 copies


def test_a_bundle_of_a_format_this_program_does_not_know_is_refused_asking_for_an_upgrade():
    """Format 1 (every bundle before parts, and the first of each export) and 2 (a bundle that
    continues an export) are read; a later format is refused before anything is opened."""
    signer = Ed25519PrivateKey.generate()
    for fmt, readable in ((1, True), (2, True), (3, False)):
        data = wire.pack(signer, {"format": fmt, "type": "up"}, b"")
        verified, _ = wire.verify(data, lambda raw: raw)
        if readable:
            assert verified.header["format"] == fmt
        else:
            with pytest.raises(wire.BundleError, match="不支持的包格式版本 3,请升级程序"):
                verified.header


@pytest.mark.parametrize("inflater", ["isal", "zlib"])
def test_a_payload_inflates_alike_with_isal_or_zlib_and_damage_is_refused_alike(inflater, monkeypatch):
    """Bundles are inflated with ISA-L where it is installed (wire._inflating), else with zlib: the
    same text, in 1 MiB steps across 256 KB pieces of input, and the same refusals of a damaged,
    truncated or over-large payload."""
    import random
    import zlib

    if inflater == "isal":
        isal_zlib = pytest.importorskip("isal.isal_zlib")
        monkeypatch.setattr(wire, "_inflating", isal_zlib)
    else:
        monkeypatch.setattr(wire, "_inflating", zlib)
    rng = random.Random(5)
    text = "".join(f'{{"n":{i},"v":"{rng.getrandbits(64):x}户主{i}"}},' for i in range(120_000)).encode()
    packed = zlib.compress(text, 6)
    assert len(text) > 3 * 1024 * 1024 and len(packed) > 3 * 256 * 1024
    got, long_number = wire.inflate(packed)
    assert bytes(got) == text and long_number is False
    assert wire.inflate(zlib.compress(b'[12345678901234567890]'))[1] is True
    assert wire.inflate(packed, scan=False)[1] is None
    with pytest.raises(wire.BundleError, match="不完整"):
        wire.inflate(packed[: len(packed) // 2])
    damaged = bytearray(packed)
    damaged[len(damaged) // 3: len(damaged) // 3 + 64] = bytes(64)
    with pytest.raises(wire.BundleError, match="无法解压"):
        wire.inflate(bytes(damaged))
    assert bytes(wire.inflate(packed + b"trailing")[0]) == text  # what follows the stream is not read
    with pytest.raises(wire.BundleError, match="无法解压"):
        wire.inflate(b"not zlib at all")
    with pytest.raises(wire.BundleError, match="超过上限"):
        wire.inflate(zlib.compress(bytes(30 * 1024 * 1024)), 4 * 1024 * 1024)
