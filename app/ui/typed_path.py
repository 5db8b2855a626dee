"""A file or folder name as a user types or pastes it into a field: Windows' 复制为路径 (Shift+right
click in Explorer) puts it in double quotes, "D:\\登记包\\龙井村.jde"; the quotes and the spaces around
are not part of the name."""

from __future__ import annotations

QUOTES = ('"', "'", "“", "”", "‘", "’")


def typed_path(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and text[0] in QUOTES and text[-1] in QUOTES:
        text = text[1:-1].strip()
    return text
