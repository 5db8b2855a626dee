"""A village ledger as people keep it, checked by one dry run: the reasons say what went wrong with
the cell in words that lead to the fix (an ID number Excel turned into a number, a 15-digit
first-generation number, a phone number too short is named with its value)."""

from __future__ import annotations

from app.core import idnumber
from app.core.dictionary import default
from app.core.validation import validate_household
from app.tables import importer
from tests.test_tables import HEAD1, HEAD2, SYN_HEADER, V, fresh, ledger, syn_rows  # noqa: F401 - fixture


def test_an_id_number_excel_stored_as_a_number_says_so_and_what_to_do(fresh, tmp_path):
    rows = syn_rows()
    rows[0][11] = float(HEAD1[:17] + "0")  # the cell Excel made a number of: 5.22699197005061E+17
    rows[2][11] = HEAD2[:6] + HEAD2[8:17]  # a 15-digit first-generation number
    header = SYN_HEADER + ["联系电话"]
    rows = [r + [None] for r in rows]
    rows[2][-1] = "1391234"
    path = ledger(tmp_path / "台账.xlsx", header, rows)
    report = importer.import_table(fresh, path, village=V, dry=True)
    reasons = {(r.row, r.column): r.reason for r in report.rejections}
    assert "Excel" in reasons[(2, "身份证号")] and "文本" in reasons[(2, "身份证号")]
    # said once: not also as a required value left empty
    assert [r.reason for r in report.rejections if r.row == 2 and "身份" in r.reason + r.column] == [reasons[(2, "身份证号")]]
    assert "15位" in reasons[(4, "身份证号")] and "18位" in reasons[(4, "身份证号")]
    assert "1391234" in reasons[(4, "联系电话")]


def test_the_id_number_messages_for_excel_numbers_and_old_numbers():
    for typed in ("5.22624E+17", "5.22624198001011e17"):
        try:
            idnumber.parse(typed)
        except idnumber.IdNumberError as exc:
            assert "Excel" in str(exc) and "文本" in str(exc)
        else:
            raise AssertionError(typed)
    try:
        idnumber.parse("522624800101123")
    except idnumber.IdNumberError as exc:
        assert "15位" in str(exc)
    else:
        raise AssertionError("15 digits")


def test_a_wrong_phone_number_is_named_with_its_value():
    d = default()
    doc = {"village_code": V, "head_name": "王大山", "phone": "1391234", "members": []}
    messages = [f.message for f in validate_household(doc, d) if f.field == "phone"]
    assert messages and "1391234" in messages[0]


def test_a_stray_space_in_a_typed_chinese_name_is_not_stored(store):
    """An input method leaves a space after the surname (韩 梅梅): the editor and add --json store the
    name as the ID card has it, as the ledger import already did, so search and the head's member match."""
    from app.services import households
    from tests import factories

    doc = factories.household()
    doc["head_name"] = "韩 梅梅"
    doc["members"][0]["name"] = "韩　梅梅"  # a full-width space
    hid = households.save(store, doc, allow_errors=True).household_id
    saved = households.document(store, hid)
    assert saved["head_name"] == "韩梅梅" and saved["members"][0]["name"] == "韩梅梅"
    assert hid in store.search("韩梅梅")
    d = default()
    assert values_of(d, "member", "name", " Maria  Lopez ") == "Maria  Lopez"  # Latin names keep their spaces
    assert values_of(d, "household", "bank_name", "中国 农业银行") == "中国 农业银行"  # only names are tidied


def values_of(d, kind, key, typed):
    from app.core import values

    return values.coerce(d.kinds[kind].fields[key], typed, d)[0]


def test_a_nationality_written_without_zu_is_understood_and_a_long_list_gives_examples():
    from app.core import values

    d = default()
    field = d.kinds["member"].fields["ethnicity"]
    assert values.coerce(field, "苗", d) == values.coerce(field, "苗族", d)
    assert values.coerce(field, "汉", d)[1] is None
    _, message = values.coerce(field, "火星人", d)
    assert "汉族" in message and "见代码表" not in message  # there is no 代码表 a ledger's keeper could look at


def test_a_ledger_row_without_a_known_village_names_the_column_in_chinese(fresh, tmp_path):
    rows = syn_rows()[:2]
    header = SYN_HEADER + ["村名称"]
    rows = [r + ["不存在村"] for r in rows]
    path = ledger(tmp_path / "台账.xlsx", header, rows)
    report = importer.import_table(fresh, path, dry=True)
    columns = {r.column for r in report.rejections}
    assert "村名称" in columns and "village_code" not in columns
    # each row's village is named once: not also as a 村代码 that is not 12 digits
    assert not [r for r in report.rejections if "12位" in r.reason or "12 位" in r.reason]


def test_search_finds_an_id_number_typed_in_full_width_and_a_name_typed_with_a_space(store):
    from app.services import households
    from tests import factories

    doc = factories.household()
    hid = households.save(store, doc, allow_errors=True).household_id
    saved = households.document(store, hid)
    member = saved["members"][-1]
    number, name = member["id_number"], member["name"]
    full_width = number.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"}).lower()
    assert hid in store.search(full_width)  # an input method in full-width mode: ５２２６…ｘ
    assert hid in store.search(full_width[-7:])
    spaced = name[0] + " " + name[1:]
    assert hid in store.search(spaced)
    assert store.search_reasons(full_width, [hid])[hid][0] == "member_id_number"


def test_a_stage_this_database_may_not_do_says_where_it_is_done():
    from app.core import procedures

    text = procedures.role_refusal("county", "township")
    assert "本数据库是县级" in text and "请在乡镇扶贫站的电脑上办理" in text and "同步" in text
    assert "请在" not in procedures.role_refusal("village", "county", incoming=True)  # a refused change: no advice
