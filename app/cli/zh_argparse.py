"""Chinese for the messages argparse itself prints (usage, help headings, usage errors).

argparse looks its texts up through gettext at the moment it prints them (the module-level names
`_` and `ngettext`); `install()` points those names at this table, so `jiandang --help` and a
mistyped command read in the same language as the rest of the program."""

from __future__ import annotations

import argparse

TEXTS = {
    "usage: ": "用法:",
    "positional arguments": "参数",
    "options": "选项",
    "optional arguments": "选项",
    "show this help message and exit": "显示本帮助并退出",
    "show program's version number and exit": "显示版本号并退出",
    "%(prog)s: error: %(message)s\n": "%(prog)s:错误:%(message)s\n",
    "the following arguments are required: %s": "缺少必需的参数:%s",
    "invalid choice: %(value)r (choose from %(choices)s)": "无效的选择 %(value)r(可选:%(choices)s)",
    "unrecognized arguments: %s": "无法识别的参数:%s",
    "argument %(argument_name)s: %(message)s": "参数 %(argument_name)s:%(message)s",
    "not allowed with argument %s": "不能与参数 %s 同时使用",
    "one of the arguments %s is required": "必须给出参数 %s 中的一个",
    "ambiguous option: %(option)s could match %(matches)s": "选项不明确:%(option)s 可能是 %(matches)s",
    "expected one argument": "需要一个值",
    "expected at most one argument": "最多一个值",
    "expected at least one argument": "至少需要一个值",
    "ignored explicit argument %r": "忽略了多余的值 %r",
}
PLURALS = {"expected %s argument": "需要 %s 个值"}
TYPE_WORDS = {"int": "整数", "float": "数字"}  # what a value given with `type=int` or `type=float` must be


class _ValueMessage(str):
    """argparse formats "invalid %(type)s value: %(value)r" with the Python name of the type (int,
    float) and the value typed: this says instead what the value should be, in Chinese, and quotes
    the value as typed: 应为整数,而不是“abc”."""

    def __mod__(self, args):
        word = TYPE_WORDS.get(args.get("type"), "有效的值")
        return f"应为{word},而不是“{args.get('value')}”"


INVALID_VALUE = "invalid %(type)s value: %(value)r"


def _gettext(text: str) -> str:
    if text == INVALID_VALUE:
        return _ValueMessage(text)
    return TEXTS.get(text, text)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return PLURALS.get(singular, singular if n == 1 else plural)


def install() -> None:
    argparse._ = _gettext  # type: ignore[attr-defined]
    argparse.ngettext = _ngettext  # type: ignore[attr-defined]
