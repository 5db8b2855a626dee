"""`jiandang print ...`: household cards, village registers, township books, public notices, and
checking a printed card against the database. See docs/printing.md."""

from __future__ import annotations

import datetime as dt

from app.cli.common import CommandError, open_store, progress_printer, user_errors
from app.core.procedures import MIN_NOTICE_DAYS as MIN_DAYS
from app.core.procedures import default_place_and_contact, min_notice_days
from app.services import households

# the reports (reportlab, qrcode, pypdf) are imported by the commands that print: every other command
# of the program starts without them (about a quarter of a second)


def register(sub) -> None:
    p = sub.add_parser("print", help="打印户有卡、村有册、乡有簿、公示(PDF)")
    ops = p.add_subparsers(dest="document", metavar="文档", required=True)

    q = ops.add_parser("card", help="户有卡:一户,或一个村的全部户合成一个 PDF")
    q.add_argument("db")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--household", metavar="户编号", help="一户的户编号(jiandang list 第一列),或其记录 id")
    which.add_argument("--village", metavar="CODE", help="12位村代码:打印该村全部户")
    q.add_argument("--out", required=True, metavar="FILE.pdf")
    q.add_argument("--full-id", action="store_true", help="打印完整证件号码和银行账号(默认部分隐藏)")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_card)

    q = ops.add_parser("register", help="村有册:一个村的贫困户花名册及汇总图")
    q.add_argument("db")
    q.add_argument("--village", required=True, metavar="CODE")
    q.add_argument("--out", required=True, metavar="FILE.pdf")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_register)

    q = ops.add_parser("book", help="乡有簿:一个乡(镇)各村汇总及汇总图")
    q.add_argument("db")
    q.add_argument("--township", required=True, metavar="CODE", help="9位乡(镇)代码")
    q.add_argument("--out", required=True, metavar="FILE.pdf")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_book)

    q = ops.add_parser("notice", help="公示:拟纳入(entry)或拟退出(exit)的户;村内公示、乡级公示或县级公告")
    q.add_argument("db")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--village", metavar="CODE", help="村内公示:通过村级评议、等待公示的户(12位村代码)")
    where.add_argument("--township", metavar="CODE", help="乡级公示:通过乡级初核、等待县级审定的户(9位乡镇代码)")
    where.add_argument("--county", metavar="CODE", help="县级公告:通过县级审定、等待公告的户(6位县代码)")
    q.add_argument("--kind", required=True, choices=["entry", "exit", "monitor", "eliminate"],
                   help="entry 拟纳入,exit 拟退出;monitor 监测识别、eliminate 风险消除(只有村内公示)")
    q.add_argument("--out", required=True, metavar="FILE.pdf")
    q.add_argument("--start", metavar="YYYY-MM-DD",
                   help="公示开始日期(村内公示默认取申报中设定的公示期;其余默认今天);公告的日期")
    q.add_argument("--end", metavar="YYYY-MM-DD", help=f"公示结束日期(默认取申报中设定的公示期,否则为最短公示期的最后一天;至少 {MIN_DAYS} 天,监测识别至少 {min_notice_days('monitor')} 天)")
    village, township = default_place_and_contact("village"), default_place_and_contact("township", "某某镇")
    q.add_argument("--place", help=f"公示地点(默认“{village[0]}”,乡级为“{township[0]}”)")
    q.add_argument("--contact", help=f"受理异议的单位或联系人(默认“{village[1]}”,乡级为“{township[1]}”)")
    q.add_argument("--phone", default="", help="受理异议的联系电话")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_notice)

    q = ops.add_parser("monitoring", help="防返贫监测对象名册(村)或监测对象簿(乡镇):全部监测户及其风险")
    q.add_argument("db")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--village", metavar="CODE", help="12位村代码")
    where.add_argument("--township", metavar="CODE", help="9位乡(镇)代码")
    q.add_argument("--out", required=True, metavar="FILE.pdf")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_monitoring)

    q = ops.add_parser("evidence", help="佐证材料:一户的照片和扫描件,附类别、说明、日期和添加人")
    q.add_argument("db")
    q.add_argument("--household", required=True, metavar="户编号")
    q.add_argument("--kind", metavar="K", help="只打印此类别(住房、家庭合影、走访 …)")
    q.add_argument("--out", required=True, metavar="FILE.pdf")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_evidence)

    q = ops.add_parser("verify", help="核对一张户有卡(二维码中的户 id 和校验码)是否与数据库一致")
    q.add_argument("db")
    q.add_argument("--household", metavar="ID")
    q.add_argument("--digest", metavar="HEX", help="卡上二维码下方的校验码")
    q.add_argument("--qr", metavar="TEXT", help="扫码得到的整段文字(JDCARD1|id|校验码),可代替 --household/--digest")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_verify)


def _done(result: printing.PrintResult, what: str) -> int:
    print(f"已生成 {result.path}:{what} {result.households} 户,共 {result.pages} 页")
    return 0


