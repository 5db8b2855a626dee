"""Reference data a document needs besides the households: labels, division names, poverty lines,
the print date. Built from a Store by app.services.printing; tests may build one by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from app.core.dictionary import Dictionary, default


@dataclass
class Context:
    dictionary: Dictionary = field(default_factory=default)
    division_names: dict[str, str] = field(default_factory=dict)
    poverty_lines: dict[int, float] = field(default_factory=dict)
    today: dt.date = field(default_factory=dt.date.today)
    site_name: str = ""

    def division(self, code: str | None) -> str:
        if not code:
            return ""
        return self.division_names.get(code, code)

    def address(self, village_code: str | None, group: str | None = None) -> str:
        """县 乡(镇) 村 组 of a household."""
        if not village_code:
            return ""
        parts = [self.division(village_code[:6]), self.division(village_code[:9]), self.division(village_code)]
        if group:
            parts.append(str(group))
        return " ".join(p for p in parts if p)

    def line_for(self, year) -> tuple[float | None, int | None]:
        """(poverty line, the year it is for): the line of `year`, else the latest earlier year's
        (the caller says which year it used), else (None, None)."""
        if not isinstance(year, int):
            return None, None
        if year in self.poverty_lines:
            return self.poverty_lines[year], year
        earlier = [y for y in self.poverty_lines if y <= year]
        if earlier:
            y = max(earlier)
            return self.poverty_lines[y], y
        return None, None

    def label(self, kind: str, field_key: str) -> str:
        return self.dictionary.field_label(kind, field_key)

    def show(self, kind: str, field_key: str, value) -> str:
        return self.dictionary.display(kind, field_key, value)


def age_on(birth: str | None, today: dt.date) -> int | None:
    if not birth or not isinstance(birth, str):
        return None
    try:
        born = dt.date.fromisoformat(birth[:10])
    except ValueError:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def money(value, places: int | None = None) -> str:
    """Yuan with thousands separators: whole numbers without decimals, or always `places` decimals
    (columns of a table, so that the figures line up)."""
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if places is not None:
        return f"{number:,.{places}f}"
    return f"{number:,.2f}" if number != int(number) else f"{int(number):,}"


Progress = Callable[[int, int], None]
