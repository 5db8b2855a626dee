"""The core CLI as a user drives it: init, demo, add, list, validate, log, operators."""

import hashlib
import json
import os
import sqlite3
import sys

import pytest

from app.cli import main as cli_main
from app.cli.main import main
from app.store import Store
from tests.conftest import PASSPHRASE
from tests.factories import household

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("JIANDANG_OPERATOR", raising=False)


@pytest.fixture
def db(tmp_path, env):
    path = tmp_path / "v.db"
    assert main(["init", str(path), "--role", "village", "--site-name", "龙井村工作队"]) == 0
    return path


def state(path) -> str:
    """A digest of everything stored: records, change log, blind index."""
    conn = sqlite3.connect(path)
    h = hashlib.sha256()
    for table in ("records", "changes", "blind_index", "operators"):
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
            h.update(repr(row).encode())
    conn.close()
    return h.hexdigest()


def write(tmp_path, data, name="in.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def list_json(db, capsys, *extra):
    capsys.readouterr()
    assert main(["list", str(db), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_init_writes_a_recovery_key_beside_a_new_database(db, capsys):
    key = db.with_name(db.name + ".recovery-key.pem")
    assert key.exists()
    if os.name == "posix":  # mode bits exist only there; on Windows the profile folder's ACL applies
        assert oct(key.stat().st_mode)[-3:] == "600"
    assert main(["init", str(db), "--role", "village", "--site-name", "x"]) == 1
    assert "已存在" in capsys.readouterr().err


def test_init_with_a_given_recovery_public_key(tmp_path, env, recovery_key):
    from app.store import crypto

    pub = tmp_path / "county.pub"
    pub.write_bytes(crypto.x25519_public_pem(recovery_key.public_key()))
    assert main(["init", str(tmp_path / "c.db"), "--role", "county", "--site-name", "雷山县", "--recovery-key", str(pub)]) == 0
    assert not (tmp_path / "c.db.recovery-key.pem").exists()
    bad = tmp_path / "bad.pub"
    bad.write_text("nonsense", encoding="utf-8")
    assert main(["init", str(tmp_path / "d.db"), "--role", "county", "--site-name", "x", "--recovery-key", str(bad)]) == 1
    assert not (tmp_path / "d.db").exists()


def test_add_then_list_json_round_trips(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", write(tmp_path, [household(), household("东方不败", "西门吹雪", seq=3)])]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("新增" in line for line in lines)
    docs = list_json(db, capsys)
    assert [d["head_name"] for d in docs] == ["欧阳明远", "东方不败"]
    assert docs[0]["village_code"] == "522634101201" and len(docs[0]["members"]) == 2
    assert docs[0]["household_number"] == "5226341012010001"
    before = state(db)
    # what list prints, added back unchanged, changes nothing
    assert main(["add", str(db), "--json", write(tmp_path, docs, "back.json")]) == 0
    assert state(db) == before
    # an edit made in the listed JSON is taken as an update
    docs[1]["members"][1]["name"] = "西门庆"
    assert main(["add", str(db), "--json", write(tmp_path, docs, "edit.json")]) == 0
    assert "更新" in capsys.readouterr().out
    assert list_json(db, capsys, "--search", "西门")[0]["members"][1]["name"] == "西门庆"


def bad_cases():
    unknown = household()
    unknown["hed_name"] = "typo"
    unknown["members"][0]["nmae"] = "typo"
    wrong_type = household(family_size="两口人")
    bad_digit = household()
    n = bad_digit["members"][1]["id_number"]
    bad_digit["members"][1]["id_number"] = n[:17] + ("1" if n[17] != "1" else "2")
    bad_code = household(main_cause="因懒")
    two_heads = household()
    two_heads["members"][1]["relation"] = "01"
    same_id = [household(), household("另一户主", "另一配偶", seq=1)]
    return {
        "unknown fields": ([unknown], "hed_name"),
        "wrong type": ([wrong_type], "家庭人口数"),
        "bad check digit": ([bad_digit], "校验位"),
        "code not in list": ([bad_code], "因懒"),
        "second head": ([two_heads], "只能有一名户主"),
        "same id twice": (same_id, "身份证号码与本文件第 1 户(户主“欧阳明远”)的成员“欧阳明远”相同"),
    }


@pytest.mark.parametrize("case", list(bad_cases()))
def test_bad_json_is_refused_with_a_clear_message_and_nothing_changes(db, tmp_path, capsys, case):
    assert main(["add", str(db), "--json", write(tmp_path, [household("原有户主", "原有配偶", seq=40)], "seed.json")]) == 0
    before = state(db)
    data, words = bad_cases()[case]
    capsys.readouterr()
    assert main(["add", str(db), "--json", write(tmp_path, data)]) == 1
    err = capsys.readouterr().err
    assert words in err
    assert "in.json" in err  # the file is named
    assert state(db) == before


def test_unknown_fields_are_named_for_members_too(db, tmp_path, capsys):
    doc = household()
    doc["members"][0]["nmae"] = "typo"
    assert main(["add", str(db), "--json", write(tmp_path, [doc])]) == 1
    assert "nmae" in capsys.readouterr().err


def test_same_id_as_a_household_already_stored_names_that_household(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", write(tmp_path, [household()], "a.json")]) == 0
    before = state(db)
    assert main(["add", str(db), "--json", write(tmp_path, [household("后来者", "后来者配偶")], "b.json")]) == 1
    err = capsys.readouterr().err
    assert "欧阳明远" in err and "5226341012010001" in err
    assert state(db) == before


def test_draft_keeps_input_that_has_errors(db, tmp_path, capsys):
    doc = household(family_size=5)
    assert main(["add", str(db), "--json", write(tmp_path, [doc]), "--draft"]) == 0
    assert "家庭人口数为 5" in capsys.readouterr().err
    assert list_json(db, capsys)[0]["family_size"] == 5
    assert main(["validate", str(db)]) == 1


def test_malformed_json_file_names_line_and_column(db, tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text('[{"head_name": "x",]', encoding="utf-8")
    assert main(["add", str(db), "--json", str(path)]) == 1
    assert "broken.json 第 1 行" in capsys.readouterr().err


def test_wrong_passphrase_fails_without_a_traceback(db, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "not the passphrase")
    assert main(["list", str(db)]) == 1
    assert "密码不正确" in capsys.readouterr().err


def test_validate_exit_status_and_json(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", write(tmp_path, [household()])]) == 0
    assert main(["validate", str(db)]) == 0
    capsys.readouterr()
    assert main(["validate", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_log_shows_who_changed_what_from_what(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", write(tmp_path, [household()])]) == 0
    docs = list_json(db, capsys)
    docs[0]["phone"] = "13700001111"
    assert main(["add", str(db), "--json", write(tmp_path, docs, "e.json")]) == 0
    capsys.readouterr()
    assert main(["log", str(db), "--record", docs[0]["id"]]) == 0
    out = capsys.readouterr().out
    assert "新建贫困户" in out and "修改贫困户" in out and "admin" in out
    assert "联系电话: 13912345678 → 13700001111" in out


def test_demo_database_is_filled_once(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JIANDANG_PASSPHRASE", raising=False)
    path = tmp_path / "demo.db"
    assert main(["demo", str(path), "--per-village", "3"]) == 0
    assert main(["demo", str(path), "--per-village", "3"]) == 0
    out = capsys.readouterr().out
    assert "新增 18 户" in out and "新增 0 户,库中共 18 户" in out
    assert main(["validate", str(path)]) == 0


def test_demo_refuses_a_postgresql_address_as_a_place_for_the_demo(capsys):
    """`demo postgresql://…` said a folder "postgresql:" did not exist: it is a file-only command."""
    assert main(["demo", "postgresql://county@127.0.0.1:5432/jd"]) == 1
    err = capsys.readouterr().err
    assert "不能放在 PostgreSQL 服务器上" in err and "文件夹" not in err


def test_nothing_typed_at_the_passphrase_prompt_is_said_without_an_internal_error(db, monkeypatch, capsys):
    """Ctrl+D at the prompt (the end of input) ends the command with a plain message, not as an
    unexpected problem with a traceback in the log."""
    import getpass

    from app.cli import common

    monkeypatch.delenv("JIANDANG_PASSPHRASE", raising=False)
    monkeypatch.setattr(common.sys, "stdin", type("Tty", (), {"isatty": staticmethod(lambda: True)})())

    def end_of_input(prompt=""):
        raise EOFError

    monkeypatch.setattr(getpass, "getpass", end_of_input)
    assert main(["list", str(db)]) == 1
    err = capsys.readouterr().err
    assert "没有输入密码,命令未执行" in err and "意外" not in err


def test_demo_refuses_an_enrolled_laptop_and_the_county_and_stores_nothing(tmp_path, monkeypatch, capsys):
    from tests.sync_helpers import PASSPHRASE as SYNC_PASSPHRASE, make_county, make_device

    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "龙井村一队")
    paths = [laptop.path, county.path]
    before = {}
    for s in (laptop, county):
        before[s.path] = (s.change_count(), s.divisions(), s.count("household"))
        s.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", SYNC_PASSPHRASE)
    for path, where in zip(paths, ("已在县扶贫办登记的工作数据库", "县级数据库")):
        capsys.readouterr()
        assert main(["demo", str(path), "--per-village", "3"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"错误:{path.name} 是{where},演示数据只能放进单独的演示数据库"), err
        assert "Traceback" not in err and "InputError" not in err
        with Store.open(path) as s:
            s.unlock("admin", SYNC_PASSPHRASE)
            assert (s.change_count(), s.divisions(), s.count("household")) == before[path]


def test_operator_commands(db, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_NEW_PASSPHRASE", "second operator pass")
    assert main(["operator", "add", str(db), "李四"]) == 0
    capsys.readouterr()
    assert main(["operator", "list", str(db)]) == 0
    assert capsys.readouterr().out.split() == ["admin", "李四"]
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "second operator pass")
    monkeypatch.setenv("JIANDANG_OPERATOR", "李四")
    assert main(["list", str(db)]) == 0


def test_recover_resets_a_forgotten_passphrase(db, monkeypatch, capsys):
    key = db.with_name(db.name + ".recovery-key.pem")
    monkeypatch.setenv("JIANDANG_NEW_PASSPHRASE", "remembered now")
    assert main(["recover", str(db), "--recovery-key", str(key), "--login", "admin"]) == 0
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "remembered now")
    assert main(["list", str(db)]) == 0


def test_a_database_path_as_the_only_argument_opens_the_window(db, monkeypatch):
    opened = []
    monkeypatch.setattr(cli_main, "open_window", lambda argv: opened.append(argv) or 0)
    assert cli_main.main([str(db)]) == 0
    assert cli_main.main(["新建台账.db"]) == 0  # not yet created: the window's start screen says so
    assert opened == [[str(db)], ["新建台账.db"]]


def test_a_mistyped_command_is_not_taken_for_a_database(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main.main(["lsit"])
    assert exit_.value.code == 2
    assert "lsit" in capsys.readouterr().err


def test_one_damaged_record_is_named_and_the_rest_still_works(tmp_path, monkeypatch, capsys):
    """A flipped byte in one household's ciphertext: listing, checking and printing go on with the
    other households, and the damaged one is named with what to do (exit status 1)."""
    monkeypatch.delenv("JIANDANG_PASSPHRASE", raising=False)
    path = tmp_path / "demo.db"
    assert main(["demo", str(path), "--per-village", "3"]) == 0
    conn = sqlite3.connect(path)
    rid, village, blob = conn.execute(
        "SELECT id, village_code, blob FROM records WHERE kind = 'household' ORDER BY rowid LIMIT 1").fetchone()
    conn.execute("UPDATE records SET blob = ? WHERE id = ?", (blob[:40] + bytes([blob[40] ^ 1]) + blob[41:], rid))
    conn.commit()
    conn.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "jiandang-demo")
    capsys.readouterr()

    assert main(["list", str(path), "--json"]) == 1
    captured = capsys.readouterr()
    listed = json.loads(captured.out)
    assert len(listed) == 17 and rid not in {h["id"] for h in listed}
    assert rid in captured.err and "无法解密" in captured.err and "jiandang restore" in captured.err
    assert "Traceback" not in captured.err

    assert main(["validate", str(path)]) == 1
    assert rid in capsys.readouterr().err

    out = tmp_path / "register.pdf"  # a register missing a household is not printed at all
    assert main(["print", "register", str(path), "--village", village, "--out", str(out)]) == 1
    assert not out.exists() and rid in capsys.readouterr().err
    table = tmp_path / "register.xlsx"  # nor exported as a table
    assert main(["export-table", str(path), "--village", village, "--out", str(table)]) == 1
    assert not table.exists() and rid in capsys.readouterr().err

    assert main(["print", "card", str(path), "--household", rid, "--out", str(tmp_path / "c.pdf")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("错误:") and "解密失败" in err and "Traceback" not in err


def test_a_closed_pipe_is_not_a_traceback(tmp_path, monkeypatch, db):
    import subprocess
    import sys

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    docs = [household(head=f"户主{i}", seq=i + 1) for i in range(40)]
    assert main(["add", str(db), "--json", write(tmp_path, docs)]) == 0
    proc = subprocess.run(f"{sys.executable} -m app list {db} | head -1", shell=True, capture_output=True,
                          text=True, cwd=str(ROOT), env={**__import__('os').environ})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_a_new_household_needs_no_status_and_gets_weituopin(db, tmp_path, capsys):
    doc = household()
    doc.pop("status", None)
    assert main(["add", str(db), "--json", write(tmp_path, [doc])]) == 0
    assert "为必填项" not in capsys.readouterr().err
    assert list_json(db, capsys)[0]["status"] == "1"


def test_a_new_household_in_a_village_the_database_does_not_know_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("JIANDANG_PASSPHRASE", raising=False)
    path = tmp_path / "demo.db"
    assert main(["demo", str(path), "--per-village", "1"]) == 0
    monkeypatch.setenv("JIANDANG_PASSPHRASE", "jiandang-demo")
    before = state(path)
    capsys.readouterr()
    assert main(["add", str(path), "--json", write(tmp_path, [household(village_code="522634101209")])]) == 1
    err = capsys.readouterr().err
    assert "522634101209" in err and "不在本库的行政区划中" in err
    assert state(path) == before
    # not even as a draft: a household no register can place
    assert main(["add", str(path), "--draft", "--json", write(tmp_path, [household(village_code="522634101209")])]) == 1
    assert "522634101209" in capsys.readouterr().err
    assert state(path) == before


@pytest.mark.parametrize("argv, words", [
    (["list", "{tmp}"], "是一个文件夹"),
    (["init", "{tmp}/no/such/folder/v.db", "--role", "village", "--site-name", "甲"], "不存在"),
    (["demo", "{tmp}/no/such/folder/d.db"], "不存在"),
    (["demo", "{tmp}"], "是一个文件夹"),
])
def test_paths_that_cannot_be_databases_get_a_message(tmp_path, env, capsys, argv, words):
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("错误:") and words in err
    assert not (tmp_path / "no").exists()


def test_usage_help_and_usage_errors_are_in_chinese(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("用法:") and "显示本帮助并退出" in out
    assert "usage" not in out and "show this help" not in out and "options:" not in out
    with pytest.raises(SystemExit) as done:
        main(["print", "card"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "缺少必需的参数" in err and "required" not in err


def test_every_commands_database_argument_says_what_it_is_in_its_help(capsys):
    """`jiandang print monitoring --help` listed a bare `db` under 参数 with no word of what to give:
    every command (also those under print, sync, reference …) now explains it, and the three that work
    on the file itself do not offer a PostgreSQL address."""
    import argparse

    seen = {}

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, path + [name])
            elif not action.option_strings and action.dest == "db":
                seen[" ".join(path)] = action.help

    walk(cli_main.build_parser(), [])
    assert len(seen) > 30 and {"print monitoring", "backup", "list"} <= set(seen)
    assert all(h and "数据库文件" in h for h in seen.values()), [k for k, h in seen.items() if not h]
    assert all("postgresql://" not in seen[c] for c in ("backup", "restore", "demo") if c in seen)
    assert "postgresql://" in seen["print monitoring"]
    with pytest.raises(SystemExit):
        main(["print", "monitoring", "--help"])
    assert "数据库文件,如 台账.db" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["worklist", "x.db", "--days", "abc"], "参数 --days:应为整数,而不是“abc”"),
    (["serve", "x.db", "--max-upload-mb", "很多"], "参数 --max-upload-mb:应为数字,而不是“很多”"),
])
def test_a_value_of_the_wrong_type_is_explained_in_chinese(capsys, argv, expected):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "int" not in err and "float" not in err and "invalid" not in err


def test_file_and_role_messages_have_no_english(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", str(tmp_path / "nofile.json")]) == 1
    err = capsys.readouterr().err
    assert "找不到文件" in err and "No such file" not in err
    bad = tmp_path / "bad.json"
    bad.write_text('[{head_name: "x"}]', encoding="utf-8")
    assert main(["add", str(db), "--json", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "第 1 行" in err and "Expecting" not in err
    assert main(["init", str(tmp_path / "t.db"), "--role", "township", "--site-name", "西江镇"]) == 0
    out = capsys.readouterr().out
    assert "角色 乡级" in out and "township" not in out


def test_the_county_is_not_told_to_hand_its_recovery_key_to_the_county(tmp_path, env, capsys):
    assert main(["init", str(tmp_path / "c.db"), "--role", "county", "--site-name", "雷山县扶贫办"]) == 0
    out = capsys.readouterr().out
    assert "恢复私钥已写入" in out and "交县扶贫办" not in out and "离线保管" in out


def test_a_household_number_already_in_use_is_refused_and_nothing_is_stored(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", write(tmp_path, [household()], "a.json")]) == 0
    number = list_json(db, capsys)[0]["household_number"]
    before = state(db)
    taken = household("东方不败", "西门吹雪", seq=3, household_number=number)
    assert main(["add", str(db), "--json", write(tmp_path, [taken], "b.json")]) == 1
    assert f"户编号 {number} 已用在户主“欧阳明远”的户上" in capsys.readouterr().err
    # two new households of one file with the same number: the second is named, nothing stored
    pair = [household("东方不败", "西门吹雪", seq=3, household_number="5226341012019999"),
            household("令狐冲", "任盈盈", seq=5, household_number="5226341012019999")]
    assert main(["add", str(db), "--json", write(tmp_path, pair, "c.json")]) == 1
    err = capsys.readouterr().err
    assert "第 2 户(户主“令狐冲”)" in err and "已用在本文件第 1 户(户主“东方不败”)上" in err
    assert err.splitlines()[-1].startswith("错误:未保存任何数据")
    assert state(db) == before


def test_automatic_numbers_skip_a_number_typed_in_by_hand(db, tmp_path, capsys):
    typed = household("东方不败", "西门吹雪", seq=3, household_number="5226341012010002")
    assert main(["add", str(db), "--json", write(tmp_path, [household(), typed, household("令狐冲", "任盈盈", seq=5)])]) == 0
    numbers = {d["head_name"]: d["household_number"] for d in list_json(db, capsys)}
    assert numbers == {"欧阳明远": "5226341012010001", "东方不败": "5226341012010002", "令狐冲": "5226341012010003"}


def test_an_id_this_database_does_not_have_is_refused_not_invented(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", write(tmp_path, [household()], "a.json")]) == 0
    before = state(db)
    ghost = {**household("东方不败", "西门吹雪", seq=3), "id": "01a22697-0000-7000-8000-000000000000"}
    assert main(["add", str(db), "--json", write(tmp_path, [ghost], "b.json")]) == 1
    assert "没有 id 为 01a22697-0000-7000-8000-000000000000 的贫困户" in capsys.readouterr().err
    doc = list_json(db, capsys)[0]
    doc["members"][0]["id"] = "01a22697-0000-7000-8000-0000000000ff"
    assert main(["add", str(db), "--json", write(tmp_path, [doc], "c.json")]) == 1
    assert "这一户没有 id 为 01a22697-0000-7000-8000-0000000000ff 的家庭成员记录" in capsys.readouterr().err
    assert state(db) == before


def test_each_wrong_value_is_reported_once(db, tmp_path, capsys):
    doc = household(main_cause="因穷", family_size="三")
    assert main(["add", str(db), "--json", write(tmp_path, [doc])]) == 1
    err = capsys.readouterr().err
    assert err.count("“因穷”不在代码表") == 1 and err.count("应为整数,而不是“三”") == 1


def test_a_bad_date_says_the_format_it_should_have(db, tmp_path, capsys):
    doc = household(first_identified="去年")
    assert main(["add", str(db), "--json", write(tmp_path, [doc])]) == 1
    err = capsys.readouterr().err
    assert "应为日期(年-月-日 格式,如 2020-01-31),而不是“去年”" in err
    out = tmp_path / "n.pdf"
    assert main(["print", "notice", str(db), "--village", "522634101201", "--kind", "entry", "--out", str(out),
                 "--start", "2026/12/1x"]) == 1
    assert "--start “2026/12/1x”不是日期:应为 年-月-日 格式,如 2026-12-01" in capsys.readouterr().err
    assert not out.exists()


def test_sex_and_birth_date_left_out_are_taken_from_the_id_number(db, tmp_path, capsys):
    doc = household()
    for m in doc["members"]:
        m.pop("sex", None)
        m.pop("birth_date", None)
    assert main(["add", str(db), "--json", write(tmp_path, [doc])]) == 0
    stored = list_json(db, capsys)[0]["members"]
    expected = {m["id_number"]: m for m in household()["members"]}
    for m in stored:
        assert (m["sex"], m["birth_date"]) == (expected[m["id_number"]]["sex"], expected[m["id_number"]]["birth_date"])


def test_an_update_that_leaves_fields_out_says_which_ones_it_cleared(db, tmp_path, capsys):
    assert main(["add", str(db), "--json", write(tmp_path, [household(group="2组", phone="13700000000")], "a.json")]) == 0
    doc = list_json(db, capsys)[0]
    partial = {k: doc[k] for k in ("id", "village_code", "head_name", "household_number", "identification_standard",
                                   "attribute", "status", "main_cause", "first_identified", "family_size")}
    partial["members"] = []
    assert main(["add", str(db), "--json", write(tmp_path, [partial], "b.json")]) == 0
    err = capsys.readouterr().err
    assert "已按文档清空" in err and "村民小组" in err and "联系电话" in err and "户主姓名" not in err
    # a full document (as list --json gives it) clears nothing and says nothing
    assert main(["add", str(db), "--json", write(tmp_path, list_json(db, capsys), "c.json")]) == 0
    assert "清空" not in capsys.readouterr().err


def test_the_same_person_twice_in_one_file_names_the_earlier_household_of_the_file(db, tmp_path, capsys):
    first = household("东方不败", "西门吹雪", seq=3)
    second = household("令狐冲", "任盈盈", seq=5)
    second["members"][1]["id_number"] = first["members"][1]["id_number"]
    second["members"][1]["sex"], second["members"][1]["birth_date"] = first["members"][1]["sex"], first["members"][1]["birth_date"]
    assert main(["add", str(db), "--json", write(tmp_path, [first, second])]) == 1
    err = capsys.readouterr().err
    assert "身份证号码与本文件第 1 户(户主“东方不败”)的成员“西门吹雪”相同" in err and "已登记" not in err


def test_the_window_without_a_desktop_says_so_in_chinese(monkeypatch, capsys):
    """`jiandang` in an SSH session on Linux: Qt aborted with its own English lines (could not load the
    platform plugin “xcb”); the program now says there is no desktop and points at the commands."""
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    import app.ui.app

    def window_tried(argv):
        raise AssertionError("Qt was started with no desktop")

    monkeypatch.setattr(app.ui.app, "run", window_tried)
    assert main([]) == 1
    err = capsys.readouterr().err
    assert "没有图形桌面" in err and "jiandang --help" in err


def test_a_command_that_neither_prints_nor_reads_workbooks_starts_without_their_libraries():
    """`jiandang sync import …` (a county imports a drawer of USB sticks, one command per stick) and the
    other commands load reportlab, qrcode, pypdf and openpyxl only when they print or read a workbook:
    about a quarter of a second less of every start (0.65 → 0.41 s on the development machine)."""
    import subprocess

    from tests.support.jiandang_test_hooks import subprocess_env

    code = ("import sys, app.cli.main as m; m.build_parser(); "
            "print(sorted(k for k in ('reportlab', 'openpyxl', 'pypdf', 'qrcode') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_each_command_is_listed_with_the_module_that_registers_it():
    """`jiandang COMMAND …` loads only COMMAND's module (main.COMMANDS): a command missing from that
    list, or listed with another module, would not be found or would lose its arguments."""
    import argparse
    import importlib

    for module in cli_main.COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers(dest="command")
        importlib.import_module(module).register(sub)
        assert set(sub.choices) == {c for c, m in cli_main.COMMANDS.items() if m == module}, module


def test_a_sync_import_at_a_postgresql_county_starts_without_the_other_commands_and_sqlite_utils():
    """`jiandang sync import postgresql://… USB` (one per USB stick, while the service takes uploads)
    loads the sync commands only, and no sqlite-utils (a SQLite file's library, with numpy where that
    is installed): about a quarter of a second less processor per import."""
    import subprocess

    from tests.support.jiandang_test_hooks import subprocess_env

    code = ("import sys, contextlib, app.cli.main as m\n"
            "with contextlib.suppress(SystemExit): m.main(['sync', 'import', '--help'])\n"
            "print(sorted(k for k in sys.modules if k.startswith('app.cli.') and k.endswith('_commands')"
            " or k in ('sqlite_utils', 'numpy', 'PIL')), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                          check=True)
    assert "sync import" in done.stdout
    assert done.stderr.strip() == "['app.cli.sync_commands']"


def test_the_command_line_loads_multiprocessing_only_in_the_frozen_program():
    """`python -m app …` calls multiprocessing.freeze_support() only where it does something (the
    PyInstaller build, whose `serve --workers N` workers start through it): elsewhere importing
    multiprocessing is about 5 ms of every command's start for nothing."""
    import subprocess

    from tests.support.jiandang_test_hooks import subprocess_env

    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "app", "sync", "import", "--help"],
                          env=subprocess_env(), capture_output=True, text=True, check=True)
    assert "sync import" in done.stdout
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "app.cli.main" in loaded and "app.sync.exchange" in loaded  # what the command loads is listed
    assert "multiprocessing" not in loaded
