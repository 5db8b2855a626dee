"""The county sync service: `jiandang serve` and `jiandang tls-cert` (docs/serve.md)."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from app.cli.common import CommandError, open_store, passphrase, user_errors
from app.server import protocol
from app.store import StoreError, is_url, location


def register(sub) -> None:
    p = sub.add_parser("serve", help="县级:运行县同步服务(笔记本电脑“立即同步”时连接它)")
    p.add_argument("db", metavar="COUNTY_DB")
    p.add_argument("--host", default="127.0.0.1",
                   help="监听地址(默认 127.0.0.1 只接受本机;让局域网的电脑连接请用 0.0.0.0)")
    p.add_argument("--port", type=int, default=protocol.DEFAULT_PORT, help=f"端口(默认 {protocol.DEFAULT_PORT};0 = 任一空闲端口)")
    p.add_argument("--tls-cert", metavar="FILE", help="TLS 证书(PEM,jiandang tls-cert 生成)")
    p.add_argument("--tls-key", metavar="FILE", help="TLS 私钥(PEM)")
    p.add_argument("--max-upload-mb", type=float, default=64, help="单个同步包的上传上限(MB,默认 64)")
    p.add_argument("--uploads-per-minute", type=float, default=10,
                   help="每个站点每分钟最多上传/取件次数(默认 10;0 = 不限)")
    p.add_argument("--upload-timeout", type=float, default=600, metavar="SECONDS",
                   help="一次上传从开始到传完最多用时(秒,默认 600)")
    p.add_argument("--min-upload-rate", type=float, default=1, metavar="KB_PER_S",
                   help="上传最低速度(KB/秒,每 20 秒计一次,默认 1;更慢的连接被断开)")
    p.add_argument("--uploads-per-address", type=int, default=4, metavar="N",
                   help="同一地址同时进行的上传/取件最多几个(默认 4)")
    p.add_argument("--max-uploads", type=int, default=128, metavar="N",
                   help="所有地址同时进行的上传/取件最多几个(默认 128)")
    p.add_argument("--challenges-per-minute", type=float, default=30, metavar="N",
                   help="同一地址每分钟最多索取几个取件请求码(默认 30;0 = 不限)")
    p.add_argument("--attachment-budget-mb", type=float, default=16, help="每个下发包携带照片的上限(MB,默认 16)")
    p.add_argument("--quiet", action="store_true", help="不记录每个请求(访问日志)")
    p.add_argument("--stop", action="store_true",
                   help="停止在这个数据库上运行的县同步服务(等进行中的导入完成;Windows 上也可用)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="工作进程数(默认 1;大于 1 需要 PostgreSQL 县级数据库,见 docs/serve.md“县级服务器”)")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("tls-cert", help="县级:为县同步服务生成自签名 TLS 证书和私钥")
    p.add_argument("--host", action="append", required=True, metavar="NAME_OR_IP",
                   help="笔记本电脑连接时用的主机名或 IP 地址(可重复)")
    p.add_argument("--out-cert", required=True, metavar="FILE", help="证书输出文件(.pem,发给各电脑/写入登记包)")
    p.add_argument("--out-key", required=True, metavar="FILE", help="私钥输出文件(只留在县里的机器上)")
    p.add_argument("--days", type=int, default=3650)
    p.set_defaults(func=cmd_tls_cert)


def _uvicorn_lifecycle_to_file_only(record: logging.LogRecord) -> bool:
    """uvicorn's English start/stop lines (Started server process, Waiting for application startup,
    Shutting down …) stay out of the terminal: `serve` says the same in Chinese. They still reach the
    log file; uvicorn's warnings and errors still show here."""
    return not (record.name == "uvicorn.error" and record.levelno < logging.WARNING)


def _setup_logging(quiet: bool) -> logging.Handler:
    """Log lines to stderr (a service manager keeps them) and to the program's log file, with ID
    numbers and phones masked."""
    from app import settings  # noqa: PLC0415

    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(settings.RedactingFilter())
    handler.addFilter(_uvicorn_lifecycle_to_file_only)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING if quiet else logging.INFO)
    try:
        settings.setup_logging("INFO", program="serve")
    except OSError:  # a read-only profile must not stop the service
        pass
    return handler


def shown(db) -> str:
    """`db` as printed: a URL with its password masked (app.store.locations.mask)."""
    return str(location(db))


