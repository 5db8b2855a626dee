"""Giving freed memory back to the system (glibc on Linux; elsewhere nothing is done).

The service reads bodies in pieces of up to 256 KB. Once glibc has raised its mmap threshold (it
does so after the first large piece is freed) it serves pieces that size from its heap, and a heap
fragmented by thousands of them stays resident after the burst: the memory is free inside the
process but not returned. `trim()`, run on the worker when no upload is arriving or queued, hands
those pages back (measured by bench/serve_abuse.py: idle after an attack 120 MB without, 76 MB with).
A fixed, low mmap threshold would return them too, but made reading a body about three times slower
(every buffer a fresh mapping to fault in).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(libc, "malloc_trim"):
                    _libc = libc
            except OSError:
                pass
    return _libc


def trim() -> None:
    """Hand free heap pages back to the system."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)
