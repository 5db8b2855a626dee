"""Household number blocks (户编号段): a laptop never runs out for good, and never issues a number
another device holds (app.sync.numbers)."""

from __future__ import annotations

from app.services import households, worklists
from tests import factories
from app.sync import exchange, numbers
from app.cli.main import main
from tests.conftest import PASSPHRASE
from tests.sync_helpers import VILLAGE, address, make_county, make_device, up

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)


def _add(device, count, start):
    out = []
    for i in range(start, start + count):
        out.append(households.save(device, {"village_code": VILLAGE, "head_name": f"新户{i}", "status": "1"},
                                   allow_errors=True))
    return out


def _usb_round_trip(tmp_path, device, county, n):
    """Bundles through a USB folder, as a work team carries them: up to the county, down again."""
    stick = tmp_path / f"stick{n}"
    stick.mkdir()
    exchange.export_to(device, stick)
    reports = exchange.import_paths(county, [stick])
    assert all(r.status == "accepted" for r in reports), [r.line() for r in reports]
    back = tmp_path / f"back{n}"
    back.mkdir()
    exchange.export_to(county, back)
    reports = exchange.import_paths(device, [back])
    assert all(r.status in ("accepted", "duplicate") for r in reports), [r.line() for r in reports]
    return reports


def test_a_thousand_households_in_one_village_on_one_laptop_across_top_ups_without_re_enrolment(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    first = laptop.meta("number_block")
    assert first == "1001-1300"  # a village the county holds no household of: the smallest block
    added, top_ups, n = 0, 0, 0
    while added < 1000:
        left = numbers.numbers_left(laptop, VILLAGE)
        batch = min(1000 - added, left)
        results = _add(laptop, batch, added)
        assert not any(f.rule == "numbers_exhausted" for r in results for f in r.findings)
        added += batch
        if added < 1000:
            n += 1
            before = laptop.meta("number_topups")
            reports = _usb_round_trip(tmp_path, laptop, county, n)
            top_ups += laptop.meta("number_topups") != before
            assert any("新的户编号段" in w for r in reports for w in r.warnings)
    _usb_round_trip(tmp_path, laptop, county, n + 1)
    assert top_ups >= 1 and laptop.meta("number_block") == first  # the certificate never changed
    numbers_at_county = [h.fields["household_number"] for h in county.records("household")]
    assert len(numbers_at_county) == 1000 == len(set(numbers_at_county))
    assert all(n.startswith(VILLAGE) for n in numbers_at_county)
    county.close()
    laptop.close()


def test_running_out_keeps_the_household_as_a_draft_with_the_reason_and_a_top_up_numbers_it(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    results = _add(laptop, 290, 0)
    assert any("只剩 10 个" in n for n in worklists.build(laptop).notices)
    results += _add(laptop, 10, 290)
    assert not any(f.rule == "numbers_exhausted" for r in results for f in r.findings)
    [result] = _add(laptop, 1, 300)  # the 301st: no traceback, no refusal
    [finding] = [f for f in result.findings if f.rule == "numbers_exhausted"]
    assert "已用完" in finding.message and "草稿" in finding.message and "不需要重新登记" in finding.message
    draft = households.document(laptop, result.household_id)
    assert draft["head_name"] == "新户300" and "household_number" not in draft
    assert any("已用完" in n for n in worklists.build(laptop).notices)
    reports = _usb_round_trip(tmp_path, laptop, county, 1)
    assert any("已给 1 户暂无户编号的草稿补上户编号" in w for r in reports for w in r.warnings)
    numbered = households.document(laptop, result.household_id)["household_number"]
    low, high = numbers.device_blocks(laptop, VILLAGE)[1]
    assert low == 1301 and low <= int(numbered[len(VILLAGE):]) <= high
    assert not worklists.build(laptop).notices
    up(laptop, county)  # the number given afterwards reaches the county too
    assert sorted(h.fields.get("household_number") for h in county.records("household"))[-1] == numbered
    county.close()
    laptop.close()


# ---------------------------------------------------------------------- 户编号 checked


def test_a_number_that_does_not_fit_its_village_or_the_laptops_block_is_refused_and_reported(tmp_path, capsys):
    from app.core.validation import validate_household

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    for number, words in (("abc", "应为本户的村代码"), ("5226341012020001", "应为本户的村代码"),
                          (f"{VILLAGE}0001", "不在本机的户编号段")):
        try:
            households.save(laptop, factories.household(household_number=number))
        except households.ValidationFailed as exc:
            assert words in str(exc), str(exc)
        else:
            raise AssertionError(f"{number} was accepted")
    assert laptop.count("household") == 0
    # validate reports a number of another village on a household already stored
    doc = factories.household(household_number="5226341012020007")
    assert any(f.rule == "household_number" for f in validate_household(doc))
    # the county refuses a bundle carrying one (a laptop that went around its own checks)
    saved = households.save(laptop, factories.household())
    laptop.put("household", {"household_number": f"{VILLAGE}0005"}, record_id=saved.household_id)
    report = up(laptop, county)
    assert report.refused and "不在该设备的户编号段(1001-1300)内" in report.message
    assert county.count("household") == 0
    county.close()
    laptop.close()


def test_a_laptop_creates_households_only_as_not_yet_out_of_poverty_and_the_county_enforces_it(tmp_path):
    from app.core import procedures

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    try:
        households.save(laptop, factories.household(status="3"))
    except households.StatusChangeRefused as exc:
        assert "只能以“未脱贫”登记" in str(exc)
    else:
        raise AssertionError("a new household at 已脱贫(不再享受政策) was saved on a laptop")
    saved = households.save(laptop, factories.household())
    assert households.document(laptop, saved.household_id)["status"] == "1"
    # a laptop that writes the record directly: the county refuses the bundle
    laptop.put("household", {**factories.household(head="直接写入", seq=9, status="3"), "members": None,
                             "incomes": None, "helpers": None, "measures": None, "plans": None, "visits": None},
               village_code=VILLAGE)
    report = up(laptop, county)
    assert report.refused and "只能以“未脱贫”登记" in report.message
    # the county itself imports historical ledgers with any status
    assert procedures.start_status_refusal("3", "county") is None
    county.close()
    laptop.close()


def test_the_editor_saves_a_household_past_the_last_number_and_says_why(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app.ui.editor import HouseholdEditor

    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text, *a: told.append((title, text)))
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    laptop.set_meta(f"household_counter:{VILLAGE}", "1300")  # the block's last number was issued
    editor = HouseholdEditor(laptop, village_code=VILLAGE)
    qtbot.addWidget(editor)
    form = next(f for f in editor.household_forms if "head_name" in f.inputs)
    form.inputs["head_name"].widget.setText("编号用完户")
    form.record["head_name"] = "编号用完户"
    assert editor.save() is True  # no traceback, no refusal
    assert told and told[-1][0] == "暂无户编号" and "不需要重新登记" in told[-1][1]
    saved = households.document(laptop, editor.household_id)
    assert saved["head_name"] == "编号用完户" and "household_number" not in saved
    editor.dirty = False
    county.close()
    laptop.close()


def test_the_county_numbers_its_own_households_below_the_laptops_blocks_then_takes_a_block_then_stops(tmp_path, monkeypatch,
                                                                                                   capsys):
    """The county numbers 0001-1000 itself; past that it must not issue a laptop's 1001-1300 (the same
    户编号 would then name two families), but take a block of its own, and stop with a message at 9999."""
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村工作队")
    assert numbers.device_blocks(laptop, VILLAGE) == [(1001, 1300)]
    county.set_meta(f"household_counter:{VILLAGE}", "999")  # as after 999 households numbered at the county
    thousandth = households.save(county, {"village_code": VILLAGE, "head_name": "县录入户", "status": "1"},
                                 allow_errors=True)
    assert county.get(thousandth.household_id).fields["household_number"] == f"{VILLAGE}1000"
    after = households.save(county, {"village_code": VILLAGE, "head_name": "县录入户二", "status": "1"},
                            allow_errors=True)
    number = int(county.get(after.household_id).fields["household_number"][len(VILLAGE):])
    assert not numbers.in_blocks(number, [(1001, 1300)]) and number == 1301  # after the laptop's block
    assert numbers.county_blocks(county, VILLAGE)[1][0] == 1301
    county_block = numbers.county_blocks(county, VILLAGE)[1]
    # a laptop enrolled afterwards gets a block clear of the county's
    second = make_device(tmp_path, county, "龙井村第二工作队")
    assert numbers.device_blocks(second, VILLAGE)[0][0] > numbers.county_blocks(county, VILLAGE)[1][1]
    # every 4-digit number given out: the county stops, keeps the household as a draft and says why
    county.set_meta(f"next_number_block:{VILLAGE}", str(numbers.LAST_NUMBER + 1))
    county.set_meta(f"household_counter:{VILLAGE}", str(numbers.county_blocks(county, VILLAGE)[-1][1]))
    last = households.save(county, {"village_code": VILLAGE, "head_name": "县录入户三", "status": "1"},
                           allow_errors=True)
    assert not county.get(last.household_id).fields.get("household_number")
    reason = next(f.message for f in last.findings if f.rule == "numbers_exhausted")
    assert VILLAGE in reason and "9999" in reason and "草稿" in reason and "jiandang devices" in reason
    laptop.close()
    second.close()
    path = address(county)  # the file, or the PostgreSQL URL with its password
    county.close()
    # jiandang devices, which the message points to, lists the county's own numbers beside the laptops'
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    assert main(["devices", str(path), "--operator", "admin"]) == 0
    own = capsys.readouterr().out.splitlines()[-1].split("\t")
    assert own[:2] == ["本库", "县里自编"] and own[5] == f"0001-1000 +{VILLAGE}:{county_block[0]:04d}-{county_block[1]:04d}"
