"""Sync commands: enroll, sync export/import/now, revoke, conflicts (docs/sync.md, docs/serve.md)."""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

from app.core.procedures import ROLE_LABELS
from app.cli.common import CommandError, local_time, open_store, print_json, progress_printer, user_errors
from app.core import procedures
from app.core.oserrors import os_reason
from app.services import conflicts
from app.store import StoreError, location
from app.sync import exchange, identity, merge, status, wire


def register(sub) -> None:
    p = sub.add_parser("enroll", help="县级:登记一台设备,生成登记包")
    p.add_argument("db", metavar="COUNTY_DB")
    p.add_argument("--site-name", required=True, help="设备站点名称,如“龙井村工作队”")
    p.add_argument("--role", choices=["village", "township"], required=True)
    p.add_argument("--villages", required=True, help="允许的村代码(12位),逗号分隔;乡可给 9 位乡代码")
    p.add_argument("--out", required=True, metavar="FILE", help="登记包输出文件(如 U 盘上的 xxx.jde)")
    p.add_argument("--days", type=int, default=identity.CERT_DAYS, help="证书有效天数")
    p.add_argument("--server", metavar="URL", help="县同步服务地址(写入登记包,以后登记时沿用),如 https://192.168.1.10:8765")
    p.add_argument("--server-ca", metavar="FILE", help="县同步服务的 TLS 证书(jiandang tls-cert 生成的 .pem),写入登记包")
    p.add_argument("--force", action="store_true", help="覆盖已存在的登记包文件")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("sync", help="同步:导出或导入同步包")
    ops = p.add_subparsers(dest="action", metavar="操作", required=True)
    q = ops.add_parser("export", help="导出同步包到文件夹(U 盘)")
    q.add_argument("db")
    q.add_argument("--to", required=True, metavar="DIR")
    q.add_argument("--attachment-budget", type=float, metavar="MB", help="每个同步包携带照片的上限(MB,默认 16);"
                   "其余照片写入后续的包")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_export)
    q = ops.add_parser("status", help="同步状态:未同步的修改、待发送的照片、上次同步时间")
    q.add_argument("db")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_status)
    q = ops.add_parser("import", help="导入同步包(文件或文件夹);有拒收时退出码为 1")
    q.add_argument("db")
    q.add_argument("paths", nargs="+", metavar="PATH")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_import)
    q = ops.add_parser("now", help="立即同步:通过网络把本机更改上传到县同步服务并取回县级包(docs/serve.md)")
    q.add_argument("db")
    q.add_argument("--server", metavar="URL", help="县同步服务地址(默认用登记时设置的)")
    q.add_argument("--ca-cert", metavar="FILE", help="县同步服务的 TLS 证书(默认用登记时设置的)")
    q.add_argument("--remember", action="store_true", help="把 --server/--ca-cert 保存为本机的默认设置")
    q.add_argument("--retries", type=int, default=4, help="网络失败时的重试次数(默认 4,间隔 1、2、4、8 秒)")
    q.add_argument("--attachment-budget", type=float, metavar="MB", help="每个同步包携带照片的上限(MB,默认 16)")
    q.add_argument("--operator")
    q.set_defaults(func=cmd_now)

    p = sub.add_parser("revoke", help="县级:吊销设备证书(其后发来的包一律拒收)")
    p.add_argument("db", metavar="COUNTY_DB")
    p.add_argument("--site", required=True, metavar="SITE_ID")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_revoke)

    p = sub.add_parser("devices", help="县级:列出已登记的设备")
    p.add_argument("db", metavar="COUNTY_DB")
    p.add_argument("--json", action="store_true")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("conflicts", help="同步冲突:列出,或保留现值/恢复另一方的值")
    p.add_argument("db")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true", help="也列出已处理的冲突")
    p.add_argument("--resolve", metavar="ID")
    p.add_argument("--keep", choices=["winner", "other"])
    p.add_argument("--operator")
    p.set_defaults(func=cmd_conflicts)


