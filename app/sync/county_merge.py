"""The county's merge of an upstream bundle in few passes over its changes, each a tight loop.

Most changes a laptop sends are alike: a field or a few of a household or member in the laptop's own
village, that no other site wrote meanwhile. For those, each pass does its per-change work inline
with lookups made once per bundle (the certificate's villages, the records the bundle touches and
their parents, fetched in one batch). Every other change (a village move, a county-controlled field,
a 户编号, a proposal or risk, a delete or restore, a clock tie, a conflict, a refusal) goes to the
per-change code that decides it in general (`exchange._authorise`, `merge.Merger.apply`), with the
same state, so the outcome of every change is the one that code gives.

An upload's changes are read from the payload's JSON straight into `WireChange` objects (msgspec,
the checks of `changes_from_wire` made while reading, in C, with the payload's other keys in the same
pass, integers of any length exact) when every change has the exact shape; any other payload is read
as before, change by change (`decode_payload`).

The passes keep the order of the per-change code: decode every change, then authorise every change
(a refusal names the first refused change, judged against the county as it was before the bundle),
then merge. tests/test_merge_differential.py imports many random bundles through both paths
(`FUSED = False`: every change through the per-change code) and compares the counties and reports.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from app.core import procedures
from app.core.clock import ZERO, _STAMP
from app.store import Change, Record
from app.sync import wire
from app.sync.merge import _OPS, Merger, change_from_wire

FUSED = True  # False: every change through the per-change code (the differential test's reference)


class WireChange(msgspec.Struct, gc=False, rename={
        "site_id": "s", "seq": "n", "record_id": "r", "kind": "k", "village_code": "v", "parent_id": "p", "hlc": "t",
        "op": "o", "operator": "by", "reason": "why"}):
    """A change as a bundle carries it, read straight from the payload's JSON (`decode_payload`) with
    the checks `changes_from_wire` makes inline: the attributes and `payload()` of `Change`, so the
    merge and the change log take it as one. Holds no cycles (gc=False). The fields are declared in
    the order of their keys in an upload (sorted: `wire.seal_payload`), which msgspec reads a fifth
    faster than keys in another order (it tries the next declared field first)."""

    operator: Annotated[str, msgspec.Meta(min_length=1)]  # "by"
    kind: str  # "k"
    seq: Annotated[int, msgspec.Meta(ge=1)]  # "n"
    new: dict
    op: Literal["create", "update", "delete", "restore"]  # "o"
    old: dict
    parent_id: Any  # "p"
    record_id: str  # "r"
    site_id: str  # "s"
    seen: dict
    hlc: str  # "t": checked against the stamp's pattern after decoding (a pattern in the type costs more)
    village_code: Any  # "v"
    reason: Any  # "why"

    payload = Change.payload


_ABSENT = object()  # a key the upload left out


class _Upload(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """An upload's payload with the keys a laptop writes (`exchange.export_upstream`), in their order
    there (sorted): read with its changes in one pass. A payload with any other key is read in two
    (`_TOP`, then the changes)."""

    attachments: Any = _ABSENT
    attachments_wanted: Any = _ABSENT
    certificate: Any = _ABSENT
    changes: list[WireChange]
    dictionary_version: Any = _ABSENT
    down_rowid: Any = _ABSENT
    down_seq: Any = _ABSENT
    more_attachments: Any = _ABSENT
    more_changes: Any = _ABSENT


_UPLOAD = msgspec.json.Decoder(_Upload)
_UPLOAD_KEYS = tuple(key for key in _Upload.__struct_fields__ if key != "changes")
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_CHANGES = msgspec.json.Decoder(list[WireChange])


def decode_payload(raw) -> tuple[dict, list] | None:
    """(payload, changes) of an upstream payload's JSON text in one pass in C, when every change is
    well formed with exact types (what `changes_from_wire` takes inline); None otherwise, and the
    caller reads it as before (`wire.parse`, `changes_from_wire`), which converts or refuses exactly
    as it always has. msgspec reads every value as the standard library does (integers of any
    length exactly, floats correctly rounded; NaN, lone surrogates and numbers beyond a float are
    refused, and those payloads go to the general reading), so a payload with long digit runs is
    read here too (`wire.inflate` need not look for them).
    The payload's other values: read with the changes when the payload has only the keys a laptop
    writes (`_Upload`), else with `wire.parse` (they are few). "changes" is None in the payload
    (the changes are returned)."""
    if not FUSED:
        return None
    try:
        upload = _UPLOAD.decode(raw)
    except msgspec.DecodeError:  # also a ValidationError: not JSON, another key, or a change of another shape
        upload = None
    if upload is not None:
        changes = upload.changes
        payload = {}
        for key in _UPLOAD_KEYS:
            value = getattr(upload, key)
            if value is not _ABSENT:
                payload[key] = value
    else:
        try:
            top = _TOP.decode(raw)
            text = top.pop("changes", None)
            if text is None:
                return None
            changes = _CHANGES.decode(text)
        except msgspec.DecodeError:
            return None
        payload = {key: wire.parse(bytes(value)) for key, value in top.items()}
    if changes and not _stamps_well_formed([c.hlc for c in changes]):
        return None
    payload["changes"] = None
    return payload, changes


_STAMPS = re.compile(r"(?:[0-9]{13}\.[0-9]{4}\n)*").fullmatch  # clock._STAMP's pattern, each followed by a newline


def _stamps_well_formed(stamps: list[str]) -> bool:
    """Whether every stamp matches `clock._STAMP` (13 ASCII digits, a point, 4 digits), tested in one
    regular-expression pass over them joined (half the time of one call a stamp). Each piece the
    pattern takes is 18 characters and a newline, so a text of exactly 19 characters a stamp holds no
    stamp with a newline of its own: the pieces are the stamps."""
    text = "\n".join(stamps) + "\n"
    return len(text) == 19 * len(stamps) and _STAMPS(text) is not None


def changes_from_wire(items) -> list[Change]:
    """`change_from_wire` of every item: inline when the item is well formed with exact types, else
    through `change_from_wire` (which converts or refuses it exactly as before)."""
    if not FUSED:
        return [change_from_wire(d) for d in items]
    out = []
    append = out.append
    for d in items:
        try:
            s, n, r, k, t, o = d["s"], d["n"], d["r"], d["k"], d["t"], d["o"]
            new, old, seen, by = d["new"], d["old"], d["seen"], d["by"]
            v, p, why = d["v"], d["p"], d["why"]
        except (KeyError, TypeError, IndexError):  # a key left out, or not an object: the general code says
            append(change_from_wire(d))
            continue
        if (type(s) is str and type(n) is int and type(r) is str and type(k) is str and type(t) is str
                and type(o) is str and type(new) is dict and type(old) is dict and type(seen) is dict
                and type(by) is str and by and n >= 1 and o in _OPS and _STAMP(t) is not None):
            append(Change(s, n, r, k, v, p, t, o, new, old, seen, by, why))
        else:
            append(change_from_wire(d))
    return out


def authorise_all(store, cert, changes, places: dict, covered: dict, made: dict, fields_now: dict,
                  authorise, parent_kinds: dict) -> str | None:
    """The first refusal of `authorise(store, cert, c, places, covered, made, fields_now)` over the
    changes, or None. A change is decided inline when all of this holds, where `authorise` would
    accept it without looking further and would update `made` the same way: sent by the
    certificate's own site; its village, and the village the county holds the record in, known to be
    covered (`covered`, filled by `authorise`); no routing key (a village move); not a create of a
    record that exists; no 户编号; a kind and fields `procedures.authorize_change` always accepts; and,
    for a child record or a record held under a parent, the parent known here (bundle or county), of
    the expected kind, in the same covered village, and the same parent as the county holds."""
    if not FUSED:
        for c in changes:
            refusal = authorise(store, cert, c, places, covered, made, fields_now)
            if refusal:
                return refusal
        return None
    site = cert.site_id
    judged_kinds = procedures.JUDGED_KINDS  # `procedures.always_authorized`, inline, with the 户编号
    judged_household = procedures.JUDGED_HOUSEHOLD_FIELDS | {"household_number"}
    for c in changes:
        kind, new, rid, village = c.kind, c.new, c.record_id, c.village_code
        held = places.get(rid, _ABSENT)
        inline = not (held is _ABSENT or c.site_id != site or covered.get(village) is not True
                      or (kind in judged_kinds and (kind != "household" or not judged_household.isdisjoint(new)))
                      or (held is not None and held[1] and covered.get(held[1]) is not True)  # held elsewhere
                      or (c.op == "create" and (held is not None or rid in made)))  # made twice
        if inline:  # a routing key (a village move): a key starting "__"
            if len(new) < 4:  # most edits: a field or few
                for key in new:
                    if key[:2] == "__":
                        inline = False
                        break
            else:  # a new record's many fields: looked for in one pass in C over the keys joined (a key
                keys = "\n".join(new)  # holding "\n__" sends the change the general way: still right)
                if keys[:2] == "__" or "\n__" in keys:
                    inline = False
        if inline:
            parent, expected = c.parent_id, parent_kinds.get(kind)
            if parent is not None or (held is not None and held[2]) or expected is not None:
                up = None
                if parent is not None and (held is None or held[2] == parent):
                    up = made.get(parent) or places.get(parent)
                inline = (up is not None and (expected is None or up[0] == expected) and up[1] == village
                          and covered.get(up[1]) is True)
        if inline:
            before = made.get(rid)
            made[rid] = (kind, before[1] if before else held[1] if held else village)
            continue
        refusal = authorise(store, cert, c, places, covered, made, fields_now)
        if refusal:
            return refusal
    return None


def merge_all(merger: Merger, changes: list[Change], absent: set[str] | frozenset = frozenset()) -> None:
    """`merger.apply_all(changes, known_new=True)` (the county's per-site sequence has made every
    change new and distinct), with the common changes applied inline: a create of a record this
    county does not hold, and an update of a live record of the same kind, without routing keys,
    whose every field this county holds with an older clock and no conflict (the writer saw the
    county's value, or wrote the same value). Every other change goes through `merger.apply`.
    `absent`: record ids the caller found not held in this transaction (not looked up again)."""
    if not FUSED:
        merger.apply_all(changes, known_new=True, absent=absent)
        return
    store = merger.store
    review = merger.review
    hlc_clock = store.clock
    for i in range(0, len(changes), merger.CHUNK):
        part = changes[i:i + merger.CHUNK]
        merger.prefetch((c.record_id for c in part), absent if i == 0 else frozenset())
        cache, missing, pending, dirty = merger.cache, merger.missing, merger.pending, merger.dirty
        applied = 0
        for c in part:
            rid, hlc, new = c.record_id, c.hlc, c.new
            rec = cache.get(rid)
            if rec is None and rid in missing:
                if c.op == "create":  # a new record: made as `Merger.apply` would leave it, in one step
                    keys = "\n".join(new)  # routing keys ("__…") are not fields: looked for in one pass, as above
                    if keys[:2] == "__" or "\n__" in keys:
                        fields = {key: value for key, value in new.items() if value is not None and key[:2] != "__"}
                    else:
                        fields = {key: value for key, value in new.items() if value is not None}
                    cache[rid] = Record(rid, c.kind, c.village_code, c.parent_id, hlc if hlc > ZERO else ZERO, False,
                                        fields, {"*": hlc})
                    if hlc > hlc_clock.last:
                        hlc_clock.last = hlc
                    pending.append(c)
                    dirty[rid] = None
                    applied += 1
                    continue
                rec = cache[rid] = Record(rid, c.kind, c.village_code, c.parent_id, ZERO, False, {}, {"*": ZERO})
            if rec is None or rec.kind != c.kind:
                merger.apply(c, known_new=True)
                pending = merger.pending  # a clock tie or conflict writes the pending rows first
                continue
            op = c.op
            if op == "create" and rec.hlc == ZERO and not rec.fields:
                rec.fields = {key: value for key, value in new.items() if value is not None and key[:2] != "__"}
                rec.clocks = {"*": hlc}
                rec.village_code, rec.parent_id = c.village_code, c.parent_id
            elif op == "update" and not rec.deleted:
                clocks, fields = rec.clocks, rec.fields
                star = clocks.get("*", ZERO)
                seen = c.seen if review else None
                if len(new) == 1:  # most edits: one field
                    (key, value), = new.items()
                    clock = clocks.get(key, star)
                    if (key[:2] == "__" or clock >= hlc
                            or (seen is not None and key in seen and seen[key] != clock and fields.get(key) != value)):
                        merger.apply(c, known_new=True)
                        pending = merger.pending
                        continue
                    if value is None:
                        fields.pop(key, None)
                    else:
                        fields[key] = value
                    clocks[key] = hlc
                else:
                    simple = True
                    for key, value in new.items():
                        clock = clocks.get(key, star)
                        if (key[:2] == "__" or clock >= hlc
                                or (seen is not None and key in seen and seen[key] != clock and fields.get(key) != value)):
                            simple = False
                            break
                    if not simple:
                        merger.apply(c, known_new=True)
                        pending = merger.pending
                        continue
                    for key, value in new.items():
                        if value is None:
                            fields.pop(key, None)
                        else:
                            fields[key] = value
                        clocks[key] = hlc
            else:
                merger.apply(c, known_new=True)
                pending = merger.pending  # a clock tie or conflict writes the pending rows first
                continue
            if hlc > hlc_clock.last:  # the stamp is well formed (checked when decoded)
                hlc_clock.last = hlc
            if hlc > rec.hlc:
                rec.hlc = hlc
            pending.append(c)
            dirty[rid] = None
            applied += 1
        merger.applied += applied
        merger.flush()
        merger.cache.clear()
        merger.missing.clear()
