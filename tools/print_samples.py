"""Build every printed document from a fresh demo database and render its pages to PNG, so a person
can look at them:

    python tools/print_samples.py OUTDIR [--per-village 12] [--dpi 60]

Makes OUTDIR/demo.db (demo passphrase), then cards (one household, a whole village, a household
with missing fields and very long names, full ID numbers), the village register, the township book and
both public notices (from proposals taken through nomination, village review and a notice period),
and renders each PDF with pdftoppm (poppler-utils) into OUTDIR/png/. A script, not part of the
program (tools/ is not packaged): it sits above the CLI, services and store it drives.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout: python tools/...

VILLAGE = "522634101201"
TOWNSHIP = "522634101"
LONG_NAME = "欧阳" + "长" * 24 + "名"


def _store(folder: Path, per_village: int):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from app.cli.common import DEMO_OPERATOR, DEMO_PASSPHRASE
    from app.services import demo
    from app.store import Store

    path = folder / "demo.db"
    if path.exists():
        path.unlink()
    store = Store.create(path, role="village", site_name="雷山县驻村工作队", operator=DEMO_OPERATOR,
                         passphrase=DEMO_PASSPHRASE, recovery_public_key=X25519PrivateKey.generate().public_key())
    demo.fill(store, per_village=per_village)
    return store


def _edge_household(store) -> str:
    """A household with missing required fields and very long names, to show the marks and wrapping."""
    from app.services import households

    doc = {
        "village_code": VILLAGE, "head_name": LONG_NAME, "group": "第十二村民小组(原高坡、河坝两组合并)",
        "members": [{"name": LONG_NAME, "relation": "01", "sex": "1"},
                    {"name": "司马" + "慧" * 14, "relation": "02"}],
        "helpers": [{"name": "诸葛" + "明" * 10, "unit": "省交通运输厅驻雷山县西江镇龙井村脱贫攻坚帮扶工作队第一分队",
                     "phone": "13800001111"}],
    }
    return households.save(store, doc, allow_errors=True, reason="打印样例").household_id


def _proposals(store, notes: list[str]) -> None:
    """Take a few demo households to the 村内公示 stage so both notices have content."""
    from app.services import households, proposals

    today = dt.date.today()
    docs = households.documents(store, VILLAGE)
    made = {"return": 0, "exit": 0}
    for doc in docs:
        kind = "return" if doc.get("status") in ("2", "3") else "exit" if doc.get("status") in ("1", "4") else None
        if kind is None or made[kind] >= 3:
            continue
        try:
            income = max((i for i in doc.get("incomes", []) if isinstance(i.get("year"), int)),
                         key=lambda i: i["year"], default=None)
            if kind == "exit" and income and store.poverty_line(income["year"]) is None:
                lines = store.poverty_lines()
                store.set_poverty_line(income["year"], lines[max(lines)], "打印样例:沿用最近年度标准")
            p = proposals.propose(store, doc["id"], kind, reasons="因灾返贫,房屋受损" if kind == "return"
                                  else "务工收入稳定,两不愁三保障达标", date=today - dt.timedelta(days=10),
                                  justification="样例数据")
            proposals.advance(store, p["id"], "review", "pass", date=today - dt.timedelta(days=8),
                              meeting_date=today - dt.timedelta(days=8), attendance=40, votes_for=36,
                              votes_against=1, household_signed=True if kind == "exit" else None)
            proposals.plan_notice(store, p["id"], today, today + dt.timedelta(days=6))
            made[kind] += 1
        except Exception as exc:  # noqa: BLE001 - a sample that cannot be made is reported, not fatal
            notes.append(f"申报样例未能生成({doc.get('head_name')}):{exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="生成全部打印样例 PDF 并渲染为 PNG")
    parser.add_argument("outdir")
    parser.add_argument("--per-village", type=int, default=12)
    parser.add_argument("--dpi", type=int, default=60)
    args = parser.parse_args(argv)
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)

    from app.reports.common import ReportError
    from app.reports.notice import NoticeInfo
    from app.services import households, printing

    notes: list[str] = []
    store = _store(out, args.per_village)
    with store:
        edge = _edge_household(store)
        first = households.documents(store, VILLAGE)[0]["id"]
        _proposals(store, notes)
        jobs = [
            ("card_one.pdf", lambda p: printing.print_cards(store, p, household_id=first)),
            ("card_one_full_id.pdf", lambda p: printing.print_cards(store, p, household_id=first, full_id=True)),
            ("card_missing_and_long.pdf", lambda p: printing.print_cards(store, p, household_id=edge)),
            ("cards_village.pdf", lambda p: printing.print_cards(store, p, village_code=VILLAGE)),
            ("register.pdf", lambda p: printing.print_register(store, p, VILLAGE)),
            ("book.pdf", lambda p: printing.print_book(store, p, TOWNSHIP)),
        ]
        info = NoticeInfo(start=dt.date.today(), end=dt.date.today() + dt.timedelta(days=6),
                          place="龙井村村委会公示栏及各村民小组公示点", contact="村委会 王主任", phone="13800001111")
        for kind in ("entry", "exit"):
            jobs.append((f"notice_{kind}.pdf", lambda p, k=kind: printing.print_notice(store, p, VILLAGE, k, info)))
        png = out / "png"
        if png.exists():
            shutil.rmtree(png)
        png.mkdir()
        have_pdftoppm = shutil.which("pdftoppm") is not None
        for name, job in jobs:
            path = out / name
            try:
                result = job(path)
            except ReportError as exc:
                notes.append(f"{name}:{exc}")
                continue
            print(f"{path}: {result.households} 户, {result.pages} 页")
            if have_pdftoppm:
                subprocess.run(["pdftoppm", "-png", "-r", str(args.dpi), str(path), str(png / path.stem)], check=True)
    if not have_pdftoppm:
        notes.append("没有找到 pdftoppm(poppler-utils):只生成了 PDF")
    for note in notes:
        print(note, file=sys.stderr)
    print(f"PNG 页面在 {out / 'png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
