"""Blocks of household numbers (户编号 = 12-digit village code + 4 digits).

Laptops work offline, so each numbers new households only from blocks the county gave it: the block in
its certificate (for every village of the certificate) and top-ups for one village at a time, which the
county adds to a downstream bundle by itself when a laptop has used most of what it holds there.

County meta: `next_number_block:<code>` (the next free number of a village or township, as before),
`number_topups:<site id>` (JSON {village: [[first, last], ...]}) and `county_number_blocks` (the same
JSON: blocks the county took for its own households in a village once its 0001-1000 were used).
The county numbers its own households in a village from 0001 to 1000 (devices' blocks start at 1001),
then from blocks it takes out of the same counter as the devices' blocks, so its numbers never meet a
laptop's; when the village's 4-digit numbers are all given out (9999) it stops with a message. Device meta: `number_block`
("first-last", from the certificate) and `number_topups` (the same JSON as the county's, received).
"""

from __future__ import annotations

import json
import math

from app.store import Store, StoreError

MIN_BLOCK = 300
MAX_BLOCK = 2000
FIRST_BLOCK = 1001  # the county itself numbers 0001-1000
LAST_NUMBER = 9999
COUNTY_BLOCK = (1, FIRST_BLOCK - 1)
COUNTY_BLOCKS_META = "county_number_blocks"
LOW_WATER = 1 / 3  # a top-up goes out when less than this share of the device's last block is left
WARN_LEFT = 50  # the work list warns when fewer numbers than this are left in a village


class NumbersExhausted(StoreError):
    """The device has no household number left in a village (until a top-up arrives)."""


def block_size(village_households: int, used_by_device: int = 0) -> int:
    """How many numbers a block for one village holds: at least 300; half the village's households
    known to the county (a work team adds new and monitored households over the years); and at least
    as many as the device has already issued there (a laptop that numbered 600 gets 600 more)."""
    want = max(MIN_BLOCK, math.ceil(village_households / 2 / 100) * 100, math.ceil(used_by_device / 100) * 100)
    return min(MAX_BLOCK, want)


def village_households(store: Store, place: str) -> int:
    """Households (live or not) the county holds in a village, or in every village under a code."""
    return store.conn.execute("SELECT count(*) FROM records WHERE kind = 'household' AND village_code LIKE ?",
                              (place + "%",)).fetchone()[0]


def allocate(store: Store, places: list[str], *, mark: list[str] | None = None, size: int | None = None) -> list[int]:
    """A block of household numbers no other device working in any of these places holds. A place may
    be a township (9 digits): its device numbers households in every village of the township, so its
    block is clear of every village device there, and of later ones: a township's block is marked on
    the township and on each of its villages, and a village's block starts after whatever its township
    holds. `mark`: the codes to mark (default: the places and everything under them)."""
    codes = {d["code"] for d in store.divisions()}
    own: set[str] = set()
    read: set[str] = set()
    for place in places:
        own.add(place)
        if mark is None:
            own.update(c for c in codes if c.startswith(place) and c != place)
        if len(place) == 12:
            read.add(place[:9])  # the township's device may number households here too
    if mark is not None:
        own = set(mark)
    keys = [f"next_number_block:{c}" for c in sorted(own | read)]
    start = max(int(store.meta(k, FIRST_BLOCK)) for k in keys)
    if size is None:
        size = block_size(max((village_households(store, p) for p in places), default=0))
    end = min(start + size - 1, LAST_NUMBER)
    if end - start + 1 < min(size, 50) or start > LAST_NUMBER:
        raise StoreError(f"{'、'.join(places)} 的户编号已分配完(最多到 {LAST_NUMBER}):"
                         "请县扶贫办核对各设备的号段(jiandang devices)")
    for code in own:
        store.set_meta(f"next_number_block:{code}", str(end + 1))
    return [start, end]


# ---------------------------------------------------------------------- county: top-ups


def _topups(store: Store, key: str) -> dict[str, list[list[int]]]:
    return parse_topups(store.meta(key))