def _service_files(db) -> tuple[Path, Path]:
    """The stop file and the lock file of the service running on `db`: beside a database file (the
    store's own lock); for a PostgreSQL county, in this computer's data folder, named by the
    server, port and database (not the password)."""
    if is_url(db):
        from app import settings  # noqa: PLC0415

        parts = urlsplit(str(db))
        # one service per database however the address is written: the default port spelled out or
        # not, the server's name in any case, localhost or its loopback address
        host = (parts.hostname or "localhost").lower()
        host = "localhost" if host in ("127.0.0.1", "::1") else host
        key = f"{host}:{parts.port or 5432}/{parts.path.lstrip('/')}?{parts.username or ''}"
        name = "serve-" + hashlib.sha256(key.encode()).hexdigest()[:16]
        folder = settings.data_dir()
        return folder / (name + ".stop"), folder / (name + ".lock")
    db = Path(db)
    return db.with_name(db.name + ".serve-stop"), db.with_name(db.name + ".lock")


def stop_file(db) -> Path:
    """The file whose appearance asks the service running on `db` to stop (any platform)."""
    return _service_files(db)[0]


STOP_WAIT_SECONDS = 90.0  # the service checks twice a second; an import in progress finishes first


def cmd_stop(args) -> int:
    """`serve DB --stop`: ask the running service to stop, and wait until it has taken the request."""
    import time  # noqa: PLC0415

    request, lock = _service_files(args.db)
    if not is_url(args.db) and not Path(args.db).is_file():
        raise CommandError(f"找不到数据库 {args.db}")
    if not _held_by_a_program(lock):  # a running service holds its database's lock
        raise CommandError(f"{shown(args.db)} 上没有正在运行的县同步服务")
    try:
        request.parent.mkdir(parents=True, exist_ok=True)
        request.write_bytes(b"")
    except OSError as exc:
        raise CommandError(f"无法写入停止请求 {request}:{exc.strerror or exc}") from None
    timeout = STOP_WAIT_SECONDS
    deadline = time.monotonic() + timeout
    while request.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if request.exists():
        request.unlink(missing_ok=True)
        raise CommandError(f"{shown(args.db)} 上没有正在运行的县同步服务(或它没有在 {timeout:.0f} 秒内响应)")
    print("已请求县同步服务停止:它完成进行中的导入后退出")
    return 0


def _held_by_a_program(lock_file: Path) -> bool:
    """Whether a running program (the service, the window, another command) holds `lock_file` (a
    database's lock, or the lock of the service on a PostgreSQL county). Taken here, it is let go
    at once."""
    from app.store.locking import FileLock  # noqa: PLC0415

    lock = FileLock(lock_file)
    try:
        if not lock.acquire():
            return True
    except OSError:  # the lock file cannot even be opened (read-only folder): ask the service anyway
        return True
    lock.release()
    return False


def cmd_serve(args) -> int:
    from app.server.app import Limits  # noqa: PLC0415 - starlette/uvicorn only for the service

    if args.stop:
        return cmd_stop(args)

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CommandError("--tls-cert 和 --tls-key 要一起给出(证书和它的私钥)")
    for path in (args.tls_cert, args.tls_key):
        if path and not Path(path).is_file():
            raise CommandError(f"找不到文件 {path}")
    if (args.max_upload_mb <= 0 or args.uploads_per_minute < 0 or args.challenges_per_minute < 0
            or args.attachment_budget_mb <= 0):
        raise CommandError("--max-upload-mb 和 --attachment-budget-mb 应大于 0,"
                           "--uploads-per-minute、--challenges-per-minute 不能为负")
    if args.workers < 1:
        raise CommandError("--workers 至少为 1")
    if args.workers > 1 and not is_url(args.db):
        raise CommandError(f"--workers {args.workers}:{args.db} 是 SQLite 数据库文件,只能由一个进程写入,"
                           "县同步服务只能以一个工作进程运行。多个工作进程需要 PostgreSQL 县级数据库"
                           "(jiandang init postgresql://… --role county,见 docs/serve.md“县级服务器”);"
                           "或去掉 --workers")
    if args.upload_timeout <= 0 or args.min_upload_rate < 0 or args.uploads_per_address < 1 or args.max_uploads < 1:
        raise CommandError("--upload-timeout 应大于 0,--min-upload-rate 不能为负,"
                           "--uploads-per-address、--max-uploads 至少为 1")
    limits = Limits(max_upload=int(args.max_upload_mb * 1024 * 1024), uploads_per_minute=args.uploads_per_minute,
                    fetches_per_minute=args.uploads_per_minute, upload_seconds=args.upload_timeout,
                    min_rate=int(args.min_upload_rate * 1024), uploads_per_address=args.uploads_per_address,
                    max_uploads=args.max_uploads, challenges_per_minute=args.challenges_per_minute,
                    attachment_budget=int(args.attachment_budget_mb * 1024 * 1024))
    handler = _setup_logging(args.quiet)
    try:
        return _serve(args, limits)
    finally:  # the stderr handler is the command's own: it must not outlive it (nor write to a closed stream)
        logging.getLogger().removeHandler(handler)


