"""PySide6 windows and dialogs: the only package that imports Qt. Start with `app.ui.app.run`.

Importing this package protects the process from a PySide6 6.12 binding defect on CPython 3.11:
every call of a Qt method that returns nothing (``widget.clear()``, ``processEvents()``,
``QTest.keyClick`` ...) releases one reference to ``None`` that it never took. ``None`` starts with
a few thousand references, so after a few thousand such calls the interpreter aborts with
"Fatal Python error: none_dealloc". From CPython 3.12 on ``None`` is immortal and this does nothing;
on 3.11 the reference count of ``None`` (a static object that is never freed) is raised once by
2**40 so the defect can never bring it to zero.
"""

from __future__ import annotations

import ctypes
import sys

_HEADROOM = 1 << 40


def _keep_none_alive() -> None:
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt is the first field of every object
    if refcount.value < _HEADROOM:
        refcount.value += _HEADROOM


_keep_none_alive()
