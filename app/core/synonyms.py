"""Other spellings of headings and code values (forms/synonyms.toml), checked against the dictionary.

`value_key(text)` is how a typed value is compared: no spaces, full-width letters, digits and
brackets made half-width (NFKC), 【】[] read as (). `code_for(list_name, text)` gives the code a
spelling stands for (the code itself, its label, a part of a label written with '/', the label
without a leading 之, or a synonym), or None. `national_code(list_name, text)` reads the national
system's numeric codes.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from dataclasses import dataclass

from app.core.dictionary import Dictionary, DictionaryError, default as default_dictionary
from app.paths import forms_dir

_SPACES = re.compile(r"[\s\u3000]+")
_BRACKETS = str.maketrans("【】[]〔〕", "()()()")


def value_key(text) -> str:
    """A value as compared with labels and synonyms."""
    return unicodedata.normalize("NFKC", _SPACES.sub("", str(text))).translate(_BRACKETS)


@dataclass(frozen=True)
class Synonyms:
    headings: dict[str, tuple[str, ...]]             # target -> other headings
    values: dict[str, dict[str, str]]                # list -> value_key(spelling) -> code
    national: dict[str, dict[str, str]]              # list -> national numeric code -> our code
    standard: frozenset[str]                         # lists numbered by a national standard (sex …)
    parts: dict[str, tuple[str, ...]]                # target -> headings whose sum it is
    value_spellings: dict[str, dict[str, str]]       # list -> spelling as written in forms -> label (for docs)


def load(dictionary: Dictionary | None = None, path=None) -> Synonyms:
    """Read forms/synonyms.toml. Raises DictionaryError naming the entry when a synonym points at a
    list or label that does not exist."""
    d = dictionary or default_dictionary()
    path = path or forms_dir() / "synonyms.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    headings = {t: tuple(words) for t, words in data.get("headings", {}).items()}
    for target in headings:
        kind, _, key = target.partition(".")
        if key and (kind not in d.kinds or key not in d.kinds[kind].fields):
            raise DictionaryError(f"synonyms.toml: [headings] 中的 {target!r} 不是数据字典中的字段")
    by_label = {name: {value_key(label): code for code, label in codes.items()} for name, codes in d.codes.items()}
    values: dict[str, dict[str, str]] = {}
    spellings: dict[str, dict[str, str]] = {}
    general = data.get("values", {}).get("*", {})
    for name, codes in d.codes.items():
        table: dict[str, str] = {}
        for code, label in codes.items():
            for part in [label, *label.split("/")]:
                table.setdefault(value_key(part), code)
                if part.startswith("之") and len(part) > 1:
                    table.setdefault(value_key(part[1:]), code)
                if part.endswith("族") and len(part) >= 2:  # 苗 for 苗族, as ledgers often write the 民族
                    table.setdefault(value_key(part[:-1]), code)
        for spelling, label in general.items():
            if value_key(label) in by_label[name]:
                table.setdefault(value_key(spelling), by_label[name][value_key(label)])
        values[name] = table
    for name, entries in data.get("values", {}).items():
        if name == "*":
            continue
        if name not in d.codes:
            raise DictionaryError(f"synonyms.toml: [values.{name}] 不是 codes.toml 中的代码表")
        for spelling, label in entries.items():
            code = by_label[name].get(value_key(label))
            if code is None:
                raise DictionaryError(f"synonyms.toml: [values.{name}] “{spelling}”指向的“{label}”不在代码表中")
            values[name][value_key(spelling)] = code  # an explicit synonym wins over a label part
        spellings[name] = dict(entries)
    spellings["*"] = dict(general)
    national: dict[str, dict[str, str]] = {}
    standard = frozenset(data.get("national_codes", {}).get("standard", []))
    for name in standard:
        if name not in d.codes:
            raise DictionaryError(f"synonyms.toml: [national_codes] standard 中的 {name!r} 不是 codes.toml 中的代码表")
    for name, entries in data.get("national_codes", {}).items():
        if name == "standard":
            continue
        if name not in d.codes:
            raise DictionaryError(f"synonyms.toml: [national_codes.{name}] 不是 codes.toml 中的代码表")
        national[name] = {}
        for number, label in entries.items():
            code = by_label[name].get(value_key(label))
            if code is None:
                raise DictionaryError(f"synonyms.toml: [national_codes.{name}] {number} 指向的“{label}”不在代码表中")
            national[name][str(number)] = code
    parts = {t: tuple(words) for t, words in data.get("parts", {}).items()}
    for target in parts:
        kind, _, key = target.partition(".")
        if kind not in d.kinds or key not in d.kinds[kind].fields or d.kinds[kind].fields[key].type not in ("integer", "decimal"):
            raise DictionaryError(f"synonyms.toml: [parts] 中的 {target!r} 不是数据字典中的数字字段")
    return Synonyms(headings, values, national, standard, parts, spellings)


@functools.cache
def default() -> Synonyms:
    return load()


def code_for(list_name: str, text, synonyms: Synonyms | None = None) -> str | None:
    """The code a spelling stands for in a list, or None."""
    s = synonyms or default()
    return s.values.get(list_name, {}).get(value_key(text))


def national_code(list_name: str, text, synonyms: Synonyms | None = None) -> str | None:
    s = synonyms or default()
    return s.national.get(list_name, {}).get(value_key(text).lstrip("0") or "0")