def _serve(args, limits) -> int:
    given: dict[str, str] = {}

    def ask(login: str) -> str:  # kept for the workers (in memory only)
        given["passphrase"] = passphrase(f"操作员“{login}”的密码: ")
        return given["passphrase"]

    service_lock = _lock_service(args.db)
    try:
        store = open_store(args.db, args.operator, passphrase_for=ask)
        try:
            if args.workers > 1:
                _serve_workers(args, limits, store, given["passphrase"])
            else:
                _serve_one(args, limits, store)
        finally:
            store.close()
    finally:
        if service_lock is not None:
            service_lock.release()
    print("县同步服务已停止", file=sys.stderr)
    return 0


def _serve_one(args, limits, store) -> None:
    """The service in this process (a county database file; a PostgreSQL county with one worker)."""
    from app.server.app import SyncServer  # noqa: PLC0415

    try:
        with user_errors(StoreError):  # not a county database
            server = SyncServer(store, args.host, args.port, tls_cert=args.tls_cert, tls_key=args.tls_key,
                                limits=limits, access_log=not args.quiet)
    except OSError as exc:
        raise _listen_error(args, exc) from None
    _warn_without_tls(server.tls, args.host)
    server.run(lambda: print(f"县同步服务已启动:{server.url}(县级数据库 {shown(args.db)},站点 {store.site_id});"
                             f"按 Ctrl+C 或运行 jiandang serve {shown(args.db)} --stop 停止", flush=True),
               _say_stopping, stop_file=stop_file(args.db))
    if server.lost:  # exit status 1: a service manager (systemd Restart=on-failure, NSSM) starts it again
        raise CommandError(f"县同步服务与县级数据库 {shown(args.db)} 的连接中断了,服务已停止:"
                           "请确认 PostgreSQL 服务器正在运行,然后重新启动县同步服务")


def _lock_service(db):
    """On a PostgreSQL county, the service's own lock file (a database file has the store's lock):
    `serve --stop` looks for it, and a second service on this computer is refused."""
    if not is_url(db):
        return None
    from app.store.locking import FileLock  # noqa: PLC0415

    lock_file = _service_files(db)[1]
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file)
    if not lock.acquire():
        raise CommandError(f"这台电脑上已有县同步服务在 {shown(db)} 上运行:请先停止它"
                           f"(jiandang serve {shown(db)} --stop)")
    return lock


def _listen_error(args, exc: OSError) -> CommandError:
    if getattr(exc, "filename", None) or "PEM" in str(exc) or exc.__class__.__name__ == "SSLError":
        return CommandError(f"无法使用 TLS 证书或私钥({exc}):请检查 --tls-cert/--tls-key")
    return CommandError(f"无法在 {args.host}:{args.port} 上监听({exc.strerror or exc}):"
                        "端口可能已被占用,请换一个 --port")


def _warn_without_tls(tls: bool, host: str) -> None:
    if not tls and not _loopback(host):
        print("注意:没有使用 TLS(--tls-cert/--tls-key)。同步包本身是签名加密的,但局域网里的人能看到"
              "哪台电脑何时同步;建议启用 TLS(见 docs/serve.md)", file=sys.stderr)


def _say_stopping() -> None:
    print("正在停止县同步服务:不再接受新的连接,等待进行中的导入完成…", file=sys.stderr, flush=True)


