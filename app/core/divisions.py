"""Administrative division codes (GB/T 2260 and the 12-digit statistical division code)."""

from __future__ import annotations

import re

_VILLAGE = re.compile(r"^\d{12}$")


def is_village_code(code: str) -> bool:
    """A village-level code: 6-digit county + 3-digit township + 3-digit village, not all zero."""
    code = str(code)
    return bool(_VILLAGE.match(code)) and code[9:] != "000" and code[6:9] != "000"


def township_of(village_code: str) -> str:
    """The 9-digit township code of a village (the first 9 digits)."""
    return str(village_code)[:9]


def county_of(code: str) -> str:
    return str(code)[:6]


def level_of(code: str) -> str:
    """'county' (6 digits), 'township' (9) or 'village' (12)."""
    return {6: "county", 9: "township", 12: "village"}.get(len(str(code)), "unknown")
