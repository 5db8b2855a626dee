"""`jiandang print ...` as a user drives it, including the notice from real proposals and card
verification."""

from __future__ import annotations

import re

import pytest
from pypdf import PdfReader

from app.cli.main import main
from app.services import demo, households
from app.store import Store
from tests.conftest import PASSPHRASE

VILLAGE = "522634101201"


@pytest.fixture
def db(tmp_path, monkeypatch, recovery_key):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)
    path = tmp_path / "v.db"
    store = Store.create(path, role="village", site_name="龙井村工作队", operator="admin", passphrase=PASSPHRASE,
                         recovery_public_key=recovery_key.public_key())
    demo.fill(store, per_village=3)
    store.close()
    return path


def opened(path) -> Store:
    store = Store.open(path)
    store.unlock("admin", PASSPHRASE)
    return store


def text_of(path) -> str:
    return re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(str(path)).pages))


def test_print_each_document(db, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["print", "card", str(db), "--village", VILLAGE, "--out", str(out / "cards.pdf")]) == 0
    assert "户有卡 3 户" in capsys.readouterr().out
    assert main(["print", "register", str(db), "--village", VILLAGE, "--out", str(out / "reg.pdf")]) == 0
    assert main(["print", "book", str(db), "--township", "522634101", "--out", str(out / "book.pdf")]) == 0
    with opened(db) as store:
        docs = households.documents(store, VILLAGE)
        hid = docs[0]["id"]
    assert main(["print", "card", str(db), "--household", hid, "--out", str(out / "one.pdf"), "--full-id"]) == 0
    one = text_of(out / "one.pdf")
    assert all(m["id_number"] in one for m in docs[0]["members"])
    assert "合计:3户" in text_of(out / "reg.pdf")
    assert sorted(p.name for p in out.iterdir()) == ["book.pdf", "cards.pdf", "one.pdf", "reg.pdf"]


def test_bad_input_gives_a_message_and_no_file(db, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["print", "card", str(db), "--village", "522634101299", "--out", str(out / "x.pdf")]) == 1
    assert "没有村 522634101299" in capsys.readouterr().err
    assert main(["print", "card", str(db), "--household", "nope", "--out", str(out / "x.pdf")]) == 1
    assert "找不到贫困户 nope" in capsys.readouterr().err
    assert main(["print", "register", str(db), "--village", VILLAGE, "--out", str(tmp_path / "no" / "x.pdf")]) == 1
    assert "不存在" in capsys.readouterr().err
    assert main(["print", "book", str(db), "--township", "522634", "--out", str(out / "x.pdf")]) == 1
    assert "乡(镇)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --household or --village is required
        main(["print", "card", str(db), "--out", str(out / "x.pdf")])
    assert list(out.iterdir()) == []


def test_notice_from_proposals_waiting_for_public_notice(db, tmp_path, capsys):
    from app.services import proposals

    with opened(db) as store:
        docs = households.documents(store, VILLAGE)
        target = next(d for d in docs if d.get("status") in ("2", "3", "5"))
        p = proposals.propose(store, target["id"], "return", reasons="因灾房屋倒塌,收入骤降", date="2026-11-01")
        proposals.advance(store, p["id"], "review", "pass", date="2026-11-05", meeting_date="2026-11-05",
                          attendance=40, votes_for=35, votes_against=2)
        proposals.plan_notice(store, p["id"], "2026-11-06", "2026-11-13")
    out = tmp_path / "notice.pdf"
    assert main(["print", "notice", str(db), "--village", VILLAGE, "--kind", "entry", "--out", str(out),
                 "--place", "龙井村村委会公示栏", "--contact", "村委会 王主任", "--phone", "13800001111"]) == 0
    text = text_of(out)
    assert target["head_name"] in text
    assert "因灾房屋倒塌,收入骤降" in text and "返贫纳入" in text
    assert "2026年11月6日至2026年11月13日(共8天)" in text  # the period set on the proposal
    assert "13800001111" in text
    # no household waits for an exit notice: message, no file
    out2 = tmp_path / "exit.pdf"
    assert main(["print", "notice", str(db), "--village", VILLAGE, "--kind", "exit", "--out", str(out2)]) == 1
    assert "没有等待村内公示" in capsys.readouterr().err
    assert not out2.exists()
    # a period shorter than 7 days is refused
    assert main(["print", "notice", str(db), "--village", VILLAGE, "--kind", "entry", "--out", str(out2),
                 "--start", "2026-12-01", "--end", "2026-12-05"]) == 1
    assert "至少 7 天" in capsys.readouterr().err
    assert not out2.exists()
    # the township's own 公示 and the county's 公告: nothing has passed those stages yet
    assert main(["print", "notice", str(db), "--township", VILLAGE[:9], "--kind", "entry", "--out", str(out2)]) == 1
    assert "没有通过乡级初核、等待县级审定的拟纳入" in capsys.readouterr().err
    assert main(["print", "notice", str(db), "--county", VILLAGE[:6], "--kind", "exit", "--out", str(out2)]) == 1
    assert "没有通过县级审定、等待公告的拟退出" in capsys.readouterr().err
    assert main(["print", "notice", str(db), "--township", VILLAGE, "--kind", "entry", "--out", str(out2)]) == 1
    assert "不是乡(镇)代码:乡(镇)代码为9位数字" in capsys.readouterr().err
    assert not out2.exists()


def test_verify_a_printed_card(db, tmp_path, capsys):
    with opened(db) as store:
        doc = households.documents(store, VILLAGE)[0]
    out = tmp_path / "card.pdf"
    assert main(["print", "card", str(db), "--household", doc["id"], "--out", str(out)]) == 0
    text = text_of(out)
    digest = re.search(r"扫码核对([0-9a-f]{16})", text).group(1)
    capsys.readouterr()
    assert main(["print", "verify", str(db), "--household", doc["id"], "--digest", digest]) == 0
    assert "一致" in capsys.readouterr().out
    assert main(["print", "verify", str(db), "--qr", f"JDCARD1|{doc['id']}|{digest}"]) == 0
    # the 户编号 printed on the card names the household as well as its id
    assert main(["print", "verify", str(db), "--household", doc["household_number"], "--digest", digest]) == 0
    with opened(db) as store:
        changed = households.document(store, doc["id"])
        changed["members"][0]["name"] = changed["members"][0]["name"] + "改"
        households.save(store, changed, allow_errors=True)
    capsys.readouterr()
    assert main(["print", "verify", str(db), "--household", doc["id"], "--digest", digest]) == 1
    assert "不一致" in capsys.readouterr().out


def test_card_by_household_number_as_list_shows_it(db, tmp_path, capsys):
    with opened(db) as store:
        doc = households.documents(store, VILLAGE)[1]
    capsys.readouterr()
    assert main(["list", str(db)]) == 0
    assert doc["household_number"] in capsys.readouterr().out
    out = tmp_path / "card.pdf"
    assert main(["print", "card", str(db), "--household", doc["household_number"], "--out", str(out)]) == 0
    assert doc["head_name"] in text_of(out) and doc["household_number"] in text_of(out)
    assert main(["print", "card", str(db), "--household", "5226341012019999", "--out", str(tmp_path / "x.pdf")]) == 1
    assert "5226341012019999" in capsys.readouterr().err and not (tmp_path / "x.pdf").exists()
