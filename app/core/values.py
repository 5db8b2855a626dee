"""Turning typed or imported input into the canonical stored value of a field.

`coerce` never throws input away: when a value cannot be understood it is returned unchanged
together with a Chinese message, so the record can still be kept as a draft and shown to the user.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from app.core import idnumber, synonyms, text as texts
from app.core.dictionary import Dictionary, Field

_FULLWIDTH = str.maketrans("０１２３４５６７８９．，－＋", "0123456789.,-+")
_DATE_SEPARATORS = re.compile(r"^(\d{4})[-./年](\d{1,2})[-./月](\d{1,2})日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
# a month without a day (2014-08, 2014.8, 2014年8月, 201408): national exports and ledgers write
# 首次识别时间 this way; it is read as the first day of that month
_MONTH_ONLY = re.compile(r"^(\d{4})(?:[-./年](\d{1,2})月?|(\d{2}))$")
_YEAR_SUFFIX = re.compile(r"^(.*\d)\s*年度?$")
_PHONE = re.compile(r"^(1\d{10}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)$")
TRUE_WORDS = {"是", "有", "1", "true", "yes", "y", "√", "已"}
FALSE_WORDS = {"否", "无", "0", "false", "no", "n", "×", "未"}
EXCEL_EPOCH = dt.date(1899, 12, 30)


def is_empty(value) -> bool:
    return value is None or value == "" or value == []


def parse_number(value) -> Decimal:
    """A number as typed: full-width digits, thousands separators and spaces are accepted."""
    if isinstance(value, bool):
        raise InvalidOperation
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    text = str(value).strip().translate(_FULLWIDTH).replace(",", "").replace(" ", "").replace("元", "")
    return Decimal(text)


def parse_date(value) -> dt.date:
    """Dates as ISO text, 1980.01.01, 1980/1/1, 1980年1月1日, 19800101, an Excel serial number or a
    date/datetime object. Raises ValueError."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 80000:
            return EXCEL_EPOCH + dt.timedelta(days=int(value))
        raise ValueError(value)
    text = str(value).strip().translate(_FULLWIDTH)
    if " " in text:
        text = text.split(" ", 1)[0]
    m = _DATE_SEPARATORS.match(text) or _COMPACT_DATE.match(text)
    if m:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _MONTH_ONLY.match(text)
    if m and 1 <= int(m.group(2) or m.group(3)) <= 12:
        return dt.date(int(m.group(1)), int(m.group(2) or m.group(3)), 1)
    if re.fullmatch(r"\d{5}(\.0+)?", text):
        return EXCEL_EPOCH + dt.timedelta(days=int(float(text)))
    raise ValueError(value)


def _code(field: Field, value, dictionary: Dictionary):
    codes = dictionary.codes[field.codes]
    text = str(value).strip()
    if text in codes:
        return text, None
    for code, label in codes.items():
        if text == label:
            return code, None
    if text.isdigit():  # "1" for "01" and the like
        for code in codes:
            if code.isdigit() and int(code) == int(text):
                return code, None
    code = synonyms.code_for(field.codes, text)  # 已脱贫（享受政策）, 缺劳动力, 其它 … (forms/synonyms.toml)
    if code is not None and code in codes:
        return code, None
    labels = list(codes.values())
    choices = "、".join(labels) if len(labels) <= 20 else f"代码表中的名称,如 {'、'.join(labels[:5])} 等"
    return value, f"“{text}”不在代码表“{field.label}”中(可填:{choices})"


NUMBER_LIMIT = Decimal(10) ** 12  # no amount, count or year of this register comes near a trillion
_WORDS = {list: "列表", dict: "对象", bool: "是/否"}


