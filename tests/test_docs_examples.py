"""The docs a new user copies from: the generated field reference is current, the worked example of
docs/procedures.md runs as written, `add` prints the 户编号 it assigned, `sync export` says what a
bundle holds."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from app.cli.main import main
from app.core import demo as demo_core
from app.core import fieldref
from app.services import households
from tests.test_proposals_sync import Sites, cli, env, opened  # noqa: F401 - env: fixture

ROOT = Path(__file__).resolve().parent.parent
VILLAGE = "522634101201"


def test_the_field_reference_is_generated_from_forms_and_current():
    page = (ROOT / "docs" / "fields.md").read_text(encoding="utf-8")
    assert page == fieldref.render(), "docs/fields.md 已过期:运行 python -m app.core.fieldref docs/fields.md"
    # it names every field and code of the dictionary, and json.md links to it
    d = fieldref.default()
    for kind in d.kinds.values():
        for f in kind.fields.values():
            assert f"| `{f.key}` | {f.label} |" in page
    assert "`04` 教育(雨露计划)" in page
    assert "(fields.md)" in (ROOT / "docs" / "json.md").read_text(encoding="utf-8")


def test_the_field_reference_check_fails_when_forms_change(tmp_path, monkeypatch):
    stale = tmp_path / "fields.md"
    stale.write_text(fieldref.render().replace("户主姓名", "户主名"), encoding="utf-8")
    assert fieldref.main(["--check", str(stale)]) == 1
    assert fieldref.main([str(stale)]) == 0 and fieldref.main(["--check", str(stale)]) == 0


def example_commands(page: str, heading: str) -> list[list[str]]:
    """The indented code block after `heading`, as argument lists (continuation lines joined)."""
    text = page[page.index(heading):]
    block = []
    for line in text.splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("    "):
            block.append(line[4:])
    joined = re.sub(r"\\\n\s*", " ", "\n".join(block))
    return [shlex.split(line) for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def test_the_worked_example_of_procedures_runs_as_written(tmp_path, env, capsys, monkeypatch):
    sites = Sites(tmp_path, capsys, env)
    for name, path in (("v.db", sites.village), ("t.db", sites.township), ("c.db", sites.county)):
        path.rename(tmp_path / name)
    with opened(tmp_path / "v.db") as v:
        doc = demo_core.households(per_village=1, villages=[VILLAGE])[0]
        doc.update(household_number="5226341012011001", status="1", dilapidated="0")  # from the laptop's block
        doc["incomes"] = [{"year": 2025, "wage_income": 30000}]
        households.save(v, doc, allow_errors=True)
    monkeypatch.chdir(tmp_path)
    commands = example_commands((ROOT / "docs" / "procedures.md").read_text(encoding="utf-8"), "## Example")
    assert len(commands) > 15
    for args in commands:
        if args[0] == "export":
            continue  # the passphrase: the fixture sets JIANDANG_PASSPHRASE
        if args[0] == "mkdir":
            for folder in args[1:]:
                Path(folder).mkdir()
            continue
        assert args[0] == "jiandang", args
        code = main(args[1:])
        out, err = capsys.readouterr()
        assert code == 0, (args, out, err)
    assert "已公告生效" in out and "当前状态:已脱贫(享受政策)" in out, out


def test_add_prints_the_household_number_it_assigned(tmp_path, capsys, monkeypatch, make_store):
    import json

    from tests.conftest import PASSPHRASE
    from tests.factories import household

    store = make_store("a.db")
    from app.services import demo

    demo.install_reference_data(store)
    store.close()
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    doc = household()
    doc.pop("household_number", None)
    path = tmp_path / "new.json"
    path.write_text(json.dumps([doc], ensure_ascii=False), encoding="utf-8")
    assert main(["add", str(tmp_path / "a.db"), "--json", str(path)]) == 0
    out = capsys.readouterr().out
    number = re.search(r"户编号 (\d{16})", out)
    assert number and f"户主 {doc['head_name']}" in out and "新增" in out
    assert main(["print", "card", str(tmp_path / "a.db"), "--household", number.group(1), "--out",
                 str(tmp_path / "card.pdf")]) == 0


def test_sync_export_says_how_many_changes_and_that_unacknowledged_ones_are_sent_again(tmp_path, env, capsys):
    sites = Sites(tmp_path, capsys, env)
    with opened(sites.village) as v:
        doc = demo_core.households(per_village=1, villages=[VILLAGE])[0]
        doc.update(status="1", household_number=None)  # as a laptop enters a new household
        households.save(v, doc, allow_errors=True)
    first, second = tmp_path / "u1", tmp_path / "u2"
    first.mkdir()
    second.mkdir()
    code, out, err = cli(capsys, "sync", "export", sites.village, "--to", first)
    assert code == 0 and re.search(r"已导出 .*-up-000001\.jdb:\d+ 条修改", out) and "再次带上" not in out
    sent = int(re.search(r":(\d+) 条修改", out).group(1))
    assert sent > 1
    code, out, err = cli(capsys, "sync", "export", sites.village, "--to", second)
    assert f":{sent} 条修改" in out and f"其中 {sent} 条修改在以前的包中已发出、县里尚未确认收到,本包再次带上" in out
