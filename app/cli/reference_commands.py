"""`jiandang reference ...`: the county's divisions (县 / 乡(镇) / 村) and poverty lines per year.
See docs/cli.md (reference) and app/services/reference.py (who may edit)."""

from __future__ import annotations

from app.cli.common import CommandError, open_store, print_json
from app.core.divisions import LEVEL_LABELS
from app.services import reference
from app.tables import divisions as division_files

SHOWN_PROBLEMS = 50


def register(sub) -> None:
    p = sub.add_parser("reference", help="参考数据:行政区划(县、乡镇、村)和各年度贫困线")
    ops = p.add_subparsers(dest="action", metavar="操作", required=True)

    q = ops.add_parser("divisions", help="列出行政区划(树形);--import 从 CSV 或 Excel 文件导入")
    q.add_argument("db")
    q.add_argument("--import", dest="import_file", metavar="FILE",
                   help="区划表(.csv 或 .xlsx):列“代码”“名称”,可另有“级别”“上级代码”;有任何问题时整表不导入")
    q.add_argument("--dry-run", action="store_true", help="只检查文件并报告将新增和改名的区划,不写数据库")
    q.add_argument("--json", action="store_true", help="以 JSON 输出区划列表")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_divisions)

    q = ops.add_parser("add-division", help="新增一个乡(镇)或村(或县)")
    q.add_argument("db")
    q.add_argument("code", metavar="CODE", help="区划代码:县 6 位,乡(镇) 9 位,村 12 位")
    q.add_argument("name", metavar="NAME", help="名称,如“龙井村”")
    q.add_argument("--level", help="级别 county/township/village(或 县/乡/村);可不给,由代码位数确定")
    q.add_argument("--parent", metavar="CODE", help="上级代码;可不给,由代码前几位确定")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_add_division)

    q = ops.add_parser("rename-division", help="给一个区划改名")
    q.add_argument("db")
    q.add_argument("code", metavar="CODE")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_rename_division)

    q = ops.add_parser("poverty-line", help="设定(或更正)某年度的贫困线(元/人·年)")
    q.add_argument("db")
    q.add_argument("year", metavar="YEAR", help="年度,如 2025")
    q.add_argument("amount", metavar="AMOUNT", help="年人均纯收入标准,元,如 4000")
    q.add_argument("--source", default="", metavar="TEXT", help="来源说明,如发文字号")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_poverty_line)

    q = ops.add_parser("monitoring", help="防返贫监测标准:设定某年度的监测收入标准和期限;不给年度时列出各年度")
    q.add_argument("db")
    q.add_argument("year", nargs="?", metavar="YEAR", help="年度,如 2025")
    q.add_argument("line", nargs="?", metavar="LINE", help="监测收入标准,元/人·年,如 8800")
    q.add_argument("--min-months", default="6", help="风险消除前最短监测时间(月,默认 6)")
    q.add_argument("--risk-days", default="180", help="风险未消除超过多少天列入工作清单(默认 180)")
    q.add_argument("--source", default="", metavar="TEXT", help="来源说明,如发文字号")
    q.add_argument("--json", action="store_true")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_monitoring)

    q = ops.add_parser("poverty-lines", help="列出各年度贫困线")
    q.add_argument("db")
    q.add_argument("--json", action="store_true")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_poverty_lines)


def _refused(exc: reference.ReferenceDataError) -> CommandError:
    text = str(exc)
    problems = exc.problems
    if problems:
        text += "".join("\n  " + p.line() for p in problems[:SHOWN_PROBLEMS])
        if len(problems) > SHOWN_PROBLEMS:
            text += f"\n  …… 共 {len(problems)} 处问题"
    return CommandError(text)


def _sent_downstream_note(store) -> str:
    if store.role == "county":
        return "\n下次为各设备导出下发包(jiandang sync export)时,这些参考数据随包发给它们"
    return ""


def _yuan(amount: float) -> str:
    return f"{amount:.2f}".rstrip("0").rstrip(".")


