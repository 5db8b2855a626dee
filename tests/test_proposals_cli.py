"""The procedure commands as a user drives them: propose, advance, proposals, worklist, exit-check."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from app.cli.main import main
from app.services import demo
from app.store import Store
from tests.conftest import PASSPHRASE
from tests.factories import household


def ago(days):
    return (dt.date.today() - dt.timedelta(days=days)).isoformat()


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)


def make_db(tmp_path, role, name=None):
    path = tmp_path / (name or f"{role}.db")
    assert main(["init", str(path), "--role", role, "--site-name", f"{role}站"]) == 0
    with Store.open(path) as s:
        s.unlock("admin", PASSPHRASE)
        demo.install_reference_data(s)
        s.set_poverty_line(2025, 4000)
    return path


def run(capsys, *args):
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def village(tmp_path, env, capsys):
    db = make_db(tmp_path, "village")
    src = tmp_path / "h.json"
    src.write_text(json.dumps([household(dilapidated="0"), household("东方明", "西门兰", seq=4, incomes=[])],
                              ensure_ascii=False), encoding="utf-8")
    assert run(capsys, "add", db, "--json", src)[0] == 0
    return db


def test_propose_advance_and_list_by_stage(village, capsys):
    code, out, err = run(capsys, "propose", village, "--household", "5226341012010001", "--kind", "exit",
                         "--reason", "务工收入稳定", "--food", "yes", "--clothing", "是", "--date", ago(25))
    assert code == 0, err
    pid = out.split("\t")[0]
    assert "等待村级评议" in out
    code, out, err = run(capsys, "advance", village, "--proposal", pid[:8], "--stage", "村级评议", "--outcome", "pass",
                         "--meeting-date", ago(20), "--attendance", "30", "--votes-for", "28", "--household-signed")
    assert code == 0, err
    assert "等待村内公示" in out
    code, out, err = run(capsys, "proposals", village, "--stage", "notice", "--json")
    data = json.loads(out)
    assert [p["id"] for p in data] == [pid] and data[0]["waiting_for"] == "notice"
    assert data[0]["exit_assessment"]["passed"] is True and data[0]["review_votes_for"] == 28
    assert json.loads(run(capsys, "proposals", village, "--stage", "township", "--json")[1]) == []
    # out of order, then the wrong role: refused with the reason, exit status 1
    code, out, err = run(capsys, "advance", village, "--proposal", pid, "--stage", "county", "--outcome", "pass")
    assert code == 1 and "正等待“村内公示”" in err
    code, out, err = run(capsys, "advance", village, "--proposal", pid, "--stage", "notice", "--outcome", "pass",
                         "--notice-start", ago(10), "--notice-end", ago(6))
    assert code == 1 and "村内公示至少 7 天" in err
    code, out, err = run(capsys, "advance", village, "--proposal", pid, "--stage", "notice", "--outcome", "pass",
                         "--notice-start", ago(10), "--notice-end", ago(4))
    assert code == 0, err
    code, out, err = run(capsys, "advance", village, "--proposal", pid, "--stage", "township", "--outcome", "pass")
    assert code == 1 and "“乡级初核”只能由乡级数据库办理,本数据库是村级" in err
    code, out, err = run(capsys, "proposals", village, "--household", "5226341012010001")
    assert code == 0 and "等待乡级初核" in out and "当前状态:未脱贫" in out


def test_bad_proposals_are_refused_with_a_message(village, capsys):
    code, out, err = run(capsys, "propose", village, "--household", "5226341012010002", "--kind", "exit",
                         "--reason", "x", "--food", "yes", "--clothing", "yes")
    assert code == 1 and "没有任何年度的收入记录" in err
    code, out, err = run(capsys, "propose", village, "--household", "nope", "--kind", "exit", "--reason", "x")
    assert code == 1 and "找不到贫困户“nope”" in err
    code, out, err = run(capsys, "propose", village, "--household", "5226341012010001", "--kind", "退出", "--reason", "x")
    assert code == 1 and "未知的申报类型" in err
    code, out, err = run(capsys, "propose", village, "--household", "5226341012010001", "--kind", "entry", "--reason", "x")
    assert code == 0
    code, out, err = run(capsys, "propose", village, "--household", "5226341012010001", "--kind", "natural", "--reason", "y")
    assert code == 1 and "已有一份未办结的新识别申报" in err
    code, out, err = run(capsys, "advance", village, "--proposal", "zzzzzzzz", "--stage", "review", "--outcome", "pass")
    assert code == 1 and "找不到申报" in err
    code, out, err = run(capsys, "proposals", village, "--stage", "第九步")
    assert code == 1 and "未知的环节" in err


def test_exit_check_and_worklist(village, capsys):
    code, out, err = run(capsys, "exit-check", village, "--household", "5226341012010001", "--food", "yes",
                         "--clothing", "yes")
    assert code == 0 and "人均 4,500.00 元,高于贫困线 4,000 元" in out and "达到退出标准" in out
    code, out, err = run(capsys, "exit-check", village, "--household", "5226341012010002", "--json")
    data = json.loads(out)
    assert code == 1 and data["passed"] is False and data["criteria"][0]["detail"].startswith("没有任何年度的收入记录")
    code, out, err = run(capsys, "worklist", village, "--list", "visits", "--days", "10", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["no_recent_visit"]) == 2
    code, out, err = run(capsys, "worklist", village)
    assert code == 0 and "== 缺帮扶责任人:0 户" in out and "== 等待乡级初核:0 户" in out


def test_proposals_made_together_get_numbers_that_tell_them_apart(village, capsys):
    """Record ids begin with their creation time: the printed 申报编号 must come from the random end."""
    numbers = []
    for number in ("5226341012010001", "5226341012010002"):
        code, out, err = run(capsys, "propose", village, "--household", number, "--kind", "entry",
                             "--reason", "新识别", "--date", ago(1))
        assert code == 0, err
    code, out, err = run(capsys, "proposals", village)
    assert code == 0, err
    numbers = [line.split("\t")[0] for line in out.splitlines() if line and not line.startswith("编号")]
    numbers = [n for n in numbers if len(n) == 8]
    assert len(numbers) == 2 and numbers[0] != numbers[1], out
    for n in numbers:
        code, out, err = run(capsys, "advance", village, "--proposal", n, "--stage", "村级评议", "--outcome", "return",
                             "--reason", "材料不全")
        assert code == 0, err
