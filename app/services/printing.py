"""Printing use cases: household cards (户有卡), village registers (村有册), township books (乡有簿)
and public notices (公示) from a Store into PDF files, plus checking a printed card against the
database.

Every function writes atomically (temporary file beside the output, then os.replace): an unknown
village or household, or a folder that cannot be written, raises PrintError with a Chinese message
and leaves no file behind.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.core import divisions as division_codes
from app.core import procedures
from app.core.clock import wall_time
from app.core.dictionary import default
from app.reports import card as card_report
from app.reports.common import ReportError, write_pdf
from app.reports.context import Context, Progress
from app.services import households
from app.store import Store

PrintError = ReportError
NOTICE_KINDS = {"entry": "拟识别(纳入)", "exit": "拟退出(脱贫)",
                "monitor": "拟纳入监测对象(监测识别)", "eliminate": "监测对象拟风险消除"}  # the last two: issue #20


@dataclass
class PrintResult:
    path: Path
    pages: int
    households: int


def context(store: Store, today: dt.date | None = None) -> Context:
    names = {row["code"]: row["name"] for row in store.divisions()}
    return Context(dictionary=default(), division_names=names, poverty_lines=dict(store.poverty_lines()),
                   today=today or dt.date.today(), site_name=getattr(store, "site_name", "") or "")


def _version(hlc: str) -> str:
    try:
        return dt.datetime.fromtimestamp(wall_time(hlc)).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OSError):
        return hlc


def _one_document(store: Store, household_id: str) -> tuple[dict, str]:
    doc = households.document(store, household_id)
    if doc is None:
        raise PrintError(f"找不到贫困户 {household_id}:请用 jiandang list 查看户的编号(id)")
    records = [store.get(household_id)] + list(store.records(parent_id=household_id))
    return doc, max(r.hlc for r in records)


def check_village(store: Store, village_code: str) -> str:
    """The village's name; PrintError when the database does not know the village."""
    known = {row["code"]: row["name"] for row in store.divisions("village")}
    if village_code not in known and not store.count("household", village_code=village_code):
        if not division_codes.is_village_code(village_code):
            raise PrintError(f"“{village_code}”不是村代码:村代码为12位数字(县6位+乡3位+村3位)")
        raise PrintError(f"数据库中没有村 {village_code}:请核对村代码(jiandang list 可列出各户所在村)")
    return known.get(village_code, village_code)


def print_cards(store: Store, out, *, household_id: str | None = None, village_code: str | None = None,
                full_id: bool = False, progress: Progress | None = None, today: dt.date | None = None) -> PrintResult:
    """Cards of one household, or of every household of a village in one PDF. A village's households
    are read, assembled and printed a batch at a time (`_iter_village_documents`,
    `card.build_cards`): memory stays flat however large the village."""
    if bool(household_id) == bool(village_code):
        raise PrintError("请指定一户(--household)或一个村(--village)")
    ctx = context(store, today)
    if household_id:
        pairs = iter([_one_document(store, household_id)])
        total = 1
    else:
        check_village(store, village_code)
        total = store.count("household", village_code)
        if not total:
            raise PrintError(f"村 {ctx.division(village_code)}({village_code})没有贫困户,未生成文件")
        pairs = _iter_village_documents(store, village_code)
    from app.services import attachments  # noqa: PLC0415 - photos on the card (docs/attachments.md)

    photos = attachments.card_photos_by_household(store)
    printed = 0

    def items():
        nonlocal printed
        for doc, latest in pairs:
            if photos.get(doc.get("id")):
                doc["photos"] = photos[doc["id"]]
            printed += 1
            yield doc, card_report.card_digest(doc, ctx), _version(latest)

    pages = 0

    def build(tmp):
        nonlocal pages
        pages = card_report.build_cards(tmp, items(), ctx, full_id, progress, attachments.image_loader(store),
                                        total=total)

    path = write_pdf(out, build)
    return PrintResult(path, pages, printed)


def _iter_village_documents(store: Store, village_code: str) -> Iterator[tuple[dict, str]]:
    """(document, latest clock among its records) of every live household of a village, read and
    assembled a batch of households at a time (`households.DOCUMENT_BATCH`). A damaged
    record (found now, or earlier in this session) raises PrintError, before the first household or
    after the last: the half-built file is then removed (write_pdf), nothing is printed."""
    d = default()
    own = [kind.key for kind in d.child_kinds("household")]

    def damaged():
        if store.damaged_in(village_code):
            raise PrintError(f"村 {village_code} 的数据中{store.damaged_summary()},未生成文件")

    def assembled(batch: list) -> Iterator[tuple[dict, str]]:
        children = defaultdict(list)
        for record in store.children_of([h.id for h in batch], own):
            children[record.parent_id].append(record)
        for h in batch:
            kids = children.get(h.id, [])
            yield households.assemble(h, kids, d), max([h.hlc] + [k.hlc for k in kids])

    damaged()
    batch = []
    for household in store.records("household", village_code=village_code):
        batch.append(household)
        if len(batch) >= households.DOCUMENT_BATCH:
            yield from assembled(batch)
            batch = []
    if batch:
        yield from assembled(batch)
    damaged()


