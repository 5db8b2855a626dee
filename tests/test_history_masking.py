"""The editor's record history hides most of a bank account number (old and new, cells and
tooltips), as printed ID numbers are hidden; which fields are hidden is a flag in forms/."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QTreeWidgetItemIterator  # noqa: E402

from app.core import dictionary, idnumber  # noqa: E402
from app.paths import forms_dir  # noqa: E402
from app.services import households  # noqa: E402
from app.ui.editor import HouseholdEditor  # noqa: E402
from app.ui.fonts import install_font  # noqa: E402
from app.ui.history import change_rows  # noqa: E402

OLD, NEW = "6228480402564890018", "6217002870012345678"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("app.ui.editor.ask_unsaved", lambda *a, **k: None)
    install_font(qapp)


def account_changed(store) -> str:
    doc = next(iter(households.documents(store)))
    doc["bank_account"] = OLD
    households.save(store, doc, allow_errors=True)
    doc = households.document(store, doc["id"])
    doc["bank_account"] = NEW
    households.save(store, doc, allow_errors=True)
    return doc["id"]


def test_the_history_panel_shows_bank_accounts_partly_hidden(qtbot, demo_store):
    hid = account_changed(demo_store)
    editor = HouseholdEditor(demo_store, household_id=hid)
    qtbot.addWidget(editor)
    editor.show()
    tree = editor.history.tree
    for i in range(tree.topLevelItemCount()):
        tree.topLevelItem(i).setExpanded(True)
    entries = editor.history.entries()
    assert ["银行账号", idnumber.mask(OLD), idnumber.mask(NEW)] in entries
    assert idnumber.mask(NEW) == "621700*********5678"
    shown = []
    it = QTreeWidgetItemIterator(tree)
    while it.value():
        item = it.value()
        shown += [item.text(c) for c in range(3)] + [item.toolTip(c) for c in range(3)]
        it += 1
    assert not any(OLD in text or NEW in text for text in shown)
    assert editor.household_forms[0].inputs["bank_account"].widget.text() == NEW  # the form keeps it whole to edit
    editor.dirty = False


def test_which_fields_the_history_hides_is_the_masked_flag_in_forms(demo_store, tmp_path):
    hid = account_changed(demo_store)
    change = demo_store.history(hid)[-1]
    assert change.new["bank_account"] == NEW
    assert ("银行账号", idnumber.mask(OLD), idnumber.mask(NEW)) in change_rows(change, dictionary.default())[1]
    folder = tmp_path / "forms"
    shutil.copytree(forms_dir(), folder)
    form = folder / "household.toml"
    text = form.read_text(encoding="utf-8")
    assert text.count("masked = true") == 1
    form.write_text(text.replace("masked = true", "masked = false"), encoding="utf-8")
    assert ("银行账号", OLD, NEW) in change_rows(change, dictionary.load(folder))[1]
