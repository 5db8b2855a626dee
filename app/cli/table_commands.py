"""`jiandang import-table` and `jiandang export-table`: Excel/CSV ledgers in, registers out.
See docs/tables.md."""

from __future__ import annotations

import sys

from app.cli.common import CommandError, open_store, progress_printer, user_errors
from app.tables import TableError, mapping

SHOWN_REJECTIONS = 50


def register(sub) -> None:
    p = sub.add_parser("import-table", help="从 Excel(.xlsx)或 CSV 台账导入贫困户和家庭成员")
    p.add_argument("db")
    p.add_argument("file", metavar="FILE", help=".xlsx 或 .csv(UTF-8 或 GBK/GB18030)")
    p.add_argument("--village", metavar="CODE", help="12位村代码:表中没有“村代码”或“村名称”列时用它")
    p.add_argument("--mapping", metavar="FILE", help="列对照文件(JSON,见 docs/tables.md),优先于内置列名")
    p.add_argument("--save-mapping", metavar="FILE", help="把本次使用的列对照写入此文件,供下次 --mapping 使用")
    p.add_argument("--dry-run", action="store_true", help="试导入:只报告将新建、更新和拒绝的行,不写数据库")
    p.add_argument("--errors", metavar="OUT.xlsx", help="把被拒绝的行(含原因)写成错误工作簿,改正后可再导入")
    p.add_argument("--set", action="append", default=[], metavar="字段=值",
                   help="给表中没有(或为空)的字段统一填值,可重复,如 --set 识别标准=国家标准;字段写中文名称或字段名")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="只缺必填项的户也导入,标为“待完善”(取值错误的户仍然拒绝)")
    p.add_argument("--codes", choices=["national", "jiandang"],
                   help="表中代码列写的是数字时,说明是谁的代码:national 全国扶贫开发信息系统,jiandang 本程序")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export-table", help="把一个村或一个乡(镇)的贫困户导出为 Excel(.xlsx)或 CSV")
    p.add_argument("db")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--village", metavar="CODE", help="12位村代码")
    which.add_argument("--township", metavar="CODE", help="9位乡(镇)代码")
    p.add_argument("--out", required=True, metavar="FILE.xlsx|FILE.csv")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_export)


def cmd_import(args) -> int:
    from app.tables import importer  # noqa: PLC0415 - openpyxl: only the commands that read or write workbooks load it
    if args.errors and not args.errors.lower().endswith(".xlsx"):
        raise CommandError(f"--errors 的文件名应以 .xlsx 结尾:{args.errors}")
    saved, codes = None, None
    with user_errors(TableError):
        if args.mapping:
            saved, codes = mapping.load_mapping_file(args.mapping)
        options = importer.Options(fixed=importer.parse_fixed(args.set), codes=args.codes or codes,
                                   allow_incomplete=args.allow_incomplete)
    with open_store(args.db, args.operator) as store, user_errors(TableError):
        plan = importer.analyse(store, args.file, village=args.village, saved_mapping=saved, options=options)
        if args.save_mapping:
            mapping.save_mapping(args.save_mapping, plan.mapping, options.codes)
        progress = progress_printer("试导入" if args.dry_run else "导入")
        report = (importer.dry_run if args.dry_run else importer.commit)(store, plan, progress)
        if args.errors and report.rejected_rows:
            importer.write_error_workbook(report, args.errors)
    print(report.summary())
    for r in report.to_show(SHOWN_REJECTIONS):
        column = f" 列“{r.column}”" if r.column else ""
        print(f"  拒绝 {r.sheet} 第 {r.row} 行{column}:{r.reason}")
    if len(report.rejections) > SHOWN_REJECTIONS:
        print(f"  …… 共 {len(report.rejections)} 条" + (",完整清单见错误工作簿" if args.errors else ",用 --errors OUT.xlsx 得到完整清单"))
    for r in report.warnings[:SHOWN_REJECTIONS]:
        column = f" 列“{r.column}”" if r.column else ""
        print(f"  提醒 {r.sheet} 第 {r.row} 行{column}:{r.reason}")
    if report.warning_count > SHOWN_REJECTIONS:
        print(f"  …… 共 {report.warning_count} 条提醒")
    if args.errors and report.rejected_rows:
        print(f"错误工作簿:{args.errors}(改正后可直接再导入)")
    if report.rejected_rows:
        taken = report.created + report.updated + report.unchanged
        rest = (f"其余 {taken} 户{'可' if args.dry_run else '已'}导入" if taken
                else "没有一户可以导入,数据库没有改动")
        print(f"错误:{len(report.rejected_rows)} 行被拒绝,{rest}", file=sys.stderr)
        return 1
    return 0


def cmd_export(args) -> int:
    from app.tables import exporter  # noqa: PLC0415 - openpyxl, as above
    with open_store(args.db, args.operator, write=False) as store, user_errors(TableError):
        counts = exporter.export_table(store, args.out, village=args.village, township=args.township,
                                       progress=progress_printer("导出"))
    print(f"已导出 {counts['households']} 户、{counts['members']} 名成员到 {args.out}")
    if str(args.out).lower().endswith(".csv"):
        print("CSV 只有一张表:每行一名成员及其户的字段;家庭收入、帮扶责任人、帮扶措施、脱贫计划和工作台账"
              "没有导出,需要时请导出为 .xlsx")
    return 0