def card_digest(store: Store, household_id: str) -> str:
    """The digest a card of this household printed today would carry."""
    from app.services import attachments  # noqa: PLC0415

    doc, _ = _one_document(store, household_id)
    photos = attachments.card_photos_by_household(store).get(doc.get("id"))
    if photos:
        doc["photos"] = photos
    return card_report.card_digest(doc, context(store))


def verify_card(store: Store, household_id: str, digest: str) -> bool:
    """True when a card with this digest still matches the household's data in the database."""
    return card_digest(store, household_id) == str(digest).strip().lower()


def print_register(store: Store, out, village_code: str, progress: Progress | None = None,
                   today: dt.date | None = None) -> PrintResult:
    """The village register (村有册) with its summary page and wall charts. The households are read
    and assembled a batch at a time (`_iter_village_documents`) and leave only their register rows
    and figures behind; the pages are made as they are printed (`register.build_register`): memory
    stays flat however large the village."""
    from app.reports import register as register_report

    ctx = context(store, today)
    check_village(store, village_code)
    total = store.count("household", village_code)
    if not total:
        raise PrintError(f"村 {ctx.division(village_code)}({village_code})没有贫困户,未生成文件")
    pages = households_printed = 0

    def build(tmp):
        nonlocal pages, households_printed
        docs = (doc for doc, _ in _iter_village_documents(store, village_code))
        pages, summary = register_report.build_register(tmp, village_code, docs, ctx, progress, total)
        households_printed = summary.households

    return PrintResult(write_pdf(out, build), pages, households_printed)


def township_villages(store: Store, township_code: str) -> list[str]:
    """Village codes of a township: those in the division table, plus any holding households."""
    codes = {row["code"] for row in store.divisions("village") if row["code"].startswith(township_code)}
    codes |= {c for c in store.village_codes() if c and c.startswith(township_code)}
    return sorted(codes)


def print_book(store: Store, out, township_code: str, progress: Progress | None = None,
               today: dt.date | None = None) -> PrintResult:
    """The township book (乡有簿): one summary row per village, totals and aggregated charts. The
    villages are read one after another, each a batch of households at a time
    (`_iter_village_documents`), and leave only their figures (`register.build_book`): memory stays
    flat however many households the township has."""
    from app.reports import register as register_report

    ctx = context(store, today)
    known = {row["code"] for row in store.divisions("township")}
    villages = township_villages(store, township_code) if len(str(township_code)) == 9 and str(township_code).isdigit() else []
    if township_code not in known and not villages:
        raise PrintError(f"数据库中没有乡(镇) {township_code}:乡(镇)代码为9位数字(县6位+乡3位)")
    if not sum(store.count("household", code) for code in villages):
        raise PrintError(f"乡(镇) {ctx.division(township_code)}({township_code})没有贫困户,未生成文件")
    pages = count = 0

    def village_docs(code: str) -> Iterator[dict]:  # read when the book comes to the village
        return (doc for doc, _ in _iter_village_documents(store, code))

    def build(tmp):
        nonlocal pages, count
        data = [(code, village_docs(code)) for code in villages]
        pages, total = register_report.build_book(tmp, township_code, data, ctx, progress)
        count = total.households

    return PrintResult(write_pdf(out, build), pages, count)


def notice_items(store: Store, place_code: str, kind: str, level: str = "village") -> list[tuple[dict, dict]]:
    """The households proposed for a notice, from app.services.proposals (issue 6): a village's 村内公示,
    a township's 公示 after 乡级初核, or a county's 公告 after 县级审定 (`level`)."""
    from app.services.proposals import ProcedureError, households_for_notice

    try:
        return list(households_for_notice(store, place_code, kind, level))
    except ProcedureError as exc:
        raise PrintError(str(exc)) from None


NOTICE_LEVELS = {"village": ("村", 12, "村内公示"), "township": ("乡(镇)", 9, "乡级公示"), "county": ("县", 6, "县级公告")}


def check_place(store: Store, place_code: str, level: str) -> str:
    """The name of the village, township or county a notice is for; PrintError when unknown."""
    if level == "village":
        return check_village(store, place_code)
    what, digits, _ = NOTICE_LEVELS[level]
    code = str(place_code or "")
    if len(code) != digits or not code.isdigit():
        raise PrintError(f"“{place_code}”不是{what}代码:{what}代码为{digits}位数字")
    known = {row["code"]: row["name"] for row in store.divisions()}
    if code not in known and not any(v.startswith(code) for v in store.village_codes()):
        raise PrintError(f"数据库中没有{what} {code}:请核对代码(jiandang reference divisions 可列出区划)")
    return known.get(code, code)


