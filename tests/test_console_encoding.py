"""The commands on a Chinese Windows console: output redirected to a file is encoded in cp936 (GBK),
which has no '✓', '✗', '›' or '−'. Every command must still finish and write readable Chinese."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import console
from app.cli.main import main
from app.services import demo
from app.store import Store
from tests.conftest import PASSPHRASE
from tests.factories import household

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def village(tmp_path, monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    db = tmp_path / "村 数据.db"
    assert main(["init", str(db), "--role", "village", "--site-name", "村站"]) == 0
    with Store.open(db) as s:
        s.unlock("admin", PASSPHRASE)
        demo.install_reference_data(s)
        s.set_poverty_line(2025, 4000)
    src = tmp_path / "h.json"
    src.write_text(json.dumps([household(dilapidated="0")], ensure_ascii=False), encoding="utf-8")
    assert main(["add", str(db), "--json", str(src)]) == 0
    return db


COMMANDS = [
    ("exit-check", "{db}", "--household", "5226341012010001", "--food", "yes", "--clothing", "yes"),  # ✓ ✗
    ("list", "{db}"),
    ("proposals", "{db}"),
    ("worklist", "{db}"),
    ("conflicts", "{db}"),
    ("sync", "export", "{db}", "--to", "{usb}"),  # not enrolled: the message names 新建数据库 › …
    ("log", "{db}"),
    ("--help",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_commands_write_to_a_cp936_file_without_an_encoding_error(village, tmp_path, command):
    usb = tmp_path / "U盘"
    usb.mkdir(exist_ok=True)
    argv = [a.format(db=village, usb=usb) for a in command]
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    env = {**os.environ, "PYTHONIOENCODING": "cp936", "JIANDANG_PASSPHRASE": PASSPHRASE}
    with open(out, "wb") as o, open(err, "wb") as e:  # redirected, as `jiandang exit-check … > out.txt`
        proc = subprocess.run([sys.executable, "-m", "app", *argv], stdout=o, stderr=e, cwd=ROOT, env=env,
                              timeout=120)
    stdout, stderr = out.read_bytes().decode("cp936"), err.read_bytes().decode("cp936")
    assert "Traceback" not in stderr and "UnicodeEncodeError" not in stderr, stderr
    assert proc.returncode in (0, 1), (proc.returncode, stderr)
    assert stdout.strip() or stderr.strip()  # something readable was written
    if command[0] == "exit-check":
        assert proc.returncode == 0 and "达到退出标准" in stdout
        assert "  √ " in stdout  # ✓ as GBK's √
    if command[0] == "sync":
        assert proc.returncode == 1 and "新建数据库 ＞ 用县扶贫办发的登记包新建" in stderr


def test_a_character_outside_gbk_becomes_its_nearest_or_an_escape():
    import io

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp936")
    console.fit([stream])
    stream.write("✓ 通过 ✗ 未通过 › 下一步 − 3 𠮷")
    stream.flush()
    assert raw.getvalue().decode("cp936") == "√ 通过 × 未通过 ＞ 下一步 － 3 \\U00020bb7"
