"""A disabled empty field looks empty. A hint (placeholder) is grey, and so is a disabled field's
value: in the editor's member form with no member selected, 18位身份证号码 and 数字 read as
values someone had typed. The program's palette (app.ui.look) draws no hint in a disabled field."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QComboBox, QLineEdit, QPlainTextEdit  # noqa: E402

from tests.test_ui import a_household, editor_of, home, open_window  # noqa: E402, F401 - home: autouse


def looks(widget, hint: str, enabled: bool):
    widget.setEnabled(enabled)
    target = widget.lineEdit() if isinstance(widget, QComboBox) else widget
    target.setPlaceholderText(hint)
    widget.repaint()
    return widget.grab().toImage()


@pytest.mark.parametrize("make", [QLineEdit, QPlainTextEdit, lambda: QComboBox(editable=True)])
def test_a_disabled_empty_field_shows_no_hint_and_an_enabled_one_does(qtbot, make):
    widget = make()
    qtbot.addWidget(widget)
    widget.resize(300, 30)
    widget.show()
    assert looks(widget, "18位身份证号码", enabled=False) == looks(widget, "", enabled=False)
    assert looks(widget, "18位身份证号码", enabled=True) != looks(widget, "", enabled=True)


def test_the_member_form_without_a_member_shows_no_hints(qtbot, demo_store):
    w = open_window(qtbot, demo_store)
    editor = editor_of(qtbot, w, a_household(demo_store)["id"])
    panel = editor.panels["member"]
    editor.tabs.setCurrentWidget(panel)
    panel.form.set_record(None)  # no member selected: the form is disabled and empty
    qtbot.wait(20)
    hinted = [inp.widget for inp in panel.form.inputs.values()
              if isinstance(inp.widget, QLineEdit) and inp.widget.placeholderText()]
    assert {f.placeholderText() for f in hinted} >= {"18位身份证号码", "数字"}
    for field in hinted:
        assert not field.isEnabled() and not field.text()
        shown = field.grab().toImage()
        hint = field.placeholderText()
        field.setPlaceholderText("")
        assert field.grab().toImage() == shown, hint  # the same as no hint at all
        field.setPlaceholderText(hint)
    editor.dirty = False
