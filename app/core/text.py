"""Characters that must not be stored in, or printed from, a text field.

A name or a short text carrying control characters (NUL, ESC sequences such as ``\\x1b[31m`` that
recolour or rewrite a terminal, newlines that split tab-separated listings) or Unicode direction
overrides (U+202E shows ``abc`` as ``cba`` and hides what a file name really is) is refused when it is
typed or imported; a multi-line field keeps its line breaks and tabs. `printable` makes any text safe
to echo to a console (a file name from a USB stick, a record stored before this check).
"""

from __future__ import annotations

import unicodedata

# direction embeddings, overrides and isolates; line and paragraph separators; byte-order mark
_INVISIBLE = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF)}
MULTILINE_OK = {"\n", "\t", "\r"}


def _bad(ch: str, multiline: bool) -> bool:
    if ch in _INVISIBLE:
        return True
    if multiline and ch in MULTILINE_OK:
        return False
    return unicodedata.category(ch) == "Cc"


def unsafe_characters(text: str, multiline: bool = False) -> list[str]:
    """The control and direction characters in `text`, as U+XXXX (empty when the text is clean)."""
    seen = []
    for ch in text:
        if _bad(ch, multiline):
            code = f"U+{ord(ch):04X}"
            if code not in seen:
                seen.append(code)
    return seen


def without_unsafe(text: str, multiline: bool = False) -> str:
    return "".join(ch for ch in text if not _bad(ch, multiline))


def describe(codes: list[str]) -> str:
    names = {"U+000A": "换行", "U+000D": "回车", "U+0009": "制表符", "U+001B": "转义符(ESC)", "U+0000": "空字符(NUL)",
             "U+202E": "文字方向控制符"}
    return "、".join(names.get(c, c) for c in codes[:4])


def printable(text) -> str:
    """`text` safe for a console line: control and direction characters shown as \\uXXXX."""
    text = str(text)
    if not any(_bad(ch, False) for ch in text):
        return text
    return "".join(f"\\u{ord(ch):04x}" if _bad(ch, False) else ch for ch in text)
