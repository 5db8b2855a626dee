"""`jiandang attach` and `jiandang attachments`: photos and scanned papers of a household (evidence,
佐证材料). See docs/cli.md and docs/attachments.md."""

from __future__ import annotations

import sys

from app.cli.common import CommandError, open_store, print_json, progress_printer
from app.services import attachments
from app.store import StoreError


def register(sub) -> None:
    p = sub.add_parser("attach", help="给一户(或其成员、走访、帮扶措施、申报等记录)添加照片或扫描件")
    p.add_argument("db")
    p.add_argument("files", nargs="+", metavar="FILE", help="照片(JPEG、PNG …)、PDF 扫描件,或装有它们的文件夹")
    p.add_argument("--household", required=True, metavar="户编号")
    p.add_argument("--record", metavar="ID", help="该户下的记录编号(成员、走访 …;省略为本户)")
    p.add_argument("--kind", metavar="K", help="类别:" + "、".join(attachments.kinds().values()) + "(默认 其他)")
    p.add_argument("--caption", default="", metavar="C", help="说明文字")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("attachments", help="列出照片和扫描件(类别、说明、日期、大小、所属记录);删除一张")
    p.add_argument("db")
    p.add_argument("--household", metavar="户编号", help="只列此户的")
    p.add_argument("--json", action="store_true", help="以 JSON 输出")
    p.add_argument("--delete", metavar="ID", help="删除此编号的照片(删除记入修改记录,随同步传到县里)")
    p.add_argument("--reason", help="删除原因")
    p.add_argument("--keep-gps", choices=["是", "否"], help="县级:照片是否保留拍摄位置(GPS),随下发包通知各电脑")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_list)


def cmd_attach(args) -> int:
    store = open_store(args.db, args.operator)
    try:
        house = attachments.household_by_number(store, args.household)
        record = attachments.resolve_record(store, house, args.record)
        report = attachments.add_files(store, house, args.files, record=record, kind=args.kind, caption=args.caption,
                                       progress=progress_printer("添加照片"))
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()
    for line in report.lines():
        print(line, file=sys.stderr if line.startswith("未添加") else sys.stdout)
    return 1 if report.refused else 0


def _size(n) -> str:
    if not n:
        return ""
    return f"{n / 1024:.0f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def cmd_list(args) -> int:
    store = open_store(args.db, args.operator)
    try:
        if args.keep_gps:
            attachments.set_keep_gps(store, args.keep_gps == "是")
            print(f"照片的拍摄位置(GPS):{'保留' if args.keep_gps == '是' else '不保留'}"
                  + ("(随下次下发包通知各电脑)" if store.role == "county" else ""))
            return 0
        if args.delete:
            attachments.delete(store, args.delete, reason=args.reason)
            print(f"已删除照片 {args.delete}")
            return 0
        household_id = attachments.household_by_number(store, args.household).id if args.household else None
        rows = attachments.listing(store, household_id)
    except StoreError as exc:
        raise CommandError(str(exc)) from None
    finally:
        store.close()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("没有照片")
        return 0
    for r in rows:
        when = r["taken"] or f"{r['added_at'] or ''}添加"
        missing = "" if r["present"] else "  (照片尚未同步到本机)"
        print(f"{r['short_id']}  户编号 {r['household_number']}  {r['record_words']}  {r['kind_label']}  "
              f"{r['caption'] or '(无说明)'}  {when}  {_size(r['size'])}  {r['width']}×{r['height']}{missing}")
    print(f"共 {len(rows)} 张")
    return 0
