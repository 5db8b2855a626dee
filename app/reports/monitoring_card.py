"""The card's 防返贫监测 section (issue #20): 户类型, 监测对象类型, whether the risk is eliminated, the
dates, and every risk with its state. Kept apart from app/reports/card.py, which calls `content` (so
the card's check digest covers it) and `story`."""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak

from app.reports.cells import SizedTable
from app.reports.cells import cell as cell_flowable
from app.reports.cells import shared_paragraph
from app.reports.common import HEAD_BG, label_markup, styles
from app.reports.context import Context

RISK_HEADINGS = ["风险类型", "发现日期", "发现方式", "风险状态", "消除日期", "情况说明"]
RISK_WIDTHS = [22, 20, 24, 16, 20, 58]


def content(doc: dict, ctx: Context) -> dict:
    show = ctx.show
    facts = [(key, ctx.label("household", key), show("household", key, doc.get(key)))
             for key in ("household_type", "monitoring_type", "risk_eliminated", "risk_identified_date",
                         "risk_eliminated_date")]
    risks = [[show("risk", "risk_type", r.get("risk_type")), str(r.get("found_date") or ""),
              show("risk", "source", r.get("source")), show("risk", "state", r.get("state") or "1"),
              str(r.get("eliminated_date") or ""), str(r.get("note") or "")]
             for r in sorted(doc.get("risks", []), key=lambda r: str(r.get("found_date") or ""))]
    return {"facts": facts, "risks": risks}


def story(c: dict, width: float, grid) -> list:
    """Flowables of the section; `grid` is the card's table style maker (app.reports.card._grid)."""
    st = styles()
    cell, head = st["cell"], st["head"]
    facts = {key: (label, text) for key, label, text in c["facts"]}
    monitored = facts["household_type"][1] == "监测户"
    keys = list(facts) if monitored else ["household_type"]
    # headings the same on every card: one paragraph per document; one-line values drawn as Lines;
    # SizedTable (measuring its own rows) draws them as reportlab's Table does, for less
    heads = [shared_paragraph(label_markup(facts[key][0]), head) for key in keys]
    values = [cell_flowable(facts[key][1] or "", st["cell_c"]) for key in keys]
    t = SizedTable([heads, values], colWidths=[width / len(keys)] * len(keys) if monitored else [width / 5])
    t.setStyle(grid([("BACKGROUND", (0, 0), (-1, 0), HEAD_BG)]))
    out = [CondPageBreak(30 * mm), cell_flowable("九、防返贫监测", st["h2"]), t]
    if c["risks"] or monitored:
        k = width / sum(RISK_WIDTHS)
        rows = [[shared_paragraph(label_markup(h), head) for h in RISK_HEADINGS]]
        rows += [[cell_flowable(v, cell) for v in r] for r in c["risks"]] or [[cell_flowable("未登记风险", cell)] + [""] * 5]
        risks = SizedTable(rows, colWidths=[x * k for x in RISK_WIDTHS], repeatRows=1)
        extra = [("BACKGROUND", (0, 0), (-1, 0), HEAD_BG)] + ([] if c["risks"] else [("SPAN", (0, 1), (-1, 1))])
        risks.setStyle(grid(extra))
        out.append(risks)
    return out