def cmd_divisions(args) -> int:
    if args.dry_run and not args.import_file:
        raise CommandError("--dry-run 只能与 --import FILE 一起使用")
    store = open_store(args.db, args.operator)
    try:
        if args.import_file:
            try:
                plan = division_files.import_divisions(store, args.import_file, dry_run=args.dry_run)
            except reference.ReferenceDataError as exc:
                raise _refused(exc) from None
            print(plan.summary() + ("" if args.dry_run else _sent_downstream_note(store)))
            for code, name, level in plan.added:
                print(f"  新增 {LEVEL_LABELS[level]} {code} {name}")
            for code, old, new in plan.renamed:
                print(f"  改名 {code} {old} → {new}")
            return 0
        tree = reference.division_tree(store)
        if args.json:
            print_json([d for _, d in tree])
            return 0
        if not tree:
            if reference.enrolled(store):
                print("本机还没有收到行政区划:县扶贫办设定后,导入县里的下发包(jiandang sync import)即可")
            else:
                print("数据库中还没有行政区划。用 jiandang reference divisions DB --import FILE 导入,"
                      "或 jiandang reference add-division 逐个新增")
            return 0
        children = {}
        for _, d in tree:
            children[d["parent"]] = children.get(d["parent"], 0) + 1
        for depth, d in tree:
            extra = ""
            if d["level"] == "township":
                extra = f"({children.get(d['code'], 0)} 个村)"
            elif d["level"] == "county":
                extra = f"({children.get(d['code'], 0)} 个乡镇)"
            print(f"{'  ' * depth}{d['code']} {d['name']} [{LEVEL_LABELS.get(d['level'], d['level'])}]{extra}")
        return 0
    finally:
        store.close()


def cmd_add_division(args) -> int:
    store = open_store(args.db, args.operator)
    try:
        try:
            d = reference.add_division(store, args.code, args.name, level=args.level, parent=args.parent)
        except reference.ReferenceDataError as exc:
            raise _refused(exc) from None
        parent = f",上级 {d['parent']} {store.division_name(d['parent'])}" if d["parent"] else ""
        print(f"已新增{LEVEL_LABELS[d['level']]} {d['code']} {d['name']}{parent}{_sent_downstream_note(store)}")
        return 0
    finally:
        store.close()


def cmd_rename_division(args) -> int:
    store = open_store(args.db, args.operator)
    try:
        try:
            old, new = reference.rename_division(store, args.code, args.name)
        except reference.ReferenceDataError as exc:
            raise _refused(exc) from None
        print(f"已改名:{args.code} {old} → {new}{_sent_downstream_note(store)}")
        return 0
    finally:
        store.close()


def cmd_poverty_line(args) -> int:
    store = open_store(args.db, args.operator)
    try:
        try:
            before = store.poverty_line(reference.parse_year(args.year)) if reference.edit_refusal(store) is None else None
            line = reference.set_poverty_line(store, args.year, args.amount, args.source)
        except reference.ReferenceDataError as exc:
            raise _refused(exc) from None
        was = f"(原为 {_yuan(before)} 元)" if before is not None and before != line["line"] else ""
        print(f"已设定 {line['year']} 年贫困线:{_yuan(line['line'])} 元/人·年{was}{_sent_downstream_note(store)}")
        return 0
    finally:
        store.close()


def cmd_poverty_lines(args) -> int:
    store = open_store(args.db, args.operator, write=False)
    try:
        lines = reference.poverty_lines(store)
        from_county = reference.enrolled(store)
    finally:
        store.close()
    if args.json:
        print_json(lines)
        return 0
    if not lines:
        if from_county:
            print("本机还没有收到贫困线:县扶贫办设定后,导入县里的下发包(jiandang sync import)即可")
        else:
            print("还没有设定任何年度的贫困线。用 jiandang reference poverty-line DB 年度 金额 --source 说明 设定")
        return 0
    print("年度  贫困线(元/人·年)  来源")
    for r in lines:
        print(f"{r['year']}  {_yuan(r['line']):>16}  {r['source']}")
    return 0


def cmd_monitoring(args) -> int:
    """防返贫监测标准 (issue #20): set one year's, or list them all."""
    store = open_store(args.db, args.operator)
    try:
        if args.year is not None:
            if args.line is None:
                raise CommandError("请同时给出年度和监测收入标准,如:jiandang reference monitoring DB 2025 8800")
            try:
                c = reference.set_monitoring_criteria(store, args.year, args.line, args.min_months, args.risk_days,
                                                      args.source)
            except reference.ReferenceDataError as exc:
                raise _refused(exc) from None
            print(f"已设定 {c['year']} 年监测收入标准:{_yuan(c['line'])} 元/人·年,最短监测 {c['min_months']} 个月,"
                  f"风险超过 {c['risk_days']} 天未消除列入清单{_sent_downstream_note(store)}")
            return 0
        rows = store.all_monitoring_criteria()
    finally:
        store.close()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("还没有设定监测收入标准。用 jiandang reference monitoring DB 年度 金额 --source 说明 设定")
        return 0
    print("年度  监测收入标准(元/人·年)  最短监测(月)  风险期限(天)  来源")
    for r in rows:
        print(f"{r['year']}  {_yuan(r['line']):>20}  {r['min_months']:>10}  {r['risk_days']:>10}  {r['source']}")
    return 0
