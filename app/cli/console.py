"""Output that works on any console: a Chinese Windows console, or output redirected to a file, is
encoded in cp936 (GBK), which has no '✓', '›', '✗' or '−'. Characters the stream cannot encode are
written as the nearest character it can (√, ×, >, -), or as a \\u escape, never a UnicodeEncodeError."""

from __future__ import annotations

import codecs
import contextlib
import sys

HANDLER = "jiandang-console"

# character -> replacements, best first; the first the stream's encoding can hold is used
FALLBACKS = {
    "✓": ("√", "v"), "✔": ("√", "v"), "✗": ("×", "x"), "✘": ("×", "x"),
    "›": ("＞", ">"), "»": ("＞", ">>"), "→": ("→", "->"), "−": ("－", "-"), "–": ("-",), "—": ("—", "-"),
    "…": ("…", "..."), "·": ("·", "."), "•": ("·", "*"), "“": ("“", '"'), "”": ("”", '"'),
    "‘": ("‘", "'"), "’": ("’", "'"), "×": ("×", "x"), "√": ("√", "v"), "≥": ("≥", ">="), "≤": ("≤", "<="),
}


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def substitute(ch: str, encoding: str) -> str:
    for candidate in FALLBACKS.get(ch, ()):
        if _encodable(candidate, encoding):
            return candidate
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _fallback(err: UnicodeError):
    if not isinstance(err, UnicodeEncodeError):
        raise err
    text = err.object[err.start:err.end]
    return "".join(substitute(ch, err.encoding) for ch in text), err.end


codecs.register_error(HANDLER, _fallback)


def fit(streams=None) -> None:
    """Make stdout and stderr replace what their encoding cannot hold instead of failing. A UTF-8
    stream is left as it is."""
    for stream in streams or (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None or encoding in ("utf8", "utf8sig"):
            continue
        with contextlib.suppress(ValueError, OSError, TypeError):
            reconfigure(errors=HANDLER)
