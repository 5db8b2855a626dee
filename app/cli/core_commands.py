"""Core commands: init, demo, add, list, validate, log, operator, recover."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.cli.common import (
    DEMO_OPERATOR,
    DEMO_PASSPHRASE,
    CommandError,
    local_time,
    open_database,
    open_store,
    passphrase,
    print_json,
    progress_printer,
    read_json_file,
    read_recovery_private_key,
    user_errors,
)
from app.core.dictionary import default
from app.core.oserrors import os_reason
from app.core.text import printable
from app.core.validation import ERROR, has_errors
from app.services import demo as demo_service
from app.services import households
from app.core.procedures import ROLE_LABELS
from app.store import PgLocation, Store, StoreError, crypto, location


def register(sub) -> None:
    p = sub.add_parser("init", help="新建加密数据库")
    p.add_argument("db")
    p.add_argument("--role", choices=["village", "township", "county"], help="角色:村、乡、县(用登记包时不给)")
    p.add_argument("--site-name", help="站点名称,如“龙井村工作队”(用登记包时不给)")
    p.add_argument("--enrollment", metavar="FILE", help="县扶贫办发的登记包:角色、站点和县级公钥取自其中")
    p.add_argument("--operator", default="admin", help="第一个操作员的登录名(默认 admin)")
    p.add_argument("--recovery-key", help="县级恢复公钥文件(X25519,PEM);不给时生成一对并把私钥写在数据库旁")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", help="新建(如需要)并填入演示数据")
    p.add_argument("db")
    p.add_argument("--per-village", type=int, default=80, help="每村户数(默认 80)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--open", action="store_true", help="完成后打开窗口")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("add", help="从 JSON 文件新增或更新贫困户(含成员)")
    p.add_argument("db")
    p.add_argument("--json", required=True, metavar="FILE", help="JSON 文件,- 表示标准输入")
    p.add_argument("--draft", action="store_true", help="有错误时仍作为草稿保存(错误会列出)")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("list", help="列出贫困户")
    p.add_argument("db")
    p.add_argument("--village", help="12位村代码")
    p.add_argument("--search", help="按姓名、身份证号、户编号查找")
    p.add_argument("--type", help="只列一种户类型:脱贫户、监测户、一般农户(防返贫动态监测)")
    p.add_argument("--json", action="store_true", help="输出 add --json 可读回的完整 JSON")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("validate", help="校验全部户档,有错误时退出码为 1")
    p.add_argument("db")
    p.add_argument("--village")
    p.add_argument("--json", action="store_true")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("log", help="修改记录(审计日志)")
    p.add_argument("db")
    p.add_argument("--record", help="记录 id;不给时显示最近的修改")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--operator")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("operator", help="管理操作员")
    ops = p.add_subparsers(dest="action", metavar="操作", required=True)
    q = ops.add_parser("add", help="新增操作员(新密码取自 JIANDANG_NEW_PASSPHRASE 或提示输入)")
    q.add_argument("db")
    q.add_argument("login")
    q.add_argument("--operator", help="用于解锁的现有操作员")
    q.set_defaults(func=cmd_operator_add)
    q = ops.add_parser("passwd", help="修改操作员密码")
    q.add_argument("db")
    q.add_argument("login")
    q.set_defaults(func=cmd_operator_passwd)
    q = ops.add_parser("list", help="列出操作员")
    q.add_argument("db")
    q.set_defaults(func=cmd_operator_list)

    p = sub.add_parser("recover", help="用县级恢复私钥重置操作员密码")
    p.add_argument("db")
    p.add_argument("--recovery-key", help="县级恢复私钥(PEM)")
    p.add_argument("--county", metavar="COUNTY_DB", help="用县级数据库中的县级密钥恢复(登记过的设备)")
    p.add_argument("--login", required=True, help="要重置密码的操作员")
    p.set_defaults(func=cmd_recover)


# ---------------------------------------------------------------------- init / demo


def _recovery_public_key(db: Path, key_file: str | None):
    if key_file:
        try:
            return crypto.load_x25519_public(Path(key_file).read_bytes()), None
        except OSError as exc:
            raise CommandError(f"无法读取恢复公钥 {key_file}:{os_reason(exc)}") from None
        except ValueError as exc:
            raise CommandError(f"{key_file}:{exc}") from None
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.generate()
    out = db.with_name(db.name + ".recovery-key.pem")
    try:
        crypto.write_new_key_file(out, crypto.x25519_private_pem(private))
    except FileExistsError:
        raise CommandError(f"恢复私钥文件 {out} 已存在(可能是以前同名数据库的唯一一份恢复私钥):不会覆盖。"
                           "请先把它移到别处保管好,再新建") from None
    except OSError as exc:
        raise CommandError(f"无法写入恢复私钥 {out}:{exc.strerror or exc}") from None
    return private.public_key(), out


def cmd_init(args) -> int:
    where = location(args.db)
    if isinstance(where, PgLocation):
        return _init_postgres(args, where)
    db = where
    if db.exists():
        raise CommandError(f"{db} 已存在:不会覆盖已有文件")
    _check_folder(db)
    if args.enrollment:
        if args.role or args.site_name or args.recovery_key:
            raise CommandError("用登记包新建时不要再给 --role、--site-name 或 --recovery-key:它们取自登记包")
        from app.cli.sync_commands import init_from_enrollment

        print(init_from_enrollment(db, args.enrollment, args.operator))
        return 0
    if not args.role or not args.site_name:
        raise CommandError("请给出 --role 和 --site-name(或用 --enrollment 登记包)")
    new = passphrase("新密码(至少 8 个字符): ")
    key, written = _recovery_public_key(db, args.recovery_key)
    try:
        store = Store.create(db, role=args.role, site_name=args.site_name, operator=args.operator, passphrase=new,
                             recovery_public_key=key)
    except StoreError as exc:
        if written:
            written.unlink(missing_ok=True)
        raise CommandError(str(exc)) from None
    if args.role == "county":
        from app.sync.identity import setup_county

        setup_county(store)
    store.close()
    print(f"已创建 {db}(角色 {ROLE_LABELS.get(args.role, args.role)},站点“{args.site_name}”,操作员“{args.operator}”)")
    if written:
        keeper = "由县扶贫办负责人离线保管(例如存入加密U盘锁入保险柜)" if args.role == "county" else "交县扶贫办离线保管"
        print(f"注意:恢复私钥已写入 {written}。请把它{keeper},并从本机删除:持有它的人可以打开此数据库。")
    return 0


def _init_postgres(args, where: PgLocation) -> int:
    """`init postgresql://… --role county`: a county database in an empty PostgreSQL database. The
    recovery private key (when no --recovery-key is given) goes into the current folder, named after
    the database."""
    if args.enrollment or args.role != "county":
        raise CommandError(f"PostgreSQL 数据库只能作县级数据库:请用 jiandang init {where.masked} --role county "
                           "--site-name 县名;设备的数据库请用 SQLite 文件(例如 jiandang init 本村.db --enrollment 登记包)")
    if not args.site_name:
        raise CommandError("请给出 --site-name(县扶贫办的名称)")
    new = passphrase("新密码(至少 8 个字符): ")
    key, written = _recovery_public_key(Path.cwd() / (where.database or "county"), args.recovery_key)
    try:
        store = Store.create(where, role="county", site_name=args.site_name, operator=args.operator, passphrase=new,
                             recovery_public_key=key)
    except StoreError as exc:
        if written:
            written.unlink(missing_ok=True)
        raise CommandError(str(exc)) from None
    from app.sync.identity import setup_county

    with store:
        setup_county(store)
    print(f"已在 PostgreSQL 上创建县级数据库 {where.masked}(站点“{args.site_name}”,操作员“{args.operator}”)")
    if written:
        print(f"注意:恢复私钥已写入 {written}。请把它由县扶贫办负责人离线保管(例如存入加密U盘锁入保险柜),"
              "并从本机删除:持有它的人可以打开此数据库。")
    return 0


def _check_folder(db: Path) -> None:
    folder = db.parent
    if not folder.is_dir():
        raise CommandError(f"文件夹 {folder} 不存在:请先创建它,或换一个位置")
    if not os.access(folder, os.W_OK):
        raise CommandError(f"文件夹 {folder} 不可写:请换一个位置")


def cmd_demo(args) -> int:
    if isinstance(location(args.db), PgLocation):
        raise CommandError("演示数据库只能是本机的数据库文件(村级),不能放在 PostgreSQL 服务器上:"
                           "请给出文件名,例如 jiandang demo 演示.db")
    db = Path(args.db)
    os.environ.setdefault("JIANDANG_PASSPHRASE", DEMO_PASSPHRASE)
    if db.is_dir():
        raise CommandError(f"{db} 是一个文件夹,不是数据库文件:请给出文件名,例如 {db / 'demo.db'}")
    if not db.exists():
        _check_folder(db)
        key, written = _recovery_public_key(db, None)
        try:
            store = Store.create(db, role="village", site_name="雷山县驻村工作队(演示)", operator=DEMO_OPERATOR,
                                 passphrase=os.environ["JIANDANG_PASSPHRASE"], recovery_public_key=key)
        except StoreError as exc:
            written.unlink(missing_ok=True)
            raise CommandError(str(exc)) from None
        print(f"已创建演示数据库 {db}:操作员“{DEMO_OPERATOR}”,密码取自 JIANDANG_PASSPHRASE(默认 {DEMO_PASSPHRASE})")
    else:
        store = open_store(db)
    with store:
        with user_errors(demo_service.DemoRefused):
            added = demo_service.fill(store, args.per_village, args.seed, progress_printer("生成演示数据"))
        print(f"演示数据:新增 {added} 户,库中共 {store.count('household')} 户、{store.count('member')} 人")
    if args.open:
        from app.cli.main import open_window

        return open_window([str(db)])
    return 0


# ---------------------------------------------------------------------- add / list


def cmd_add(args) -> int:
    data = read_json_file(args.json)
    docs = data if isinstance(data, list) else [data]
    if not docs:
        raise CommandError(f"{args.json} 是一个空列表:没有要保存的户,未保存任何数据")
    store = open_store(args.db, args.operator)
    failures = []
    results = []
    batch: dict[str, str] = {}  # households saved earlier in this file (refused with it if any fails)
    with store:
        try:
            with store.transaction():
                for i, doc in enumerate(docs, 1):
                    name = printable(doc.get("head_name", "?")) if isinstance(doc, dict) else "?"
                    where = f"{args.json} 第 {i} 户(户主“{name}”)"
                    try:
                        with user_errors(households.InputError):
                            results.append(households.save(store, doc, allow_errors=args.draft, where=where,
                                                           batch=batch))
                        batch[results[-1].household_id] = f"本文件第 {i} 户(户主“{name}”)"
                    except households.ValidationFailed as exc:
                        failures.append((where, exc.findings))
                if failures:
                    raise households.ValidationFailed([])
        except households.ValidationFailed:
            for where, findings in failures:
                print(f"{where}:", file=sys.stderr)
                for f in findings:
                    if f.severity == ERROR:
                        print(f"  {f}", file=sys.stderr)
            print(f"错误:未保存任何数据:{len(failures)} 户有错误。改正后重新导入,或加 --draft 作为草稿保存。", file=sys.stderr)
            return 1
        # the 户编号 each household has now (assigned when the document left it out): print card,
        # propose and the window find a household by it
        stored = {r.household_id: (store.get(r.household_id).fields if store.get(r.household_id) else {}) for r in results}
    for r in results:
        state = "新增" if r.created else "更新"
        members = len(r.child_ids.get("members", []))
        fields = stored.get(r.household_id, {})
        print(f"户编号 {fields.get('household_number') or '(未编号)'}\t户主 {fields.get('head_name') or '?'}\t{state}"
              f"\t成员 {members} 人\t写入 {r.changes} 条记录\tid {r.household_id}")
        if r.cleared:
            print(f"  注意:户 {r.household_id} 的文档中没有这些字段,已按文档清空:{'、'.join(r.cleared)}"
                  "(文档是一户的完整内容;只改几项时,请先用 list --json 取得全部字段再修改)", file=sys.stderr)
        for f in r.findings:
            print(f"  {f}", file=sys.stderr)
    return 0


def _household_type(text: str, d) -> str:
    codes = d.codes["household_type"]
    for code, label in codes.items():
        if text.strip() in (code, label):
            return code
    raise CommandError(f"--type:未知的户类型“{text}”,应为:{'、'.join(codes.values())}")


def _list_monitored(store, docs: list[dict], d) -> int:
    """监测户: type, risks and their state (防返贫动态监测, issue #20)."""
    from app.services import monitoring

    print("户编号\t户主\t人口\t监测对象类型\t风险\t风险是否消除\t风险识别时间\t风险消除时间\t村")
    for doc in docs:
        print("\t".join([
            str(doc.get("household_number", "")), str(doc.get("head_name", "")), str(len(doc.get("members", []))),
            d.display("household", "monitoring_type", doc.get("monitoring_type")),
            monitoring.risk_summary(doc),
            d.display("household", "risk_eliminated", doc.get("risk_eliminated")),
            str(doc.get("risk_identified_date") or ""), str(doc.get("risk_eliminated_date") or ""),
            store.division_name(doc["village_code"]) if doc.get("village_code") else "",
        ]))
    print(f"共 {len(docs)} 户", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    d = default()
    with open_store(args.db, args.operator, write=False) as store:
        if args.search:
            docs = households.documents(store, ids=store.search(args.search))
            if args.village:
                docs = [doc for doc in docs if doc["village_code"] == args.village]
        else:
            docs = households.iter_documents(store, args.village)  # a batch at a time: flat memory
        if args.type:
            code = _household_type(args.type, d)
            docs = (doc for doc in docs if doc.get("household_type") == code)
        if args.json:
            print_json(docs)
            return 0
        if args.type and d.codes["household_type"][code] == "监测户":
            return _list_monitored(store, list(docs), d)
        names = {}
        print("户编号\t户主\t人口\t属性\t主要致贫原因\t状态\t村")
        count = 0
        for doc in docs:
            count += 1
            village = doc.get("village_code")
            if village and village not in names:
                names[village] = store.division_name(village)
            print("\t".join(printable(cell) for cell in [  # a stored name never rewrites the terminal or splits a row
                str(doc.get("household_number", "")),
                str(doc.get("head_name", "")),
                str(len(doc.get("members", []))),
                d.display("household", "attribute", doc.get("attribute")),
                d.display("household", "main_cause", doc.get("main_cause")),
                d.display("household", "status", doc.get("status")),
                names[village] if village else "",
            ]))
        print(f"共 {count} 户", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------- validate / log


def cmd_validate(args) -> int:
    with open_store(args.db, args.operator, write=False) as store:
        findings = households.validate_all(store, args.village, progress_printer("校验"))
        if args.json:
            print_json([f.as_dict() for f in findings])
        else:
            for f in findings:
                print(f)
            errors = sum(f.severity == ERROR for f in findings)
            print(f"校验完成:{store.count('household')} 户,错误 {errors} 项,提醒 {len(findings) - errors} 项", file=sys.stderr)
    return 1 if has_errors(findings) else 0


def describe_change(change, d=None) -> list[str]:
    """Lines of readable text for one change: time, operator, what changed from what to what."""
    d = d or default()
    kind = d.kinds.get(change.kind)
    verb = {"create": "新建", "update": "修改", "delete": "删除", "restore": "恢复"}.get(change.op, change.op)
    head = f"{local_time(change.hlc)}  {change.operator}  {verb}{kind.label if kind else change.kind}  {change.record_id}"
    if change.reason:
        reason = d.code_label("member_change_reason", change.reason) if change.op == "delete" else change.reason
        head += f"  原因:{reason}"
    lines = [head]
    for key, new in change.new.items():
        label = "所在村" if key == "__village_code" else (d.field_label(change.kind, key) if kind else key)
        old = change.old.get(key)
        show_new = d.display(change.kind, key, new) if kind else new
        show_old = d.display(change.kind, key, old) if kind else old
        lines.append(f"    {label}: {show_old or '(空)'} → {show_new or '(空)'}" if change.op != "create" else f"    {label}: {show_new}")
    return lines


def cmd_log(args) -> int:
    with open_store(args.db, write=False) as store:
        if args.record:
            changes = store.history(args.record)
            if not changes:
                raise CommandError(f"没有记录 {args.record} 的修改记录")
        else:
            changes = list(store.changes())[-args.limit:]
        for change in changes:
            print("\n".join(printable(line) for line in describe_change(change)))
    return 0


# ---------------------------------------------------------------------- operators


def cmd_operator_add(args) -> int:
    with open_store(args.db, args.operator) as store:
        new = passphrase(f"“{args.login}”的新密码: ", env="JIANDANG_NEW_PASSPHRASE")
        with user_errors(StoreError):
            store.add_operator(args.login, new)
    print(f"已新增操作员“{args.login}”")
    return 0


def cmd_operator_passwd(args) -> int:
    with open_database(args.db) as store:
        old = passphrase(f"“{args.login}”的原密码: ")
        new = passphrase(f"“{args.login}”的新密码: ", env="JIANDANG_NEW_PASSPHRASE")
        with user_errors(StoreError):
            store.change_passphrase(args.login, old, new)
    print(f"已修改“{args.login}”的密码")
    return 0


def cmd_operator_list(args) -> int:
    with open_database(args.db, write=False) as store:
        for login in store.operators():
            print(login)
    return 0


def cmd_recover(args) -> int:
    if bool(args.recovery_key) == bool(args.county):
        raise CommandError("请给出 --recovery-key 恢复私钥文件,或 --county 县级数据库(二选一)")
    if args.county:
        from app.sync.identity import county_encryption_key

        with open_store(args.county) as county:
            with user_errors(StoreError):
                private = county_encryption_key(county)
    else:
        private = read_recovery_private_key(args.recovery_key)
    with user_errors(StoreError, crypto.DecryptionError):
        with open_database(args.db) as store:
            store.unlock_with_recovery(private)
            if args.login not in store.operators():  # before asking for a passphrase it would refuse
                raise CommandError(f"本数据库没有操作员“{args.login}”(已有:{'、'.join(store.operators())}):"
                                   "请用 --login 给出其中一个;要添加操作员,请用 jiandang operator add")
            new = passphrase(f"“{args.login}”的新密码: ", env="JIANDANG_NEW_PASSPHRASE")
            store.reset_passphrase(args.login, new)
    print(f"已用恢复密钥重置“{args.login}”的密码")
    return 0
