"""Two programs on one database: reading commands run beside a writer (the window, or a writing
command in another process); a writing command waits its turn, saying so, instead of failing at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from app.cli.main import main
from app.services import demo, households
from app.store import Store
from tests import factories
from tests.conftest import PASSPHRASE
from tests.support.jiandang_test_hooks import subprocess_env

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from app.store import Store
    from app.services import households
    store = Store.open(sys.argv[1])
    store.unlock("admin", sys.argv[2])
    Path(sys.argv[3]).write_text("open")
    end = time.time() + float(sys.argv[4])
    release = Path(sys.argv[3] + ".release")
    i = 0
    while time.time() < end and not release.exists():  # the window saving now and then, until closed
        households.save(store, {"village_code": "522634101201", "head_name": f"窗口户{i}"}, allow_errors=True)
        i += 1
        time.sleep(0.05)
    store.close()
    Path(sys.argv[3] + ".closed").write_text("closed")
""")


@pytest.fixture
def village_db(make_store, monkeypatch):
    s = make_store("村.db")
    demo.install_reference_data(s)
    demo.fill(s, per_village=3)
    path = s.path
    s.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    return path


def _hold(db: Path, tmp_path: Path, seconds: float) -> subprocess.Popen:
    ready = tmp_path / "holding"
    env = subprocess_env()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), PASSPHRASE, str(ready), str(seconds)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(300):
        if ready.exists() or proc.poll() is not None:
            break
        time.sleep(0.05)
    assert ready.exists(), proc.communicate()
    return proc


def test_reading_commands_run_beside_a_writer_and_a_writing_command_waits_its_turn(village_db, tmp_path, capsys,
                                                                                   monkeypatch):
    proc = _hold(village_db, tmp_path, 120)
    try:
        assert main(["list", str(village_db)]) == 0
        listed = capsys.readouterr().out
        assert "户编号" in listed and listed.count("\n") >= 4
        assert main(["print", "card", str(village_db), "--village", "522634101201", "--out", str(tmp_path / "卡.pdf")]) == 0
        assert (tmp_path / "卡.pdf").read_bytes()[:4] == b"%PDF"
        assert main(["export-table", str(village_db), "--village", "522634101201", "--out", str(tmp_path / "表.xlsx")]) == 0
        assert (tmp_path / "表.xlsx").stat().st_size > 0
        assert main(["validate", str(village_db)]) in (0, 1)
        assert main(["worklist", str(village_db)]) == 0
        capsys.readouterr()
        assert main(["check", str(village_db)]) == 0
        out = capsys.readouterr().out
        assert "正由另一个建档程序使用" in out and "数据库完好" in out and "恢复" not in out
        assert not (tmp_path / "holding.closed").exists()  # the writer was busy all along
        doc = tmp_path / "新户.json"
        doc.write_text(json.dumps(factories.household(head="等候户", seq=40), ensure_ascii=False), encoding="utf-8")
        monkeypatch.setenv("JIANDANG_WAIT", "30")
        started = time.monotonic()
        # the window is closed 1.5 s after the command began to wait
        threading.Timer(1.5, lambda: (tmp_path / "holding.release").write_text("close")).start()
        assert main(["add", str(village_db), "--json", str(doc)]) == 0
        waited = time.monotonic() - started
        captured = capsys.readouterr()
        assert "最多等 30 秒" in captured.err and "新增" in captured.out
        # it went ahead once the writer had closed the database (not before)
        assert (tmp_path / "holding.closed").exists() and waited > 1.4
    finally:
        proc.kill()
        proc.communicate()
    with Store.open(village_db) as s:
        s.unlock("admin", PASSPHRASE)
        names = [d["head_name"] for d in households.documents(s)]
    assert "等候户" in names and any(n.startswith("窗口户") for n in names)


def test_a_writing_command_gives_up_after_the_limit_it_stated(village_db, tmp_path, capsys, monkeypatch):
    proc = _hold(village_db, tmp_path, 20)
    try:
        monkeypatch.setenv("JIANDANG_WAIT", "1")
        doc = tmp_path / "新户.json"
        doc.write_text(json.dumps(factories.household(head="等候户", seq=40), ensure_ascii=False), encoding="utf-8")
        assert main(["add", str(village_db), "--json", str(doc)]) == 1
        err = capsys.readouterr().err
        assert "最多等 1 秒" in err and "等了 1 秒仍未结束" in err and "list" in err and "Traceback" not in err
    finally:
        proc.kill()
        proc.communicate()
