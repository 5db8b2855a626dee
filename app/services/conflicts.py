"""Conflicts as a reviewer reads them: which record (the household by 户编号 and 户主, a member or
other child record by its name within that household), shared by `jiandang conflicts` and the
county window's 冲突审核 list."""

from __future__ import annotations

from app.core.validation import household_label
from app.store import Store
from app.store.db import short_id
from app.sync import merge


def record_title(store: Store, record_id: str) -> str:
    """The record a conflict is about, without its kind: `户主“邵成德”(户编号 5226341012011002)` for
    a household, `邵小明,户主“邵成德”(户编号 5226341012011002)` for a member (other child records by
    their title field: year, date, name …). A record not found or damaged: `记录 <short id>`."""
    from app.core.dictionary import default

    try:
        record = store.get(record_id)
        house = record if record is None or record.kind == "household" else store.get(record.parent_id or "")
    except Exception:  # noqa: BLE001 - a damaged record: fall back to its number
        record = house = None
    if record is None or house is None or house.kind != "household":
        return f"记录 {short_id(record_id)}"
    if record is house:
        return household_label(house.fields)
    d = default()
    kind = d.kinds.get(record.kind)
    title = record.fields.get(kind.title_field) if kind is not None and kind.title_field else None
    if title in (None, ""):
        return household_label(house.fields)
    shown = d.display(record.kind, kind.title_field, title)
    return f"{shown},{household_label(house.fields)}"


def raw(items: list[merge.Conflict]) -> list[dict]:
    """The conflicts' fields for `jiandang conflicts --json`, values of a field marked `masked` in
    forms/ (bank accounts) partly hidden as the list shows them (`Dictionary.display_masked`)."""
    from app.core.dictionary import default

    d = default()
    out = []
    for c in items:
        item = c.as_dict()
        field = d.kinds[c.kind].fields.get(c.field) if c.kind in d.kinds else None
        if field is not None and field.masked:
            for key in ("winner_value", "loser_value", "current_value"):
                if item[key] not in (None, ""):
                    item[key] = d.display_masked(c.kind, c.field, item[key])
        out.append(item)
    return out


def describe(store: Store, items: list[merge.Conflict]) -> list[dict]:
    """`merge.conflict_texts` (values as the forms show them, bank accounts partly hidden) plus
    `record`: the kind and the record in words
    (`贫困户 户主“邵成德”(户编号 5226341012011002)`, `家庭成员 邵小明,户主“…”(户编号 …)`)."""
    texts = merge.conflict_texts(store, items)
    for c, t in zip(items, texts):
        t["record"] = f"{t['kind']} {record_title(store, c.record_id)}"
    return texts
