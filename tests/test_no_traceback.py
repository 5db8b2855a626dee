"""No command shows a Python traceback: every command is run with bad arguments (a missing file, a
file that is no database, a folder, a real database with junk options) and its output is checked.
The one top-level handler in app/cli/main.py turns what no command foresaw into a sentence and keeps
the trace in the log file."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from app.cli import main as cli
from tests.conftest import PASSPHRASE

SKIP_WITH_A_REAL_DATABASE = {("serve",)}  # it would serve until stopped


def _leaves(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _leaves(sub, prefix + (name,))
            return
    yield prefix, parser


def _argv(path, parser, junk) -> list[str]:
    argv = []
    for action in parser._actions:
        if action.option_strings:
            if action.required:
                argv += [action.option_strings[0], junk]
        elif action.nargs != 0 and not isinstance(action, argparse._SubParsersAction):
            argv.append(junk)
    return list(path) + argv


COMMANDS = list(_leaves(cli.build_parser()))


def _run(argv) -> tuple[object, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = cli.main(argv)
        except SystemExit as exc:  # argparse: usage errors, --help
            result = exc.code
    return result, out.getvalue() + err.getvalue()


@pytest.fixture
def places(tmp_path, store, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("JIANDANG_WAIT", "0")
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    garbage = tmp_path / "垃圾.db"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\xff" * 3000)
    text = tmp_path / "文本.db"
    text.write_text("不是数据库", encoding="utf-8")
    real = store.path
    store.close()
    return {"missing": str(tmp_path / "没有.db"), "garbage": str(garbage), "text": str(text),
            "folder": str(tmp_path), "real": str(real)}


@pytest.mark.parametrize("path", [c[0] for c in COMMANDS], ids=[" ".join(c[0]) for c in COMMANDS])
def test_every_command_with_bad_arguments_answers_without_a_traceback(path, places):
    parser = dict(COMMANDS)[path]
    for kind, junk in places.items():
        if kind == "real" and path in SKIP_WITH_A_REAL_DATABASE:
            continue
        for argv in (_argv(path, parser, junk), list(path) + [junk, "--no-such-option"], list(path)):
            result, output = _run(argv)
            assert "Traceback" not in output, (argv, output[-2000:])
            assert result in (0, 1, 2, 3, 130), (argv, result, output[-500:])


def test_an_unforeseen_error_becomes_a_sentence_and_its_trace_goes_to_the_log(places, monkeypatch, tmp_path):
    from app.cli import core_commands

    def broken(args):
        raise KeyError("内部")

    monkeypatch.setattr(core_commands, "cmd_list", broken)
    result, output = _run(["list", places["real"]])
    assert result == 1 and "Traceback" not in output
    assert "程序出了意外的问题(KeyError)" in output and "日志" in output
    [log_file] = (tmp_path / "home" / "logs").glob("jiandang*.log")
    log = log_file.read_text(encoding="utf-8")
    assert "Traceback" in log and "KeyError" in log
