"""Chinese resident ID numbers (公民身份号码, GB 11643-1999)."""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
import unicodedata
from dataclasses import dataclass

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")
_PLAIN = re.compile(r"[0-9]{17}[0-9X]", re.ASCII)
_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")


# an ID number an Excel cell held as a number: 5.22624E+17, 5.22624198001011E17 (its last digits are gone)
_EXCEL_FLOAT = re.compile(r"\d(\.\d+)?E\+?\d{1,2}")


def normalise(value: str) -> str:
    """Strip spaces (also full-width ones), turn digits of any script
    (full-width ０-９, Arabic-Indic ٠-٩ …) to ASCII and a lower-case or full-width x to X: the same
    person typed twice is then stored, indexed and found as one number."""
    if type(value) is str and _PLAIN.fullmatch(value):  # already in shape (most calls): nothing to change
        return value
    text = unicodedata.normalize("NFKC", str(value)).translate(_FULLWIDTH)
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch
                   for ch in text if not ch.isspace()).upper()


def split_certificate(value: str) -> tuple[str, str | None]:
    """(citizen ID, disability certificate number or None): a 20-character second-generation
    disability certificate number (残疾人证号) is the ID number followed by two digits; the first 18
    are the ID number. Anything else is returned as it is."""
    number = normalise(value)
    if len(number) == 20 and number[18:].isdigit() and _SHAPE.match(number[:18]):
        return number[:18], number
    return number, None


def region_known(value: str) -> bool | None:
    """Whether the first six digits are a GB/T 2260 code (current or former) per python-stdnum's
    table; None when the number is too short to tell. Old codes stay valid in ID numbers for life,
    so an unknown code is a warning, never an error."""
    number = normalise(value)
    if len(number) < 6 or not number[:6].isdigit():
        return None
    return _region_known(number[:6])


@functools.lru_cache(maxsize=8192)
def _region_known(code: str) -> bool:
    from stdnum import numdb  # noqa: PLC0415 - python-stdnum's cn/loc table, read on first use

    return any("county" in props for part, props in numdb.get("cn/loc").info(code) if len(part) == 4)


def check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(map(operator.mul, map(int, first17), WEIGHTS))
    return CHECK_CHARS[total % 11]


@dataclass(frozen=True)
class IdInfo:
    area_code: str
    birth_date: dt.date
    sex: str  # "1" male, "2" female (the dictionary's sex codes)


class IdNumberError(ValueError):
    """An ID number that is not valid; the message is Chinese and says what is wrong."""


def parse(value: str) -> IdInfo:
    """Check an 18-character ID number (or a 20-character disability certificate number, which is
    the ID number followed by two digits) and return what it encodes. Raises IdNumberError."""
    number = normalise(value)
    if len(number) == 20 and number[18:].isdigit():
        number = number[:18]
    if not _SHAPE.match(number):
        if _EXCEL_FLOAT.fullmatch(number):
            raise IdNumberError("号码被 Excel 存成了数值(科学计数法),后几位已经丢失:请把这一列设为“文本”格式,"
                                "再照身份证重新录入号码")
        if len(number) == 15 and number.isdigit():
            raise IdNumberError("这是15位的一代身份证号码:请照现在的身份证或户口簿填18位号码")
        raise IdNumberError("身份证号码应为18位:前17位是数字,最后一位是数字或X")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError(f"身份证号码中的出生日期 {number[6:14]} 不是有效日期") from None
    if birth.year < 1880 or birth > dt.date.today():
        raise IdNumberError(f"身份证号码中的出生日期 {birth.isoformat()} 不合理")
    expected = check_char(number[:17])
    if number[17] != expected:
        raise IdNumberError(f"身份证号码校验位错误:最后一位应为 {expected},请核对号码")
    sex = "1" if int(number[16]) % 2 == 1 else "2"
    return IdInfo(area_code=number[:6], birth_date=birth, sex=sex)


def is_valid(value: str) -> bool:
    try:
        parse(value)
    except IdNumberError:
        return False
    return True


def make(area_code: str, birth: dt.date, sequence: int, sex: str) -> str:
    """Build a valid ID number (for demo data and tests): sequence 0..499 is turned into the
    3-digit order code with the parity that matches `sex`."""
    order = (sequence % 500) * 2 + (1 if sex == "1" else 0)
    if order == 0:
        order = 2
    first17 = f"{area_code}{birth:%Y%m%d}{order:03d}"
    return first17 + check_char(first17)


def mask(value: str) -> str:
    """Masked form for printing and lists: keep the first 6 and last 4 characters."""
    number = normalise(value)
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
