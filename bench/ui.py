"""Benchmark: the main window on a 10,000-household database (issue 3).

Workload: a village database filled by app.services.demo.fill(per_village=1667) (6 villages, about
10,000 households and 35,000 members), opened in the real list model and table view offscreen.

1. unlock -> every row in the list model: store.unlock (the database's own Argon2id profile: the
   default one), decrypting every household and member, building the in-memory search index and
   filling the model (what the window's worker does in parts while the list is already usable).
   Baseline: the same unlock plus only decrypting every household record once (the lowest possible
   cost of showing a list of encrypted households).
   Then the same in the real main window, as a user meets it: from clicking 解锁 in the unlock
   dialog (operator and passphrase typed) through opening app.ui.main_window.MainWindow at
   1366x768 to its list showing rows and taking input (rows in the list, the list and the search
   box enabled, the list painted): "usable" (target < 1 s). "loaded": until every household is in
   the list, the tree counts and the search index complete and the store free (window.loaded).
2. per keystroke: typing a head's name, part of an ID number and part of a household number (of three
   households spread over the list, at any size; each whole word must find its household), one
   key at a time; each key runs the model's filter (store.search + set lookup + model reset) and
   repaints the table. Target: under 16 ms. Baseline: filtering by decrypting every household per
   keystroke (what an encrypted list without the in-memory index would have to do).

Medians of --runs runs; the ratio is window / baseline.

    python bench/ui.py [--per-village 1667] [--runs 5] [--db FILE]

--db: a copy of a database made earlier by this bench's workload (operator "bench", passphrase
"benchmark passphrase", default Argon2id profile) instead of building one.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

import app.ui  # noqa: E402,F401  (PySide6 6.12 guard)
from PySide6.QtWidgets import QApplication, QTableView  # noqa: E402

from app.services import demo, households  # noqa: E402
from app.store import Store  # noqa: E402
from app.ui.fonts import install_font  # noqa: E402
from app.ui.model import HouseholdModel, load_rows  # noqa: E402

PASS = "benchmark passphrase"


def median_ms(samples):
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-village", type=int, default=1667)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, help="a database built earlier with this workload (copied)")
    args = parser.parse_args()
    os.environ["JIANDANG_HOME"] = home = tempfile.mkdtemp(prefix="jiandang-bench-home-")  # no saved list layout
    atexit.register(shutil.rmtree, home, True)  # it was left in the temp folder after every run
    qapp = QApplication.instance() or QApplication([])
    install_font(qapp)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        if args.db:
            shutil.copy(args.db, Path(tmp) / "big.db")
            store = Store.open(Path(tmp) / "big.db")
            store.unlock("bench", PASS)
        else:
            store = Store.create(Path(tmp) / "big.db", role="village", site_name="bench", operator="bench",
                                 passphrase=PASS, recovery_public_key=X25519PrivateKey.generate().public_key())
            demo.fill(store, per_village=args.per_village)
        n_house, n_member = store.count("household"), store.count("member")
        print(f"workload: {n_house} households, {n_member} members (built in {time.perf_counter() - t:.0f} s); "
              f"KDF profile: default; runs: {args.runs}")
        model = HouseholdModel(store)
        view = QTableView()
        view.setModel(model)
        view.resize(1000, 700)
        view.show()

        # 1. unlock -> usable list
        window, baseline = [], []
        for _ in range(args.runs):
            store.lock()
            t = time.perf_counter()
            store.unlock("bench", PASS)
            sum(1 for _ in store.records("household"))
            baseline.append(time.perf_counter() - t)
            store.lock()
            model.clear()
            t = time.perf_counter()
            store.unlock("bench", PASS)
            model.set_rows(load_rows(store))
            view.viewport().repaint()
            window.append(time.perf_counter() - t)
        print(f"unlock -> every row in the list model (no window): {median_ms(window):.0f} ms (median of {args.runs}); "
              f"baseline unlock + decrypt households once: {median_ms(baseline):.0f} ms; ratio {statistics.median(window) / statistics.median(baseline):.2f}")

        # 1b. the real main window, from clicking 解锁
        from PySide6.QtCore import QEventLoop, QTimer

        from app.ui.main_window import MainWindow
        from app.ui.start import UnlockDialog

        usable, loaded, unlocking = [], [], []
        for _ in range(args.runs):
            store.lock()
            dialog = UnlockDialog(store)
            dialog.show()
            dialog.operator.setCurrentText("bench")
            dialog.passphrase.setText(PASS)
            qapp.processEvents()
            loop, marks = QEventLoop(), {}
            t = time.perf_counter()
            dialog.unlock_button.click()  # unlocks (Argon2id, on a worker) and accepts, as app.choose_and_unlock waits for
            while dialog.working:
                qapp.processEvents(QEventLoop.AllEvents, 5)
            unlocking.append(time.perf_counter() - t)
            assert store.unlocked
            dialog.close()
            win = MainWindow(store)
            win.set_auto_lock_minutes(0)
            win.resize(1366, 768)
            win.show()

            def poll(win=win, t=t, loop=loop, marks=marks):
                if "usable" not in marks and win.model.rowCount() > 0 and win.table.isEnabled() and win.search.isEnabled():
                    win.table.viewport().repaint()
                    marks["usable"] = time.perf_counter() - t
                if win.loaded:
                    marks["loaded"] = time.perf_counter() - t
                    loop.quit()

            timer = QTimer(interval=1, timeout=poll)
            timer.start()
            QTimer.singleShot(120_000, loop.quit)
            loop.exec()
            timer.stop()
            usable.append(marks["usable"])
            loaded.append(marks["loaded"])
            assert win.loaded and len(win.model.rows) == n_house and win.tree.topLevelItem(0).text(0) == f"全部({n_house} 户)"
            win.close()
            win.deleteLater()
            dialog.deleteLater()
            qapp.processEvents()
        base = statistics.median(baseline)
        print(f"click 解锁 -> usable list in the real main window (1366x768): {median_ms(usable):.0f} ms "
              f"(median of {args.runs}, runs {', '.join(f'{x * 1000:.0f}' for x in usable)}; target < 1000 ms: "
              f"{'met' if statistics.median(usable) < 1 else 'NOT met'}); ratio to the baseline {statistics.median(usable) / base:.2f}; "
              f"of it the unlock dialog (Argon2id) {median_ms(unlocking):.0f} ms")
        print(f"click 解锁 -> every household loaded (tree counts, search index, store free): {median_ms(loaded):.0f} ms "
              f"(median); ratio to the baseline {statistics.median(loaded) / base:.2f}")

        # 2. per keystroke
        # three households spread over the list: rows 17, 4242 and 9001 of the 10,002-household workload,
        # the same share of the list in a smaller one (row 17 of 600 is 1 there)
        n_rows = len(model.rows)
        picked = [model.rows[min(n_rows - 1, i * n_rows // max(n_rows, 10_002))].id for i in (17, 4242, 9001)]
        docs = households.documents(store, ids=picked)
        id_number = next(m["id_number"] for m in docs[1]["members"] if m.get("id_number"))
        words = [docs[0]["head_name"], id_number[6:14], docs[2]["household_number"][-6:]]
        keys = [w[:i] for w in words for i in range(1, len(w) + 1)]
        for word, wanted in zip(words, picked):  # the whole word finds its household
            model.set_search(word)
            assert wanted in {r.id for r in model.rows}, f"searching {word!r} did not find household {wanted}"
        model.set_search("")
        per_key, per_key_base = [], []
        for _ in range(args.runs):
            for text in keys:
                t = time.perf_counter()
                model.set_search(text)
                view.viewport().repaint()
                per_key.append(time.perf_counter() - t)
            model.set_search("")
        for text in keys[:6]:  # the baseline is slow: a few keys suffice
            t = time.perf_counter()
            needle = text.upper()
            [r.id for r in store.records("household")
             if needle in "\x1f".join(str(r.fields.get(k, "")) for k in ("household_number", "head_name", "phone")).upper()]
            per_key_base.append(time.perf_counter() - t)
        m, b = median_ms(per_key), median_ms(per_key_base)
        worst = max(per_key) * 1000
        print(f"per keystroke ({len(keys)} keys x {args.runs} runs): median {m:.2f} ms, worst {worst:.2f} ms "
              f"(target < 16 ms: {'met' if m < 16 else 'NOT met'}); baseline decrypt-per-keystroke: {b:.0f} ms; ratio {m / b:.4f}")
        view.close()
        store.close()
    print(f"load average: {' '.join(open('/proc/loadavg').read().split()[:3]) if os.path.exists('/proc/loadavg') else 'n/a'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