def cmd_enroll(args) -> int:
    villages = [v.strip() for v in args.villages.replace("，", ",").split(",") if v.strip()]
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CommandError(f"{out} 已存在:不会覆盖已有的登记包(它可能属于另一台已登记的电脑)。"
                           "请换一个文件名,或确认不再需要它后加 --force")
    if not out.parent.is_dir():
        raise CommandError(f"文件夹 {out.parent} 不存在(U盘是否已插好?):登记包写不进去,未登记任何设备")
    server_ca = None
    if args.server_ca:
        from app.server import client  # noqa: PLC0415

        with user_errors(client.SyncError):
            server_ca = client.read_ca_file(args.server_ca)
    with open_store(args.db, args.operator) as store:
        unchecked = not store.divisions()
        with user_errors(StoreError, OSError):
            result = identity.enroll(store, site_name=args.site_name, role=args.role, villages=villages, days=args.days,
                                     server=args.server, server_ca=server_ca)
            server = store.meta(identity.SERVER_URL)
            try:
                wire.write_atomic(out, result.package)
            except OSError as exc:  # nobody can use a certificate whose package was never written
                identity.revoke(store, result.site_id)
                raise CommandError(f"无法写入登记包 {out}:{os_reason(exc)}。这次登记已作废(站点 {result.site_id} "
                                   "已吊销),请换一个文件夹重新登记") from None
            fp = identity.fingerprint(identity.county_sign_public(store))
    print(f"已登记设备“{args.site_name}”:站点 {result.site_id},角色 {ROLE_LABELS.get(args.role, args.role)},地区 {','.join(villages)}")
    print(f"登记包:{out}")
    print(f"登记码:{result.code_display}")
    print(f"县级公钥指纹:{fp}")
    if server:
        print(f"县同步服务:{server}(该电脑可用“立即同步”)")
    print("请把登记码单独交给该电脑的操作员(不要和登记包放在同一个 U 盘上)。")
    if unchecked:
        print(f"注意:县里还没有导入行政区划,无法核对代码 {','.join(villages)} 是否为本县的村或乡镇。"
              f"请用 jiandang reference divisions {location(args.db).name} --import 文件 导入本县的区划:"
              "该电脑下次导入县级包时会收到;代码若有误,请吊销后重新登记", file=sys.stderr)
    return 0


def init_from_enrollment(db: Path, package: str, operator: str) -> str:
    """`init DB --enrollment FILE`: create a device database from an enrollment package. The code
    comes from JIANDANG_ENROLLMENT_CODE or is asked for; the passphrase from JIANDANG_PASSPHRASE."""
    from app.cli.common import passphrase

    try:
        data = Path(package).read_bytes()
    except OSError as exc:
        raise CommandError(f"无法读取登记包 {package}:{os_reason(exc)}(登记包是县扶贫办 enroll 写出的 .jde 文件)") from None
    code = passphrase("登记码: ", env="JIANDANG_ENROLLMENT_CODE")
    with user_errors(wire.BundleError):
        contents = identity.open_enrollment(data, code, str(package))
    new = passphrase("新密码(至少 8 个字符): ")
    with user_errors(StoreError):
        store = identity.create_from_enrollment(db, contents, operator=operator, passphrase=new)
    cert = contents.certificate
    store.close()
    return (f"已按登记包创建 {db}:站点 {cert.site_id}“{cert.body['site_name']}”,角色 {ROLE_LABELS.get(cert.role, cert.role)},"
            f"{_places(cert.villages, contents.divisions)},证书有效至 {status.local_time_text(cert.body['not_after'])},"
            f"县级公钥指纹 {identity.fingerprint(bytes.fromhex(contents.header['county_sign_public']))}"
            + (f",县同步服务 {contents.server}(可用“立即同步”)" if contents.server else ""))


def _places(codes, divisions) -> str:
    """Certificate codes as people read them: `乡镇 西江镇(522634101)`, `村 龙井村(522634101201)`."""
    names = {d[0]: d[1] for d in divisions or [] if isinstance(d, (list, tuple)) and len(d) > 1}
    words = {12: "村", 9: "乡镇", 6: "县"}
    return "、".join(f"{words.get(len(c), '地区')} {names[c]}({c})" if c in names else f"{words.get(len(c), '地区')} {c}"
                    for c in codes)


def _budget(args) -> int:
    from app.sync import attachments  # noqa: PLC0415

    mb = getattr(args, "attachment_budget", None)
    if mb is None:
        return attachments.DEFAULT_BUDGET
    if mb <= 0:
        raise CommandError("--attachment-budget 应大于 0(单位 MB)")
    return int(mb * 1024 * 1024)


