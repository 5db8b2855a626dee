"""Attachment images in sync bundles (docs/bundle-format.md "Attachments", docs/sync.md).

Changes always travel first and whole; images ride along up to a size budget per bundle, oldest
first, and the rest follow in later bundles. Each side remembers per peer which images it sent in
which of its bundles (`attachment_sync`, bundle 0 = received from that peer), so an image is sent
once. Every bundle also names the images the sender's records refer to but it does not hold
(`attachments_wanted`); the receiver sends such an image again only if the bundle it went in is
one the sender has acknowledged (so it was lost, e.g. a stick that never reached the county),
never while it may still be on its way.

The county keeps every image; a laptop gets the images of its certificate's villages only.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from app.store import Store
from app.store import attachments as blobs
from app.sync import wire

DEFAULT_BUDGET = 16 * 1024 * 1024  # bytes of images per bundle (the changes are not counted)
MAX_WANTED = 5000
KEEP_GPS_META = "attachment_keep_gps"


def _sent(store: Store, peer: str) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT digest FROM attachment_sync WHERE peer = ?", (peer,))}


def _pending(store: Store, peer: str, villages: Iterable[str] | None) -> list[tuple[str, int]]:
    """(address, size) of the images this store holds for live attachments in these villages that it
    has neither sent to `peer` nor received from it, oldest attachment first."""
    live = blobs.live_digests(store, villages)
    sent = _sent(store, peer)
    sizes = dict(store.conn.execute("SELECT digest, size FROM attachment_blobs"))
    return [(d, sizes[d]) for d in live if d not in sent and d in sizes]


def pending(store: Store, peer: str, villages: Iterable[str] | None = None) -> tuple[int, int]:
    """How many images (and bytes) are still to send to `peer` (sync status)."""
    items = _pending(store, peer, villages)
    return len(items), sum(size for _, size in items)


def outgoing(store: Store, peer: str, villages: Iterable[str] | None, budget: int) -> tuple[list[dict], list[str], bool]:
    """Images for the next bundle to `peer`: up to `budget` bytes (at least one image, so a photo larger
    than the budget still goes, alone). Returns (payload items, their addresses, whether more remain)."""
    items, picked, total = [], [], 0
    todo = _pending(store, peer, villages)
    for digest, size in todo:
        if picked and total + size > budget:
            break
        data = blobs.get_blob(store, digest)
        if data is None:
            continue
        items.append({"d": digest, "x": base64.b64encode(data).decode("ascii")})
        picked.append(digest)
        total += size
    return items, picked, len(picked) < len(todo)


def mark_sent(store: Store, peer: str, digests: Iterable[str], bundle_seq: int) -> None:
    store.conn.executemany("INSERT OR REPLACE INTO attachment_sync(peer, digest, bundle) VALUES (?,?,?)",
                           [(peer, d, int(bundle_seq)) for d in digests])


def wanted(store: Store, villages: Iterable[str] | None = None) -> list[str]:
    """Addresses of live attachments (in these villages) whose image this store lacks."""
    have = {r[0] for r in store.conn.execute("SELECT digest FROM attachment_blobs")}
    return [d for d in blobs.live_digests(store, villages) if d not in have][:MAX_WANTED]


def handle_wanted(store: Store, peer: str, digests, acknowledged: int) -> int:
    """The peer lacks these images: forget having sent those that went in a bundle it acknowledged
    (number <= `acknowledged`) or that came from it, so they are sent again. Returns how many."""
    if not isinstance(digests, list):
        return 0
    again = [(peer, d, int(acknowledged)) for d in digests if isinstance(d, str)]
    before = store.conn.total_changes
    store.conn.executemany("DELETE FROM attachment_sync WHERE peer = ? AND digest = ? AND bundle <= ?", again)
    return store.conn.total_changes - before


def receive(store: Store, peer: str, items, covers=None) -> tuple[int, int]:
    """Store the images of a bundle (in the import's transaction, after its changes). Each image must
    match its address and belong to an attachment record held here; at the county (`covers`: the
    sender's certificate's test of a village code) that record must be in a village the sender
    covers, else the whole bundle is refused. An image of an attachment deleted meanwhile, or not
    (yet) known here, is not kept. Returns (images stored, images not kept)."""
    if not items:
        return 0, 0
    if not isinstance(items, list):
        raise wire.BundleError("包内容格式不对:attachments 应为列表")
    refs: dict[str, list[tuple[str, bool]]] = {}
    for rec in store.records(blobs.KIND, include_deleted=True):
        d = rec.fields.get("digest")
        if d:
            refs.setdefault(d, []).append((rec.village_code or "", rec.deleted))
    stored = skipped = 0
    received = []
    for item in items:
        try:
            digest, data = str(item["d"]), base64.b64decode(item["x"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise wire.BundleError("包内容格式不对:照片数据无法读取") from None
        if blobs.digest_of(store, data) != digest:
            raise wire.BundleError(f"照片 {digest[:12]} 的内容与其编号不符(文件被改动,或发件电脑不属于本县),整包拒收")
        places = refs.get(digest, [])
        if covers is not None and places and not any(covers(v) for v, _ in places):
            raise wire.BundleError(f"包含未授权的照片,整包拒收:照片 {digest[:12]} 属于该设备证书范围以外的村")
        if not any(not deleted and (covers is None or covers(v)) for v, deleted in places):
            skipped += 1
            continue
        if blobs.put_blob(store, digest, data):
            stored += 1
        received.append(digest)
    mark_sent(store, peer, received, 0)
    return stored, skipped


def drop_deleted(store: Store, changes) -> None:
    """After a merge: remove the images of attachments the bundle deleted (unless still used)."""
    digests = []
    for c in changes:
        if c.kind == blobs.KIND and c.op == "delete":
            rec = store.get(c.record_id)
            if rec is not None and rec.deleted and rec.fields.get("digest"):
                digests.append(rec.fields["digest"])
    blobs.drop_unreferenced(store, digests)
