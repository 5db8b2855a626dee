"""The county sync service's limits (docs/serve.md, "Limits"): what one client may hold and for how
long, so that junk, slow or flooding clients on the LAN cannot exhaust the service or lock laptops out.

Everything here runs on the event loop (no locks): the token buckets, the challenges and the
upload slots are plain dictionaries with a bounded number of entries.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass

MIB = 1024 * 1024
KIB = 1024


@dataclass
class Limits:
    """Every limit of the service; `jiandang serve` options set the ones marked with one."""

    max_upload: int = 64 * MIB  # --max-upload-mb: bytes of one uploaded bundle
    uploads_per_minute: float = 10  # --uploads-per-minute: per site (burst of the same number); 0 = no limit
    fetches_per_minute: float = 10  # the same option: downstream fetches per site
    upload_seconds: float = 600  # --upload-timeout: one request body, from its first byte to its last
    min_rate: int = 1 * KIB  # --min-upload-rate (KB/s): at least rate_window x this in every window...
    rate_window: float = 20  # ...of this many seconds while a body is still arriving
    uploads_per_address: int = 4  # --uploads-per-address: requests with a body in progress per client address
    max_uploads: int = 128  # --max-uploads: the same over all addresses
    challenges_per_minute: float = 30  # --challenges-per-minute: per client address (burst of the same number)
    challenges_per_address: int = 8  # challenges outstanding per address (a new one drops that address's oldest)
    max_challenges: int = 50_000  # outstanding over all addresses (then new addresses wait; none is evicted)
    linger_seconds: float = 10  # a refused body is read and discarded this long so that the client hears why
    header_seconds: float = 30  # a connection must have sent a request's headers within this time
    attachment_budget: int = 16 * MIB  # --attachment-budget-mb: bytes of images in one downstream bundle

    @property
    def drain_bytes(self) -> int:
        """At most this much of a refused body is read and discarded (then the connection is closed)."""
        return 2 * self.max_upload


class RateLimiter:
    """A token bucket per key: `per_minute` tokens a minute, at most `burst` saved up. Keys whose
    bucket is full again are forgotten once there are more than `max_keys`."""

    def __init__(self, per_minute: float, burst: int | None = None, clock=time.monotonic, max_keys: int = 10_000):
        self.rate = per_minute / 60.0
        self.burst = float(burst or max(1, math.ceil(per_minute)))
        self.clock = clock
        self.max_keys = max_keys
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """0 when allowed (one token taken); otherwise the seconds until the next token."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        if len(self.buckets) > self.max_keys:
            self._forget_full(now)
        tokens, last = self.buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full = [k for k, (tokens, last) in self.buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self.buckets[key]


class Challenges:
    """Single-use random values for the downstream request, valid for `seconds`, kept per client
    address: a challenge is only good from the address it was given to, and a flood of requests
    from one address only ever drops that address's own older challenges (at most `per_address`
    kept). Over all addresses at most `cap`; when that is full a new address is refused (None)
    rather than anyone's challenge evicted."""

    def __init__(self, seconds: float, per_address: int = 8, cap: int = 50_000, clock=time.monotonic):
        self.seconds, self.per_address, self.cap, self.clock = seconds, per_address, cap, clock
        self.issued: dict[str, dict[str, float]] = {}  # address -> {challenge: expiry}, oldest first
        self.count = 0

    def new(self, address: str) -> str | None:
        now = self.clock()
        mine = self.issued.get(address)
        if mine is not None:
            self._expire(address, mine, now)
        if self.count >= self.cap:
            for other in list(self.issued):
                self._expire(other, self.issued[other], now)
        mine = self.issued.get(address)
        if mine is None:
            if self.count >= self.cap:
                return None
            mine = self.issued[address] = {}
        while len(mine) >= self.per_address:
            mine.pop(next(iter(mine)))
            self.count -= 1
        value = secrets.token_hex(32)
        mine[value] = now + self.seconds
        self.count += 1
        return value

    def take(self, value: str, address: str) -> bool:
        mine = self.issued.get(address)
        expires = mine.pop(value, None) if mine else None
        if expires is None:
            return False
        self.count -= 1
        if not mine:
            del self.issued[address]
        return expires >= self.clock()

    def _expire(self, address: str, mine: dict[str, float], now: float) -> None:
        while mine and next(iter(mine.values())) < now:
            mine.pop(next(iter(mine)))
            self.count -= 1
        if not mine:
            del self.issued[address]


class Slots:
    """Requests with a body in progress (uploads, fetch requests), per client address and in all.
    A request over either limit is answered at once (429 / 503 with Retry-After), never queued:
    a queue would let slow clients hold laptops back."""

    def __init__(self, per_address: int, total: int):
        self.per_address, self.total = per_address, total
        self.held: dict[str, int] = {}
        self.count = 0

    def take(self, address: str) -> str | None:
        """None when a slot was taken; otherwise "address" or "total" (which limit is full)."""
        if self.held.get(address, 0) >= self.per_address:
            return "address"
        if self.count >= self.total:
            return "total"
        self.held[address] = self.held.get(address, 0) + 1
        self.count += 1
        return None

    def give_back(self, address: str) -> None:
        left = self.held.get(address, 0) - 1
        if left > 0:
            self.held[address] = left
        else:
            self.held.pop(address, None)
        self.count -= 1