def cmd_status(args) -> int:
    from app.sync import attachments  # noqa: PLC0415

    with open_store(args.db, args.operator) as store:
        st = status.sync_status(store)
        lines = []
        if not st.enrolled and store.role != "county":  # a demo or stand-alone database: nothing to send
            lines.append(st.unsynced_label())
        elif st.unacknowledged is not None:
            lines.append(f"未同步修改:{st.unacknowledged} 条(县里尚未确认)")
            lines.append(st.images_label())
        else:
            for c in identity.certificates(store, include_revoked=False):
                cert = identity.certificate_of(store, c["site_id"])[0]
                count, size = attachments.pending(store, c["site_id"], cert.villages)
                if count:
                    lines.append(f"待发给 {c['site_name']}({c['site_id']})的照片:{count} 张({size / 1024 / 1024:.1f} MB)")
            if len(lines) == 0:
                lines.append("待发给各设备的照片:无")
        lines.append(st.last_sync_label())
    for line in lines:
        if line:
            print(line)
    return 0


def cmd_export(args) -> int:
    with open_store(args.db, args.operator) as store:
        with user_errors(StoreError, OSError):
            outlook = exchange.upstream_outlook(store) if store.role != "county" else None
            try:
                files = exchange.export_to(store, args.to, progress_printer("导出"), budget=_budget(args))
            except exchange.ExportInterrupted as exc:  # the whole bundles written are named, then the error
                for f in exc.written:
                    print(f"已导出 {f}")
                raise
    for f in files:
        counts = wire.peek_header(f.read_bytes()).get("counts", {})
        photos = f",照片 {counts['attachments']} 张" if counts.get("attachments") else ""
        print(f"已导出 {f}:{counts.get('changes', 0)} 条修改{photos}")
    if outlook and outlook[1]:
        print(f"其中 {outlook[1]} 条修改在以前的包中已发出、县里尚未确认收到,本包再次带上"
              "(县里重复收到的会自动跳过;导入县里发回的包后,已确认的修改不再重发)")
    if not files:
        print("没有已登记的设备,未导出任何包")
    return 0


def cmd_import(args) -> int:
    with open_store(args.db, args.operator) as store:
        reports = exchange.import_paths(store, args.paths, progress_printer("导入"))
        lines = [r.line(status.site_label(store, r.sender) if r.sender else "") for r in reports]
    for line in lines:  # skipped files are named even when nothing was for this database
        print(line)
    if all(r.status == "skipped" for r in reports):
        raise CommandError(f"在 {' '.join(args.paths)} 中没有找到给本数据库的同步包(*.jdb)")
    refused = sum(r.refused for r in reports)
    if refused:
        print(f"共 {len(reports)} 个包,拒收 {refused} 个:未导入拒收包中的任何内容", file=sys.stderr)
    return 1 if refused else 0


def cmd_now(args) -> int:
    """Export, upload, fetch, import through the county sync service. Exit status 0 when everything
    was accepted, 1 when a bundle was refused, 3 when the service could not be reached."""
    from app.server import client  # noqa: PLC0415

    def note(text: str) -> None:
        print(text, file=sys.stderr)

    with open_store(args.db, args.operator) as store:
        with user_errors(client.SyncError, StoreError):
            try:
                url, ca = client.settings(store, args.server, args.ca_cert)
                show = progress_printer("同步")
                result = client.sync_now(store, url, ca, show, retries=max(0, args.retries), note=note,
                                         budget=_budget(args))
            except client.Unreachable as exc:
                print(f"错误:{exc}", file=sys.stderr)
                return 3
        if args.remember and not result.refused:
            client.remember(store, url, ca)
        lines = [r.line(status.site_label(store, r.sender) if r.sender else "") for r in result.reports]
    for line in lines:
        print(line)
    if result.refused:
        print("有同步包被拒收:拒收的包没有导入任何内容,请按说明处理", file=sys.stderr)
    return 1 if result.refused else 0


def cmd_revoke(args) -> int:
    with open_store(args.db, args.operator) as store:
        _county_only(store, "吊销设备")
        found = identity.certificate_of(store, args.site)
        if found and found[1]:
            print(f"站点 {status.site_label(store, args.site)} 已于 {status.local_time_text(found[1])} 吊销,"
                  "无需再吊销:此后它发来的包一律拒收")
            return 0
        with user_errors(StoreError):
            identity.revoke(store, args.site)
        label = status.site_label(store, args.site)
    print(f"已吊销站点 {label}:此后它发来的包一律拒收")
    return 0


