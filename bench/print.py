"""Benchmark: a 1,000-household village register (村有册) and the 1,000 household cards (户有卡).

Prints the workload, pages per second (median of several runs) and the ratio against a baseline run
in the same process: a plain reportlab table of the same rows (plain strings, same embedded font),
cut into the same number of pages. The ratio says what our layout (wrapping paragraphs, mixed fonts,
QR codes, charts, two-pass page numbers) costs over the cheapest table reportlab can draw.

Then the register's cost per household as the village grows (--scale, default 1000 2000 4000 8000):
milliseconds per household at each size, flat within 20% being the target (linear cost).

Then the memory the cards and the register of a village take (--memory, default 250 1000
households; each document and size in a process of its own, written to the null device): the
process's peak resident memory while building it over its memory before, flat in the number of
households being the target (cards are built a chunk of households at a time,
app/reports/pdfjoin.py; the register reads its households from a generator, as print_register
reads the store a batch at a time, and makes its pages as they are printed).

    python bench/print.py [--households 1000] [--runs 3] [--scale 1000 2000 4000 8000] [--memory 250 1000]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reportlab.lib.pagesizes import A4, landscape  # noqa: E402
from reportlab.lib.units import mm  # noqa: E402
from reportlab.platypus import PageBreak, SimpleDocTemplate, Table, TableStyle  # noqa: E402

from app.core import demo  # noqa: E402
from app.reports import card as card_report  # noqa: E402
from app.reports import register as register_report  # noqa: E402
from app.reports.common import CJK, register_fonts  # noqa: E402
from app.reports.context import Context  # noqa: E402

VILLAGE = "522634101201"


def context() -> Context:
    return Context(division_names={code: name for code, name, _, _ in demo.divisions()},
                   poverty_lines=dict(demo.POVERTY_LINES))


def baseline(rows: list[list[str]], pages: int, pagesize) -> int:
    """A plain table of the rows, split evenly over `pages` pages; returns the page count."""
    bounds = [round(i * len(rows) / pages) for i in range(pages + 1)]
    story = []
    for start, end in zip(bounds, bounds[1:]):
        t = Table(rows[start:end])
        t.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, -1), CJK), ("FONTSIZE", (0, 0), (-1, -1), 5),
                               ("LEADING", (0, 0), (-1, -1), 6), ("GRID", (0, 0), (-1, -1), 0.25, "grey"),
                               ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
        story += [t, PageBreak()]
    story.pop()
    doc = SimpleDocTemplate(io.BytesIO(), pagesize=pagesize, leftMargin=5 * mm, rightMargin=5 * mm,
                            topMargin=5 * mm, bottomMargin=5 * mm, initialFontName=CJK)
    doc.build(story)
    return doc.page


def paired(fn, base, runs: int) -> tuple[float, int, float, int, float]:
    """Runs `fn` and `base` alternately, timed in processor time of this process (other work on a
    shared machine shows less): (median fn seconds, fn pages, median base seconds, base pages,
    median of the per-pair ratios)."""
    ours, theirs, ratios, pages, base_pages = [], [], [], 0, 0
    for _ in range(runs):
        start = time.process_time()
        pages = fn()
        ours.append(time.process_time() - start)
        start = time.process_time()
        base_pages = base(pages)
        theirs.append(time.process_time() - start)
        ratios.append(ours[-1] / theirs[-1])
    return statistics.median(ours), pages, statistics.median(theirs), base_pages, statistics.median(ratios)


def timed(fn, runs: int, clock=time.perf_counter) -> tuple[float, int]:
    times, pages = [], 0
    for _ in range(runs):
        start = clock()
        pages = fn()
        times.append(clock() - start)
    return statistics.median(times), pages


def document_memory(kind: str, n: int) -> None:
    """(In a process of its own) build the cards or the register of `n` households; print the
    memory figures. The cards' households are made before (the service reads and assembles them a
    batch at a time as the cards are built); the register's come from a generator while it reads."""
    from bench.procmem import rss

    register_fonts()
    ctx = context()
    if kind == "cards":
        docs = demo.households(per_village=n, villages=[VILLAGE])
        items = [(d, card_report.card_digest(d, ctx), "bench") for d in docs]
    else:
        village = demo.iter_households(per_village=n, villages=[VILLAGE])
    try:  # Linux: start the peak afresh, so that generating the households does not count
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    before, _ = rss(os.getpid())
    with open(os.devnull, "wb") as out:
        if kind == "cards":
            pages = card_report.build_cards(out, items, ctx)
        else:
            pages, _ = register_report.build_register(out, VILLAGE, village, ctx)
    _, peak = rss(os.getpid())
    print(f"{n} {pages} {before} {peak}")


