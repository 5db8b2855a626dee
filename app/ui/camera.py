"""拍照: a photo taken with the laptop's camera, added to a household or one of its records
(docs/attachments.md). Opened from the 照片 tab (app/ui/attachments.py).

Qt Multimedia ships in PySide6-Addons; the program works without it (an installation without the
package, or a Linux machine without its sound library): the 拍照 button then says why it is not
available. With no camera attached it says 未找到摄像头.

The photo never touches the disk in plain form: `QImageCapture.capture()` hands the frame to the
`imageCaptured` signal as a QImage in memory (never `captureToFile`), it is encoded to PNG in a
QBuffer and goes through `attachments.prepare_bytes` (checking, resizing, JPEG re-encoding, as for a
file; a worker thread) and `attachments.store_prepared` (sealed in the database, GUI thread).
"""

from __future__ import annotations

import datetime as dt
import logging

from PySide6.QtCore import QBuffer, QIODevice, Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
)

from app import settings as app_settings
from app.services import attachments
from app.store import StoreError
from app.ui import workers

log = logging.getLogger(__name__)

try:  # PySide6-Addons (pyproject.toml); without it the program runs, without 拍照
    from PySide6.QtMultimedia import QCamera, QImageCapture, QMediaCaptureSession, QMediaDevices
    from PySide6.QtMultimediaWidgets import QVideoWidget
except ImportError as exc:  # not installed, or a library it needs is missing (libpulse on Linux)
    QCamera = QImageCapture = QMediaCaptureSession = QMediaDevices = QVideoWidget = None
    MISSING: str | None = str(exc)
else:
    MISSING = None

NO_MULTIMEDIA = ("本程序缺少 Qt 多媒体组件(PySide6-Addons),不能用摄像头拍照:请重新安装建档程序,"
                 "或用“添加照片…”添加用手机、相机拍好的照片")
NO_CAMERA = ("未找到摄像头:请接上摄像头,或在 Windows 设置 › 隐私 › 相机 中允许桌面应用使用相机,再打开拍照;"
             "也可以用“添加照片…”添加用手机、相机拍好的照片")


_logged: list[str] = []  # the reason Qt Multimedia is missing, logged once


def cameras() -> list:
    """The cameras attached now (QCameraDevice), the system's default first; none without Qt Multimedia."""
    if QMediaDevices is None:
        return []
    found = list(QMediaDevices.videoInputs())
    default = QMediaDevices.defaultVideoInput()
    return sorted(found, key=lambda c: c.id() != default.id())


def unavailable() -> str | None:
    """Why a photo cannot be taken on this computer (Chinese), or None when it can."""
    if MISSING is not None:
        if not _logged:
            _logged.append(MISSING)
            log.info("Qt Multimedia unavailable: %s", MISSING)
        return NO_MULTIMEDIA
    if not cameras():
        return NO_CAMERA
    return None


def best_format(formats: list):
    """The camera format with the most pixels among those that still give a fluid live view (15 frames a
    second or more; any, if none does). None when the camera lists none."""
    if not formats:
        return None
    fluid = [f for f in formats if f.maxFrameRate() >= 15] or list(formats)
    return max(fluid, key=lambda f: (f.resolution().width() * f.resolution().height(), f.maxFrameRate()))


