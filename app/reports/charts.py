"""Village wall charts (村级挂图) with reportlab.graphics: households by cause, attribute and status,
in/out movement of the register by year, per-capita income against the poverty line.

`summarize(docs, ctx)` counts; the chart functions draw. Every label is drawn in runs
of the CJK and Latin fonts chosen per character (`common.runs`): 教育(雨露计划) keeps its brackets and
就业/转移就业 its slash, and every glyph comes from an embedded font.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.shapes import Drawing, Group, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase import pdfmetrics

from app.core.income import per_capita
from app.reports.card import latest_income
from app.reports.common import CJK, LATIN, register_fonts, runs, string_width
from app.reports.context import Context

PALETTE = [colors.HexColor(c) for c in ("#c0392b", "#2e86c1", "#28b463", "#f39c12", "#8e44ad", "#16a085",
                                        "#d35400", "#7f8c8d", "#2c3e50", "#b7950b", "#e74c3c", "#1abc9c",
                                        "#5d6d7e", "#a04000")]
INCOME_BANDS = ["不足标准一半", "一半至标准", "标准至一倍半", "一倍半至两倍", "两倍以上", "无收入数据"]


@dataclass
class Summary:
    households: int = 0
    people: int = 0
    by_cause: Counter = field(default_factory=Counter)
    by_attribute: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    entered: Counter = field(default_factory=Counter)  # year -> households first identified
    exited: Counter = field(default_factory=Counter)  # year -> households out of poverty
    income_bands: Counter = field(default_factory=Counter)
    by_measure: Counter = field(default_factory=Counter)  # 帮扶措施 category -> measures recorded
    below_line: int = 0
    income_years: set = field(default_factory=set)

    def add(self, other: "Summary") -> None:
        self.households += other.households
        self.people += other.people
        for name in ("by_cause", "by_attribute", "by_status", "entered", "exited", "income_bands", "by_measure"):
            getattr(self, name).update(getattr(other, name))
        self.below_line += other.below_line
        self.income_years |= other.income_years


def summarize(docs: Iterable[dict], ctx: Context, into: Summary | None = None) -> Summary:
    """The figures of the households (added to `into` when given: a village read a part at a time)."""
    s = Summary() if into is None else into
    for doc in docs:
        s.households += 1
        s.people += len(doc.get("members", []))
        s.by_cause[str(doc.get("main_cause") or "")] += 1
        s.by_attribute[str(doc.get("attribute") or "")] += 1
        s.by_status[str(doc.get("status") or "")] += 1
        first = str(doc.get("first_identified") or "")
        if first[:4].isdigit():
            s.entered[int(first[:4])] += 1
        if isinstance(doc.get("exit_year"), int):
            s.exited[doc["exit_year"]] += 1
        for measure in doc.get("measures", []):
            s.by_measure[str(measure.get("category") or "")] += 1
        income = latest_income(doc)
        size = doc.get("family_size") if isinstance(doc.get("family_size"), int) else len(doc.get("members", []))
        pc = per_capita(income, size) if income else None
        line, _ = ctx.line_for(income["year"]) if income else (None, None)
        if pc is None or not line:
            s.income_bands[INCOME_BANDS[-1]] += 1
            continue
        s.income_years.add(income["year"])
        ratio = pc / line
        band = 0 if ratio < 0.5 else 1 if ratio < 1 else 2 if ratio < 1.5 else 3 if ratio < 2 else 4
        s.income_bands[INCOME_BANDS[band]] += 1
        if pc < line:
            s.below_line += 1
    return s


def labelled(counter: Counter, codes: dict[str, str]) -> list[tuple[str, int]]:
    """(label, count) in code-list order, then unknown codes, then 未填写 for blanks."""
    out = [(label, counter[code]) for code, label in codes.items() if counter.get(code)]
    out += [(code, n) for code, n in counter.items() if code and code not in codes and n]
    if counter.get(""):
        out.append(("未填写", counter[""]))
    return out


def percentages(counts: list[int]) -> list[int]:
    """Whole percentages of `counts` that add up to exactly 100 (largest-remainder method): each
    share is rounded down, then the points still missing go to the shares with the largest
    remainders, the earlier share first among equal remainders. A share of exactly x.5 is rounded up
    (四舍五入) whenever that keeps the total at 100. All zero (or empty): all 0."""
    total = sum(counts)
    if total <= 0:
        return [0] * len(counts)
    shares = [n * 100 // total for n in counts]
    remainders = [n * 100 % total for n in counts]  # exact: all over the same denominator `total`
    order = sorted(range(len(counts)), key=lambda i: (-remainders[i], i))
    for i in order[:100 - sum(shares)]:
        shares[i] += 1
    return shares


def mixed_string(drawing: Drawing | Group, x: float, y: float, text: str, size: float, anchor: str = "start",
                 fill=colors.black) -> float:
    """Add text in runs of the CJK and Latin fonts (one graphics String cannot mix fonts); returns
    the width."""
    width = string_width(text, size)
    if anchor == "middle":
        x -= width / 2
    elif anchor == "end":
        x -= width
    for font, chunk in runs(text):
        drawing.add(String(x, y, chunk, fontName=font, fontSize=size, fillColor=fill))
        x += pdfmetrics.stringWidth(chunk, font, size)
    return width


def category_labels(drawing: Drawing, chart: VerticalBarChart, labels: list[str], size: float = 7) -> None:
    """The category axis labels, in mixed fonts (the chart's own labels take one font for all), one
    line each: horizontal under their bar group when they fit, else turned 40 degrees."""
    n = len(labels)
    if not n:
        return
    step = chart.width / n
    y = chart.y - 4 - size
    turned = any(string_width(text, size) > step - 2 for text in labels)
    for i, text in enumerate(labels):
        x = chart.x + (i + 0.5) * step
        if not turned:
            mixed_string(drawing, x, y, text, size, "middle")
            continue
        group = Group(transform=(0.766, 0.643, -0.643, 0.766, x + size * 0.3, chart.y - 4))  # turned 40°:
        mixed_string(group, 0, -size * 0.7, text, size, "end")  # the label ends at its bar and runs down-left
        drawing.add(group)


def _title(drawing: Drawing, text: str, width: float, height: float) -> None:
    mixed_string(drawing, width / 2, height - 14, text, 11, "middle")


def legend(drawing: Drawing, x: float, y: float, entries: list[tuple[colors.Color, str]], size: float = 7.5,
           step: float = 12, horizontal: bool = False) -> None:
    """Colour swatches with mixed-font labels, one per line (or in a row)."""
    for i, (colour, text) in enumerate(entries):
        drawing.add(Rect(x, y - 1, size, size, fillColor=colour, strokeColor=None))
        w = mixed_string(drawing, x + size + 3, y, text, size)
        if horizontal:
            x += size + 3 + w + 12
        else:
            y -= step


def nice_step(top: float) -> int:
    """The value axis' step: 1, 2 or 5 times a power of ten, about five steps up to `top` (0, 50,
    100 … not 0, 37, 74 …, whose lines a reader cannot read values against)."""
    rough = max(top / 5, 1)
    power = 10 ** (len(str(int(rough))) - 1)
    for factor in (1, 2, 5, 10):
        if factor * power >= rough:
            return factor * power
    return 10 * power


def bar_chart(title: str, items: list[tuple[str, int]], width: float = 250, height: float = 190,
              series: list[list[int]] | None = None, legend_names: list[str] | None = None) -> Drawing:
    """A vertical bar chart of (label, count) items (or several series sharing the labels)."""
    register_fonts()
    d = Drawing(width, height)
    d.initialFontName = CJK  # the renderer would otherwise select Helvetica
    _title(d, title, width, height)
    if not items:
        d.add(String(width / 2, height / 2, "无数据", fontName=CJK, fontSize=10, textAnchor="middle"))
        return d
    chart = VerticalBarChart()
    chart.x, chart.y = 32, 42
    chart.width, chart.height = width - 45, height - 80 - (12 if legend_names else 0)
    data = series or [[n for _, n in items]]
    chart.data = data
    chart.categoryAxis.categoryNames = [label for label, _ in items]
    chart.categoryAxis.visibleLabels = 0  # drawn by category_labels in mixed fonts
    chart.valueAxis.labels.fontName = LATIN
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    top = max(max(s) for s in data) or 1
    step = nice_step(top)
    chart.valueAxis.valueStep = step
    chart.valueAxis.valueMax = step * (top // step + 1)
    chart.barLabels.fontName = LATIN
    chart.barLabels.fontSize = 6.5
    # several series over many years (进出变化 2014-2026): a 0 over every empty bar crowds the chart
    chart.barLabelFormat = (lambda v: "" if not v else "%d" % v) if series else "%d"
    chart.barLabels.nudge = 6
    for i in range(len(data)):
        chart.bars[i].fillColor = PALETTE[i % len(PALETTE)] if series else PALETTE[1]
        chart.bars[i].strokeColor = None
    d.add(chart)
    category_labels(d, chart, [label for label, _ in items])
    if legend_names:
        legend(d, 40, height - 30, [(PALETTE[i], name) for i, name in enumerate(legend_names)], 8, horizontal=True)
    return d


def pie_chart(title: str, items: list[tuple[str, int]], width: float = 250, height: float = 190) -> Drawing:
    register_fonts()
    d = Drawing(width, height)
    d.initialFontName = CJK  # the renderer would otherwise select Helvetica
    _title(d, title, width, height)
    items = [(label, n) for label, n in items if n]
    if not items:
        d.add(String(width / 2, height / 2, "无数据", fontName=CJK, fontSize=10, textAnchor="middle"))
        return d
    pie = Pie()
    size = min(height - 50, width * 0.4)
    pie.x, pie.y = 12, (height - 20 - size) / 2
    pie.width = pie.height = size
    pie.data = [n for _, n in items]
    pie.labels = None
    pie.slices.strokeColor = colors.white
    pie.slices.strokeWidth = 0.5
    for i in range(len(items)):
        pie.slices[i].fillColor = PALETTE[i % len(PALETTE)]
    d.add(pie)
    if len(items) == 1:  # one slice is a plain disc: say on it that it is everyone
        mixed_string(d, pie.x + size / 2, pie.y + size / 2 + 2, "全部", 9, "middle", colors.white)
        mixed_string(d, pie.x + size / 2, pie.y + size / 2 - 10, f"{items[0][1]} 户", 9, "middle", colors.white)
    shares = percentages([n for _, n in items])
    entries = [(PALETTE[i % len(PALETTE)], f"{label} {n} 户({share}%)")
               for i, ((label, n), share) in enumerate(zip(items, shares))]
    legend(d, pie.x + size + 10, pie.y + size - 8, entries, 7, step=max(9, min(13, size / max(1, len(entries)))))
    return d


def wall_charts(s: Summary, ctx: Context, width: float = 250, height: float = 190) -> list[Drawing]:
    """The six charts of a village (or township) summary page."""
    d = ctx.dictionary
    known = set(s.entered) | set(s.exited)
    years = list(range(min(known), max(known) + 1)) if known else []
    movement = bar_chart("贫困户进出变化(按年度)", [(str(y), 0) for y in years], width, height,
                         series=[[s.entered.get(y, 0) for y in years], [s.exited.get(y, 0) for y in years]],
                         legend_names=["识别纳入", "脱贫退出"]) if years else bar_chart(
        "贫困户进出变化(按年度)", [], width, height)
    return [
        bar_chart("致贫原因分布(户)", labelled(s.by_cause, d.codes["poverty_cause"]), width, height),
        pie_chart("贫困户属性", labelled(s.by_attribute, d.codes["household_attribute"]), width, height),
        pie_chart("脱贫状态", labelled(s.by_status, d.codes["household_status"]), width, height),
        movement,
        bar_chart("年人均纯收入对照扶贫标准(户)", [(b, s.income_bands.get(b, 0)) for b in INCOME_BANDS], width, height),
        bar_chart("帮扶措施类别(项)", labelled(s.by_measure, d.codes["measure_category"]), width, height),
    ]
