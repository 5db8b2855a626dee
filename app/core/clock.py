"""Hybrid logical clock (HLC).

A timestamp is the text ``"WWWWWWWWWWWWW.CCCC"``: wall-clock milliseconds (13 digits) and a counter
(4 digits), so plain string comparison orders timestamps. Ties between sites are broken by site id:
the total order of changes is (hlc, site_id). A clock never runs backwards, even when the machine's
clock does, and it moves past every timestamp it has observed from other sites.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

ZERO = "0000000000000.0000"


_STAMP = re.compile(r"[0-9]{13}\.[0-9]{4}").fullmatch  # ASCII digits only; no trailing newline


def is_valid(ts) -> bool:
    """A well-formed timestamp: 13 digits, a dot, 4 digits (anything else would break the ordering).
    Checked twice for every change a bundle brings: one compiled match (about half the time of
    slicing and testing the parts)."""
    return type(ts) is str and _STAMP(ts) is not None


def pack(wall_ms: int, counter: int) -> str:
    return f"{wall_ms:013d}.{counter:04d}"


def unpack(ts: str) -> tuple[int, int]:
    wall, counter = ts.split(".")
    return int(wall), int(counter)


class HybridClock:
    def __init__(self, last: str = ZERO, wall: Callable[[], float] = time.time):
        self.last = last or ZERO
        self._wall = wall

    def now(self) -> str:
        """A new timestamp, later than every one issued or observed before."""
        wall_ms = int(self._wall() * 1000)
        last_wall, last_counter = unpack(self.last)
        if wall_ms > last_wall:
            self.last = pack(wall_ms, 0)
        elif last_counter < 9999:
            self.last = pack(last_wall, last_counter + 1)
        else:  # the counter has 4 digits: move on to the next millisecond rather than grow a fifth
            self.last = pack(last_wall + 1, 0)
        return self.last

    def observe(self, remote: str) -> None:
        """Move past a timestamp received from another site."""
        if remote and remote > self.last and is_valid(remote):
            self.last = remote


def wall_time(ts: str) -> float:
    """Seconds since the epoch of a timestamp (for display)."""
    return unpack(ts)[0] / 1000.0
