"""The county reads an upload's changes straight into typed objects (county_merge.decode_payload) only
when every change is one the general reading (`wire.parse` then `changes_from_wire`) would take as it
stands; anything else is left to that reading, which converts or refuses it as it always has."""

from __future__ import annotations

import json

import pytest

from app.store import StoreError
from app.sync import county_merge, wire

GOOD = {"s": "d5f91d365ccdadb5", "n": 7, "r": "01a241e1-8fab-7e7a-9a61-6de4e96d21aa", "k": "household",
        "v": "522634101201", "p": None, "t": "1796401631147.0003", "o": "update", "new": {"phone": "13800000000"},
        "old": {"phone": "139"}, "seen": {"phone": "1796401631147.0001"}, "by": "admin", "why": None}

FIELDS = ("site_id", "seq", "record_id", "kind", "village_code", "parent_id", "hlc", "op", "new", "old", "seen",
          "operator", "reason")


def _text(changes, **others) -> bytes:
    return json.dumps({"certificate": "d5f91d365ccdadb5", "changes": changes, "dictionary_version": "2026.5",
                       "down_rowid": 3, **others}, ensure_ascii=False).encode()


def _general(raw: bytes):
    payload = wire.parse(raw)
    changes = county_merge.changes_from_wire(payload["changes"])
    payload["changes"] = None
    return payload, changes


def _fields(c) -> tuple:
    return tuple(getattr(c, f) for f in FIELDS)


def test_a_well_formed_upload_reads_the_same_as_the_general_reading():
    second = {**GOOD, "n": 8, "o": "create", "p": "01a241e1-8fab-7e7a-9a61-6de4e96d21ab", "k": "member",
              "new": {"name": "邵成德", "nums": [1, 2.5, True, None], "deep": {"a": {"b": "\u00e9"}}}, "old": {},
              "seen": {}, "why": "核实后更正"}
    raw = _text([GOOD, second], more_changes=True, attachments=[{"id": "x", "data": "QUJD"}])
    fast = county_merge.decode_payload(raw)
    assert fast is not None
    payload, changes = _general(raw)
    assert fast[0] == payload
    assert [_fields(c) for c in fast[1]] == [_fields(c) for c in changes]
    assert fast[1][0].payload() == changes[0].payload()


@pytest.mark.parametrize("change", [
    {**GOOD, "n": "7"},             # a number as text: converted by the general reading
    {**GOOD, "n": 0},               # not a sequence number: refused there
    {**GOOD, "n": True},
    {**GOOD, "t": "1796401631147"},  # a malformed stamp
    {**GOOD, "t": "１796401631147.0003"},  # a digit that is not ASCII
    {**GOOD, "o": "erase"},
    {**GOOD, "by": ""},
    {**GOOD, "new": None},
    {**GOOD, "s": 5},
    {k: v for k, v in GOOD.items() if k != "why"},  # a key left out: the general reading fills it
    [1, 2],
])
def test_a_change_of_another_shape_is_left_to_the_general_reading(change):
    raw = _text([GOOD, change])
    assert county_merge.decode_payload(raw) is None
    try:
        _general(raw)  # converts or refuses it with its own message, as before
    except StoreError as exc:
        assert "更改记录格式不对" in str(exc)