def cmd_devices(args) -> int:
    from app.sync import numbers  # noqa: PLC0415

    with open_store(args.db, args.operator, write=False) as store:
        _county_only(store, "列出已登记的设备")
        certs = identity.certificates(store)
        for c in certs:
            c["number_topups"] = numbers.county_topups(store, c["site_id"])
        own = numbers.county_own_blocks(store)
    if args.json:
        print_json(certs)
        return 0
    print("站点\t名称\t角色\t村/乡镇\t有效至\t户编号段\t状态")
    for c in certs:
        print("\t".join([c["site_id"], c["site_name"], procedures.ROLE_LABELS.get(c["role"], c["role"]), c["villages"],
                         status.local_time_text(c["not_after"]),
                         _number_block_text(c["number_block"]) + "".join(
                             f" +{v}:{numbers.describe([tuple(b) for b in bs])}" for v, bs in c["number_topups"].items()),
                         _device_state(c)]))
    # the county's own households: 0001-1000 of every village, and the blocks it took past them
    print("\t".join(["本库", "县里自编", "县级", "各村", "", numbers.describe([numbers.COUNTY_BLOCK]) + "".join(
        f" +{v}:{numbers.describe(bs)}" for v, bs in own.items()), "有效"]))
    return 0


def _device_state(cert: dict) -> str:
    if cert["revoked"]:
        return f"已吊销 {status.local_time_text(cert['revoked'])}"
    try:
        expired = identity.parse_iso(cert["not_after"]) < datetime.datetime.now(datetime.timezone.utc)
    except (TypeError, ValueError):
        expired = False
    return "已过期(请重新登记)" if expired else "有效"


def _county_only(store, what: str) -> None:
    if store.role != "county":
        raise CommandError(f"{store.path.name} 不是县级数据库:只有县级数据库可以{what}(设备在县扶贫办登记)")


def _number_block_text(stored: str | None) -> str:
    """The stored block `[1001, 1300]` as a person reads it: `1001-1300` (the last 4 digits of 户编号)."""
    try:
        low, high = json.loads(stored or "")
        return f"{int(low):04d}-{int(high):04d}"
    except (ValueError, TypeError):
        return stored or ""


def cmd_conflicts(args) -> int:
    with open_store(args.db, args.operator) as store:
        if args.resolve:
            if not args.keep:
                raise CommandError("请用 --keep winner(保留现值)或 --keep other(恢复另一方的值)")
            wanted = args.resolve.strip()
            if len(wanted) < 4:
                raise CommandError(f"冲突编号“{wanted}”太短:请至少写出编号的前 4 位"
                                   f"(用 jiandang conflicts {args.db} 查看编号)")
            matches = [c.id for c in merge.conflicts(store, None) if c.id.startswith(wanted)] if len(wanted) >= 4 else []
            if len(matches) > 1:
                raise CommandError(f"冲突编号“{wanted}”不唯一,请多写几位")
            args.resolve = matches[0] if matches else wanted
            with user_errors(StoreError):
                change = merge.resolve(store, args.resolve, args.keep)
            print(f"冲突 {args.resolve} 已处理:" + ("恢复了另一方的值" if args.keep == "other" else "保留现值")
                  + (":已写入一条修改,会随下次导出的下发包发给各设备" if change else ""))
            return 0
        items = merge.conflicts(store, None if args.all else "open")
        if args.json:
            print_json(conflicts.raw(items))  # bank accounts partly hidden, as in the list
            return 0
        for c, t in zip(items, conflicts.describe(store, items)):
            now = f"现值 {t['current']}(其后已修改;当时胜出的值 {t['winner']}," if t["replaced"] else f"现值 {t['winner']}("
            print(f"{c.id}\t{t['record']}\t{t['field']}\t{now}{t['winner_site']} {local_time(c.winner_hlc)})"
                  f"\t另一方 {t['other']}({t['loser_site']} {local_time(c.loser_hlc)})\t{t['status']}")
        print(f"共 {len(items)} 个冲突", file=sys.stderr)
        if store.role != "county":
            print("注意:冲突只在县级数据库记录和审核;本机按同样的规则采用较晚的修改", file=sys.stderr)
    return 0
