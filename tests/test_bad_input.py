"""Bad input at the edges: `add --json` with hostile or careless JSON, names carrying control
characters, USB folders with links and odd file names, forged bundle headers. Each is refused with a
clear sentence (never a traceback) and nothing is stored."""

from __future__ import annotations

import json
import os
import sys

import pytest

from app.cli.main import main
from app.services import households
from app.store import Store
from app.sync import exchange
from tests import factories
from tests.conftest import PASSPHRASE
from tests.sync_helpers import digest, make_county, make_device


@pytest.fixture
def db(store, monkeypatch):
    path = store.path
    store.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    return path


def _add(db, tmp_path, text: str, *extra) -> tuple[int, str, str]:
    f = tmp_path / "in.json"
    f.write_text(text, encoding="utf-8")
    code = main(["add", str(db), "--json", str(f), *extra])
    return code


def _count(db) -> int:
    with Store.open(db) as s:
        return s.count("household")


BAD = {
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "嵌套层数太多"),
    "Infinity": (None, "Infinity"),
    "1e30": (None, "数值太大"),
    "400 digits": (None, "位数太多"),
    "5000 digits": (None, "位数太多"),
    "name as number": (None, "应为文字"),
    "name as list": (None, "应为文字"),
    "NUL": (None, "控制字符"),
    "ESC": (None, "控制字符"),
    "newline": (None, "控制字符"),
    "RLO": (None, "控制字符"),
}


def _doc_text(case: str) -> str:
    doc = factories.household()
    income = doc["incomes"][0]
    raw = {"Infinity": '"wage_income": Infinity', "1e30": '"wage_income": 1e30',
           "400 digits": '"wage_income": ' + "9" * 400, "5000 digits": '"wage_income": ' + "9" * 5000}
    if case in raw:
        income["wage_income"] = "@@"
        return json.dumps(doc, ensure_ascii=False).replace('"wage_income": "@@"', raw[case])
    doc["head_name"] = {"name as number": 12345, "name as list": ["a"], "NUL": "张\x00三", "ESC": "张\x1b[31m三",
                        "newline": "张\n三", "RLO": "张\u202e三"}[case]
    doc["members"][0]["name"] = "张三"
    return json.dumps(doc, ensure_ascii=False)


@pytest.mark.parametrize("case", list(BAD))
def test_hostile_json_is_refused_with_a_sentence_and_nothing_is_stored(db, tmp_path, capsys, case):
    text, words = BAD[case]
    code = _add(db, tmp_path, text or _doc_text(case))
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err and words in err, err[-500:]
    assert "\x1b" not in err and "\x00" not in err and "\u202e" not in err
    assert _count(db) == 0


def test_an_empty_list_says_nothing_was_saved(db, tmp_path, capsys):
    assert _add(db, tmp_path, "[]") == 1
    assert "未保存任何数据" in capsys.readouterr().err


def test_list_never_prints_raw_control_characters(db, capsys):
    with Store.open(db) as s:  # a name stored before names were checked
        s.unlock("admin", PASSPHRASE)
        s.put("household", {"head_name": "李\x1b[2J\t四\n伪造行", "household_number": "5226341012010001"},
              village_code="522634101201")
    assert main(["list", str(db)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and out.count("\n") == 2  # the heading and one row, the row not split
    assert "\\u001b[2J" in out and len(out.splitlines()[1].split("\t")) == 7


def test_a_draft_keeps_the_name_without_the_control_characters(db, tmp_path, capsys):
    doc = factories.household(head="王\x1b[31m五")
    doc["members"][0]["name"] = "王五"
    assert _add(db, tmp_path, json.dumps(doc, ensure_ascii=False), "--draft") == 0
    with Store.open(db) as s:
        s.unlock("admin", PASSPHRASE)
        [h] = households.documents(s)
    assert h["head_name"] == "王[31m五"


def test_a_usb_file_name_with_escape_codes_is_not_echoed_raw_and_links_are_not_followed(tmp_path, capsys, monkeypatch):
    if not hasattr(os, "symlink"):
        pytest.skip("no symlinks here")
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    households.save(laptop, factories.household())
    name, data = exchange.export_upstream(laptop)
    county_path, laptop_path = county.path, laptop.path
    laptop.close()
    county.close()
    stick = tmp_path / "stick"
    stick.mkdir()
    (stick / "\x1b[2Jx.jdb").write_bytes(b"junk")
    outside = tmp_path / "outside" / name
    outside.parent.mkdir()
    outside.write_bytes(data)
    try:
        os.symlink(outside, stick / name)
    except OSError:
        pytest.skip("symlinks not permitted")
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "correct horse battery")
    code = main(["sync", "import", str(county_path), str(stick)])
    out, err = capsys.readouterr()
    assert "\x1b" not in out + err and "\\u001b[2Jx.jdb" in out
    assert "链接" in out and code == 1
    with Store.open(county_path) as c:
        assert c.count("household") == 0  # the file the link pointed at was not read


def test_a_bundle_numbered_minus_five_is_refused(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    households.save(laptop, factories.household())
    laptop.set_meta("sync_out_seq", "-6")
    name, data = exchange.export_upstream(laptop)
    before = digest(county)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and "不是正整数" in report.message
    assert digest(county) == before
    county.close()
    laptop.close()


def test_a_forged_gap_is_described_sanely(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    households.save(laptop, factories.household())
    laptop.set_meta("sync_acked_seq", "2")  # forged: leaves out its first changes
    name, data = exchange.export_upstream(laptop)
    report = exchange.import_bundle(county, data, name)
    assert report.refused and "不衔接" in report.message and "第 2 号到第 1 号" not in report.message
    county.close()
    laptop.close()


def test_a_list_inside_a_multi_code_list_is_an_error_not_a_crash(db, tmp_path, capsys):
    doc = factories.household(other_causes=[["7"], {"a": 1}])  # found by tests/test_fuzz.py
    assert _add(db, tmp_path, json.dumps(doc, ensure_ascii=False)) == 1
    err = capsys.readouterr().err
    assert "每一项应为一个代码" in err and "Traceback" not in err


def test_value_synonyms_apply_to_add_json_as_to_tables(db, tmp_path, capsys):
    """The synonyms of forms/synonyms.toml (app.core.synonyms, through values.coerce) are read for a
    JSON document as for an Excel cell: 户主 for 户主/本人, full-width brackets in a status label."""
    doc = factories.household(attribute="一般贫困户", main_cause="因病")
    doc["members"][0]["relation"] = "户主"
    doc["members"][1]["relation"] = "配偶"
    doc["status"] = "未脱贫"
    assert _add(db, tmp_path, json.dumps(doc, ensure_ascii=False)) == 0, capsys.readouterr().err
    with Store.open(db) as s:
        s.unlock("admin", PASSPHRASE)
        [saved] = households.documents(s)
    assert [m["relation"] for m in saved["members"]] == ["01", "02"] and saved["status"] == "1"