def default_notice_info(items: list[tuple[dict, dict]], level: str, today: dt.date, place_name: str = "乡(镇)"):
    """The period, place and contact a notice gets when the user gives none: for a village the period
    recorded on its proposals (`plan_notice`); for a township's 公示 7 days from today at the
    township's board; for a county's 公告, dated today."""
    from app.reports import notice as notice_report

    if level == "village":
        period = notice_report.period_of(items)
        if period is None:
            raise PrintError("申报中没有设定公示期:请给出公示开始和结束日期(至少 7 天)")
        place, contact = procedures.default_place_and_contact(level)
        return notice_report.NoticeInfo(start=period[0], end=period[1], place=place, contact=contact)
    place, contact = procedures.default_place_and_contact(level, place_name)
    if level == "township":
        return notice_report.NoticeInfo(start=today, end=today + dt.timedelta(days=notice_report.MIN_DAYS - 1),
                                        place=place, contact=contact)
    return notice_report.NoticeInfo(start=today, end=today, place=place, contact=contact)


def print_notice(store: Store, out, place_code: str, kind: str, info, items: list[tuple[dict, dict]] | None = None,
                 today: dt.date | None = None, level: str = "village") -> PrintResult:
    """The public notice (公示) of households proposed to enter (kind "entry") or leave ("exit")
    the register. `level` "village" (村内公示 of a village), "township" (the township's 公示 after
    乡级初核) or "county" (the county's 公告 after 县级审定). `info` is an app.reports.notice.NoticeInfo
    (period of at least 7 days, place, contact; None: the period recorded on the proposals; for a
    公告 only its date, `start`, counts); `items` defaults to the proposals waiting at that level
    (app.services.proposals.households_for_notice)."""
    from app.reports import notice as notice_report

    if kind not in NOTICE_KINDS:
        raise PrintError(f"公示类型应为 entry(纳入)、exit(退出)、monitor(监测识别)或 eliminate(风险消除),而不是“{kind}”")
    if level not in NOTICE_LEVELS:
        raise PrintError(f"公示级别应为 village、township 或 county,而不是“{level}”")
    if kind in ("monitor", "eliminate") and level != "village":
        raise PrintError("监测识别和风险消除只在村内公示一次(--village),没有乡级公示和县级公告")
    ctx = context(store, today)
    check_place(store, place_code, level)
    if items is None:
        items = notice_items(store, place_code, kind, level)
    if not items:
        what = {"entry": "拟纳入(新识别、返贫纳入)", "exit": "拟退出(脱贫)", "monitor": "监测识别",
                "eliminate": "风险消除"}[kind]
        where, _, stage = NOTICE_LEVELS[level]
        waiting = {"village": "等待村内公示", "township": "通过乡级初核、等待县级审定",
                   "county": "通过县级审定、等待公告"}[level]
        raise PrintError(f"{where} {ctx.division(place_code)}({place_code})没有{waiting}的{what}申报,"
                         f"未生成{stage}文件")
    if info is None:
        info = default_notice_info(items, level, ctx.today, ctx.division(place_code))
    info.check(level, kind)
    notice_report.check_reviewed_before(items, info.start)
    pages = 0

    def build(tmp):
        nonlocal pages
        if kind in ("monitor", "eliminate"):
            from app.reports import monitoring_notice

            pages = monitoring_notice.build(tmp, place_code, kind, items, info, ctx)
        else:
            pages = notice_report.build_notice(tmp, place_code, kind, items, info, ctx, level)

    return PrintResult(write_pdf(out, build), pages, len(items))


# ---------------------------------------------------------------------- 防返贫监测 (issue #20)


def print_monitoring_register(store: Store, out, place_code: str, today: dt.date | None = None) -> PrintResult:
    """监测对象名册 of a village (12-digit code) or 监测对象簿 of a township (9 digits): its 监测户."""
    from app.reports import monitoring_register
    from app.services import monitoring

    ctx = context(store, today)
    code = str(place_code or "")
    level = {12: "village", 9: "township"}.get(len(code))
    if level is None or not code.isdigit():
        raise PrintError(f"“{place_code}”不是村代码(12位)或乡(镇)代码(9位)")
    check_place(store, code, level)
    from app.services import households

    docs = [d for d in households.documents(store) if str(d.get("village_code") or "").startswith(code)
            and monitoring.monitored(d)]
    if not docs:
        raise PrintError(f"{ctx.division(code)}({code})没有监测户,未生成文件")
    docs.sort(key=lambda d: (str(d.get("village_code") or ""), str(d.get("household_number") or "")))
    pages = 0

    def build(tmp):
        nonlocal pages
        pages = monitoring_register.build(tmp, code, docs, ctx)

    return PrintResult(write_pdf(out, build), pages, len(docs))
