"""What Windows does differently, tested on any system: a log file that another process holds
open cannot be renamed at rollover, key files must never replace an existing file, and the weak
test key-derivation profile is not reachable from outside the test suite."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import settings
from app.cli.main import main
from app.store import crypto
from tests.conftest import PASSPHRASE

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    yield tmp_path / "home"
    settings.close_logging()


def _handler(path: Path, max_bytes: int = 2000) -> logging.Handler:
    handler = settings.SharedRotatingFileHandler(path, maxBytes=max_bytes, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _record(text: str) -> logging.LogRecord:
    return logging.LogRecord("app.test", logging.INFO, __file__, 1, text, None, None)


def _all_lines(folder: Path) -> list[str]:
    return [line for p in sorted(folder.glob("*.log*")) for line in p.read_text(encoding="utf-8").splitlines()]


def test_window_cli_and_serve_each_write_their_own_log(home):
    names = []
    for program in settings.PROGRAMS:
        names.append(settings.setup_logging("INFO", program=program).name)
    assert names == ["jiandang-window.log", "jiandang-cli.log", "jiandang-serve.log"]
    with pytest.raises(ValueError):
        settings.setup_logging(program="other")


def test_a_rollover_refused_by_another_process_loses_no_record(tmp_path, monkeypatch):
    """On Windows, renaming a file another process holds open fails with PermissionError: the
    handler keeps writing to the current file and tries the rollover again later."""
    path = tmp_path / "jiandang-cli.log"
    handler = _handler(path)
    real_rename = os.rename

    def refused(src, dst, *a, **kw):
        if Path(src).name.startswith("jiandang-cli.log"):
            raise PermissionError(13, "另一个程序正在使用此文件,进程无法访问。", str(src))
        return real_rename(src, dst, *a, **kw)

    monkeypatch.setattr(os, "rename", refused)
    errors = []
    monkeypatch.setattr(handler, "handleError", lambda record: errors.append(record))
    for i in range(100):
        handler.emit(_record(f"第 {i} 行 " + "x" * 40))
    handler.close()
    assert errors == []  # no "--- Logging error ---" and no lost record
    assert [line.split()[1] for line in _all_lines(tmp_path)] == [str(i) for i in range(100)]
    monkeypatch.setattr(os, "rename", real_rename)
    handler = _handler(path)
    handler._retry_at = 0  # a minute later: the rename works again
    handler.emit(_record("after"))
    handler.close()
    assert (tmp_path / "jiandang-cli.log.1").exists()


def test_a_file_rotated_by_another_process_is_reopened(tmp_path):
    """Two processes write one log; when the other one rotates it, this one continues in the new
    current file instead of writing on into the rotated one."""
    path = tmp_path / "jiandang-cli.log"
    ours, theirs = _handler(path, max_bytes=10_000_000), _handler(path, max_bytes=10_000_000)
    ours.emit(_record("ours 1"))
    theirs.emit(_record("theirs 1"))
    theirs.doRollover()  # the other process rotates
    theirs.emit(_record("theirs 2"))
    ours.emit(_record("ours 2"))
    ours.close()
    theirs.close()
    assert path.read_text(encoding="utf-8").splitlines() == ["theirs 2", "ours 2"]
    assert (tmp_path / "jiandang-cli.log.1").read_text(encoding="utf-8").splitlines() == ["ours 1", "theirs 1"]


def test_init_does_not_overwrite_an_existing_recovery_key(tmp_path, monkeypatch, capsys):
    """A recovery key left beside an old database of the same name may be its only copy."""
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    db = tmp_path / "村.db"
    key = tmp_path / "村.db.recovery-key.pem"
    key.write_bytes(b"the only copy of an older database's key")
    assert main(["init", str(db), "--role", "village", "--site-name", "甲"]) == 1
    err = capsys.readouterr().err
    assert "已存在" in err and "不会覆盖" in err and "Traceback" not in err
    assert key.read_bytes() == b"the only copy of an older database's key"
    assert not db.exists()
    with pytest.raises(FileExistsError):
        crypto.write_new_key_file(key, b"new")
    assert key.read_bytes() == b"the only copy of an older database's key"


def test_the_environment_cannot_weaken_key_derivation(tmp_path):
    """The program has no switch for a cheaper Argon2id profile: JIANDANG_KDF=fast, as a user might
    set it, changes nothing. (The test suite lowers it for its own processes only, through
    tests/support.)"""
    code = ("import sys; from app.store import crypto; "
            "print(crypto.new_wrap_kdf() == crypto.DEFAULT_KDF)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(JIANDANG_KDF="fast", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
    assert not hasattr(crypto, "FAST_KDF") and not hasattr(crypto, "kdf_from_environment")


def test_program_processes_started_by_the_tests_get_the_test_profile(tmp_path):
    """The hooks reach subprocesses through tests/support/sitecustomize.py (PYTHONPATH set by conftest)."""
    code = "from app.store import crypto; print(crypto.new_wrap_kdf().memory_kib)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "8192", out.stderr
