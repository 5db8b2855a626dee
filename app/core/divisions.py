"""Administrative division codes (GB/T 2260 and the 12-digit statistical division code)."""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata

_VILLAGE = re.compile(r"^\d{12}$")


def is_village_code(code: str) -> bool:
    """A village-level code: 6-digit county + 3-digit township + 3-digit village, not all zero."""
    code = str(code)
    return bool(_VILLAGE.match(code)) and code[9:] != "000" and code[6:9] != "000"


def township_of(village_code: str) -> str:
    """The 9-digit township code of a village (the first 9 digits)."""
    return str(village_code)[:9]


class KnownVillages:
    """The village codes a household may be placed in here: the villages of the division table; while
    it has none yet (the national division lists stop at townships, so a county starts so), any
    village code under one of its townships (the code's first 9 digits). `in` is asked of it as of
    the set of villages it replaces; `not_known(code)` and `advice(code)` say why a code is not taken and
    what to do, in the words of the case."""

    def __init__(self, villages: set[str], townships: set[str]):
        self.villages, self.townships = villages, townships

    def __contains__(self, code) -> bool:
        if self.villages:
            return code in self.villages
        return isinstance(code, str) and len(code) == 12 and code.isdigit() and code[:9] in self.townships

    def not_known(self, code) -> str:
        if self.villages:
            return f"村代码 {code} 不在本库的行政区划中"
        code = str(code)
        counties = sorted({t[:6] for t in self.townships})
        if code[:6] not in counties:
            return f"村代码 {code} 不属于本县:其前 6 位 {code[:6]} 不是本县的代码 {'、'.join(counties)}"
        return (f"村代码 {code} 不在本库的任何乡(镇)之下(本库的行政区划还没有村,村代码按乡镇核对:"
                f"其前 9 位 {code[:9]} 不是本库的乡镇代码)")

    def advice(self, code) -> str:
        if self.villages:
            return "请核对村代码(新的村由县里在“参考数据”中添加,随同步包下发)"
        if str(code)[:6] not in {t[:6] for t in self.townships}:
            return "请核对村代码(别县的户由该县录入)"
        return "请核对村代码的前 9 位(所属乡镇);该乡(镇)确实属于本县时,先在 参考数据 › 行政区划 中添加它"


def county_of(code: str) -> str:
    return str(code)[:6]


def level_of(code: str) -> str:
    """'county' (6 digits), 'township' (9) or 'village' (12)."""
    return {6: "county", 9: "township", 12: "village"}.get(len(str(code)), "unknown")


LEVELS = ("county", "township", "village")
LEVEL_LABELS = {"county": "县", "township": "乡(镇)", "village": "村"}
_DIGITS = {6: "county", 9: "township", 12: "village"}
# How the level is written in tables: 县/区/市(县级), 乡/镇/街道, 村/社区/居委会, or the English word.
_LEVEL_WORDS = {
    "county": "county", "县": "county", "县级": "county", "区": "county", "县区": "county", "县(区)": "county",
    "县(市、区)": "county", "县级市": "county", "旗": "county",
    "township": "township", "乡": "township", "镇": "township", "乡镇": "township", "乡(镇)": "township",
    "乡级": "township", "街道": "township", "苏木": "township", "乡镇(街道)": "township",
    "village": "village", "村": "village", "村级": "village", "社区": "village", "村(社区)": "village",
    "行政村": "village", "居委会": "village", "村委会": "village", "嘎查": "village",
}
ABOVE_COUNTY_WORDS = {"省", "省级", "市", "地级市", "地区", "州", "盟", "自治州", "province", "prefecture", "city"}


@functools.cache
def county_level_cities() -> dict[str, str]:
    """Cities without counties (东莞 441900, 中山 442000, 儋州 460400): code -> name (forms/divisions.toml)."""
    from app.paths import forms_dir  # noqa: PLC0415

    data = tomllib.loads((forms_dir() / "divisions.toml").read_text(encoding="utf-8"))
    return {str(k): v for k, v in data.get("county_level_cities", {}).items()}


def normalise_code(text) -> str:
    """A division code as stored: 6 (county), 9 (township) or 12 (village) digits. Accepts the
    12-digit statistical form padded with zeros (522634000000 is the county 522634, 522634101000 the
    township 522634101), full-width digits and surrounding spaces. Raises ValueError with a Chinese
    message when the text is not a division code."""
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    raw = unicodedata.normalize("NFKC", str(text if text is not None else "")).strip()
    if not raw:
        raise ValueError("代码为空")
    if re.fullmatch(r"\d+(\.\d+)?[eE]\+?\d+", raw):
        raise ValueError(f"“{raw}”是科学计数法:Excel 把代码当成了数字。请把这一列设为“文本”格式后重新输入代码")
    if not raw.isdigit():
        raise ValueError(f"“{raw}”不是数字代码")
    if len(raw) not in _DIGITS:
        raise ValueError(f"“{raw}”有 {len(raw)} 位:县代码应为 6 位,乡(镇) 9 位,村 12 位")
    code = raw
    if len(code) == 12 and code[9:] == "000":
        code = code[:9]
    if len(code) == 9 and code[6:] == "000":
        code = code[:6]
    if code[4:6] == "00" and code[:6] not in county_level_cities():
        raise ValueError(f"“{raw}”是省或地(市)级代码,不是县级及以下的区划")
    if len(code) == 12 and code[6:9] == "000":
        raise ValueError(f"“{raw}”的乡(镇)部分(第 7-9 位)为 000,不是有效的村代码")
    return code


def is_above_county(text) -> bool:
    """A code of a province or prefecture (as in a national 统计用区划代码 list): 2 or 4 significant
    digits followed by zeros."""
    raw = str(text if text is not None else "").strip()
    return (raw.isdigit() and len(raw) in (6, 9, 12) and raw[4:6] == "00" and set(raw[6:]) <= {"0"}
            and raw[:6] not in county_level_cities())


def level_word(text) -> str | None:
    """'county' / 'township' / 'village' for how a table writes the level; None when unknown."""
    if text is None:
        return None
    word = unicodedata.normalize("NFKC", re.sub(r"\s+", "", str(text))).lower()
    return _LEVEL_WORDS.get(word)


def parent_code(code: str) -> str | None:
    """The division directly above: township → county (6 digits), village → township (9)."""
    code = str(code)
    return {9: code[:6], 12: code[:9]}.get(len(code))


def within(rows, prefixes) -> list:
    """The divisions a device needs for the villages (or township/county prefixes) of its
    certificate: those the prefixes cover and the ones above them. Rows are (code, ...) sequences
    or dicts with "code"."""
    prefixes = [str(p) for p in prefixes]
    out = []
    for row in rows:
        code = str(row["code"] if isinstance(row, dict) else row[0])
        if any(code.startswith(p) or p.startswith(code) for p in prefixes):
            out.append(row)
    return out
