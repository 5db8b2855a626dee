"""The county sync service's limits (docs/serve.md, "Limits"): what one client may hold and for how
long, so that junk, slow or flooding clients on the LAN cannot exhaust the service or lock laptops out.

The token buckets and the challenges are kept in the county database (app.store.service_state):
every worker process and a restart share them. The upload slots (requests with a body in progress)
are a plain dictionary of the process, on its event loop: they count connections, which belong to
one process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from app.store import service_state

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
    """A token bucket per key (a site or a client address): `per_minute` tokens a minute, at most
    `burst` saved up. The buckets live in the county database (app.store.service_state, under the
    name `bucket`), shared by every worker process and kept over a restart. Called from a thread,
    not the event loop (each call is a statement on the database)."""

    def __init__(self, state, bucket: str, per_minute: float, burst: int | None = None, clock=time.time):
        self.state, self.bucket = state, bucket
        self.rate = per_minute / 60.0
        self.burst = float(burst or max(1, math.ceil(per_minute)))
        self.clock = clock

    def take(self, key: str) -> float:
        """0 when allowed (one token taken); otherwise the seconds until the next token."""
        if self.rate <= 0:
            return 0.0
        return service_state.take_token(self.state, self.bucket, key, self.rate, self.burst, self.clock())

    def forget_full(self) -> int:
        """Forget buckets that are full again (as good as new); the number forgotten."""
        if self.rate <= 0:
            return 0
        return service_state.forget_full_buckets(self.state, self.bucket, self.rate, self.burst, self.clock())


class Challenges:
    """Single-use random values for the downstream request, valid for `seconds`, kept per client
    address: a challenge is only good from the address it was given to, and a flood of requests
    from one address only ever drops that address's own older challenges (at most `per_address`
    kept). Over all addresses at most `cap`; when that is full a new address is refused (None)
    rather than anyone's challenge evicted. Kept in the county database (app.store.service_state):
    a challenge handed out by one worker is good at another, also after a restart, and only once.
    Called from a thread, not the event loop."""

    def __init__(self, state, seconds: float, per_address: int = 8, cap: int = 50_000, clock=time.time):
        self.state, self.seconds, self.per_address, self.cap, self.clock = state, seconds, per_address, cap, clock

    def new(self, address: str) -> str | None:
        return service_state.issue_challenge(self.state, address, self.seconds, self.per_address, self.cap,
                                             self.clock())

    def take(self, value: str, address: str) -> bool:
        return service_state.take_challenge(self.state, value, address, self.clock())

    def expire(self) -> int:
        return service_state.expire_challenges(self.state, self.clock())

    @property
    def count(self) -> int:
        return service_state.count_challenges(self.state)


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
