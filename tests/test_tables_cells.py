"""import-table reads a cell through its column (app/tables/cells.py): a value read again is not
converted and checked again, yet every cell keeps its own messages and its own value (issue #16)."""

from __future__ import annotations

from app.core import values
from app.core.dictionary import default
from app.tables import cells, importer
from tests.test_tables_stream import rows_of, sheet
from tests.test_tables import V


def test_a_wrong_value_repeated_on_many_rows_is_named_on_every_row(store, tmp_path):
    """The same unknown 主要致贫原因 on all three rows of two households (one value, read once): the
    dry run still names each of the six cells, and the other households import."""
    rows = [r for h in range(5) for r in rows_of(h)]
    cause = 7 + 3  # after 户编号 … 备注 and 识别标准, 贫困户属性, 脱贫状态
    for r in rows[3:9]:  # households 1 and 2
        r[cause] = "不知道"
    report = importer.dry_run(store, importer.analyse(store, sheet(tmp_path / "原因.xlsx", rows), village=V))
    named = [(r.row, r.column) for r in report.rejections if "不知道" in r.reason]
    assert named == [(row, "主要致贫原因") for row in range(5, 11)]
    assert report.created == 3 and report.rejected_households == 2


def test_a_households_values_on_its_member_rows_are_converted_once(store, tmp_path, monkeypatch):
    """40 households of three rows: each distinct value of a column is converted once, not once a row."""
    calls = []
    real = values.coerce
    monkeypatch.setattr(values, "coerce", lambda f, v, d: calls.append(v) or real(f, v, d))
    plan = importer.analyse(store, sheet(tmp_path / "台账.xlsx", [r for h in range(40) for r in rows_of(h)]), village=V)
    assert len(plan.groups) == 40
    cells_read = 40 * 3 * 12  # rows × filled columns
    assert len(calls) < cells_read / 2
    assert calls.count("户主7") == 1 and calls.count("国家标准") == 1


def test_a_list_of_codes_is_each_records_own_and_the_memory_is_bounded():
    d = default()
    column = cells.Column.of("household.other_causes", "其他致贫原因", d)
    first, second = (cells.cell_value(column.read("因病、因学", None, d)) for _ in range(2))
    assert first == second and first is not second
    first.append("x")
    assert cells.cell_value(column.read("因病、因学", None, d)) != first
    names = cells.Column.of("member.name", "姓名", d)
    for i in range(cells.MEMO * 3):
        assert names.read(f"Li Ming {i}", None, d).value == f"Li Ming {i}"
        assert len(names.memo) <= cells.MEMO
    assert names.read("张　三", None, d).value == "张三"
