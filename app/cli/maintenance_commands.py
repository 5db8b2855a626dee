"""`jiandang backup`, `jiandang restore`, `jiandang check`, `jiandang selftest`: keeping a village's
files safe on a laptop (and a county on PostgreSQL: app/services/pg_backup.py), and checking that an
installed (packaged) program works. See docs/backup.md."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from app.cli.common import CommandError, passphrase, progress_printer, read_recovery_private_key, user_errors
from app.services import backup as backups
from app.services import integrity


def register(sub) -> None:
    p = sub.add_parser("backup", help="把数据库加密备份到一个文件夹(如U盘),不需要密码;"
                                      "PostgreSQL 县级数据库用 pg_dump 备份")
    p.add_argument("db")
    p.add_argument("--to", required=True, metavar="DIR", help="备份文件夹")
    p.add_argument("--keep", type=int, metavar="N", help="只保留本数据库最新的 N 份备份(删除更早的)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="用备份替换数据库(先完整校验备份;原数据库另存一份);PostgreSQL 备份恢复到新建的空数据库")
    p.add_argument("backup", help="备份文件(.jdbak;县级 PostgreSQL 数据库的备份为 .jdpgdump)")
    p.add_argument("--to", required=True, metavar="DB", help="要恢复的数据库文件,或新建的空 PostgreSQL 数据库地址(恢复 .jdpgdump 备份)")
    p.add_argument("--operator", help="用于校验备份的操作员(默认第一个操作员)")
    p.add_argument("--recovery-key", metavar="FILE", help="忘记密码时:用县级恢复私钥(PEM)校验备份")
    p.add_argument("--force", action="store_true",
                   help="本机在备份之后已发送过同步包时仍然恢复(会与县里的数据不一致,见 docs/backup.md)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("check", help="完整性检查:每条记录可解密、修改记录与数据一致、SQLite 校验")
    p.add_argument("db")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("selftest", help="自检:在临时加密数据库中保存、校验、打印一张户有卡、导出数据包、备份")
    p.set_defaults(func=cmd_selftest)


def _logging() -> None:
    from app import settings  # noqa: PLC0415

    try:
        settings.setup_logging()
    except OSError:  # a read-only profile must not stop the command
        pass


def cmd_backup(args) -> int:
    _logging()
    if args.keep is not None and args.keep < 1:
        raise CommandError(f"--keep 应为 1 或更大的整数(保留最新的几份备份),而不是 {args.keep}:未做备份,未删除任何备份")
    from app.store.locations import is_url  # noqa: PLC0415

    if is_url(args.db):
        from app.services import pg_backup  # noqa: PLC0415

        with user_errors(backups.BackupError):
            info = pg_backup.backup(args.db, args.to)
            gone = pg_backup.prune(args.to, info.db_id, args.keep) if args.keep else []
        print(f"已备份到 {info.path}({info.size / 1024:.0f} KB,PostgreSQL 备份(pg_dump),内容仍为加密)")
        if gone:
            print(f"已删除 {len(gone)} 份较早的备份")
        return 0
    with user_errors(backups.BackupError):
        info = backups.backup_file(args.db, args.to)
        gone = backups.prune(args.to, info.db_id, args.keep) if args.keep else []
    print(f"已备份到 {info.path}({info.size / 1024:.0f} KB,仍为加密文件)")
    if gone:
        print(f"已删除 {len(gone)} 份较早的备份")
    return 0


def cmd_restore(args) -> int:
    _logging()
    key, secret = None, None
    if args.recovery_key:
        key = read_recovery_private_key(args.recovery_key)
    else:
        secret = passphrase("用于校验备份的操作员密码: ")
    from app.services import pg_backup  # noqa: PLC0415
    from app.store.locations import is_url, location  # noqa: PLC0415

    to_server, pg_dump = is_url(args.to), args.backup.endswith(pg_backup.SUFFIX)
    if pg_dump and not to_server:
        raise CommandError(f"{args.backup} 是县级 PostgreSQL 数据库的备份,只能恢复到 PostgreSQL 数据库:"
                           "--to postgresql://用户名:密码@服务器:5432/新建的空数据库")
    if to_server and not pg_dump:
        raise CommandError(f"{args.backup} 不是 PostgreSQL 备份({pg_backup.SUFFIX}),没有恢复到 {location(args.to)}。"
                           "SQLite 备份(.jdbak)请先恢复成数据库文件(--to 县级.db),"
                           "再用 jiandang county migrate 县级.db postgresql://… 迁移到服务器")
    if to_server:
        with user_errors(backups.BackupError):
            result = pg_backup.restore(args.backup, args.to, operator=args.operator or os.environ.get("JIANDANG_OPERATOR"),
                                       passphrase=secret, recovery_key=key)
        print(f"已恢复到 {result.target}:{result.records} 条记录、{result.changes} 条修改记录,逐条解密校验通过。"
              "核对无误后让同步服务和各位同事改用这个地址")
        return 0
    with user_errors(backups.BackupError):
        result = backups.restore(args.backup, args.to, operator=args.operator or os.environ.get("JIANDANG_OPERATOR"),
                                 passphrase=secret, recovery_key=key, force=args.force)
    print(f"已恢复 {result.target}:{result.records} 条记录、{result.changes} 条修改记录,备份校验通过")
    if result.kept_aside:
        print(f"原数据库已另存为 {result.kept_aside}")
    return 0


def cmd_check(args) -> int:
    _logging()
    from app.store import StoreError, is_url  # noqa: PLC0415

    if not is_url(args.db) and not Path(args.db).exists():
        raise CommandError(f"找不到数据库文件 {args.db}")
    with user_errors(StoreError):
        report = integrity.open_and_check(args.db, args.operator or os.environ.get("JIANDANG_OPERATOR"),
                                          passphrase(), progress_printer("检查"))
    for problem in report.problems:
        print(problem.line())
    print(report.summary())
    return 0 if report.ok else 1


# ---------------------------------------------------------------------- selftest


class SelftestFailed(Exception):
    pass


def _step(name: str, results: list, fn):
    started = time.perf_counter()
    try:
        detail = fn()
    except Exception as exc:  # noqa: BLE001 - every failure is reported by step
        results.append((name, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - started))
        print(f"失败  {name}:{type(exc).__name__}: {exc}", flush=True)
        raise SelftestFailed(name) from exc
    elapsed = time.perf_counter() - started
    results.append((name, True, detail, elapsed))
    print(f"通过  {name}({elapsed:.2f} 秒){':' + detail if detail else ''}", flush=True)
    return detail


def run_selftest(folder: Path) -> list:
    """The self-test steps in `folder`; raises SelftestFailed at the first failing step.

    It plays one sync day in miniature: a county database enrolls a village laptop, the laptop
    (created from the enrollment package) saves and validates a household, prints its card and
    exports an upstream bundle, and the county imports that bundle and holds the household."""
    from app import paths  # noqa: PLC0415
    from app.core import demo as demo_data  # noqa: PLC0415
    from app.core.dictionary import default  # noqa: PLC0415
    from app.services import demo, households, printing  # noqa: PLC0415
    from app.store import Store  # noqa: PLC0415
    from app.sync import exchange, identity  # noqa: PLC0415

    results: list = []
    state: dict = {}
    secret = "selftest-" + os.urandom(6).hex()

    def resources():
        font = paths.font_path()
        if not font.is_file() or font.stat().st_size < 1_000_000:
            raise RuntimeError(f"缺少字体文件 {font}")
        d = default()
        from app.ui import camera  # noqa: PLC0415 - Qt Multimedia (拍照) is optional: said, not failed

        photo = "拍照组件可用" if camera.MISSING is None else f"拍照组件不可用({camera.MISSING}),其余功能不受影响"
        from app.sync import wire  # noqa: PLC0415 - which inflater the built program carries (isal or zlib)

        return (f"表单字典 {len(d.kinds)} 类、{len(d.codes)} 个代码表,字体 {font.stat().st_size // 1024} KB,"
                f"{photo},数据包解压 {wire.INFLATER}")

    def create():
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: PLC0415

        doc = demo_data.households(1, seed=7)[0]
        doc["status"] = "1"  # as a laptop enters a new household: 未脱贫, numbered from its own block
        doc.pop("household_number", None)
        state["doc"] = doc
        county = Store.create(folder / "county.db", role="county", site_name="自检县", operator="自检",
                              passphrase=secret, recovery_public_key=X25519PrivateKey.generate().public_key())
        state["county"] = county
        demo.install_reference_data(county)
        identity.setup_county(county)
        enrollment = identity.enroll(county, site_name="自检工作队", role="village", villages=[doc["village_code"]])
        contents = identity.open_enrollment(enrollment.package, enrollment.code)
        state["store"] = identity.create_from_enrollment(folder / "selftest.db", contents, operator="自检",
                                                         passphrase=secret)
        return "县级库登记设备,按登记包创建村级加密数据库"

    def save():
        doc = state["doc"]
        state["head"] = doc.get("head_name")
        numbers = [m.get("id_number") for m in doc.get("members", []) if m.get("id_number")]
        state["id_number"] = numbers[0] if numbers else None
        result = households.save(state["store"], doc, allow_errors=True, reason="自检")
        state["household"] = result.household_id
        members = len(households.document(state["store"], result.household_id).get("members", []))
        return f"1 户 {members} 人"

    def photo():
        import io  # noqa: PLC0415

        from PIL import Image  # noqa: PLC0415 - Pillow and its JPEG plugin must be in the build

        from app.services import attachments  # noqa: PLC0415

        buf = io.BytesIO()
        Image.new("RGB", (2000, 1500), (90, 150, 70)).save(buf, "JPEG", quality=85)
        (folder / "自检照片.jpg").write_bytes(buf.getvalue())  # a synthetic picture, no one's data
        store = state["store"]
        house = store.get(state["household"])
        report = attachments.add_files(store, house, [folder / "自检照片.jpg"], kind="家庭合影")
        if len(report.added) != 1:
            raise RuntimeError("照片未能添加:" + ";".join(report.lines()))
        rec = store.get(report.added[0])
        data = attachments.image(store, rec)
        if not data or Image.open(io.BytesIO(data)).size != (rec.fields["width"], rec.fields["height"]):
            raise RuntimeError("照片读回后与保存时不符")
        return f"照片缩放为 {rec.fields['width']}×{rec.fields['height']},{len(data) // 1024} KB,加密保存"

    def validate():
        findings = households.validate_all(state["store"])
        errors = sum(1 for f in findings if f.severity == "error")
        return f"{len(findings)} 条提示,其中 {errors} 条错误"

    def no_plain_text():
        store = state["store"]
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw = b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("selftest.db") and p.is_file())
        for value in (state["head"], state["id_number"]):
            if not value:
                raise RuntimeError("自检户没有户主姓名或证件号码")
            if value.encode("utf-8") in raw:
                raise RuntimeError("数据库文件中出现了明文的个人信息")
        return "数据库文件中没有明文姓名和证件号码"

    def card():
        result = printing.print_cards(state["store"], folder / "card.pdf", household_id=state["household"])
        data = result.path.read_bytes()
        if not data.startswith(b"%PDF") or result.pages < 1:
            raise RuntimeError("户有卡 PDF 不完整")
        return f"户有卡 {result.pages} 页,{len(data) // 1024} KB"

    def bundle():
        usb = folder / "usb"
        usb.mkdir()
        [path] = exchange.export_to(state["store"], usb)
        data = path.read_bytes()
        for value in (state["head"], state["id_number"]):
            if value.encode("utf-8") in data:
                raise RuntimeError("数据包中出现了明文的个人信息")
        [report] = exchange.import_paths(state["county"], [usb])
        if report.status != "accepted":
            raise RuntimeError(f"县级库未接收数据包:{report.line()}")
        def by_id(doc):  # the order of child records may differ between databases
            return {k: sorted(v, key=lambda r: r.get("id", "")) if isinstance(v, list) and v and isinstance(v[0], dict)
                    else v for k, v in doc.items()}

        theirs = households.document(state["county"], state["household"])
        mine = households.document(state["store"], state["household"])
        if theirs is None or by_id(theirs) != by_id(mine):
            raise RuntimeError("县级库导入后的户档与村级库不一致")
        return f"数据包 {len(data) // 1024} KB,县级库已接收 {report.changes} 条更改,户档一致"

    def backup_and_check():
        info = backups.backup(state["store"], folder / "backups")
        records, changes = integrity.verify_file(info.path, "自检", secret, label="自检备份")
        for name, label in (("store", "村级库"), ("county", "县级库")):
            report = integrity.check(state[name])
            if not report.ok:
                raise RuntimeError(f"{label}:{report.summary()} {'; '.join(p.line() for p in report.problems[:3])}")
        return f"备份 {info.size // 1024} KB 校验通过({records} 条记录、{changes} 条修改记录),村级库和县级库完整"

    try:
        _step("程序资源", results, resources)
        _step("创建加密数据库(县级登记村级设备)", results, create)
        _step("保存一户", results, save)
        _step("添加照片", results, photo)
        _step("校验", results, validate)
        _step("加密检查", results, no_plain_text)
        _step("打印户有卡", results, card)
        _step("导出数据包并由县级导入", results, bundle)
        _step("备份与完整性检查", results, backup_and_check)
    finally:
        for name in ("store", "county"):
            if name in state:
                state[name].close()
    return results


def cmd_selftest(args) -> int:
    started = time.perf_counter()
    from app import __version__  # noqa: PLC0415

    frozen = "打包版" if getattr(sys, "frozen", False) else "源码版"
    print(f"建档 {__version__}({frozen},Python {sys.version.split()[0]})自检", flush=True)
    with tempfile.TemporaryDirectory(prefix="jiandang-selftest-") as tmp:
        try:
            results = run_selftest(Path(tmp))
        except SelftestFailed as exc:
            print(f"自检失败:{exc}({time.perf_counter() - started:.1f} 秒)", file=sys.stderr)
            return 1
    print(f"自检通过:{len(results)} 项,共 {time.perf_counter() - started:.1f} 秒")
    return 0
