"""The monitoring example of docs/procedures.md runs as written (issue #20): every line between the
<!-- monitoring-example --> markers, on a county, a township office and a village laptop enrolled by
the commands, with the USB folders the example names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from app.cli.main import main
from app.services import households
from tests.factories import household
from tests.test_proposals_sync import cli, env, opened  # noqa: F401 (env: fixture)

DOC = Path(__file__).resolve().parent.parent / "docs" / "procedures.md"


def example_lines() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- monitoring-example -->", 1)[1].split("<!-- /monitoring-example -->", 1)[0]
    return [line for line in block.strip().strip("`").splitlines() if line.strip() and not line.startswith("```")
            and line.strip() != "bash"]


def setup_sites(tmp_path: Path, capsys, env) -> None:
    assert cli(capsys, "init", tmp_path / "c.db", "--role", "county", "--site-name", "雷山县乡村振兴局")[0] == 0
    with opened(tmp_path / "c.db") as c:
        from app.services import demo
        demo.install_reference_data(c)
    for name, role, villages in (("v.db", "village", "522634101201"), ("t.db", "township", "522634101201,522634101202")):
        package = tmp_path / f"{role}.enrollment"
        code, out, err = cli(capsys, "enroll", tmp_path / "c.db", "--site-name", name, "--role", role,
                             "--villages", villages, "--out", package)
        assert code == 0, err
        env.setenv("JIANDANG_ENROLLMENT_CODE", next(l.split(":", 1)[1] for l in out.splitlines() if l.startswith("登记码")).strip())
        assert cli(capsys, "init", tmp_path / name, "--enrollment", package)[0] == 0
    with opened(tmp_path / "c.db") as c:  # the county's ledger: the first bundle carries it to the laptop
        doc = household(status="2", household_number="5226341012010001", dilapidated="0", water_safe=True)
        doc["incomes"].append({"year": 2026, "wage_income": 20000, "business_income": 2000})
        households.save(c, doc)


def run(line: str, variables: dict, capsys) -> str:
    out = ""
    for part in line.split(" && "):
        part = re.sub(r"\$([A-Z])\b", lambda m: variables[m.group(1)], part.strip())
        if part.startswith("mkdir "):
            Path(part.split()[1]).mkdir()
            continue
        capture = re.fullmatch(r"([A-Z])=\$\((.*) \| cut -f1\)", part)
        args = shlex.split(capture.group(2) if capture else part)
        assert args[0] == "jiandang", part
        code, out, err = cli(capsys, *args[1:])
        assert code == 0, f"{part}\n{out}{err}"
        if capture:
            variables[capture.group(1)] = out.split("\t", 1)[0]
    return out


def test_the_monitoring_example_runs_as_written(tmp_path, env, capsys, monkeypatch):
    setup_sites(tmp_path, capsys, env)
    monkeypatch.chdir(tmp_path)
    variables: dict = {}
    outputs = [run(line, variables, capsys) for line in example_lines()]
    assert len(outputs) == 22 and set(variables) == {"P", "Q"}
    first, last = outputs[11], outputs[-1]
    assert "突发严重困难户" in first and "因病(2025-02-27 发现,未消除)" in first and "2025-03-15" in first
    row = last.splitlines()[1].split("\t")
    assert row[3:8] == ["突发严重困难户", "因病(2025-02-27 发现,已消除)", "是", "2025-03-15", "2026-04-08"]
    assert main(["list", str(tmp_path / "c.db"), "--type", "监测户"]) == 0
    assert "2026-04-08" in capsys.readouterr().out