def memory(sizes: list[int]) -> None:
    for kind, name in (("cards", "cards"), ("register", "register")):
        growth = {}
        for n in sizes:
            done = subprocess.run([sys.executable, __file__, "--document-memory", kind, str(n)], capture_output=True,
                                  text=True, check=True,
                                  env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
            _, pages, before, peak = (int(x) for x in done.stdout.split())
            growth[n] = (peak - before) / 2**20
            print(f"{name} of {n} households: {pages} pages; resident memory {before / 2**20:.0f} MB before, "
                  f"peak {peak / 2**20:.0f} MB while building (+{growth[n]:.0f} MB)")
        if len(growth) > 1:
            small, large = growth[min(growth)], growth[max(growth)]
            print(f"memory of the {name} at {max(growth)} vs {min(growth)} households: +{large:.0f} vs "
                  f"+{small:.0f} MB (target: flat -> {'met' if large <= small * 1.25 + 5 else 'NOT met'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=int, nargs="*", default=[1000, 2000, 4000, 8000],
                        help="village sizes for the register's cost per household (none: skip)")
    parser.add_argument("--memory", type=int, nargs="*", default=[250, 1000],
                        help="village sizes for the memory of the cards and the register (none: skip)")
    parser.add_argument("--document-memory", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.document_memory:
        document_memory(args.document_memory[0], int(args.document_memory[1]))
        return 0
    print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}"
          if Path("/proc/loadavg").exists() else "")
    register_fonts()
    ctx = context()
    docs = demo.households(per_village=args.households, villages=[VILLAGE])
    for i, doc in enumerate(docs):
        doc["id"] = f"bench-{i:05d}"
    people = sum(len(d["members"]) for d in docs)
    print(f"workload: {len(docs)} households, {people} members, one village; median of {args.runs} runs")

    # register
    reg_rows = [list(register_report.register_row(d, ctx).values()) for d in docs]
    reg_seconds, reg_pages, base_seconds, base_pages, ratio = paired(
        lambda: register_report.build_register(io.BytesIO(), VILLAGE, docs, ctx)[0],
        lambda pages: baseline(reg_rows, pages, landscape(A4)), args.runs)
    print(f"register: {reg_pages} pages in {reg_seconds:.2f} s = {reg_pages / reg_seconds:.1f} pages/s; "
          f"plain table {base_pages} pages in {base_seconds:.2f} s = {base_pages / base_seconds:.1f} pages/s; "
          f"ratio {ratio:.2f}x the baseline's time (median of {args.runs} pairs, processor time; target <= 2x)")

    # cards
    def cards() -> int:
        items = [(d, card_report.card_digest(d, ctx), "bench") for d in docs]
        return card_report.build_cards(io.BytesIO(), items, ctx)

    card_rows = []
    for d in docs:
        content = card_report.card_content(d, ctx)
        card_rows += [[label, text] for _, label, text in content["basic"]]
        card_rows += [list(m.values()) for m in content["members"]]
        card_rows += [[label, text] for _, label, text in content["living"]]
        card_rows += content["helpers"] + content["plans"] + content["measures"] + content["visits"]
    width = max(len(r) for r in card_rows)
    card_rows = [r + [""] * (width - len(r)) for r in card_rows]
    card_seconds, card_pages, base_seconds, base_pages, ratio = paired(
        cards, lambda pages: baseline(card_rows, pages, A4), args.runs)
    print(f"cards: {card_pages} pages in {card_seconds:.2f} s = {card_pages / card_seconds:.1f} pages/s "
          f"({len(docs) / card_seconds:.1f} households/s); plain table of the same {len(card_rows)} rows "
          f"{base_pages} pages in {base_seconds:.2f} s = {base_pages / base_seconds:.1f} pages/s; "
          f"ratio {ratio:.2f}x the baseline's time (median of {args.runs} pairs, processor time; target <= 2x)")

    # register: cost per household as the village grows
    if args.scale:
        per = {}
        for n in args.scale:  # processor time of this process: other work on a shared machine shows less
            village = demo.households(per_village=n, villages=[VILLAGE])
            seconds, pages = timed(lambda: register_report.build_register(io.BytesIO(), VILLAGE, village, ctx)[0],
                                   args.runs, clock=time.process_time)
            per[n] = seconds * 1000 / n
            print(f"register of {n} households: {pages} pages in {seconds:.2f} s of processor time = "
                  f"{per[n]:.2f} ms per household")
        spread = max(per.values()) / min(per.values())
        print(f"ms per household {' / '.join(f'{v:.2f}' for v in per.values())}: largest / smallest {spread:.2f} "
              f"(target: flat within 20% -> {'met' if spread <= 1.2 else 'NOT met'})")
    if args.memory:
        memory(args.memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
