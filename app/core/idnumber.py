"""Chinese resident ID numbers (公民身份号码, GB 11643-1999)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")
_FULLWIDTH = str.maketrans("０１２３４５６７８９ｘＸ", "0123456789XX")


def normalise(value: str) -> str:
    """Strip spaces, turn full-width digits to ASCII and a lower-case x to X."""
    return str(value).strip().replace(" ", "").translate(_FULLWIDTH).upper()


def check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS))
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