def png_bytes(image: QImage) -> bytes:
    """A QImage encoded in memory (a QBuffer, never a file). PNG: lossless, so the one JPEG encoding is
    the one `prepare` makes with the settings' quality."""
    buffer = QBuffer()
    buffer.open(QIODevice.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise StoreError("无法读取摄像头拍下的画面:请重拍")
    return bytes(buffer.data())


class CaptureDialog(QDialog):
    """Live view, 拍照 / 重拍 / 保存, the camera to use when there are several, kind and caption as for
    files. Several photos may be taken one after another; each 保存 adds one."""

    saved = Signal(int)  # photos added so far

    def __init__(self, store, household, record_id: str, record_words: str, kind: str | None = None,
                 caption: str = "", parent=None):
        super().__init__(parent)
        self.store = store
        self.household = household
        self.record_id = record_id
        self.still: QImage | None = None
        self.taken: str | None = None
        self.busy = False
        self.added = 0
        self.camera = self.session = self.capture = None
        self.setWindowTitle("拍照")
        self.setObjectName("capture_dialog")
        self.resize(860, 640)

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel(f"添加到:{record_words}"))
        top.addStretch(1)
        self.camera_label = QLabel("摄像头:")
        self.camera_combo = QComboBox()
        self.camera_combo.setObjectName("camera_choice")
        self.camera_combo.setMinimumWidth(260)
        top.addWidget(self.camera_label)
        top.addWidget(self.camera_combo)
        layout.addLayout(top)

        self.stack = QStackedWidget()
        self.stack.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.message = QLabel()
        self.message.setObjectName("camera_message")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignCenter)
        self.message.setStyleSheet("font-size: 15px; color: #b00020; padding: 24px;")
        self.stack.addWidget(self.message)
        self.still_view = QLabel()
        self.still_view.setObjectName("camera_still")
        self.still_view.setAlignment(Qt.AlignCenter)
        self.still_view.setMinimumSize(320, 240)
        self.stack.addWidget(self.still_view)
        self.video = None
        if QVideoWidget is not None:
            self.video = QVideoWidget()
            self.stack.addWidget(self.video)
        layout.addWidget(self.stack, 1)

        form = QFormLayout()
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("camera_kind")
        for code, label in attachments.kinds().items():
            self.kind_combo.addItem(label, code)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(kind or attachments.OTHER)))
        self.caption = QLineEdit(caption)
        self.caption.setObjectName("camera_caption")
        self.caption.setPlaceholderText("说明(可不填),如:危房改造后 正面")
        form.addRow("类别", self.kind_combo)
        form.addRow("说明", self.caption)
        layout.addLayout(form)

        buttons = QHBoxLayout()
        self.status = QLabel()
        self.status.setObjectName("camera_status")
        self.status.setWordWrap(True)
        buttons.addWidget(self.status, 1)
        self.shoot_button = QPushButton("拍照 (空格)")
        self.shoot_button.setObjectName("camera_shoot")
        self.shoot_button.clicked.connect(self.shoot)
        self.retake_button = QPushButton("重拍")
        self.retake_button.setObjectName("camera_retake")
        self.retake_button.clicked.connect(self.retake)
        self.save_button = QPushButton("保存 (Ctrl+S)")
        self.save_button.setObjectName("camera_save")
        self.save_button.clicked.connect(self.save)
        close = QPushButton("关闭")
        close.clicked.connect(self.close)
        for b in (self.shoot_button, self.retake_button, self.save_button, close):
            b.setAutoDefault(False)
            buttons.addWidget(b)
        layout.addLayout(buttons)
        QShortcut(QKeySequence(Qt.Key_Space), self, activated=lambda: self.shoot_button.isEnabled() and self.shoot())
        QShortcut(QKeySequence.Save, self, activated=lambda: self.save_button.isEnabled() and self.save())

        self.devices = cameras()
        for device in self.devices:
            self.camera_combo.addItem(device.description(), device.id())
        several = len(self.devices) > 1
        self.camera_label.setVisible(several)
        self.camera_combo.setVisible(several)
        self.camera_combo.currentIndexChanged.connect(self._camera_chosen)
        reason = unavailable()
        if reason:
            self._say_unavailable(reason)
        else:
            self.session = QMediaCaptureSession(self)
            self.capture = QImageCapture(self)
            self.capture.setQuality(QImageCapture.VeryHighQuality)
            self.capture.imageCaptured.connect(self.image_captured)
            self.capture.errorOccurred.connect(self._capture_failed)
            self.capture.readyForCaptureChanged.connect(lambda ready: self._update_buttons())
            self.session.setImageCapture(self.capture)
            self.session.setVideoOutput(self.video)
            self._camera_chosen(0)
        self._update_buttons()

    # ------------------------------------------------------------------ the camera
    def _camera_chosen(self, index: int) -> None:
        if self.session is None or not 0 <= index < len(self.devices):
            return
        if self.camera is not None:
            self.camera.stop()
            self.camera.deleteLater()
        device = self.devices[index]
        self.camera = QCamera(device, self)
        best = best_format(device.videoFormats())
        if best is not None:  # a laptop camera often starts at 640×480 though it has more
            self.camera.setCameraFormat(best)
        self.camera.errorOccurred.connect(self._camera_failed)
        self.camera.activeChanged.connect(lambda active: self._update_buttons())
        self.session.setCamera(self.camera)
        self.camera.start()
        self.retake()

    def _say_unavailable(self, reason: str) -> None:
        self.message.setText(reason)
        self.stack.setCurrentWidget(self.message)

    def _camera_failed(self, error, text: str) -> None:
        log.warning("camera error %s: %s", error, text)
        self._say_unavailable(f"摄像头无法使用({text}):请检查摄像头是否被其他程序占用,关闭后重新打开拍照")
        self._update_buttons()

    def _capture_failed(self, request: int, error, text: str) -> None:
        log.warning("capture %s failed %s: %s", request, error, text)
        self.status.setText(f"没有拍下照片({text}):请再按一次拍照")
        self._update_buttons()

    def live(self) -> bool:
        return (self.camera is not None and self.camera.isActive()
                and self.stack.currentWidget() is self.video)

    # ------------------------------------------------------------------ taking, retaking, saving
    def shoot(self) -> None:
        if self.capture is None or not self.capture.isReadyForCapture():
            return
        if self.capture.capture() < 0:  # capture(): into memory (imageCaptured), never to a file
            self.status.setText("摄像头还没有准备好:请稍后再按拍照")

    def image_captured(self, request: int, image: QImage) -> None:
        """The slot of QImageCapture.imageCaptured: the frame, in memory. Shown for 保存 or 重拍."""
        if image.isNull():
            self.status.setText("没有拍下照片:请再按一次拍照")
            return
        self.still = image.copy()
        self.taken = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        self._show_still()
        self.status.setText("已拍下。满意请按“保存”,不满意按“重拍”。")
        self._update_buttons()

    def _show_still(self) -> None:
        if self.still is None:
            return
        size = self.stack.size()
        self.still_view.setPixmap(QPixmap.fromImage(self.still).scaled(
            max(size.width(), 320), max(size.height(), 240), Qt.KeepAspectRatio, Qt.SmoothTransformation))
        self.stack.setCurrentWidget(self.still_view)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.stack.currentWidget() is self.still_view:
            self._show_still()

    def retake(self) -> None:
        """Back to the live view (the photo not saved is dropped)."""
        self.still = None
        self.still_view.clear()
        if self.session is not None and self.video is not None:
            self.stack.setCurrentWidget(self.video)
            self.status.setText("对准后按“拍照”(空格键)。")
        self._update_buttons()

    def save(self) -> None:
        """Add the photo taken: processed on a worker thread as a file is, then sealed on this thread."""
        if self.still is None or self.busy:
            return
        image, taken = self.still, self.taken
        name = f"拍照-{dt.datetime.now():%Y%m%d-%H%M%S}.jpg"
        digest, position, conf = (attachments.digester(self.store), attachments.keep_gps(self.store),
                                  app_settings.load())
        self.busy = True
        self._update_buttons()
        self.status.setText("正在保存…")
        self.work = workers.start(
            lambda progress: attachments.prepare_bytes(png_bytes(image), name, digest, conf=conf,
                                                       keep_position=position, taken=taken),
            self._prepared, self._failed)

    def _prepared(self, item) -> None:
        self.busy = False
        try:
            report = attachments.store_prepared(self.store, self.household, [item],
                                                record=self.store.get(self.record_id) or self.household,
                                                kind=self.kind_combo.currentData(), caption=self.caption.text().strip())
        except StoreError as exc:
            self._failed(str(exc))
            return
        if report.refused:
            self._failed(";".join(report.refused))
            return
        if report.added:
            self.added += len(report.added)
            self.status.setText(f"已保存(本次共拍 {self.added} 张)。可以接着拍下一张。")
            self.saved.emit(self.added)
        else:
            self.status.setText(";".join(report.same) or "未保存")
        self.retake_after_save()

    def retake_after_save(self) -> None:
        message = self.status.text()
        self.retake()
        self.status.setText(message)

    def _failed(self, message: str) -> None:
        self.busy = False
        self.status.setText(f"未保存:{message}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        ready = self.capture is not None and self.capture.isReadyForCapture() and self.live()
        self.shoot_button.setEnabled(ready and not self.busy)
        self.retake_button.setEnabled(self.still is not None and not self.busy)
        self.save_button.setEnabled(self.still is not None and not self.busy)

    # ------------------------------------------------------------------ closing
    def done(self, result: int) -> None:
        if self.busy:  # the photo being saved: wait for it
            return
        if self.camera is not None:
            self.camera.stop()
        super().done(result)

    def closeEvent(self, event) -> None:
        if self.busy:
            event.ignore()
            return
        if self.camera is not None:
            self.camera.stop()
        super().closeEvent(event)
