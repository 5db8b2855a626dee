"""County scale: households read a batch at a time (list --json, validate), JSON written by orjson
exactly as json.dump wrote it, and nothing kept per change when nobody listens."""

from __future__ import annotations

import io
import json
import sys
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli import common
from app.cli.main import main
from app.core.dictionary import default
from app.services import households
from tests.conftest import PASSPHRASE

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 80), max_value=2 ** 80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


def _printed(obj) -> str:
    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        common.print_json(obj)
        return sys.stdout.getvalue()
    finally:
        sys.stdout = saved


def test_print_json_spells_floats_as_json_dump_did():
    values = [1e-05, 1e-07, 1e-06, 3.5e-09, 1e-10, 2.5e-300, 1.23e-05, 0.00012, 1e16, 1.5e16, 9.999e15, 0.0001, 5e-324, 1.7976931348623157e308, -1e22, 4242.33, 0.0, -0.0]
    for value in (values, [{"x": v} for v in values], {"nested": [[v] for v in values]}):
        assert _printed(value) == json.dumps(value, ensure_ascii=False, indent=2) + "\n"


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON, max_size=5) | JSON)
def test_print_json_writes_what_json_dump_wrote_byte_for_byte(value):
    expected = json.dumps(value, ensure_ascii=False, indent=2) + "\n"
    assert _printed(value) == expected
    if isinstance(value, list):  # the same, streamed from an iterator
        assert _printed(iter(value)) == expected


def _documents_as_before(store, village_code=None) -> list[dict]:
    """Every document assembled from all records at once (how documents() read them before)."""
    homes = list(store.records("household", village_code=village_code))
    children = defaultdict(list)
    for kind in default().child_kinds("household"):
        for record in store.records(kind.key, village_code=village_code):
            children[record.parent_id].append(record)
    return [households.assemble(h, children.get(h.id, [])) for h in homes]


def test_documents_read_a_batch_at_a_time_are_the_same_documents(demo_store, monkeypatch):
    monkeypatch.setattr(households, "DOCUMENT_BATCH", 5)  # 12 households: three batches
    member = next(demo_store.records("member"))
    demo_store.delete(member.id, reason="01")  # a removed member stays out
    expected = _documents_as_before(demo_store)
    assert list(households.iter_documents(demo_store)) == expected
    assert households.documents(demo_store) == expected
    village = expected[0]["village_code"]
    assert list(households.iter_documents(demo_store, village)) == _documents_as_before(demo_store, village)
    assert all(m["id"] != member.id for doc in expected for m in doc["members"])


def test_list_json_prints_the_documents_as_json_dump_did(demo_store, capsys, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)
    expected = json.dumps(_documents_as_before(demo_store), ensure_ascii=False, indent=2) + "\n"
    path = demo_store.path
    demo_store.close()
    capsys.readouterr()
    assert main(["list", str(path), "--json"]) == 0
    assert capsys.readouterr().out == expected
    assert main(["list", str(path)]) == 0
    captured = capsys.readouterr()
    assert "共 12 户" in captured.err and len(captured.out.splitlines()) == 13


def test_validate_all_reads_in_batches_and_still_finds_shared_household_numbers(demo_store, monkeypatch):
    monkeypatch.setattr(households, "DOCUMENT_BATCH", 5)
    first, last = list(demo_store.records("household"))[0], list(demo_store.records("household"))[-1]
    demo_store.put("household", {"household_number": first.fields["household_number"]}, record_id=last.id)
    findings = households.validate_all(demo_store)
    shared = {f.record_id for f in findings if f.rule == "duplicate_household_number"}
    assert shared == {first.id, last.id}


def test_changes_are_kept_for_listeners_only(store):
    seen = []
    with store.transaction():
        store.put("household", {"head_name": "甲"}, village_code="522634101201")
        assert store._pending == []  # nobody listens: a county-sized import keeps nothing per change
    store.listeners.append(seen.extend)
    with store.transaction():
        store.put("household", {"head_name": "乙"}, village_code="522634101201")
        store.create_many([("household", {"head_name": "丙"}, "522634101201", None)])
    assert [c.new.get("head_name") for c in seen] == ["乙", "丙"]


