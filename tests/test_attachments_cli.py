"""`jiandang attach`, `jiandang attachments` and `jiandang sync status` as a user drives them."""

from __future__ import annotations

import json

import pytest

from app.cli.main import main
from app.store import Store
from tests import photos
from tests.conftest import PASSPHRASE


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)
    path = tmp_path / "龙井村.db"
    assert main(["demo", str(path), "--per-village", "1"]) == 0
    return path


def _number(db) -> str:
    store = Store.open(db)
    store.unlock(store.operators()[0], PASSPHRASE)
    try:
        house = next(iter(store.records("household")))
        member = next(iter(store.records("member", parent_id=house.id)))
        return house.fields["household_number"], member.id
    finally:
        store.close()


def test_attach_and_list(db, tmp_path, capsys):
    number, member = _number(db)
    folder = tmp_path / "手机照片"
    folder.mkdir()
    (folder / "IMG_1.jpg").write_bytes(photos.photo(2000, 1500, seed=1))
    (folder / "IMG_2.jpg").write_bytes(photos.photo(2000, 1500, seed=2))
    assert main(["attach", str(db), "--household", number, str(folder), "--kind", "住房", "--caption", "危房改造后"]) == 0
    assert "已添加 2 张" in capsys.readouterr().out
    card = tmp_path / "身份证.png"
    card.write_bytes(photos.png())
    assert main(["attach", str(db), "--household", number, "--record", member[-8:], str(card), "--kind", "证件"]) == 0
    capsys.readouterr()
    assert main(["attachments", str(db), "--household", number, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["kind_label"], r["caption"], r["taken"]) for r in rows] == [
        ("住房", "危房改造后", "2025-03-01 10:20"), ("住房", "危房改造后", "2025-03-01 10:20"), ("证件", "", None)]
    assert rows[2]["record"] == member and rows[0]["width"] == 1600 and rows[0]["size"] > 0
    assert main(["attachments", str(db)]) == 0
    out = capsys.readouterr().out
    assert "共 3 张" in out and "危房改造后" in out and "证件" in out and "1600×1200" in out
    # the same photos again: nothing is added twice
    assert main(["attach", str(db), "--household", number, str(folder)]) == 0
    assert "已添加 0 张" in capsys.readouterr().out
    assert main(["attachments", str(db), "--delete", rows[0]["short_id"]]) == 0
    capsys.readouterr()
    assert main(["attachments", str(db), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_bad_files_and_names_are_told_in_chinese(db, tmp_path, capsys):
    number, _ = _number(db)
    bad = tmp_path / "合同.docx"
    bad.write_bytes(b"PK\x03\x04 not a photo")
    good = tmp_path / "ok.jpg"
    good.write_bytes(photos.photo(800, 600))
    assert main(["attach", str(db), "--household", number, str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert "已添加 1 张" in captured.out and "合同.docx" in captured.err and "Traceback" not in captured.err
    assert main(["attach", str(db), "--household", "9999", str(good)]) == 1
    assert "找不到户编号为 9999 的户" in capsys.readouterr().err
    assert main(["attach", str(db), "--household", number, str(good), "--kind", "风景"]) == 1
    assert "照片类别“风景”不存在" in capsys.readouterr().err


def test_sync_status_names_images_still_to_send(tmp_path, monkeypatch, capsys):
    from tests.sync_helpers import make_county, make_device
    from app.services import attachments, households
    from tests import factories

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    households.save(laptop, factories.household())
    house = next(iter(laptop.records("household")))
    (tmp_path / "a.jpg").write_bytes(photos.photo(1000, 750))
    attachments.add_files(laptop, house, [tmp_path / "a.jpg"])
    path, county_path = laptop.path, county.path
    laptop.close()
    county.close()
    assert main(["sync", "status", str(path)]) == 0
    assert "待发送照片:1 张" in capsys.readouterr().out
    usb = tmp_path / "usb"
    usb.mkdir()
    assert main(["sync", "export", str(path), "--to", str(usb), "--attachment-budget", "1"]) == 0
    capsys.readouterr()
    assert main(["sync", "status", str(path)]) == 0
    assert "待发送照片:无" in capsys.readouterr().out
    assert main(["sync", "import", str(county_path), str(usb)]) == 0
    assert "照片:收到 1 张" in capsys.readouterr().out
