"""Attachments as a user works with them (docs/attachments.md): add photos and scans to a household
or one of its records, list them, delete them, read an image back. The CLI (`jiandang attach`,
`jiandang attachments`), the window and the printed evidence pages all go through here.

Each file is added in its own transaction (metadata record and sealed image together): a file that
is refused leaves nothing behind, and the others are still added.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app import settings as app_settings
from app.core.dictionary import default as dictionary
from app.store import Store, StoreError
from app.store import attachments as blobs
from app.store.db import matches_short_id, short_id
from app.services.images import ImageRefused, image_files, prepare
from app.sync import attachments as attachment_sync

KIND = blobs.KIND
CODE_LIST = "attachment_kind"
OTHER = "9"
KEEP_GPS_META = attachment_sync.KEEP_GPS_META  # "1": keep photo positions (the county's choice, sent to laptops)
ATTACHABLE = ("household", "member", "visit", "measure", "proposal", "income", "helper", "plan")


@dataclass
class AddReport:
    added: list = field(default_factory=list)  # attachment ids
    same: list = field(default_factory=list)  # Chinese lines: files already attached to that record
    refused: list = field(default_factory=list)  # Chinese lines naming the file
    left_out: list = field(default_factory=list)  # files of a folder that are not photos or PDFs

    def lines(self) -> list[str]:
        out = [f"已添加 {len(self.added)} 张"] + self.same + [f"未添加:{r}" for r in self.refused]
        if self.left_out:
            out.append(f"文件夹中 {len(self.left_out)} 个文件不是照片或 PDF,已跳过:"
                       + "、".join(p.name for p in self.left_out[:10]) + (" 等" if len(self.left_out) > 10 else ""))
        return out


def kinds() -> dict[str, str]:
    """code -> label of the attachment kinds (forms/codes.toml `attachment_kind`)."""
    return dict(dictionary().codes[CODE_LIST])


def kind_code(text: str | None) -> str:
    """A kind given as code or label (住房, 家庭合影 ...); empty gives 其他. Raises StoreError."""
    text = (text or "").strip()
    if not text:
        return OTHER
    table = kinds()
    if text in table:
        return text
    for code, label in table.items():
        if label == text:
            return code
    raise StoreError(f"照片类别“{text}”不存在,可用:{'、'.join(table.values())}")


def household_by_number(store: Store, number: str):
    """The household with this 户编号 (or record id). Raises StoreError naming the number."""
    ids = store.find_household_number(number)
    if not ids:
        rec = store.get(number.strip()) if number.strip() else None
        if rec is not None and rec.kind == "household" and not rec.deleted:
            return rec
        raise StoreError(f"找不到户编号为 {number} 的户:请核对户编号(jiandang list 可列出)")
    return store.get(ids[0])


def resolve_record(store: Store, household, text: str | None):
    """The household itself, or one of its records named by id or short id (`--record`)."""
    if not text:
        return household
    text = text.strip()
    if household.id == text or matches_short_id(household.id, text):
        return household
    for rec in store.records(parent_id=household.id):
        if rec.kind != KIND and (rec.id == text or matches_short_id(rec.id, text)):
            return rec
    raise StoreError(f"户编号 {household.fields.get('household_number')} 下没有编号为 {text} 的记录"
                     "(成员、走访、帮扶措施、申报 …):请核对记录编号")


def keep_gps(store: Store) -> bool:
    return store.meta(KEEP_GPS_META, "0") == "1"


def set_keep_gps(store: Store, keep: bool) -> None:
    """The county's choice whether photos keep their GPS position (sent to laptops with downstream bundles)."""
    if store.role != "county" and store.meta("county_site_id"):
        raise StoreError("是否保留照片的 GPS 位置由县扶贫办统一设定,本机不能修改")
    with store.transaction():
        store.set_meta(KEEP_GPS_META, "1" if keep else "0")


