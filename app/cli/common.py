"""Helpers shared by CLI commands: opening and unlocking a database, printing, errors."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from app.core.clock import wall_time
from app.core.oserrors import os_reason
from app.store import Store, StoreError, UpgradeNeeded
from app.store.db import held_by_another

DEMO_OPERATOR = "演示"
DEMO_PASSPHRASE = "jiandang-demo"


class CommandError(Exception):
    """A command failed for a reason the user can act on; printed as 错误: ... with exit status 1."""


@contextlib.contextmanager
def user_errors(*kinds: type[BaseException]):
    """Errors of these kinds carry a message written for the user (Chinese, naming the file or
    record): inside the block they end the command as `错误: message`, exit status 1.

        with user_errors(StoreError, OSError):
            store = Store.open(path)
    """
    try:
        yield
    except kinds as exc:
        raise CommandError(str(exc)) from None


SECRET_WORDS = {"JIANDANG_ENROLLMENT_CODE": "登记码", "JIANDANG_NEW_PASSPHRASE": "新密码"}  # what the variable holds


def passphrase(prompt: str = "密码: ", env: str = "JIANDANG_PASSPHRASE") -> str:
    """The passphrase from the environment variable when set, else asked for without echo."""
    value = os.environ.get(env)
    if value is not None:
        return value
    what = SECRET_WORDS.get(env, "密码")
    if sys.stdin is None or not sys.stdin.isatty():
        raise CommandError(f"需要{what}:请设置环境变量 {env},或在终端中运行以输入{what}")
    try:
        return getpass.getpass(prompt)
    except EOFError:  # Ctrl+D (Ctrl+Z then Enter on Windows) at the prompt: nothing was typed
        raise CommandError(f"没有输入{what},命令未执行") from None


def _ask(login: str) -> str:
    return passphrase(f"操作员“{login}”的密码: ")


OPENED: list[Store] = []  # stores this command opened, for the damaged-record warning in main()


WAIT_DEFAULT = 60  # seconds a writing command waits for another program to close the database


def wait_limit() -> float:
    """How long a writing command waits for the database (JIANDANG_WAIT seconds, default 60)."""
    try:
        return max(0.0, float(os.environ.get("JIANDANG_WAIT", WAIT_DEFAULT)))
    except ValueError:
        return WAIT_DEFAULT


def _say_waiting(path):
    def say(limit: float) -> None:
        print(f"{path} 正被另一个建档程序(窗口或命令)使用:等它结束后再继续,最多等 {limit:g} 秒"
              "(按 Ctrl+C 取消)…", file=sys.stderr, flush=True)
    return say


def open_database(path, *, write: bool = True) -> Store:
    """Open a database for this command (not yet unlocked). A writing command waits its turn while
    another program has the file open (up to `wait_limit()`, saying so); a reading one opens beside
    it and reads one snapshot."""
    with user_errors(StoreError):
        if write:
            return Store.open(path, wait=wait_limit(), on_wait=_say_waiting(path))
        try:
            return Store.open(path, read_only=True)
        except UpgradeNeeded:  # an older schema: upgraded now unless another program has the file open
            if held_by_another(path):
                raise
            return Store.open(path)


def open_store(path, operator: str | None = None, *, write: bool = True,
               passphrase_for: Callable[[str], str] | None = None) -> Store:
    """Open and unlock a database; raises CommandError with a clear message. `write=False` for
    commands that only read (list, print, export-table, validate, worklist …): they run beside the
    window or a writing command. `passphrase_for(login)` gives the passphrase (default: `passphrase`,
    from JIANDANG_PASSPHRASE or asked for)."""
    store = open_database(path, write=write)
    if store.read_only and _data_upgrade_pending(store):  # the first command after an upgrade writes it once,
        try:  # unless another program has the database open: that one upgrades it at its own unlock
            writer = Store.open(path)
        except StoreError:
            writer = None
        if writer is not None:
            store.close()
            store = writer
    try:
        operators = store.operators()
        login = operator or os.environ.get("JIANDANG_OPERATOR") or operators[0]
        store.unlock(login, (passphrase_for or _ask)(login))
        if not store.read_only:  # a reader beside a writer leaves data upgrades to the writer
            _migrate_data(store, path)
        store.snapshot()
    except StoreError as exc:
        store.close()
        raise CommandError(str(exc)) from None
    except BaseException:
        store.close()
        raise
    OPENED.append(store)
    return store


# Python and orjson write floats alike except below 1e-4, where Python writes an exponent of two
# digits (1e-05, 1e-07) and orjson a fixed point (0.00001) or an exponent of one digit (1e-7): found
# in orjson's output as "0.0000" or a number ending in e-<digit> (a text holding those only takes
# the standard library's path, which is as exact and slower)
_SMALL_EXPONENT = re.compile(rb"e-[0-9](?:,?\n|$)")


def _json_text(item) -> str:
    """`json.dumps(item, ensure_ascii=False, indent=2)`, byte for byte, made by orjson (several times
    faster). What orjson would write differently goes to the standard library: integers beyond 64
    bits and non-string keys (orjson refuses them) and floats below 1e-4."""
    try:
        out = orjson.dumps(item, option=orjson.OPT_INDENT_2)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(item, ensure_ascii=False, indent=2)
    if b"0.0000" in out or _SMALL_EXPONENT.search(out):
        return json.dumps(item, ensure_ascii=False, indent=2)
    return out.decode("utf-8")


def _data_upgrade_pending(store: Store) -> bool:
    from app.services import monitoring

    try:
        return store.upgrade_pending() or monitoring.migration_pending(store)
    except StoreError:
        return False  # not a database of this program: the unlock says so


def _migrate_data(store: Store, path) -> None:
    """Data migrations that need the data key (sealed records), once per dictionary version: 户类型 of
    households entered before issue #20. A failure rolls back and leaves the database as it was."""
    from app.services import monitoring

    try:
        changed = monitoring.ensure_migrated(store)
    except Exception as exc:  # noqa: BLE001 - the data stays as it was (one transaction)
        raise StoreError(f"{path}:升级户类型时出错({exc}),数据库未改动。请备份后联系县扶贫办") from None
    if changed:
        print(f"已为 {changed} 户已脱贫户补记户类型“脱贫户”(数据升级,只做一次)", file=sys.stderr)


