"""Giving freed memory back to the system (glibc on Linux; elsewhere nothing is done).

The service reads bodies in pieces of up to 256 KB. glibc serves pieces that size from its heap once
it has raised its mmap threshold (it does so after the first large piece is freed), and a heap
fragmented by thousands of them stays resident long after the upload: a burst of junk left the
process ~50 MB bigger for good. A fixed threshold keeps such pieces in their own mappings, returned
when freed, and a trim after each burst of work hands back what the heap keeps free.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                    _libc = libc
            except OSError:
                pass
    return _libc


def fixed_mmap_threshold() -> bool:
    """Allocations of THRESHOLD bytes and more get their own mapping (returned to the system when freed)."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))


def trim() -> None:
    """Hand free heap pages back to the system."""
    libc = _glibc()
    if libc:
        libc.malloc_trim(0)
