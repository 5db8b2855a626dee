"""Characters that must not be stored in, or printed from, a text field.

A name or a short text carrying control characters (NUL, ESC sequences such as ``\\x1b[31m`` that
recolour or rewrite a terminal, newlines that split tab-separated listings) or Unicode direction
overrides (U+202E shows ``abc`` as ``cba`` and hides what a file name really is) is refused when it is
typed or imported; a multi-line field keeps its line breaks and tabs. `printable` makes any text safe
to echo to a console (a file name from a USB stick, a record stored before this check).
"""

from __future__ import annotations

import re

# control characters (Unicode category Cc: U+0000-001F, U+007F-009F); direction embeddings,
# overrides, isolates and marks; line and paragraph separators; byte-order mark
_OTHER = "\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_OTHER}]")
_UNSAFE_MULTILINE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_OTHER}]")  # keeps \t \n \r


def _pattern(multiline: bool) -> re.Pattern:
    return _UNSAFE_MULTILINE if multiline else _UNSAFE


def unsafe_characters(text: str, multiline: bool = False) -> list[str]:
    """The control and direction characters in `text`, as U+XXXX (empty when the text is clean)."""
    seen = []
    for ch in _pattern(multiline).findall(text):
        code = f"U+{ord(ch):04X}"
        if code not in seen:
            seen.append(code)
    return seen


def has_unsafe(text: str, multiline: bool = False) -> bool:
    """Whether `text` holds a control or direction character (the quick test before naming them)."""
    return _pattern(multiline).search(text) is not None


def without_unsafe(text: str, multiline: bool = False) -> str:
    return _pattern(multiline).sub("", text)


def describe(codes: list[str]) -> str:
    names = {"U+000A": "换行", "U+000D": "回车", "U+0009": "制表符", "U+001B": "转义符(ESC)", "U+0000": "空字符(NUL)",
             "U+202E": "文字方向控制符"}
    return "、".join(names.get(c, c) for c in codes[:4])


def printable(text) -> str:
    """`text` safe for a console line: control and direction characters shown as \\uXXXX."""
    text = str(text)
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# fields holding a person's name: a space typed next to a Chinese character (an input method leaves one,
# a ledger lines names up with one: 周　武) is no part of it
PERSON_NAMES = {("household", "head_name"), ("member", "name")}
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff\ue000-\uf8ff])[\s\u3000]+|[\s\u3000]+(?=[\u3400-\u9fff\ue000-\uf8ff])")


def tidy_name(text: str) -> str:
    """A person's name without a stray space (also a full-width one) next to a Chinese character
    (韩 梅梅 → 韩梅梅, 周　武 → 周武); spaces between Latin letters are kept (Maria Lopez)."""
    return _CJK_GAP.sub("", text.strip())
