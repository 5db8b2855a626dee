"""What the status bar and `jiandang sync status` say about a database's sync state, read from the
same meta keys and receipts the exchange writes (app/sync/exchange.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from app.store import Store
from app.sync import identity


@dataclass(frozen=True)
class SyncStatus:
    unacknowledged: int | None  # own changes the county has not yet confirmed; None at the county
    last_received: dt.datetime | None  # local time of the last bundle imported here, None if never
    enrolled: bool = True  # False: never enrolled at a county (a demo or a stand-alone database)
    images: int = 0  # photos not yet sent to the county (app/sync/attachments.py)
    image_bytes: int = 0

    def unsynced_label(self) -> str:
        if not self.enrolled:  # it can never sync: a count of "unsynced" changes would only alarm
            return "本库未在县里登记,不同步:数据只在本机,请定期备份"
        if self.unacknowledged is None:
            return ""
        return f"未同步修改:{self.unacknowledged}" + (f",照片 {self.images} 张" if self.images else "")

    def images_label(self) -> str:
        return f"待发送照片:{self.images} 张({self.image_bytes / 1024 / 1024:.1f} MB)" if self.images else "待发送照片:无"

    def last_sync_label(self) -> str:
        if not self.enrolled:
            return ""
        return f"上次同步:{self.last_received:%Y-%m-%d}" if self.last_received else "上次同步:从未同步"


def sync_status(store: Store) -> SyncStatus:
    """The device's own changes not yet acknowledged by the county (a USB stick carried to the county
    counts once the county's answer has been imported back) and when a bundle was last imported."""
    row = store.conn.execute("SELECT max(received) FROM receipts").fetchone()
    last = identity.parse_iso(row[0]).astimezone() if row and row[0] else None
    if store.role == "county":
        return SyncStatus(None, last)
    if not store.meta("certificate"):
        return SyncStatus(None, last, enrolled=False)
    acked = int(store.meta("sync_acked_seq", 0) or 0)
    count = store.count_changes(store.site_id, acked)
    from app.sync import attachments  # noqa: PLC0415

    images, size = attachments.pending(store, store.meta("county_site_id") or "")
    return SyncStatus(count, last, images=images, image_bytes=size)


def local_time_text(text: str | None, missing: str = "") -> str:
    """A stored UTC timestamp (`2026-12-29T09:21:24Z`) as a person reads it: local date and time,
    `2026-12-29 17:21`. Empty gives `missing`; text that is not such a timestamp is shown as it is."""
    if not text:
        return missing
    try:
        return identity.parse_iso(text).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return text


def site_label(store: Store, site_id: str | None) -> str:
    """A site as a person recognises it: its name with the id in brackets (`雷山县扶贫办(2197a0f6c2628394)`)
    where the name is known here (the county knows its devices by their certificates, a laptop knows
    itself and its county), else the id."""
    from app.sync import merge

    if not site_id:
        return "未知站点"
    name = merge.site_names(store).get(site_id)
    return f"{name}({site_id})" if name else site_id

