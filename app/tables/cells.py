"""Reading one cell of an imported sheet into a field's value, with what is wrong with it.

A `Column` holds what a sheet's column maps to, looked up once per sheet rather than once per cell
(the field, its label as the file writes it), and remembers the outcome of the values it has read
lately: a ledger repeats the household's values on every member row and writes the same few labels
in a code column (是/否, 一般农户 …) thousands of times. The outcome of a cell depends on its value
alone, so a value read again is not converted and checked again; each cell still gets its own
messages (the caller adds the sheet and row). The memory is bounded (MEMO values a column).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dataclass_field

from app.core import idnumber, values
from app.core.dictionary import Dictionary, Field
from app.tables import mapping as mp
from app.tables.options import bare_code

_SPLIT = re.compile(r"[、,，;；/ ]+")
_NAME_TARGETS = {"household.head_name", "member.name"}
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff\ue000-\uf8ff])\s+|\s+(?=[\u3400-\u9fff\ue000-\uf8ff])")
MEMO = 512  # outcomes kept per column; past that the memory starts again


def tidy_name(text: str) -> str:
    """A person's name as typed in a ledger: a stray space (also a full-width one) next to a Chinese
    character removed (周　武 → 周武), so the head's name on the household row matches the member row;
    spaces between Latin letters are kept."""
    return _CJK_GAP.sub("", text.strip())


@dataclass(frozen=True)
class Outcome:
    """What one cell gives: `value` for the field (or the text of a special column such as 村名称),
    else `error`; `warning`: imported anyway; `certificate`: a 残疾证号 given in the ID number column."""

    value: object = None
    error: str | None = None
    warning: str | None = None
    certificate: str | None = None


@dataclass
class Column:
    target: str                  # household.head_name, member.id_number, village_code …
    label: str                   # the heading as the file writes it (messages name it)
    special: bool                # village code/name, the head's ID number: kept as text
    kind: str = ""
    key: str = ""
    field: Field | None = None
    has_certificate: bool = False
    memo: dict = dataclass_field(default_factory=dict)

    @classmethod
    def of(cls, target: str, label: str, d: Dictionary) -> "Column":
        if target in mp.SPECIAL_TARGETS:
            return cls(target, label, True)
        kind, key = target.split(".", 1)
        return cls(target, label, False, kind, key, d.kinds[kind].fields[key],
                   "disability_certificate" in d.kinds[kind].fields)

    def read(self, raw, codes: str | None, d: Dictionary) -> Outcome:
        """The outcome of a (non-empty) cell value; `codes`: whose bare numeric codes (--codes)."""
        memo_key = (type(raw), raw)
        found = self.memo.get(memo_key)
        if found is None:
            found = self._read(raw, codes, d)
            if len(self.memo) >= MEMO:
                self.memo.clear()
            self.memo[memo_key] = found
        return found

    def _read(self, raw, codes: str | None, d: Dictionary) -> Outcome:
        if self.special:
            return Outcome(str(raw).strip())
        f = self.field
        if f.type == "id_number" and isinstance(raw, (int, float)) and not isinstance(raw, bool) and abs(raw) >= 1e14:
            return Outcome(error="身份证号被 Excel 存成了数字,后几位已丢失:请把该列设为“文本”格式后重新录入")
        if f.type in ("code", "multi_code"):
            parts = [raw] if f.type == "code" else [p for p in _SPLIT.split(str(raw)) if p]
            translated = []
            for part in parts:
                part, message = bare_code(f, part, codes, d)
                if message:
                    return Outcome(error=message)
                translated.append(part)
            raw = translated[0] if f.type == "code" else tuple(translated)
        value, message = values.coerce(f, list(raw) if isinstance(raw, tuple) else raw, d)
        if message:
            return Outcome(error=message)
        certificate = warning = None
        if f.type == "id_number" and value:
            value, certificate = idnumber.split_certificate(value)
            try:
                idnumber.parse(value)
            except idnumber.IdNumberError as exc:
                return Outcome(error=f"公民身份号码“{value}”无效:{exc}(请核对身份证)")
            if idnumber.region_known(value) is False:
                warning = (f"身份证号码前 6 位 {value[:6]} 不在 GB/T 2260 行政区划代码表中"
                           "(旧代码终身有效,仍然导入;请核对号码)")
        if self.key == "disability_certificate" and value:
            value = idnumber.normalise(value)
        if self.target in _NAME_TARGETS and isinstance(value, str):
            value = tidy_name(value)
        if isinstance(value, list):
            value = tuple(value)  # kept unchangeable in the memory; `cell_value` gives each cell its own list
        return Outcome(value, None, warning, certificate if self.has_certificate else None)


def cell_value(outcome: Outcome):
    """The outcome's value for one record (a list of codes is that record's own list)."""
    return list(outcome.value) if isinstance(outcome.value, tuple) else outcome.value
