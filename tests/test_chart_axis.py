"""The value axis of the register's and book's bar charts steps by 1, 2 or 5 times a power of ten
(0, 50, 100, 150, 200), so a reader can read a bar against the lines (it stepped 37, 74, 111 …)."""

from __future__ import annotations

from reportlab.graphics.charts.barcharts import VerticalBarChart

from app.reports.charts import bar_chart


def steps_of(top: int) -> tuple[float, float]:
    drawing = bar_chart("年人均纯收入对照扶贫标准(户)", [("不足标准一半", 1), ("标准至一倍半", top), ("两倍以上", 0)])
    (chart,) = [c for c in drawing.contents if isinstance(c, VerticalBarChart)]
    return chart.valueAxis.valueStep, chart.valueAxis.valueMax


def test_the_value_axis_steps_by_round_numbers_and_reaches_above_the_highest_bar():
    for top, step in ((186, 50), (240, 50), (222, 50), (76, 20), (90, 20), (9, 2), (3, 1), (4321, 1000)):
        got, highest = steps_of(top)
        assert got == step, (top, got)
        assert highest > top and highest % step == 0
        assert highest / step <= 6  # about five lines, not dozens
