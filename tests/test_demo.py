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