def _serve_workers(args, limits, store, secret: str) -> None:
    """`serve --workers N` on a PostgreSQL county: the socket is bound here, N processes serve it
    (app.server.workers), each with its own connection, unlocked with the passphrase given here."""
    import ssl  # noqa: PLC0415

    from app.server import workers  # noqa: PLC0415
    from app.server.app import STOP_SIGNALS, bind  # noqa: PLC0415
    from app.server.receive import spool_folder, sweep  # noqa: PLC0415

    if store.role != "county":
        raise CommandError(f"同步服务只能在县级数据库上运行,{shown(args.db)} 是 {store.role} 数据库")
    if args.tls_cert:  # a bad certificate or key is said here, before any worker starts
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(args.tls_cert, args.tls_key)
        except OSError as exc:  # ssl.SSLError is one
            raise _listen_error(args, exc) from None
    try:
        sock = bind(args.host, args.port, reuse_port=workers.SPREAD)
    except OSError as exc:
        raise _listen_error(args, exc) from None
    host, port = sock.getsockname()[:2]
    url = f"{'https' if args.tls_cert else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"
    folder = spool_folder(store)
    if sweep(folder):
        logging.getLogger("app.server").info("已清理上次停止时留下的临时上传文件")
    _warn_without_tls(bool(args.tls_cert), args.host)
    options = {"host": args.host, "port": port, "tls_cert": args.tls_cert, "tls_key": args.tls_key, "limits": limits,
               "quiet": args.quiet, "spool_dir": folder}
    site = store.site_id
    try:
        workers.serve(args.workers, sock, _worker, (args.db, store.operator, secret, options),
                      on_ready=lambda: print(f"县同步服务已启动:{url}(县级数据库 {shown(args.db)},站点 {site},"
                                             f"{args.workers} 个工作进程);按 Ctrl+C 或运行 "
                                             f"jiandang serve {shown(args.db)} --stop 停止", flush=True),
                      on_stopping=_say_stopping, stop_file=stop_file(args.db), stop_signals=STOP_SIGNALS)
    except workers.WorkersFailed as exc:
        raise CommandError(f"县同步服务没有启动:{exc}") from None
    finally:
        sock.close()


def _worker(index: int, sock, stop, messages, db: str, operator: str, secret: str, options: dict) -> None:
    """One worker process of `serve --workers N` (started by app.server.workers with "spawn")."""
    import signal  # noqa: PLC0415

    from app.server.app import SyncServer  # noqa: PLC0415
    from app.store import Store  # noqa: PLC0415

    from app.server import workers  # noqa: PLC0415

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the server takes the stop signals: the supervisor stops us
    _setup_logging(options["quiet"])
    try:
        socks = workers.listeners(sock)  # on Linux a socket of its own on the port too: connections spread evenly
    except OSError as exc:
        messages.put(("failed", index, f"工作进程 {index} 无法在端口 {options['port']} 上监听:{exc.strerror or exc}"))
        return
    try:
        store = Store.open(db)
        store.unlock(operator, secret)
    except StoreError as exc:
        messages.put(("failed", index, str(exc)))
        return
    try:
        server = SyncServer(store, options["host"], options["port"], tls_cert=options["tls_cert"],
                            tls_key=options["tls_key"], limits=options["limits"], access_log=not options["quiet"],
                            sock=socks, spool_dir=options["spool_dir"], sweep_spool=False)

        def ready() -> None:
            logging.getLogger("app.server").info("工作进程 %d 已启动(进程号 %d)", index, os.getpid())
            messages.put(("ready", index))

        server.run(on_ready=ready, stop_when=stop.is_set)
    except Exception as exc:  # noqa: BLE001 - said to the supervisor, which stops the service
        logging.getLogger("app.server").exception("工作进程 %d 出错", index)
        messages.put(("failed", index, f"工作进程 {index} 出错:{type(exc).__name__}"))
        return
    finally:
        store.close()
    if server.lost:
        sys.exit(1)  # the supervisor starts this worker again: it connects anew


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def cmd_tls_cert(args) -> int:
    from app.server import tls  # noqa: PLC0415

    with user_errors(OSError, ValueError):
        fp = tls.write(args.out_cert, args.out_key, args.host, args.days)
    print(f"已生成证书 {args.out_cert} 和私钥 {args.out_key}(只留在本机,勿外传)")
    print(f"证书适用于:{'、'.join(args.host)};有效 {args.days} 天;指纹 {fp}")
    print(f"启动服务:jiandang serve 县级.db --host 0.0.0.0 --tls-cert {args.out_cert} --tls-key {args.out_key}")
    print(f"登记电脑时写入:jiandang enroll 县级.db ... --server https://{args.host[0]}:{protocol.DEFAULT_PORT} "
          f"--server-ca {args.out_cert}")
    return 0
