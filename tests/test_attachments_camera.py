"""拍照 in the 照片 tab (app/ui/camera.py): without a camera the button and the dialog say so; a photo
the camera hands over (Qt's imageCaptured signal, a QImage in memory) is stored encrypted with the
chosen kind and caption, once, and never written to disk in plain form."""

from __future__ import annotations

import datetime as dt
import io
import tempfile

import pytest
from PIL import Image
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

from app.services import attachments
from app.ui import camera
from app.ui.fonts import install_font
from tests import photos
from tests.test_ui import editor_of, open_window


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, qapp):
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("app.ui.editor.ask_unsaved", lambda *a, **k: QMessageBox.Discard)
    install_font(qapp)


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """Every temporary file of the test goes here, to be scanned."""
    temp = tmp_path / "temp"
    temp.mkdir()
    for name in ("TMP", "TEMP", "TMPDIR"):
        monkeypatch.setenv(name, str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


def _photo_tab(qtbot, store):
    w = open_window(qtbot, store)
    house = next(iter(store.records("household")))
    editor = editor_of(qtbot, w, house.id)
    editor.tabs.setCurrentWidget(editor.attachments)
    return w, house, editor.attachments


def test_without_a_camera_the_button_is_disabled_and_the_dialog_says_so(qtbot, demo_store, monkeypatch):
    monkeypatch.setattr(camera, "cameras", lambda: [])  # as on this machine, CI and a laptop without one
    _, house, panel = _photo_tab(qtbot, demo_store)
    assert not panel.camera_button.isEnabled() and "未找到摄像头" in panel.camera_button.toolTip()
    assert panel.add_button.isEnabled()  # files are still added as before
    dialog = camera.CaptureDialog(demo_store, house, house.id, "本户")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.stack.currentWidget() is dialog.message and dialog.message.text().startswith("未找到摄像头")
    assert not dialog.shoot_button.isEnabled() and not dialog.save_button.isEnabled()
    assert not dialog.camera_combo.isVisible()  # nothing to choose from
    # an installation without Qt Multimedia (PySide6-Addons): the button says what is missing
    monkeypatch.setattr(camera, "MISSING", "No module named 'PySide6.QtMultimedia'")
    panel.set_household(house.id, panel.records[1:])
    assert not panel.camera_button.isEnabled() and "PySide6-Addons" in panel.camera_button.toolTip()


def test_a_captured_frame_is_stored_encrypted_with_kind_and_caption_once(qtbot, demo_store, monkeypatch, temp_dir,
                                                                        tmp_path):
    monkeypatch.setattr(camera, "cameras", lambda: [])
    _, house, panel = _photo_tab(qtbot, demo_store)
    member = next(iter(demo_store.records("member", parent_id=house.id)))
    before = len(attachments.listing(demo_store, house.id))
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findText("走访"))  # the tab's choices are the defaults
    panel.caption.setText("入户走访")
    dialog = camera.CaptureDialog(demo_store, house, member.id, "家庭成员", kind=panel.kind_combo.currentData(),
                                  caption=panel.caption.text())
    dialog.saved.connect(lambda count: panel.refresh())
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.kind_combo.currentText() == "走访" and dialog.caption.text() == "入户走访"
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findText("证件"))
    dialog.caption.setText("残疾证 正面")
    frame = QImage.fromData(photos.photo(1920, 1080, seed=7, taken=None))
    assert not frame.isNull()

    dialog.image_captured(1, frame)  # what Qt's imageCaptured signal delivers
    assert dialog.stack.currentWidget() is dialog.still_view and dialog.save_button.isEnabled()
    dialog.save_button.click()
    qtbot.waitUntil(lambda: not dialog.busy and dialog.added == 1, timeout=30000)
    rows = attachments.listing(demo_store, house.id)
    assert len(rows) == before + 1
    row = rows[-1]
    assert (row["record"], row["kind_label"], row["caption"]) == (member.id, "证件", "残疾证 正面")
    assert row["taken"].startswith(dt.date.today().isoformat())  # a frame has no EXIF: taken now
    assert (row["width"], row["height"]) == (1600, 900)  # resized to the settings' longest side, as a file
    stored = attachments.image(demo_store, demo_store.get(row["id"]))
    assert Image.open(io.BytesIO(stored)).format == "JPEG"
    assert member.id in panel.strips  # the tab shows it at once
    assert not dialog.save_button.isEnabled() and "已保存" in dialog.status.text()

    # the same frame again (保存 pressed twice on one picture, or a still scene): stored once
    dialog.image_captured(2, frame)
    dialog.save_button.click()
    qtbot.waitUntil(lambda: not dialog.busy, timeout=30000)
    assert len(attachments.listing(demo_store, house.id)) == before + 1 and dialog.added == 1
    assert "已添加过" in dialog.status.text()
    # 重拍 drops a picture not wanted: nothing stored
    dialog.image_captured(3, QImage.fromData(photos.photo(1280, 720, seed=8, taken=None)))
    dialog.retake_button.click()
    assert dialog.still is None and not dialog.save_button.isEnabled()
    dialog.close()

    # no image in plain form on disk: not in the database, its WAL, or any temporary file
    path = demo_store.path
    for f in (path, path.with_name(path.name + "-wal")):
        assert not f.exists() or photos.find_magic(f) == [], f
    for leftover in list(temp_dir.rglob("*")) + [p for p in tmp_path.iterdir() if p.is_file()]:
        assert leftover.is_dir() or photos.find_magic(leftover) == [], leftover


def test_the_program_runs_without_qt_multimedia(tmp_path):
    """An installation without PySide6-Addons (or a Linux machine without libpulse): app.ui.camera still
    imports, says why 拍照 is unavailable, and the self-test passes saying the same."""
    import os
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['PySide6.QtMultimedia'] = None\n"  # import fails as when not installed
        "from app.ui import camera\n"
        "assert camera.MISSING and camera.cameras() == []\n"
        "print(camera.unavailable())\n"
        "from app.cli.main import main\n"
        "raise SystemExit(main(['selftest']))\n")
    env = dict(os.environ, JIANDANG_HOME=str(tmp_path / "home"), PYTHONIOENCODING="utf-8")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, timeout=300)
    out = done.stdout.decode("utf-8")
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")[-2000:]
    assert out.startswith(camera.NO_MULTIMEDIA) and "拍照组件不可用" in out and "自检通过" in out


def test_the_camera_is_opened_at_its_largest_fluid_format():
    """A laptop camera listing 1920×1080 at 5 frames a second and 1280×720 at 30 opens at 1280×720 (a live
    view that stutters makes photos hard to aim); with only slow formats, the largest."""
    from types import SimpleNamespace

    from PySide6.QtCore import QSize

    def fmt(w, h, fps):
        return SimpleNamespace(resolution=lambda: QSize(w, h), maxFrameRate=lambda: fps)

    formats = [fmt(640, 480, 30), fmt(1920, 1080, 5), fmt(1280, 720, 30), fmt(1280, 720, 15)]
    best = camera.best_format(formats)
    assert (best.resolution().width(), best.maxFrameRate()) == (1280, 30)
    assert camera.best_format([fmt(640, 480, 10), fmt(2592, 1944, 2)]).resolution().width() == 2592
    assert camera.best_format([]) is None
