"""`jiandang county …`: running a county's database. `county migrate` moves the county database from
its SQLite file onto a PostgreSQL server (app/services/county_move.py; docs/cli.md, docs/serve.md)."""

from __future__ import annotations

import os

from app.cli.common import passphrase, progress_printer, user_errors
from app.store import StoreError


def register(sub) -> None:
    p = sub.add_parser("county", help="县级数据库:迁移到 PostgreSQL 服务器")
    county = p.add_subparsers(dest="county_command", metavar="命令")
    m = county.add_parser("migrate", help="把县级数据库(SQLite 文件)原样迁移到一个空的 PostgreSQL 数据库,并逐表核对")
    m.add_argument("source", metavar="SQLITE_DB", help="县级数据库文件(.db)")
    m.add_argument("url", metavar="POSTGRESQL_URL", help="空的 PostgreSQL 数据库地址:postgresql://用户名:密码@服务器:5432/数据库名")
    m.add_argument("--operator", help="用于解锁和核对的操作员(默认第一个操作员)")
    m.set_defaults(func=cmd_migrate)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def cmd_migrate(args) -> int:
    from app.services import county_move  # noqa: PLC0415

    with user_errors(StoreError):
        county_move.check_source(args.source)  # a missing file is said before the passphrase is asked
    operator = args.operator or os.environ.get("JIANDANG_OPERATOR")
    secret = passphrase(f"操作员“{operator}”的密码: " if operator else "操作员密码: ")
    printers: dict = {}

    def progress(stage: str, done: int, total: int) -> None:  # one redrawn line per stage on a terminal
        if stage not in printers:
            printers[stage] = progress_printer(stage)
        if printers[stage]:
            printers[stage](done, total)

    with user_errors(StoreError):
        report = county_move.migrate(args.source, args.url, operator=operator, passphrase=secret, progress=progress)
    url = report.destination.masked
    print(f"已把县级数据库 {report.source} 迁移到 {url}:"
          f"{len(report.tables)} 张表共 {report.rows()} 行,逐表核对行数和内容摘要(SHA-256)一致;"
          f"用操作员密码打开后 {report.records} 条记录、{report.changes} 条修改记录全部解密并核对通过"
          f"(用时 {report.seconds:.1f} 秒)。")
    print("接下来(以下地址中 *** 处填写数据库密码):" if "***" in url else "接下来:")
    print(f"  1. 同步服务改用新地址启动:jiandang serve {url} …(见 docs/serve.md)")
    print(f"  2. 县里各位同事在窗口的“服务器上的县级库…”或命令中改用这个地址;U 盘同步包导入:jiandang sync import {url} …")
    kept = ("已标记为已迁移:窗口和命令不再写入它" if report.marked else
            "未能在其中标记已迁移(文件只读?):请不要再在其中修改,修改不会出现在 PostgreSQL 中")
    print(f"  3. 原文件 {report.source} 保留作迁移前的备份,{kept};"
          f"以后的备份:jiandang backup {url} --to 备份文件夹(见 docs/backup.md)")
    return 0
