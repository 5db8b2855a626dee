"""PNG screenshots of the main window and every household editor tab, from a new demo database:

    python -m app.ui.screenshots OUTDIR

Uses the offscreen platform unless QT_QPA_PLATFORM is set."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def make(outdir: Path, per_village: int = 20) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    from app.services import demo
    from app.store import Store
    from app.ui.app import application
    from app.ui.main_window import MainWindow

    outdir.mkdir(parents=True, exist_ok=True)
    app = application()
    shots = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "demo.db", role="village", site_name="示范县驻村工作队", operator="演示",
                             passphrase="jiandang-demo", recovery_public_key=X25519PrivateKey.generate().public_key())
        demo.fill(store, per_village=per_village)

        def settle(ms=200):
            loop = QEventLoop()
            QTimer.singleShot(ms, loop.quit)
            loop.exec()

        window = MainWindow(store)
        window.set_auto_lock_minutes(0)
        window.resize(1280, 800)
        window.show()
        while not window.loaded:
            QCoreApplication.processEvents(QEventLoop.AllEvents, 50)
        settle()
        if window.drafts_dialog:
            window.drafts_dialog.reject()
        target = outdir / "main.png"
        window.grab().save(str(target))
        shots.append(target)
        window.search.setText(window.model.rows[0].head_name[:1])  # a surname
        settle()
        target = outdir / "main_search.png"
        window.grab().save(str(target))
        shots.append(target)
        window.search.clear()
        # a household with several members and an income record
        row = max(window.model.rows, key=lambda r: r.population)
        editor = window.open_household(row.id)
        editor.resize(1280, 860)
        settle()
        for i in range(editor.tabs.count()):
            editor.tabs.setCurrentIndex(i)
            settle(150)
            target = outdir / f"editor_{i + 1:02d}_{editor.d.kinds['household'].sections[i].key if i < len(editor.household_forms) else list(editor.panels)[i - len(editor.household_forms)]}.png"
            editor.grab().save(str(target))
            shots.append(target)
        # an ID number with a wrong check digit: the message beside the field and in the list
        panel = editor.panels["member"]
        editor.tabs.setCurrentWidget(panel)
        panel.table.selectRow(1)
        field = panel.form.inputs["id_number"]
        number = field.value() or ""
        field.set_value(number[:17] + ("0" if number[17:] != "0" else "1"))
        panel.form._edited("id_number")
        settle(300)
        target = outdir / "editor_09_id_number_error.png"
        editor.grab().save(str(target))
        shots.append(target)
        editor.discard()
        editor.close()
        window.close()
        store.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("用法:python -m app.ui.screenshots 输出目录", file=sys.stderr)
        return 2
    for p in make(Path(argv[0])):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
