"""Entry point of the `jiandang` command. Each command group lives in its own module with a
`register(subparsers)` function; list a new command with its module in COMMANDS."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from pathlib import Path

from app import __version__
from app.cli import common, console, zh_argparse
from app.cli.common import CommandError
from app.core.text import printable
from app.store import StoreError, is_url
from app.store.crypto import DecryptionError

# Each command and the module that registers it (listed in the order `jiandang --help` shows them).
# A command line loads only its own command's module: `jiandang sync import …`, once per USB stick
# at the county, starts without the modules of printing, attachments, tables and the rest
# (tests/test_cli.py checks this list against what each module registers).
COMMANDS = {
    **dict.fromkeys(["init", "add", "list", "log", "validate", "operator", "recover", "demo"], "app.cli.core_commands"),
    **dict.fromkeys(["propose", "proposals", "advance", "worklist", "exit-check", "notice-period"],
                    "app.cli.proposal_commands"),
    "print": "app.cli.print_commands",
    **dict.fromkeys(["check", "backup", "restore", "selftest"], "app.cli.maintenance_commands"),
    **dict.fromkeys(["sync", "enroll", "devices", "revoke", "conflicts"], "app.cli.sync_commands"),
    **dict.fromkeys(["serve", "tls-cert"], "app.cli.server_commands"),
    **dict.fromkeys(["export-table", "import-table"], "app.cli.table_commands"),
    "reference": "app.cli.reference_commands",
    **dict.fromkeys(["attach", "attachments"], "app.cli.attachment_commands"),
    "county": "app.cli.county_commands",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every command's, or only `command`'s when it names one."""
    zh_argparse.install()
    parser = argparse.ArgumentParser(
        prog="jiandang",
        description="建档:精准扶贫建档立卡离线管理系统。不带参数运行时打开窗口。",
    )
    parser.add_argument("--version", action="version", version=f"jiandang {__version__}", help="显示版本号并退出")
    sub = parser.add_subparsers(dest="command", metavar="命令")
    for name in [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _explain_databases(parser)
    return parser


FILE_ONLY = {"backup", "restore", "demo"}  # commands that work on the file itself (docs/cli.md)


def _explain_databases(parser: argparse.ArgumentParser, command: str = "") -> None:
    """Every command's database argument says what it is in --help (it was a bare `db` under 参数)."""
    for action in parser._actions:  # argparse keeps subcommands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _explain_databases(child, command or name)
        elif not action.option_strings and action.help is None and action.dest == "db":
            action.help = ("数据库文件,如 台账.db" if command in FILE_ONLY else
                           "数据库文件,如 台账.db;县级数据库也可以是 PostgreSQL 地址 postgresql://用户@主机/库名")


def no_desktop() -> bool:
    """On Linux without an X11 or Wayland display (an SSH session, a server) and no Qt platform chosen,
    Qt would end the program with its own English lines and no window: say it in Chinese instead."""
    return (sys.platform.startswith("linux") and not os.environ.get("QT_QPA_PLATFORM")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"))


def open_window(argv: list[str]) -> int:
    if no_desktop():
        print("错误:这台电脑当前没有图形桌面(未设置 DISPLAY 或 WAYLAND_DISPLAY),无法打开窗口。"
              "请在桌面中运行 jiandang;没有桌面时可用命令,见 jiandang --help", file=sys.stderr)
        return 1
    try:
        from app.ui.app import run  # noqa: PLC0415 - Qt is only loaded for the window
    except ImportError as exc:
        print(f"无法打开窗口({exc})。可用的命令见 jiandang --help", file=sys.stderr)
        return 1
    return run(argv)


def _is_database_argument(first: str, commands) -> bool:
    """`jiandang 台账.db` opens the window on that file: anything that is not a command name and
    names an existing file (or ends in .db) is taken as a database path."""
    if first in commands:
        return False
    return first.lower().endswith(".db") or is_url(first) or Path(first).is_file()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    console.fit()  # a cp936 console or redirected output gets √ for ✓, never a UnicodeEncodeError
    if not argv or (argv[0] not in ("-h", "--help", "--version") and argv[0].startswith("-")):
        return open_window(argv)
    if _is_database_argument(argv[0], COMMANDS):
        return open_window(argv)
    parser = build_parser(argv[0])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    common.OPENED.clear()
    try:
        status = int(args.func(args) or 0)
    except CommandError as exc:
        print(f"错误:{printable(exc)}", file=sys.stderr)
        status = 1
    except DecryptionError as exc:
        print(f"错误:{exc}。请运行 jiandang check 查看损坏的记录,并用 jiandang restore 从最近的备份恢复",
              file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("已取消", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `jiandang list DB | head`: the reader went away; not an error of ours
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except StoreError as exc:  # a store refusal that no command turned into its own words
        print(f"错误:{printable(exc)}", file=sys.stderr)
        status = 1
    except Exception as exc:  # noqa: BLE001 - the one place no traceback gets past
        print(f"错误:{unexpected(exc, args.command)}", file=sys.stderr)
        status = 1
    for store in common.OPENED:
        summary = store.damaged_summary()
        if summary:
            print(f"错误:{summary}", file=sys.stderr)
            status = status or 1
    return status


def unexpected(exc: BaseException, command: str | None = None) -> str:
    """A sentence for an error no command foresaw; the trace goes to the log file, not the screen."""
    import logging  # noqa: PLC0415
    import sqlite3  # noqa: PLC0415

    where = None
    with contextlib.suppress(Exception):
        from app import settings  # noqa: PLC0415

        where = settings.setup_logging()
    logging.getLogger("app.cli").error("unexpected error in %s", command or "?", exc_info=exc)
    if isinstance(exc, sqlite3.OperationalError) and any(w in str(exc).lower() for w in ("locked", "busy")):
        return ("数据库正被另一个建档程序写入,这一步没能完成(数据没有问题):请稍后再运行此命令")
    if isinstance(exc, MemoryError):
        return "内存不足,命令未完成:请关闭其他程序后再试,或分批处理"
    if isinstance(exc, OSError):
        return f"读写文件时出错({printable(exc.strerror or exc)}),命令未完成:请检查文件、文件夹和磁盘空间后再试"
    log_note = f"详细情况已写入日志 {where}," if where else ""
    return (f"程序出了意外的问题({type(exc).__name__}),命令未完成;已保存的数据不受影响,未完成的修改已撤销。"
            f"{log_note}请把它交给县扶贫办")


if __name__ == "__main__":
    sys.exit(main())
