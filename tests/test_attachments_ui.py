"""The editor's 照片 tab: add from files (off the GUI thread), drop onto a record's strip, thumbnails,
the viewer, delete; the household list counts photos."""

from __future__ import annotations

import warnings

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from app.services import attachments
from app.ui.attachments import Viewer
from app.ui.fonts import install_font
from tests import photos
from tests.test_ui import editor_of, open_window


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("app.ui.editor.ask_unsaved", lambda *a, **k: QMessageBox.Discard)
    install_font(qapp)


def _files(tmp_path, count, seed=0):
    out = []
    for i in range(count):
        path = tmp_path / f"IMG_{seed + i}.jpg"
        path.write_bytes(photos.photo(1600, 1200, seed=seed + i))
        out.append(path)
    return out


def _drop(widget, paths):
    """Drag files from the file manager and drop them (Qt delivers a drop only after an accepted enter)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    with warnings.catch_warnings():  # PySide6 marks the only constructor Qt has as deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(QPoint(20, 20), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(QPointF(20, 20), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))


def test_add_drop_view_and_delete_photos_in_the_editor(qtbot, demo_store, tmp_path, monkeypatch):
    w = open_window(qtbot, demo_store)
    house = next(iter(demo_store.records("household")))
    member = next(iter(demo_store.records("member", parent_id=house.id)))
    editor = editor_of(qtbot, w, house.id)
    panel = editor.attachments
    editor.tabs.setCurrentWidget(panel)
    assert [panel.record_combo.itemText(i) for i in range(2)][0] == "本户"
    assert panel.record_combo.findData(member.id) > 0  # each saved member is a target
    # add two photos to the household, as the 添加照片… button does (processing on a worker thread)
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findText("住房"))
    panel.caption.setText("危房改造后")
    panel.add_paths(None, _files(tmp_path, 2))
    assert panel.busy  # the window stays responsive while the files are processed
    qtbot.waitUntil(lambda: not panel.busy, timeout=30000)
    assert [r["caption"] for r in attachments.listing(demo_store, house.id)] == ["危房改造后"] * 2
    # the list counts them
    qtbot.waitUntil(lambda: w.model.rows[w.model._by_id[house.id]].photos == 2)
    # thumbnails are decoded off the GUI thread and arrive as icons
    strip = panel.strips[house.id]
    qtbot.waitUntil(lambda: all(not strip.item(i).icon().isNull() for i in range(strip.count())), timeout=10000)
    # photos that came by sync have no stored thumbnail: the image itself is scaled on the worker
    demo_store.conn.execute("UPDATE attachment_blobs SET thumb = NULL")
    panel.refresh()
    strip = panel.strips[house.id]
    assert all(strip.item(i).icon().isNull() for i in range(strip.count()))
    qtbot.waitUntil(lambda: all(not strip.item(i).icon().isNull() for i in range(strip.count())), timeout=10000)
    # a file dropped on a member's strip goes to that member
    panel.record_combo.setCurrentIndex(panel.record_combo.findData(member.id))
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findText("证件"))
    panel.caption.setText("")
    panel.record_combo.activated.emit(panel.record_combo.currentIndex())
    assert member.id in panel.strips  # the chosen record shows its (empty) strip to drop on
    _drop(panel.strips[member.id].viewport(), _files(tmp_path, 1, seed=10))
    qtbot.waitUntil(lambda: not panel.busy and member.id in panel.strips and panel.strips[member.id].count() == 1
                    and bool(panel.strips[member.id].item(0).data(Qt.UserRole)), timeout=30000)
    rows = attachments.listing(demo_store, house.id)
    assert [r["record"] for r in rows].count(member.id) == 1 and rows[-1]["kind_label"] == "证件"
    # a file that is not a photo: named in the message, nothing stored
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: warned.append(a[2]))
    bad = tmp_path / "readme.txt"
    bad.write_text("x")
    panel.add_paths(house.id, [bad])
    qtbot.waitUntil(lambda: not panel.busy, timeout=30000)
    assert warned and "readme.txt" in warned[0] and len(attachments.listing(demo_store, house.id)) == 3
    # 打印佐证材料… writes the household's evidence pages on a worker thread
    out = tmp_path / "佐证.pdf"
    monkeypatch.setattr("app.ui.attachments.QFileDialog.getSaveFileName", lambda *a, **k: (str(out), ""))
    panel.print_evidence()
    qtbot.waitUntil(lambda: not panel.busy, timeout=30000)
    assert out.read_bytes()[:4] == b"%PDF" and "佐证材料 3 张" in panel.status.text()
    # the viewer shows the photo large and steps through them
    viewer = Viewer(demo_store, [r["id"] for r in panel.rows], 0, panel)
    qtbot.addWidget(viewer)
    viewer.show()
    qtbot.waitUntil(lambda: viewer.pixmap is not None, timeout=10000)
    assert viewer.pixmap.width() == 1600 and "危房改造后" == viewer.caption.text()
    viewer.show_at(2)
    assert "家庭成员" in viewer.info.text()
    # delete from the viewer: asked, then a tombstone
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    shown = viewer.ids[viewer.index]
    viewer.delete()
    assert demo_store.get(shown).deleted and len(viewer.ids) == 2
    viewer.close()
    qtbot.waitUntil(lambda: w.model.rows[w.model._by_id[house.id]].photos == 2)


def test_a_new_household_says_to_save_first(qtbot, demo_store):
    from app.ui.editor import HouseholdEditor

    editor = HouseholdEditor(demo_store, None, village_code=next(iter(demo_store.records("household"))).village_code)
    qtbot.addWidget(editor)
    assert not editor.attachments.add_button.isEnabled() and "保存这一户后" in editor.attachments.status.text()


def test_a_record_strip_sits_under_its_title_at_the_top_of_the_photos_tab(qtbot, demo_store):
    """The 照片 tab at laptop size: each record's title directly above its strip, the empty room at
    the bottom (the title once floated mid-tab with its strip far below)."""
    w = open_window(qtbot, demo_store)
    house = next(iter(demo_store.records("household")))
    editor = editor_of(qtbot, w, house.id)
    editor.resize(1366, 740)
    editor.tabs.setCurrentWidget(editor.attachments)
    qtbot.wait(50)
    panel = editor.attachments
    strip = panel.strips[house.id]
    title = panel.strips_layout.itemAt(0).widget()
    assert "本户" in title.text()
    gap = strip.geometry().top() - title.geometry().bottom()
    assert 0 <= gap <= 12, gap
    assert title.geometry().top() <= 12
    assert panel.inner.height() - strip.geometry().bottom() > 100  # the spare room is below the strips