def _shape_problem(field: Field, value) -> str | None:
    """A list or object where one value is expected, a number beyond any real amount, or control
    characters in text: refused in every kind of field (the window, tables and JSON)."""
    if isinstance(value, (list, dict)) and field.type != "multi_code":
        return f"“{field.label}”应为一个值,而不是{_WORDS[type(value)]}"
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"“{field.label}”不是有效的数字"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and field.type in ("integer", "decimal"):
        try:
            too_big = abs(Decimal(str(value))) >= NUMBER_LIMIT
        except ValueError:  # an integer of thousands of digits cannot even be written out
            too_big = True
        if too_big:
            return f"“{field.label}”的数值太大,请核对(不超过 {NUMBER_LIMIT:,})"
    return None


def _as_kept(value):
    """A refused value as kept in a draft: numbers beyond reason and lists are kept as text."""
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        try:
            return repr(value)[:40]
        except ValueError:
            return "(位数过多的数字)"
    if isinstance(value, (list, dict)):
        return str(value)[:200]
    return value


def coerce(field: Field, value, dictionary: Dictionary):
    """Return (stored_value, message). message is None when the value is acceptable in shape."""
    if value is None or value == "" or value == []:  # is_empty, inline: coerce runs for every stored value
        return None, None
    t = field.type
    if not isinstance(value, str):  # text is always one value of a sane size
        problem = _shape_problem(field, value)
        if problem:
            return _as_kept(value), problem
    elif texts.has_unsafe(value, field.multiline):
        bad = texts.unsafe_characters(value, field.multiline)
        if bad:  # kept without them (a draft), and refused
            return (texts.without_unsafe(value, field.multiline).strip(),
                    f"“{field.label}”含有不可见的控制字符({texts.describe(bad)}):请删去后再保存")
    try:
        if t in ("text",):
            text = str(value).strip() if not isinstance(value, str) else value.strip()
            return (texts.tidy_name(text) if (field.kind, field.key) in texts.PERSON_NAMES else text), None
        if t == "integer":
            if isinstance(value, str) and _YEAR_SUFFIX.match(value.strip()):
                value = _YEAR_SUFFIX.match(value.strip()).group(1)  # 2016年, 2016年度
            number = parse_number(value)
            if not number.is_finite() or abs(number) >= NUMBER_LIMIT:
                raise InvalidOperation
            if number != number.to_integral_value():
                return value, f"“{field.label}”应为整数"
            return int(number), None
        if t == "decimal":
            number = parse_number(value)
            if not number.is_finite() or abs(number) >= NUMBER_LIMIT:
                raise InvalidOperation
            number = number.quantize(Decimal("0.01"))
            return (int(number) if number == number.to_integral_value() else float(number)), None
        if t == "date":
            return parse_date(value).isoformat(), None
        if t == "bool":
            if isinstance(value, bool):
                return value, None
            word = str(value).strip().lower()
            if word in TRUE_WORDS:
                return True, None
            if word in FALSE_WORDS:
                return False, None
            return value, f"“{field.label}”应填“是”或“否”"
        if t == "code":
            return _code(field, value, dictionary)
        if t == "multi_code":
            items = value if isinstance(value, list) else re.split(r"[、,，;；/ ]+", str(value).strip())
            out, problems = [], []
            for item in items:
                if is_empty(item):
                    continue
                if isinstance(item, (list, dict, float, bool)):  # one code per item, a code is text
                    out.append(str(item)[:40])
                    problems.append(f"“{field.label}”的每一项应为一个代码")
                    continue
                code, msg = _code(field, item, dictionary)
                out.append(code)
                if msg:
                    problems.append(msg)
            return out, ("；".join(problems) or None)
        if t == "id_number":
            return idnumber.normalise(value), None
        if t == "phone":
            return str(value).strip().translate(_FULLWIDTH).replace(" ", ""), None
    except (InvalidOperation, ValueError, TypeError, OverflowError):
        kind = {"integer": "整数", "decimal": "数字", "date": "日期(年-月-日 格式,如 2020-01-31)"}.get(t, "有效值")
        return _as_kept(value), f"“{field.label}”应为{kind},而不是“{texts.printable(str(value)[:40])}”"
    return value, None


def phone_ok(value: str) -> bool:
    return bool(_PHONE.match(str(value)))
