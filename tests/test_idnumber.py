import datetime as dt

import pytest

from app.core import idnumber


def test_public_example_is_valid_and_decoded():
    info = idnumber.parse("11010519491231002X")
    assert info.birth_date == dt.date(1949, 12, 31)
    assert info.sex == "2"  # 17th digit 2 is even
    assert info.area_code == "110105"


def test_lower_case_x_spaces_and_full_width_digits_are_normalised():
    assert idnumber.is_valid(" 11010519491231002x ")
    assert idnumber.is_valid("１１０１０５１９４９１２３１００２Ｘ")


def test_bad_check_digit_names_the_expected_character():
    with pytest.raises(idnumber.IdNumberError, match="最后一位应为 X"):
        idnumber.parse("110105194912310021")


@pytest.mark.parametrize("bad, words", [
    ("1101051949123100", "18位"),
    ("11010519491331002X", "不是有效日期"),
    ("ABCDEFGHIJKLMNOPQR", "18位"),
])
def test_malformed_numbers_are_refused_with_a_reason(bad, words):
    with pytest.raises(idnumber.IdNumberError, match=words):
        idnumber.parse(bad)


def test_disability_certificate_number_is_checked_on_its_id_part():
    assert idnumber.is_valid("11010519491231002X" + "42")
    assert not idnumber.is_valid("110105194912310021" + "42")


def test_made_numbers_are_valid_and_carry_sex_and_birth():
    for seq in range(0, 600, 37):
        for sex in "12":
            number = idnumber.make("522634", dt.date(1980, 2, 29), seq, sex)
            info = idnumber.parse(number)
            assert info.sex == sex and info.birth_date == dt.date(1980, 2, 29)


def test_mask_hides_birth_date_and_sequence():
    masked = idnumber.mask("11010519491231002X")
    assert masked == "110105********002X"
    assert "19491231" not in masked