def parse_topups(text: str | None) -> dict[str, list[list[int]]]:
    """A device's top-ups as stored in meta `number_topups:<site>` (None: none)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def county_topups(store: Store, site_id: str) -> dict[str, list[list[int]]]:
    return _topups(store, f"number_topups:{site_id}")


def blocks_for(cert_block, topups: dict, village: str) -> list[tuple[int, int]]:
    """A device's blocks in a village: its certificate's, then its top-ups there (or its township's)."""
    out = [tuple(cert_block)] if cert_block else []
    for place, blocks in topups.items():
        if village.startswith(place):
            out += [tuple(b) for b in blocks]
    return [(int(a), int(b)) for a, b in out]


def _device_villages(store: Store, cert) -> list[str]:
    """The 12-digit villages a certificate covers (a township certificate: its villages the county knows)."""
    known = [d["code"] for d in store.divisions("village")]
    out = []
    for place in cert.villages:
        out += [place] if len(place) == 12 else [c for c in known if c.startswith(place)]
    return sorted(set(out))


def used_numbers(store: Store, village: str, blocks: list[tuple[int, int]]) -> int:
    """How many numbers of these blocks the households the county holds in a village carry."""
    numbers = set()
    for record in store.records("household", village_code=village, include_deleted=True):
        text = str(record.fields.get("household_number") or "")
        if text.startswith(village) and text[len(village):].isdigit():
            numbers.add(int(text[len(village):]))
    return sum(in_blocks(n, blocks) for n in numbers)


def top_up(store: Store, cert) -> dict[str, list[list[int]]]:
    """The county's top-ups for a device, adding a block in each village where less than a third of its
    last block is left unused (as far as the county has received its households). Runs inside the
    caller's transaction (the downstream export), so a new block is recorded with the bundle that
    carries it. Returns every top-up of the device (they are sent again in every bundle: idempotent)."""
    key = f"number_topups:{cert.site_id}"
    topups = _topups(store, key)
    for village in _device_villages(store, cert):
        blocks = blocks_for(cert.body.get("number_block"), topups, village)
        if not blocks:
            continue
        capacity = sum(b - a + 1 for a, b in blocks)
        used = used_numbers(store, village, blocks)
        last = blocks[-1][1] - blocks[-1][0] + 1
        if capacity - used >= last * LOW_WATER:
            continue
        try:
            block = allocate(store, [village], mark=[village],
                             size=block_size(village_households(store, village), used))
        except StoreError:
            continue  # nothing left to give: the laptop's work list says so
        topups.setdefault(village, []).append(block)
    if topups:
        store.set_meta(key, json.dumps(topups, sort_keys=True))
    return topups


# ---------------------------------------------------------------------- device: blocks held


def install_topups(store: Store, topups) -> list[str]:
    """Keep the blocks a downstream bundle brought (a signed county bundle). Returns the villages that
    gained numbers."""
    if not isinstance(topups, dict):
        return []
    held = _topups(store, "number_topups")
    gained = []
    for village, blocks in topups.items():
        if not (isinstance(village, str) and village.isdigit() and len(village) in (9, 12) and isinstance(blocks, list)):
            continue
        for block in blocks:
            if (isinstance(block, list) and len(block) == 2 and all(type(x) is int for x in block)
                    and FIRST_BLOCK <= block[0] <= block[1] <= LAST_NUMBER and block not in held.get(village, [])):
                held.setdefault(village, []).append(block)
                gained.append(village)
    if gained:
        store.set_meta("number_topups", json.dumps(held, sort_keys=True))
    return sorted(set(gained))


def device_blocks(store: Store, village: str) -> list[tuple[int, int]] | None:
    """The blocks this database numbers households from in a village (None: not an enrolled device,
    which numbers freely from 0001)."""
    block = store.meta("number_block")
    if not block:
        return None
    first, last = (int(x) for x in block.split("-"))
    return blocks_for((first, last), _topups(store, "number_topups"), village)


def county_blocks(store: Store, village: str) -> list[tuple[int, int]]:
    """The numbers the county gives its own new households in a village: 0001-1000, then the blocks it
    took for itself there (`take_county_block`)."""
    return [COUNTY_BLOCK] + [(int(a), int(b)) for a, b in _topups(store, COUNTY_BLOCKS_META).get(village, [])]


def county_own_blocks(store: Store) -> dict[str, list[tuple[int, int]]]:
    """village -> the blocks past 0001-1000 the county took for its own households there."""
    return {v: [(int(a), int(b)) for a, b in bs] for v, bs in _topups(store, COUNTY_BLOCKS_META).items()}


def take_county_block(store: Store, village: str) -> tuple[int, int]:
    """A block for the county's own households in a village, from the counter the devices' blocks come
    from (so it is clear of every laptop's). Raises StoreError when the village has none left."""
    block = allocate(store, [village], mark=[village], size=block_size(village_households(store, village)))
    held = _topups(store, COUNTY_BLOCKS_META)
    held.setdefault(village, []).append(block)
    store.set_meta(COUNTY_BLOCKS_META, json.dumps(held, sort_keys=True))
    return tuple(block)


def in_blocks(number: int, blocks: list[tuple[int, int]]) -> bool:
    return any(a <= number <= b for a, b in blocks)


def describe(blocks: list[tuple[int, int]]) -> str:
    return "、".join(f"{a:04d}-{b:04d}" for a, b in blocks)


def numbers_left(store: Store, village: str) -> int | None:
    """How many numbers this device has left in a village after the last one it issued (None: it
    numbers freely). Blocks are in ascending order (the county's counters only grow)."""
    blocks = device_blocks(store, village)
    if blocks is None:
        return None
    counter = int(store.meta(f"household_counter:{village}") or 0)
    left = 0
    for a, b in blocks:
        if counter < a:
            left += b - a + 1
        elif counter <= b:
            left += b - counter
    return left


def next_number(store: Store, village_code: str) -> str:
    """The next free 户编号 in a village: the village code and a 4-digit number. The last number
    issued is kept in meta (household_counter:<village>) so numbering does not rescan the village.
    An enrolled device issues numbers only from its blocks (its certificate's, then the top-ups the
    county sent, app.sync.numbers), so laptops working offline never issue the same number; with none
    left it raises NumbersExhausted. The county numbers from 0001-1000, then from blocks it takes for
    itself (`county_blocks`); a database not enrolled anywhere numbers from 0001 to 9999."""
    key = f"household_counter:{village_code}"
    blocks = device_blocks(store, village_code)
    county = blocks is None and store.role == "county"
    if county:
        blocks = county_blocks(store, village_code)
    ranges = blocks if blocks is not None else [(1, LAST_NUMBER)]
    highest = store.meta(key)
    if highest is None:
        highest = ranges[0][0] - 1
        for h in store.records("household", village_code=village_code, include_deleted=True):
            number = str(h.fields.get("household_number", ""))
            if number.startswith(village_code) and number[len(village_code):].isdigit():
                value = int(number[len(village_code):])
                if in_blocks(value, ranges):
                    highest = max(highest, value)
    number = int(highest) + 1
    while True:
        for low, high in ranges:
            number = max(number, low)
            while number <= high and store.find_household_number(f"{village_code}{number:04d}"):  # typed in by hand
                number += 1
            if number <= high:
                store.set_meta(key, str(number))
                return f"{village_code}{number:04d}"
        if not county:
            break
        try:  # the county's own numbers are used up: it takes a block, as it gives one to a laptop
            ranges = ranges + [take_county_block(store, village_code)]
        except StoreError:
            raise NumbersExhausted(
                f"村 {village_code} 的 4 位户编号已全部分配(县里自编 {describe(ranges)},其余号段已发给各设备,"
                f"最多到 {LAST_NUMBER}):此户已作为草稿保存,暂无户编号。请用 jiandang devices 核对各设备的号段,"
                "或在户编号一栏手工填写一个核实过未被使用的户编号") from None
    if blocks is None:
        raise NumbersExhausted(f"村 {village_code} 的 4 位户编号 0001-{LAST_NUMBER} 已全部使用:此户已作为草稿保存,"
                               "暂无户编号。请核对是否有误录的户编号")
    raise NumbersExhausted(
        f"本机在村 {village_code} 的户编号({describe(ranges)})已用完。此户已作为草稿保存,暂无户编号:"
        "请把本机的同步包送到县扶贫办,县里会随下一个县级包自动发来新的号段,导入后程序会给这些户补上户编号"
        "(不需要重新登记本机)")