def cmd_card(args) -> int:
    from app.services import printing  # noqa: PLC0415 - see the note at the top
    with open_store(args.db, args.operator, write=False) as store:
        household_id = None
        if args.household:
            household_id = households.find_id(store, args.household)
            if household_id is None:
                raise CommandError(f"找不到贫困户 {args.household}(没有这个户编号或记录 id):"
                                   f"请用 jiandang list {args.db} 查看户编号")
        with user_errors(printing.PrintError):
            result = printing.print_cards(store, args.out, household_id=household_id, village_code=args.village,
                                          full_id=args.full_id, progress=progress_printer("生成户有卡"))
    return _done(result, "户有卡")


def cmd_register(args) -> int:
    from app.services import printing  # noqa: PLC0415 - see the note at the top
    with open_store(args.db, args.operator, write=False) as store:
        with user_errors(printing.PrintError):
            result = printing.print_register(store, args.out, args.village, progress=progress_printer("生成村有册"))
    return _done(result, "村有册")


def cmd_book(args) -> int:
    from app.services import printing  # noqa: PLC0415 - see the note at the top
    with open_store(args.db, args.operator, write=False) as store:
        with user_errors(printing.PrintError):
            result = printing.print_book(store, args.out, args.township, progress=progress_printer("生成乡有簿"))
    return _done(result, "乡有簿")


def cmd_monitoring(args) -> int:
    from app.services import printing  # noqa: PLC0415 - see the note at the top
    with open_store(args.db, args.operator) as store:
        try:
            result = printing.print_monitoring_register(store, args.out, args.village or args.township)
        except printing.PrintError as exc:
            raise CommandError(str(exc)) from None
    return _done(result, "监测对象名册" if args.village else "监测对象簿")


def _date(text: str | None, name: str, default: dt.date) -> dt.date:
    if not text:
        return default
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{name} “{text}”不是日期:应为 年-月-日 格式,如 2026-12-01") from None


def cmd_notice(args) -> int:
    from app.services import printing  # noqa: PLC0415 - see the note at the top
    from app.reports.notice import NoticeInfo, period_of  # noqa: PLC0415
    level, place = next((lv, code) for lv, code in (("village", args.village), ("township", args.township),
                                                     ("county", args.county)) if code)
    for name, text in (("--start", args.start), ("--end", args.end)):
        _date(text, name, dt.date.today())  # a mistyped date is said before the database is unlocked
    with open_store(args.db, args.operator, write=False) as store:
        with user_errors(printing.PrintError):
            place_name = printing.check_place(store, place, level)
            items = printing.notice_items(store, place, args.kind, level)
            period = period_of(items) if level == "village" else None
            default_start = period[0] if period else dt.date.today()
            start = _date(args.start, "--start", default_start)
            default_end = period[1] if period and not args.start else start + dt.timedelta(days=min_notice_days(args.kind) - 1)
            end = _date(args.end, "--end", default_end)
            place_default, contact_default = default_place_and_contact(level, place_name)
            info = NoticeInfo(start=start, end=end if level != "county" else start,
                              place=args.place or place_default, contact=args.contact or contact_default,
                              phone=args.phone)
            result = printing.print_notice(store, args.out, place, args.kind, info, items, level=level)
    return _done(result, "公告" if level == "county" else "公示")


def cmd_evidence(args) -> int:
    from app.services import printing  # noqa: PLC0415 - see the note at the top
    from app.services import attachments  # noqa: PLC0415
    from app.store import StoreError  # noqa: PLC0415

    with open_store(args.db, args.operator) as store:
        try:
            house = attachments.household_by_number(store, args.household)
            path, pages, count = attachments.print_evidence(store, args.out, house, kind=args.kind)
        except (printing.PrintError, StoreError) as exc:
            raise CommandError(str(exc)) from None
    print(f"已生成 {path}:佐证材料 {count} 张,共 {pages} 页")
    return 0


def cmd_verify(args) -> int:
    from app.services import printing  # noqa: PLC0415 - see the note at the top
    from app.reports.card import parse_qr  # noqa: PLC0415
    household, digest = args.household, args.digest
    if args.qr:
        parsed = parse_qr(args.qr)
        if not parsed:
            raise CommandError("二维码内容应为 JDCARD1|户id|校验码")
        household, digest = parsed
    if not household or not digest:
        raise CommandError("请给出 --household 和 --digest,或 --qr")
    with open_store(args.db, args.operator, write=False) as store:
        household = households.find_id(store, household) or household  # the 户编号 printed on the card works too
        with user_errors(printing.PrintError):
            if printing.verify_card(store, household, digest):
                print(f"一致:户 {household} 的卡片内容与数据库相符(校验码 {digest.strip().lower()})")
                return 0
            current = printing.card_digest(store, household)
    print(f"不一致:卡片校验码 {digest},数据库当前为 {current}。卡片打印后户档已修改,请重新打印户有卡。")
    return 1