def test_the_window_list_decrypts_each_household_and_member_once_and_search_still_finds_them(demo_store):
    from app.ui.model import load_rows

    demo_store.lock()
    demo_store.unlock("admin", PASSPHRASE)
    decoded = []
    real = demo_store._decode_rows
    demo_store._decode_rows = lambda rows: decoded.extend(r[0] for r in rows) or real(rows)
    rows = load_rows(demo_store)
    assert len(rows) == 12
    assert sorted(decoded) == sorted({r.id for r in demo_store.records("household")}
                                     | {r.id for r in demo_store.records("member")})  # each once
    member = next(demo_store.records("member"))
    head = next(r for r in demo_store.records("household") if r.id == member.parent_id)
    by_rows = {q: demo_store.search(q) for q in (member.fields["name"], member.fields["id_number"][-6:],
                                                 head.fields["household_number"], "不存在")}
    demo_store.build_search_index()  # decrypting everything again gives the same index
    assert {q: demo_store.search(q) for q in by_rows} == by_rows
    assert member.parent_id in by_rows[member.fields["name"]]


def test_a_bundle_merged_a_few_changes_at_a_time_ends_as_merged_at_once(tmp_path, monkeypatch):
    import shutil

    from app.sync.merge import Merger
    from tests import sync_helpers as sh

    county = sh.make_county(tmp_path)
    laptop = sh.make_device(tmp_path, county, "甲村工作队")
    other = sh.make_device(tmp_path, county, "乙工作站")
    county.close()
    shutil.copy(tmp_path / "county.db", tmp_path / "copy.db")
    ids = []
    for i in range(4):
        ids.append(laptop.put("household", {"head_name": f"户{i}", "phone": "1"}, village_code=sh.VILLAGE).record_id)
        laptop.put("member", {"name": f"人{i}"}, village_code=sh.VILLAGE, parent_id=ids[-1])
    for i, rid in enumerate(ids * 2):  # later changes of records an earlier chunk wrote
        laptop.put("household", {"phone": f"改{i}"}, record_id=rid)
    laptop.delete(ids[1], reason="01")
    first = sh.exchange.export_upstream(laptop)

    def opened(name):
        store = sh.Store.open(tmp_path / name)
        store.unlock("admin", sh.PASSPHRASE)
        return store

    reports = {}
    for name, chunk in (("county.db", 10_000), ("copy.db", 2)):
        monkeypatch.setattr(Merger, "CHUNK", chunk)
        with opened(name) as store:
            reports[name] = [sh.exchange.import_bundle(store, first[1], first[0])]
            if name == "county.db":
                sh.down(store, other)
    other.put("household", {"head_name": "乙改"}, record_id=ids[0])  # concurrent with the next: a conflict
    laptop.put("household", {"head_name": "甲改"}, record_id=ids[0])
    bundles = [sh.exchange.export_upstream(other), sh.exchange.export_upstream(laptop)]
    states = {}
    for name, chunk in (("county.db", 10_000), ("copy.db", 2)):
        monkeypatch.setattr(Merger, "CHUNK", chunk)
        with opened(name) as store:
            reports[name] += [sh.exchange.import_bundle(store, data, bundle) for bundle, data in bundles]
            states[name] = sh.state(store)
    assert states["county.db"] == states["copy.db"]
    summary = {k: [(r.status, r.applied, r.conflicts) for r in v] for k, v in reports.items()}
    assert summary["county.db"] == summary["copy.db"]
    assert summary["copy.db"][0][1] == 17 and summary["copy.db"][2][2] == 1  # every change; the conflict found


def test_search_entries_of_parts_make_the_same_index_as_indexing_record_by_record(demo_store):
    from app.store.search import SearchEntries

    houses = list(demo_store.records("household"))
    members = list(demo_store.records("member"))
    demo_store.build_search_index(records=houses + members)  # one record at a time (_index_record)
    whole = (demo_store._search, demo_store._search_parts)
    demo_store.start_search_index()
    for i in range(0, len(houses), 5):  # parts of 5 households, each with its members
        part = houses[i:i + 5]
        ids = {h.id for h in part}
        demo_store.add_search_entries(SearchEntries(part + [m for m in members if m.parent_id in ids]))
    assert (demo_store._search, demo_store._search_parts) == whole
    assert demo_store.search(members[3].fields["name"]) and demo_store.find_household_number(
        houses[7].fields["household_number"]) == [houses[7].id]
