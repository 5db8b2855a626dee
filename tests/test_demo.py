"""The demo generator is what new users and every benchmark see first: its data must pass the
same checks as real data, at any size."""

from app.core import demo, idnumber
from app.core.validation import validate_household
from app.services import proposals


def test_demo_id_numbers_are_unique_and_valid_at_benchmark_scale():
    docs = demo.households(per_village=700)  # 4,200 households, ~15,000 people
    numbers = [m["id_number"] for d in docs for m in d["members"]]
    assert len(numbers) > 12_000
    assert len(set(numbers)) == len(numbers)
    assert all(idnumber.is_valid(n) for n in numbers)
    for doc in docs[::97]:
        for m in doc["members"]:
            parsed = idnumber.parse(m["id_number"])
            assert parsed.birth_date.isoformat() == m["birth_date"]


def test_demo_households_validate_without_errors():
    for doc in demo.households(per_village=20):
        errors = [f for f in validate_household(doc) if f.severity == "error"]
        assert not errors, (doc["household_number"], errors)


def test_demo_database_can_assess_an_exit_for_the_demo_income_year(demo_store):
    years = {i["year"] for d in demo.households(per_village=5) for i in d.get("incomes", [])}
    for year in years:
        assert demo_store.poverty_line(year) is not None, year
    doc = next(d for d in _documents(demo_store) if d.get("incomes"))
    assessment = proposals.exit_assessment(demo_store, doc)
    assert assessment.line is not None and assessment.per_capita is not None


def _documents(store):
    from app.services import households
    return households.documents(store)


def test_demo_reads_like_a_working_village():
    """Exited households live above the line; most households were visited lately, a few are due."""
    import datetime as dt

    from app.core import income

    today = dt.date(2026, 11, 29)
    docs = demo.households(per_village=40, today=today)
    exited = [d for d in docs if d["status"] in ("2", "3")]
    assert exited and all(income.per_capita(d["incomes"][0], d["family_size"]) > demo.POVERTY_LINES[2025]
                          for d in exited)
    ages = [(today - dt.date.fromisoformat(d["visits"][0]["date"])).days for d in docs]
    assert all(0 < a <= 100 for a in ages)
    overdue = sum(a > 90 for a in ages) / len(ages)
    assert 0.03 < overdue < 0.25


MONITORING_KEYS = ("household_type", "monitoring_type", "risk_eliminated", "risk_identified_date",
                   "risk_eliminated_date", "risks")


def test_demo_monitoring_is_deterministic_and_leaves_the_other_figures_alone():
    import datetime as dt

    today = dt.date(2026, 11, 29)
    plain = demo.households(per_village=30, today=today)
    watched = demo.households(per_village=30, today=today, monitoring=True)
    assert watched == demo.households(per_village=30, today=today, monitoring=True)
    assert [{k: v for k, v in d.items() if k not in MONITORING_KEYS} for d in watched] == plain
    assert any("risks" in d for d in watched)


def test_a_demo_database_has_monitored_households_with_risks(tmp_path, capsys, monkeypatch):
    """A new user opening the demo sees 监测户 in the lists and in the editor's 返贫致贫风险 tab."""
    import datetime as dt

    from app.cli.core_commands import DEMO_OPERATOR
    from app.cli.main import main
    from app.services import households, worklists
    from app.store import Store
    from tests.conftest import PASSPHRASE

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    path = tmp_path / "演示.db"
    assert main(["demo", str(path)]) == 0  # the default size, as a new user sees it
    capsys.readouterr()
    with Store.open(path) as store:
        store.unlock(DEMO_OPERATOR, PASSPHRASE)
        today = dt.date.today()
        assert store.monitoring_criteria(today.year) is not None
        docs = households.documents(store)
        lists = worklists.build(store, on=today).monitoring
    monitored = [d for d in docs if d.get("household_type") == "2"]
    assert 0.02 < len(monitored) / len(docs) < 0.12
    exited = {d["household_number"] for d in docs if d["status"] in ("2", "3", "5")}
    for d in monitored:
        assert d["monitoring_type"] in (("1", "3") if d["household_number"] in exited else ("2",))
        assert 1 <= len(d["risks"]) <= 2 and d["risk_identified_date"] <= today.isoformat()
        states = {r["state"] for r in d["risks"]}
        if d["risk_eliminated"]:  # eliminated together, at least six months after identification
            assert states == {"2"} and {r["eliminated_date"] for r in d["risks"]} == {d["risk_eliminated_date"]}
            assert (dt.date.fromisoformat(d["risk_eliminated_date"])
                    - dt.date.fromisoformat(d["risk_identified_date"])).days >= 183
        else:
            assert states == {"1"} and not d.get("risk_eliminated_date")
            assert not any(r.get("eliminated_date") for r in d["risks"])
        errors = [f for f in validate_household(d) if f.severity == "error"]
        assert not errors, (d["household_number"], errors)
    eliminated = [d for d in monitored if d["risk_eliminated"]]
    assert 0 < len(eliminated) < len(monitored) / 2
    assert {d["monitoring_type"] for d in monitored} >= {"1", "2"}
    assert lists.no_measure and lists.risks_overdue
    assert main(["list", str(path), "--type", "监测户"]) == 0
    shown = capsys.readouterr()
    for d in monitored:
        assert d["household_number"] in shown.out
    assert shown.out.count("\n") == len(monitored) + 1 and f"共 {len(monitored)} 户" in shown.err


def test_the_demo_county_and_its_towns_are_real_divisions():
    """The demo's county and towns are real (统计用区划代码, tests/data/divisions/522634.csv), so every
    person's ID number starts with a GB/T 2260 county code, as a real county's ledger does."""
    import csv
    from pathlib import Path

    with (Path(__file__).parent / "data" / "divisions" / "522634.csv").open(encoding="utf-8") as f:
        real = {row["代码"]: row["名称"] for row in csv.DictReader(f)}
    assert real[demo.COUNTY[0]] == demo.COUNTY[1]
    for code, name, villages in demo.TOWNSHIPS:
        assert real[code] == name
        assert all(v.startswith(code) and len(v) == 12 for v, _ in villages)
    assert idnumber.region_known(demo.COUNTY[0] + "19800101001")
    for doc in demo.households(per_village=10, monitoring=True):
        for m in doc["members"]:
            assert m["id_number"][:6] == demo.COUNTY[0] and idnumber.region_known(m["id_number"]), m


def test_a_demo_export_imports_back_without_an_id_number_warning(tmp_path, capsys, monkeypatch):
    """demo → export-table → import-table --dry-run: the demo's own people raise no warning (every one
    said “前 6 位 522699 不在 GB/T 2260” while the demo county was the fictitious 示范县)."""
    from app.cli.main import main
    from tests.conftest import PASSPHRASE

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    db, sheet = tmp_path / "演示.db", tmp_path / "西江镇.xlsx"
    assert main(["demo", str(db), "--per-village", "6"]) == 0
    assert main(["export-table", str(db), "--township", demo.TOWNSHIPS[0][0], "--out", str(sheet)]) == 0
    capsys.readouterr()
    assert main(["import-table", str(db), str(sheet), "--dry-run"]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "18 户无变化" in text and "拒绝 0 户" in text, text
    assert "GB/T 2260" not in text and "提醒" not in text, text
    from app.store import Store

    with Store.open(db) as store:  # a real county's name: the site (window title, cards' 经办) says 演示
        assert store.site_name == "雷山县驻村工作队(演示)"
