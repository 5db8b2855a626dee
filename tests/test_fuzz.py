"""Fuzz tests (hypothesis): whatever bytes or values arrive, the bundle reader, the JSON reader and the
Excel/CSV reader answer with a clean refusal (their own error type or a refused report), never another
exception. Examples are bounded so the suite stays fast."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli.common import CommandError, parse_json_text
from app.core.dictionary import default
from app.services import households
from app.sync import exchange
from app.tables import importer
from app.tables.reader import TableError
from tests import factories
from tests.sync_helpers import digest, make_county, make_device

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    county = make_county(tmp)
    laptop = make_device(tmp, county, "龙井村工作队")
    households.save(laptop, factories.household())
    name, good = exchange.export_upstream(laptop)
    down_name, down = exchange.export_downstream(county, laptop.site_id)
    yield county, laptop, good, down
    laptop.close()
    county.close()


# ---------------------------------------------------------------------- bundles


@FAST
@given(data=st.binary(max_size=4096))
def test_any_bytes_as_a_bundle_are_refused_cleanly(pair, data):
    county, laptop, _, _ = pair
    before = digest(county), digest(laptop)
    for store in (county, laptop):
        report = exchange.import_bundle(store, data, "随机.jdb")
        assert report.refused and report.message
    assert (digest(county), digest(laptop)) == before


@FAST
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255),
       cut=st.integers(min_value=0), which=st.booleans())
def test_a_changed_or_cut_real_bundle_is_refused_cleanly(pair, position, value, cut, which):
    county, laptop, good, down = pair
    store, data = (county, good) if which else (laptop, down)
    bad = bytearray(data)
    position %= len(bad)
    if bad[position] == value:
        value ^= 0xFF
    bad[position] = value
    bad = bytes(bad[: len(bad) - cut % 64])
    before = digest(store)
    report = exchange.import_bundle(store, bad, "改动.jdb")
    assert report.refused and report.message
    assert digest(store) == before


# ---------------------------------------------------------------------- JSON


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@FAST
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_as_a_json_file_is_read_or_refused_cleanly(text):
    try:
        parse_json_text(text, "随机.json")
    except CommandError as exc:
        assert "随机.json" in str(exc)


def _field_keys():
    d = default()
    return sorted(d.kinds["household"].fields) + ["village_code", "id"]


@FAST
@given(fields=st.dictionaries(st.sampled_from(_field_keys()), JSON_VALUES, max_size=6),
       member=st.dictionaries(st.sampled_from(sorted(default().kinds["member"].fields)), JSON_VALUES, max_size=5),
       shape=st.sampled_from(["doc", "members-not-list", "member-not-dict", "not-dict"]))
def test_any_json_document_is_saved_or_refused_cleanly(store, fields, member, shape):
    doc = {"village_code": "522634101201", "head_name": "测试", **fields}
    if shape == "doc":
        doc["members"] = [member]
    elif shape == "members-not-list":
        doc["members"] = member
    elif shape == "member-not-dict":
        doc["members"] = [json.dumps(member)]
    else:
        doc = [doc]
    try:
        with store.transaction():
            households.save(store, doc, allow_errors=True)
            raise _RollBack
    except (_RollBack, households.InputError, households.ValidationFailed):
        pass


class _RollBack(Exception):
    pass


# ---------------------------------------------------------------------- Excel and CSV


@FAST
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".csv", ".xlsx", ".txt"]),
       zipped=st.booleans())
def test_any_bytes_as_a_table_are_refused_cleanly(store, tmp_path_factory, data, suffix, zipped):
    if zipped:  # something that opens as a zip archive, with junk where the workbook's parts should be
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("[Content_Types].xml", data[:200])
            z.writestr("xl/workbook.xml", data[200:])
        data = buf.getvalue()
    path = tmp_path_factory.mktemp("t") / f"台账{suffix}"
    path.write_bytes(data)
    try:
        plan = importer.analyse(store, path, village="522634101201")
        importer.dry_run(store, plan)
    except TableError as exc:
        assert str(exc)


CELLS = st.none() | st.integers(min_value=-10**30, max_value=10**30) | st.floats(allow_nan=True) | st.text(max_size=12)


@FAST
@given(rows=st.lists(st.lists(CELLS, min_size=1, max_size=8), max_size=6))
def test_a_real_workbook_with_any_cells_is_imported_or_refused_cleanly(store, tmp_path_factory, rows):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["户编号", "户主姓名", "姓名", "身份证号", "与户主关系", "性别", "脱贫状态", "家庭人口"])
    path = tmp_path_factory.mktemp("t") / "台账.xlsx"
    try:
        for row in rows:
            ws.append(row)
        wb.save(path)
    except Exception:  # openpyxl itself refuses some characters in cells: not a workbook anyone has
        return
    try:
        plan = importer.analyse(store, path, village="522634101201")
        importer.dry_run(store, plan)
    except TableError as exc:
        assert str(exc)
