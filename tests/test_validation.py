import datetime as dt

import pytest

from app.core import idnumber, income
from app.core.validation import ERROR, WARNING, has_errors, validate_household
from tests.factories import household, member


def rules_of(findings, severity=ERROR):
    return {(f.field, f.rule) for f in findings if f.severity == severity}


def test_a_complete_household_has_no_findings():
    assert validate_household(household()) == []


def test_missing_required_fields_are_errors_naming_the_field():
    doc = household()
    del doc["main_cause"]
    doc["members"][1]["name"] = ""
    findings = validate_household(doc)
    assert ("main_cause", "required") in rules_of(findings)
    assert any(f.kind == "member" and f.field == "name" and "姓名" in f.message for f in findings)


def test_bad_check_digit_is_an_error_with_the_expected_digit():
    doc = household()
    good = doc["members"][0]["id_number"]
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    doc["members"][0]["id_number"] = wrong
    findings = [f for f in validate_household(doc) if f.field == "id_number"]
    assert findings and findings[0].rule == "id_number"
    assert f"应为 {idnumber.check_char(good[:17])}" in findings[0].message
    assert findings[0].record_label == f"家庭成员“{doc['members'][0]['name']}”"


def test_a_bad_check_digit_is_the_only_error_of_a_member_whose_sex_comes_from_the_number():
    """The editor takes sex and birth date from a valid ID number: a typing slip in the number must
    not also report “性别”为必填项 (the cadre cannot fix that one)."""
    doc = household()
    good = doc["members"][0]["id_number"]
    doc["members"][0]["id_number"] = good[:17] + ("0" if good[17] != "0" else "1")
    del doc["members"][0]["sex"]
    errors = [f for f in validate_household(doc) if f.kind == "member" and f.severity == ERROR]
    assert [f.rule for f in errors] == ["id_number"]
    doc["members"][0]["id_number"] = good  # a valid number: a missing sex is an error again
    assert ("sex", "required") in rules_of(validate_household(doc))


def test_id_number_must_agree_with_birth_date_and_sex():
    doc = household()
    doc["members"][0]["sex"] = "2"
    doc["members"][0]["birth_date"] = "1970-05-07"
    assert {("sex", "id_matches_birth_and_sex"), ("birth_date", "id_matches_birth_and_sex")} <= rules_of(validate_household(doc))


def test_exactly_one_household_head():
    doc = household()
    doc["members"][1]["relation"] = "01"
    errors = [f for f in validate_household(doc) if f.rule == "single_household_head"]
    assert errors and "2 名" in errors[0].message
    doc["members"][0]["relation"] = "03"
    doc["members"][1]["relation"] = "04"
    assert any("没有户主" in f.message for f in validate_household(doc))


def test_household_size_must_equal_current_members():
    doc = household()
    doc["members"].append(member("欧阳小雨", "2", dt.date(2010, 1, 2), "04", 99))
    assert ("family_size", "family_size_matches_members") in rules_of(validate_household(doc))


def test_code_not_in_its_list_and_out_of_range_values():
    doc = household(main_cause="77", family_size=40)
    found = rules_of(validate_household(doc))
    assert ("main_cause", "type") in found
    assert ("family_size", "range") in found


def test_village_code_must_have_12_digits():
    doc = household(village_code="5226341012")
    assert ("village_code", "village_code") in rules_of(validate_household(doc))


def test_duplicate_id_inside_one_household():
    doc = household()
    doc["members"][1]["id_number"] = doc["members"][0]["id_number"]
    assert ("id_number", "duplicate_id_number") in rules_of(validate_household(doc))


def test_income_arithmetic():
    record = {"wage_income": 6000, "business_income": 2500, "property_income": 100, "dividend_income": 50,
              "dibao_subsidy": 1200, "pension_income": 300, "business_expense": 700}
    assert income.transfer_income(record) == 1500
    assert income.net_income(record) == 6000 + 2500 + 100 + 1500 - 700
    assert income.per_capita(record, 2) == pytest.approx(4700)
    assert income.per_capita(record, 0) is None
    doc = household()
    doc["incomes"][0].update(property_income=100, dividend_income=300)
    assert ("dividend_income", "income_arithmetic") in rules_of(validate_household(doc))


def test_health_options_exclude_each_other_and_other_causes_differ_from_main():
    doc = household(other_causes=["1", "3"])
    doc["members"][0]["health"] = ["1", "4"]
    found = rules_of(validate_household(doc))
    assert ("health", "health_exclusive") in found
    assert ("other_causes", "other_causes_valid") in found


def test_a_household_without_a_helper_gets_a_warning_not_an_error():
    doc = household(helpers=[])
    findings = validate_household(doc)
    assert ("helpers", "helper_assigned") in rules_of(findings, WARNING)
    assert not has_errors(findings)


def test_a_finding_reads_in_chinese_labels_not_field_keys():
    from app.core.validation import Finding

    assert str(Finding("h", "household", "helpers", "helper_assigned", "该户没有在帮的帮扶责任人")) == \
        "[错误] 贫困户 · 帮扶责任人:该户没有在帮的帮扶责任人"
    line = str(Finding("m", "member", "id_number", "id", "校验位错误", record_label="家庭成员“甲”"))
    assert line == "[错误] 家庭成员“甲” · 公民身份号码:校验位错误"


def test_a_household_number_carried_by_two_households_is_an_error_for_both(store):
    from app.services import households
    from tests.factories import household

    a = households.save(store, household()).household_id
    b = households.save(store, household("诸葛长青", "上官玉梅", seq=7)).household_id
    number = households.document(store, a)["household_number"]
    store.put("household", {"household_number": number}, record_id=b)  # as two offline devices once did
    found = [f for f in households.validate_all(store) if f.rule == "duplicate_household_number"]
    assert {f.record_id for f in found} == {a, b} and all(f.severity == "error" for f in found)
    assert all(number in f.message for f in found)


def test_per_capita_income_is_rounded_half_up_to_the_fen():
    """四舍五入 as accounts are kept: 15,100.50 for 4 people is 3,775.13 (half to even gave 3,775.12,
    which matters for a household right at the poverty line), and 0.1 + 0.2 is 0.30."""
    from app.core.income import net_income, per_capita

    income = {"wage_income": 12000, "business_income": 3500.5, "property_income": 600, "business_expense": 1000}
    assert net_income(income) == 15100.5 and per_capita(income, 4) == 3775.13
    assert per_capita({"wage_income": 23100.5}, 4) == 5775.13
    assert net_income({"wage_income": 0.1, "business_income": 0.2}) == 0.3
    assert per_capita({"wage_income": 10}, 3) == 3.33


def test_an_implausibly_early_date_is_a_warning():
    from app.core.dictionary import default as dictionary
    from app.core.validation import check_field

    d = dictionary()
    first = d.kinds["household"].fields["first_identified"]
    birth = d.kinds["member"].fields["birth_date"]
    assert [m for _, m, s in check_field(first, "1901-01-01", {}, d) if s == "warning"] == [
        "“首次识别时间” 1901-01-01 在2013 年建档立卡工作开始以前,请核对"]
    assert check_field(first, "2014-06-01", {}, d) == []
    assert check_field(birth, "1936-02-03", {}, d) == []
    assert [m for _, m, _ in check_field(birth, "1890-02-03", {}, d)] == ["“出生日期” 1890-02-03 在1900 年以前,请核对"]