def _existing(store: Store, household_id: str, target_id: str) -> dict[str, str]:
    """source/content address -> attachment id of the attachments already on this record."""
    out = {}
    for rec in store.records(KIND, parent_id=household_id):
        if rec.fields.get("record") == target_id:
            for key in ("source", "digest"):
                if rec.fields.get(key):
                    out[rec.fields[key]] = rec.id
    return out


@dataclass
class PreparedFile:
    """One file read and processed (off the GUI thread): its source address and images, or why not."""

    path: Path
    source: str | None = None
    images: list = field(default_factory=list)
    refused: str | None = None


def digester(store: Store):
    """The content-address function of this store, usable on another thread (it touches no database)."""
    return blobs.digester(store)


def prepare_files(paths, digest, *, conf: app_settings.Settings | None = None, keep_position: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> tuple[list[PreparedFile], list[Path]]:
    """Read, check and process files (no database use: the window runs this on a worker thread).
    Returns the processed files and the files of a folder left out."""
    conf = conf or app_settings.load()
    files, left_out = image_files(paths)
    out = []
    for i, path in enumerate(files, 1):
        item = PreparedFile(path)
        out.append(item)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            item.refused = f"{path}:找不到此文件"
            continue
        except OSError as exc:
            item.refused = f"{path}:无法读取({exc.strerror or exc})"
            continue
        _process(item, data, digest, conf, keep_position)
        if progress:
            progress(i, len(files))
    return out, left_out


def _process(item: PreparedFile, data: bytes, digest, conf: app_settings.Settings, keep_position: bool) -> None:
    item.source = digest(data)
    try:
        item.images = prepare(data, item.path.name, max_side=max(200, int(conf.photo_max_side)),
                              quality=min(95, max(30, int(conf.photo_quality))), keep_gps=keep_position)
    except ImageRefused as exc:
        item.refused = str(exc)


def prepare_bytes(data: bytes, name: str, digest, *, conf: app_settings.Settings | None = None,
                  keep_position: bool = False, taken: str | None = None) -> PreparedFile:
    """An image held in memory (a photo taken with the laptop's camera, app/ui/camera.py), processed as a
    file is: checked, resized, re-encoded, addressed; never written to disk. `name` names it in messages
    and in the attachment's file name; `taken` ("YYYY-MM-DD HH:MM") is the date taken when the image
    itself carries none (a camera frame has no EXIF). No database use: runs on a worker thread."""
    item = PreparedFile(Path(name))
    _process(item, data, digest, conf or app_settings.load(), keep_position)
    for image in item.images:
        image.taken = image.taken or taken
    return item


def store_prepared(store: Store, household, prepared: list[PreparedFile], *, record=None, kind: str | None = None,
                   caption: str = "", left_out=()) -> AddReport:
    """Write processed files: each file in its own transaction (metadata records and sealed images)."""
    code = kind_code(kind)
    target = record or household
    report = AddReport(left_out=list(left_out))
    seen = _existing(store, household.id, target.id)
    for item in prepared:
        name = item.path.name
        if item.refused:
            report.refused.append(item.refused)
            continue
        if item.source in seen:
            report.same.append(f"{name}:已添加过(与附件 {short_id(seen[item.source])} 相同),未重复保存")
            continue
        with store.transaction():
            for image in item.images:
                digest = blobs.digest_of(store, image.data)
                if digest in seen:
                    report.same.append(f"{name}:与附件 {short_id(seen[digest])} 的照片相同,未重复保存")
                    continue
                blobs.put_blob(store, digest, image.data, image.thumb)
                fields = {
                    "record": target.id, "record_kind": target.kind, "digest": digest, "source": item.source,
                    "kind": code, "caption": caption or (f"{Path(name).stem} 第 {image.page} 页" if image.page else ""),
                    "taken": image.taken, "size": len(image.data), "width": image.width, "height": image.height,
                    "file_name": name, "page": image.page, "added_by": store.operator,
                    "added_site": store.meta("site_name", ""), "added_at": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
                    "gps": image.gps,
                }
                change = store.put(KIND, fields, village_code=household.village_code, parent_id=household.id)
                seen[digest] = seen[item.source] = change.record_id
                report.added.append(change.record_id)
    return report


def add_files(store: Store, household, paths, *, record=None, kind: str | None = None, caption: str = "",
              conf: app_settings.Settings | None = None, progress: Callable[[int, int], None] | None = None) -> AddReport:
    """Attach photos (files, or every photo and PDF of a folder) to `record` (default: the household).
    A file already attached to the same record is not added again; an image already in the database
    for another record is stored once (content-addressed)."""
    kind_code(kind)  # a wrong kind is said before any file is read
    files, left_out = image_files(paths)
    digest, position = digester(store), keep_gps(store)
    report = AddReport(left_out=left_out)
    for i, path in enumerate(files, 1):  # one file at a time: a folder of 1,000 photos is never all in memory
        prepared, _ = prepare_files([path], digest, conf=conf, keep_position=position)
        one = store_prepared(store, household, prepared, record=record, kind=kind, caption=caption)
        report.added += one.added
        report.same += one.same
        report.refused += one.refused
        if progress:
            progress(i, len(files))
    return report


def delete(store: Store, attachment_id: str, reason: str | None = None) -> None:
    """Delete an attachment: a tombstone in the change log (synced like any delete); the image itself
    is removed from the file once no other attachment uses it."""
    rec = find(store, attachment_id)
    with store.transaction():
        store.delete(rec.id, reason=reason or "删除照片")
        blobs.drop_unreferenced(store, [rec.fields.get("digest")])


def find(store: Store, text: str):
    """An attachment by id or short id. Raises StoreError."""
    text = (text or "").strip()
    rec = store.get(text) if text else None
    if rec is None:
        found = [r for r in store.records(KIND) if matches_short_id(r.id, text)]
        rec = found[0] if len(found) == 1 else None
    if rec is None or rec.kind != KIND or rec.deleted:
        raise StoreError(f"找不到编号为 {text} 的照片(jiandang attachments 可列出编号)")
    return rec


def update(store: Store, attachment_id: str, *, caption: str | None = None, kind: str | None = None) -> None:
    rec = find(store, attachment_id)
    fields = {}
    if caption is not None:
        fields["caption"] = caption
    if kind is not None:
        fields["kind"] = kind_code(kind)
    if fields:
        store.put(KIND, fields, record_id=rec.id)


def of_household(store: Store, household_id: str) -> list:
    """The attachments of a household (all its records), oldest first."""
    return list(store.records(KIND, parent_id=household_id))


def counts(store: Store) -> dict[str, int]:
    """household id -> number of attachments (the household list's column)."""
    out: dict[str, int] = {}
    for (parent,) in store.conn.execute(
            "SELECT parent_id FROM records WHERE kind = ? AND deleted = 0", (KIND,)):
        out[parent] = out.get(parent, 0) + 1
    return out


def count_of(store: Store, household_id: str) -> int:
    """How many attachments a household has (counted on the plain columns, nothing decrypted)."""
    return store.conn.execute("SELECT count(*) FROM records WHERE kind = ? AND parent_id = ? AND deleted = 0",
                              (KIND, household_id)).fetchone()[0]


def image(store: Store, rec) -> bytes | None:
    """The JPEG bytes of an attachment, or None when not (yet) on this computer."""
    return blobs.get_blob(store, rec.fields.get("digest", ""))


def thumbnail(store: Store, rec) -> bytes | None:
    return blobs.get_thumb(store, rec.fields.get("digest", ""))


def record_words(store: Store, rec) -> str:
    """What the attachment belongs to, in words: 本户, 家庭成员 张三, 走访记录 2025-03-01 …"""
    target_id = rec.fields.get("record")
    if not target_id or target_id == rec.parent_id:
        return "本户"
    target = store.get(target_id)
    if target is None:
        return f"记录 {short_id(target_id)}"
    d = dictionary()
    if target.kind == "proposal":
        return f"申报 {short_id(target.id)}"
    kind = d.kinds.get(target.kind)
    label = kind.label if kind else target.kind
    title = target.fields.get(kind.title_field) if kind and kind.title_field else None
    return f"{label} {d.display(target.kind, kind.title_field, title)}" if title not in (None, "") else label


def listing(store: Store, household_id: str | None = None) -> list[dict]:
    """Rows for `jiandang attachments`: id, household, record, kind, caption, date, size, on this computer."""
    table = kinds()
    houses: dict[str, object] = {}
    out = []
    records = of_household(store, household_id) if household_id else list(store.records(KIND))
    for rec in records:
        house = houses.get(rec.parent_id)
        if house is None and rec.parent_id:
            house = houses[rec.parent_id] = store.get(rec.parent_id)
        f = rec.fields
        out.append({
            "id": rec.id, "short_id": short_id(rec.id),
            "household_number": house.fields.get("household_number") if house else None,
            "head_name": house.fields.get("head_name") if house else None,
            "record": f.get("record"), "record_kind": f.get("record_kind"), "record_words": record_words(store, rec),
            "kind": f.get("kind"), "kind_label": table.get(str(f.get("kind")), str(f.get("kind"))),
            "caption": f.get("caption") or "", "taken": f.get("taken"), "added_at": f.get("added_at"),
            "added_by": f.get("added_by"), "size": f.get("size"), "width": f.get("width"), "height": f.get("height"),
            "present": blobs.has_blob(store, f.get("digest", "")), "digest": f.get("digest"),
            "added_site": f.get("added_site"),
        })
    return out


CARD_KINDS = ("2", "1")  # 家庭合影, 住房: the photos the household card carries


def _sort_key(rec) -> tuple:
    return (rec.fields.get("taken") or rec.fields.get("added_at") or "", rec.hlc)


def card_photos_by_household(store: Store) -> dict[str, list[dict]]:
    """household id -> the photos its card prints: the latest 家庭合影 and the latest 住房 (by date taken,
    else date added) attached to the household itself."""
    table = kinds()
    latest: dict[tuple[str, str], object] = {}
    for rec in store.records(KIND):
        f = rec.fields
        if f.get("kind") in CARD_KINDS and f.get("record") == rec.parent_id:
            key = (rec.parent_id, f["kind"])
            if key not in latest or _sort_key(rec) >= _sort_key(latest[key]):
                latest[key] = rec
    out: dict[str, list[dict]] = {}
    for code in CARD_KINDS:
        for (house, kind), rec in latest.items():
            if kind == code:
                f = rec.fields
                out.setdefault(house, []).append({
                    "digest": f.get("digest"), "width": f.get("width"), "height": f.get("height"),
                    "kind_label": table.get(code, code), "caption": f.get("caption") or "", "taken": f.get("taken")})
    return out


def image_loader(store: Store):
    """A loader for the printed documents: content address -> JPEG bytes (None: not on this computer)."""
    def load(digest: str) -> bytes | None:
        try:
            return blobs.get_blob(store, digest)
        except Exception:  # noqa: BLE001 - a damaged image prints as "not on this computer", never aborts a village
            return None
    return load


def print_evidence(store: Store, out, household, *, kind: str | None = None, today: dt.date | None = None):
    """A household's evidence pages (jiandang print evidence). Returns (path, pages, photos)."""
    from app.reports import evidence  # noqa: PLC0415 - reportlab only when printing
    from app.reports.common import ReportError, write_pdf
    from app.services import households, printing

    rows = listing(store, household.id)
    if kind:
        code = kind_code(kind)
        rows = [r for r in rows if str(r["kind"]) == code]
    if not rows:
        which = f"类别为“{kinds()[kind_code(kind)]}”的" if kind else ""
        raise ReportError(f"户编号 {household.fields.get('household_number')} 没有{which}照片,未生成文件。"
                          "请先用 jiandang attach 添加")
    doc = households.document(store, household.id)
    ctx = printing.context(store, today)
    pages = 0

    def build(tmp):
        nonlocal pages
        pages = evidence.build_evidence(tmp, doc, rows, ctx, image_loader(store))

    path = write_pdf(out, build)
    return path, pages, len(rows)
