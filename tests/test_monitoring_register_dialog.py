"""The window's print dialog makes the 防返贫监测对象名册 (the village's 监测户 and their risks) and the
township's 监测对象簿 off the GUI thread: the same PDF content as `jiandang print monitoring`."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from app.cli.main import main  # noqa: E402
from app.store import Store  # noqa: E402
from app.ui.print_dialog import PrintDialog  # noqa: E402
from tests.conftest import PASSPHRASE  # noqa: E402
from tests.factories import VILLAGE  # noqa: E402
from tests.test_monitoring_print import db  # noqa: E402, F401 - the fixture: one 监测户 in VILLAGE
from tests.test_monitoring_print_dialog import pages_text  # noqa: E402


def _dialog(qtbot, path, village: str):
    store = Store.open(path)
    store.unlock(store.operators()[0], PASSPHRASE)
    dialog = PrintDialog(store, village_code=village)
    qtbot.addWidget(dialog)
    return store, dialog


@pytest.mark.parametrize("key, option, code, title, name", [
    ("monitoring_register", "--village", VILLAGE, "防返贫监测对象名册", "监测对象名册-龙井村-"),
    ("monitoring_book", "--township", VILLAGE[:9], "防返贫监测对象簿", "监测对象簿-")])
def test_the_dialog_prints_the_monitoring_register_the_command_prints(qtbot, db, tmp_path, key, option, code, title,
                                                                      name):
    path, ids = db
    out = tmp_path / "cli.pdf"
    assert main(["print", "monitoring", str(path), option, code, "--out", str(out)]) == 0
    from_cli = pages_text(out.read_bytes())
    store, dialog = _dialog(qtbot, path, VILLAGE)
    labels = [dialog.document.itemText(i) for i in range(dialog.document.count())]
    assert "防返贫监测对象名册(本村监测户及其风险)" in labels and "防返贫监测对象簿(本乡镇各村监测户)" in labels
    dialog.select(key)
    assert dialog.current_document() == key
    assert not dialog.notice_box.isVisibleTo(dialog) and not dialog.full_id.isVisibleTo(dialog)  # no options to ask
    dialog.generate()
    assert dialog.busy  # on a worker
    assert dialog.wait_until_done()
    assert dialog.pdf, dialog.status.text()
    assert pages_text(dialog.pdf) == from_cli
    assert title in from_cli[0] and "上官婉儿" in "".join(from_cli)
    assert dialog.suggested_name().startswith(name) and dialog.suggested_name().endswith(".pdf")
    assert f"共 {dialog.pages} 页" in dialog.status.text() and "1 户" in dialog.status.text()
    store.close()


def test_a_village_without_monitored_households_says_so_in_the_dialog(qtbot, db):
    path, _ = db
    store, dialog = _dialog(qtbot, path, "522634101202")
    dialog.select("monitoring_register")
    dialog.generate()
    assert dialog.wait_until_done()
    assert dialog.pdf is None and not dialog.save_button.isEnabled()
    assert "没有监测户,未生成文件" in dialog.status.text() and "Traceback" not in dialog.status.text()
    store.close()


def test_a_township_chosen_in_the_tree_offers_its_monitoring_book(qtbot, db):
    """Township staff choose their township in the main window's tree: the dialog offered 乡有簿 and
    the 乡级公示 but not the township's 监测对象簿, which it could only reach through one of its villages."""
    path, _ = db
    store, dialog = _dialog(qtbot, path, VILLAGE[:9])
    keys = [dialog.document.itemData(i) for i in range(dialog.document.count())]
    assert "monitoring_book" in keys and "book" in keys and "monitoring_register" not in keys
    dialog.select("monitoring_book")
    dialog.generate()
    assert dialog.wait_until_done()
    assert dialog.pdf and "上官婉儿" in "".join(pages_text(dialog.pdf))
    store.close()