def print_json(obj) -> None:
    """What `json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)` and a newline print. A list, or
    any other iterator (households read a batch at a time), is written one item at a time, so a
    county's 50,000 households are never held as one text."""
    if not isinstance(obj, (list, tuple, Iterator)):
        sys.stdout.write(_json_text(obj) + "\n")
        return
    write = sys.stdout.write
    first = True
    for item in obj:
        write(("[\n  " if first else ",\n  ") + _json_text(item).replace("\n", "\n  "))
        first = False
    write("[]\n" if first else "\n]\n")


def local_time(hlc: str) -> str:
    return dt.datetime.fromtimestamp(wall_time(hlc)).strftime("%Y-%m-%d %H:%M:%S")


def progress_printer(label: str):
    """A progress callback that redraws one line on a terminal and stays quiet otherwise."""
    if sys.stderr is None or not sys.stderr.isatty():  # None in the windowed build
        return None

    def report(done: int, total: int) -> None:
        sys.stderr.write(f"\r{label} {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def read_user_file(path, read, *, noun: str, wanted: str):
    """`read(Path(path))`, with the file errors people make said in Chinese (a CommandError): `noun`
    names the file in 找不到…, `wanted` what to give instead of a folder."""
    try:
        return read(Path(path))
    except FileNotFoundError:
        raise CommandError(f"找不到{noun} {path}:请核对文件名和所在文件夹") from None
    except IsADirectoryError:
        raise CommandError(f"{path} 是一个文件夹,请给出{wanted}") from None
    except PermissionError:
        raise CommandError(f"没有读取 {path} 的权限") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path} 不是 UTF-8 编码的文本文件") from None
    except OSError as exc:
        raise CommandError(f"无法读取 {path}:{os_reason(exc)}") from None


def read_recovery_private_key(path: str):
    """The county's recovery private key (the PEM file `init` wrote beside a database), or a
    CommandError saying in Chinese why the file cannot be used."""
    from app.store import crypto  # noqa: PLC0415

    data = read_user_file(path, Path.read_bytes, noun="恢复私钥文件", wanted="恢复私钥文件(.recovery-key.pem)")
    try:
        return crypto.load_x25519_private(data)
    except (ValueError, TypeError):
        raise CommandError(f"{path} 不是恢复私钥:应为建库时写出的 .recovery-key.pem 文件"
                           "(以 -----BEGIN PRIVATE KEY----- 开头)") from None


def read_json_file(path: str):
    if path == "-":
        text = sys.stdin.read()
    else:
        text = read_user_file(path, lambda p: p.read_text(encoding="utf-8-sig"), noun="文件", wanted="JSON 文件")
    return parse_json_text(text, path)


MAX_INT_DIGITS = 20  # longer integers are no amount, count or year: refused while reading


def _refuse_constant(name: str):
    raise ValueError(f"JSON 中不能写 {name}:请填一个普通数字,或留空")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"JSON 中有 {len(text.lstrip('-'))} 位的整数“{text[:12]}…”:位数太多,请核对")
    return int(text)


def parse_json_text(text: str, path: str = "JSON"):
    """JSON as the program reads it from a user: a clear refusal (CommandError) for a syntax error,
    nesting deeper than Python can follow, NaN/Infinity and integers of absurd length."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path} 第 {exc.lineno} 行第 {exc.colno} 列:JSON 格式错误(请检查这里的引号、逗号和括号)") from None
    except RecursionError:
        raise CommandError(f"{path}:JSON 的括号嵌套层数太多,不是户档文件(见 docs/json.md)") from None
    except ValueError as exc:
        raise CommandError(f"{path}:{exc}") from None