def test_long_numbers_are_read_exactly_in_one_pass_and_what_only_the_standard_library_reads_is_left_to_it():
    big = {"phone": 12345678901234567890123, "n": -9223372036854775809, "u": 18446744073709551616, "f": 0.1 + 0.2}
    long_number = _text([{**GOOD, "new": big, "old": {"phone": 10 ** 40}}], down_rowid=10 ** 30)
    text, long = wire.inflate(__import__("zlib").compress(long_number))
    assert long
    fast = county_merge.decode_payload(text)
    payload, changes = _general(text)
    assert fast is not None and wire.parse(text, long)["changes"][0]["new"] == big  # exact
    assert repr(sorted(fast[0].items())) == repr(sorted(payload.items())) and fast[0]["down_rowid"] == 10 ** 30
    assert repr([_fields(c) for c in fast[1]]) == repr([_fields(c) for c in changes])
    assert fast[1][0].new == big and fast[1][0].old == {"phone": 10 ** 40}
    assert county_merge.decode_payload(_text([{**GOOD, "new": {"x": 1e400}}])) is None  # beyond a float
    assert wire.parse(_text([{**GOOD, "new": {"x": 1e400}}]))["changes"][0]["new"]["x"] == float("inf")
    assert county_merge.decode_payload(_text([GOOD]).replace(b'"down_rowid": 3', b'"down_rowid": NaN')) is None
    assert county_merge.decode_payload(b"[1, 2]") is None
    assert county_merge.decode_payload(_text(None)) is None
    assert county_merge.decode_payload(b'{"changes": [') is None


def test_the_reference_path_never_reads_typed(monkeypatch):
    monkeypatch.setattr(county_merge, "FUSED", False)
    assert county_merge.decode_payload(_text([GOOD])) is None


def test_every_key_a_laptop_writes_is_read_with_the_changes_in_one_pass(tmp_path, monkeypatch):
    """The payload of a real upload (more changes to follow, images, images wanted) has only keys
    the one-pass reading knows: a key added to uploads without adding it there would make every
    upload read twice (`_TOP`, then the changes)."""
    from app.sync import exchange
    from tests.sync_helpers import make_county, make_device

    county = make_county(tmp_path)
    device = make_device(tmp_path, county, "甲")
    for i in range(2):
        device.put("household", {"head_name": f"户主{i}"}, village_code="522634101201")
    written = []
    seal = wire.seal_payload
    monkeypatch.setattr(wire, "seal_payload", lambda payload, *a: written.append(dict(payload)) or seal(payload, *a))
    name, data = exchange.export_upstream(device, limit=1)
    payload = written[0]
    assert payload["more_changes"] is True
    exchange._attachment_payload(payload, [{"id": "x", "data": "QUJD"}], True, ["y"])  # the image keys
    text = wire.canonical(payload)
    monkeypatch.setattr(county_merge, "_TOP", None)  # the two-pass reading is not used
    fast = county_merge.decode_payload(text)
    assert fast is not None and set(fast[0]) == set(payload)
    assert [c.seq for c in fast[1]] == [c["n"] for c in payload["changes"]]
    assert exchange.import_bundle(county, data, name).status == "accepted"
    county.close()
    device.close()


def test_an_upload_with_a_key_this_county_does_not_know_is_still_read_typed_and_keeps_the_key():
    raw = _text([GOOD], from_a_newer_program={"a": [1, 2]})
    fast = county_merge.decode_payload(raw)
    payload, changes = _general(raw)
    assert fast is not None and fast[0] == payload and fast[0]["from_a_newer_program"] == {"a": [1, 2]}
    assert [_fields(c) for c in fast[1]] == [_fields(c) for c in changes]


def test_stamps_are_checked_each_as_a_whole():
    """The stamps of an upload are tested in one pass over them joined by newlines: a stamp holding a
    newline (here two stamps in one, which would line up with the pieces) is still found and the
    payload left to the general reading, which refuses the change."""
    stamp = GOOD["t"]
    two_in_one = [{**GOOD, "t": f"{stamp}\n{stamp}"}, {**GOOD, "n": 8}]
    trailing = [{**GOOD, "t": stamp + "\n"}]
    for changes in (two_in_one, trailing, [{**GOOD, "n": 8}, {**GOOD, "t": ""}]):
        assert county_merge.decode_payload(_text(changes)) is None
        with pytest.raises(StoreError, match="更改记录格式不对"):
            _general(_text(changes))
    many = [{**GOOD, "n": n, "t": f"17964016311{n:02d}.{n:04d}"} for n in range(1, 60)]
    fast = county_merge.decode_payload(_text(many))
    assert fast is not None and [c.hlc for c in fast[1]] == [c["t"] for c in many]
