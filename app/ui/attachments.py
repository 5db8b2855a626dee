"""The household editor's 照片 tab (docs/attachments.md): a strip of thumbnails per record (本户, each
member, visit … that has photos), a viewer, adding from files or a folder and by drag and drop.

Threads: the store is used on the GUI thread only (reading sealed thumbnails, writing attachments);
decoding thumbnails and images, and reading, checking and resizing the files being added
(`attachments.prepare_files`, Pillow), run on worker threads (app/ui/workers.py), a batch of files at a
time. 拍照… opens the camera dialog (app/ui/camera.py, Qt Multimedia), disabled with the reason when
there is no camera or no Qt Multimedia.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QSizePolicy,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app import settings as app_settings
from app.services import attachments
from app.services.images import IMAGE_SUFFIXES
from app.store import StoreError
from app.ui import workers

THUMB = 150
STRIP_HEIGHT = THUMB + 64
BATCH = 20  # files processed per worker run (a folder of 1,000 photos is never all in memory)
FILE_FILTER = "照片和扫描件 (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;所有文件 (*)"


def decode_thumbs(items: list[tuple[str, bytes | None]], side: int = THUMB) -> dict[str, QImage]:
    """Worker thread: JPEG bytes -> scaled QImage (QImage, unlike QPixmap, may be made off the GUI thread)."""
    out = {}
    for key, data in items:
        img = QImage()
        if data and img.loadFromData(data):
            big = max(img.width(), img.height()) > side  # never enlarged
            out[key] = img.scaled(side, side, Qt.KeepAspectRatio, Qt.SmoothTransformation) if big else img
    return out


class Strip(QListWidget):
    """One record's thumbnails in a row. Files dropped on it are added to that record."""

    files_dropped = Signal(str, list)  # record id, paths

    def __init__(self, record_id: str, parent=None):
        super().__init__(parent)
        self.record_id = record_id
        self.setObjectName(f"strip_{record_id}")
        self.setViewMode(QListView.IconMode)
        self.setFlow(QListView.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Static)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setGridSize(QSize(THUMB + 16, THUMB + 52))
        self.setFixedHeight(STRIP_HEIGHT)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.setAcceptDrops(True)
        self.setDragEnabled(False)
        self.viewport().setAcceptDrops(True)
        self.setDropIndicatorShown(True)

    def dragEnterEvent(self, event):
        if _local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    dragMoveEvent = dragEnterEvent

    def dropEvent(self, event):
        paths = _local_files(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.files_dropped.emit(self.record_id, paths)


def _local_files(mime) -> list[Path]:
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []


class AttachmentsPanel(QWidget):
    """Photos of one household, one strip per record."""

    changed = Signal()

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.household = None
        self.records: list[tuple[str, str]] = []  # (record id, words) the household's records, 本户 first
        self.busy = False
        self.queue: list[Path] = []
        self.pending_target = None
        self.report = attachments.AddReport()
        self.setAcceptDrops(True)
        self.setObjectName("attachments_panel")

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("添加到:"))
        self.record_combo = QComboBox()
        self.record_combo.setObjectName("attach_record")
        self.record_combo.setMinimumWidth(200)
        self.record_combo.activated.connect(lambda *_: self.refresh())
        top.addWidget(self.record_combo)
        top.addWidget(QLabel("类别:"))
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("attach_kind")
        for code, label in attachments.kinds().items():
            self.kind_combo.addItem(label, code)
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(attachments.OTHER))
        top.addWidget(self.kind_combo)
        self.caption = QLineEdit()
        self.caption.setObjectName("attach_caption")
        self.caption.setPlaceholderText("说明(可不填)")
        self.caption.setToolTip("这次添加的每张照片都用这段说明;添加后可在查看大图时逐张修改")
        top.addWidget(self.caption, 1)
        self.add_button = QPushButton("添加照片…")
        self.add_button.setObjectName("attach_files")
        self.add_button.clicked.connect(self.choose_files)
        self.folder_button = QPushButton("添加文件夹…")
        self.folder_button.setObjectName("attach_folder")
        self.folder_button.clicked.connect(self.choose_folder)
        self.camera_button = QPushButton("拍照…")
        self.camera_button.setObjectName("attach_camera")
        self.camera_button.clicked.connect(self.take_photo)
        self.print_button = QPushButton("打印佐证材料…")
        self.print_button.setObjectName("attach_print")
        self.print_button.clicked.connect(self.print_evidence)
        layout.addLayout(top)
        buttons = QHBoxLayout()  # a row of their own: beside the choices they left 说明 a few pixels at 1366×768
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.camera_button)
        buttons.addWidget(self.print_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        self.hint = QLabel("也可以把照片或文件夹从资源管理器拖到下面某条记录的照片栏里。双击照片查看大图,Delete 删除。")
        self.hint.setStyleSheet("color: #555;")
        layout.addWidget(self.hint)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.status = QLabel()
        self.status.setObjectName("attach_status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.inner = QWidget()
        self.strips_layout = QVBoxLayout(self.inner)
        self.strips_layout.setAlignment(Qt.AlignTop)
        self.scroll.setWidget(self.inner)
        layout.addWidget(self.scroll, 1)
        self.strips: dict[str, Strip] = {}
        self.rows: list[dict] = []
        QShortcut(QKeySequence.Delete, self, activated=self.delete_selected)

    # ------------------------------------------------------------------ content
    def set_household(self, household_id: str | None, records: list[tuple[str, str]] | None = None) -> None:
        """Show this household's photos; `records`: (id, words) of its saved child records."""
        self.household = self.store.get(household_id) if household_id else None
        self.records = ([(household_id, "本户")] if household_id else []) + list(records or [])
        current = self.record_combo.currentData()
        self.record_combo.clear()
        for rid, words in self.records:
            self.record_combo.addItem(words, rid)
        if current:
            self.record_combo.setCurrentIndex(max(0, self.record_combo.findData(current)))
        enabled = self.household is not None and not self.busy
        for w in (self.add_button, self.folder_button, self.print_button, self.record_combo, self.kind_combo, self.caption):
            w.setEnabled(enabled)
        self._camera_state(enabled)
        if self.household is None:
            self.status.setText("保存这一户后才能添加照片。")
        self.refresh()

    def refresh(self) -> None:
        while self.strips_layout.count():
            item = self.strips_layout.takeAt(0)
            if item.widget():
                item.widget().deleteLater()
        self.strips = {}
        if self.household is None:
            self.rows = []
            return
        self.rows = attachments.listing(self.store, self.household.id)
        by_record: dict[str, list[dict]] = {}
        for row in self.rows:
            by_record.setdefault(row["record"], []).append(row)
        words = dict(self.records)
        chosen = self.record_combo.currentData()  # the record photos are added to has its strip, to drop on
        shown = [rid for rid, _ in self.records if rid in by_record or rid in (self.household.id, chosen)]
        shown += [rid for rid in by_record if rid not in shown]  # photos of a record no longer listed
        thumbs = []
        for rid in shown:
            rows = by_record.get(rid, [])
            title = QLabel(f"{words.get(rid) or rows[0]['record_words']}({len(rows)} 张)")
            title.setStyleSheet("font-weight: bold;")
            title.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)  # the title sits on its strip
            self.strips_layout.addWidget(title)
            strip = Strip(rid)
            strip.files_dropped.connect(self.add_paths)
            strip.itemActivated.connect(self.open_viewer)
            self.strips[rid] = strip
            for row in rows:
                when = row["taken"][:10] if row["taken"] else f"{(row['added_at'] or '')[:10]} 添加"  # no EXIF date
                item = QListWidgetItem(f"{row['kind_label']}\n{when}")
                item.setData(Qt.UserRole, row["id"])
                item.setToolTip("\n".join(x for x in (row["caption"], row["record_words"],
                                                      f"{row['width']}×{row['height']},{(row['size'] or 0) // 1024} KB",
                                                      "" if row["present"] else "照片尚未同步到本机") if x))
                item.setSizeHint(QSize(THUMB + 12, THUMB + 48))
                strip.addItem(item)
                rec = self.store.get(row["id"])
                # a photo that came by sync has no stored thumbnail: the worker scales the image itself
                thumb = (attachments.thumbnail(self.store, rec) or attachments.image(self.store, rec)) if row["present"] else None
                thumbs.append((row["id"], thumb))
            if not rows:
                empty = QListWidgetItem("把照片拖到这里")
                empty.setFlags(Qt.NoItemFlags)
                strip.addItem(empty)
            self.strips_layout.addWidget(strip)
        self.strips_layout.addStretch(1)  # strips packed at the top, the empty room below them
        self.status.setText(f"共 {len(self.rows)} 张照片" if self.rows else "还没有照片")
        if thumbs:
            workers.start(lambda progress: decode_thumbs(thumbs), self._thumbs_ready, lambda message: None)

    def _thumbs_ready(self, images: dict) -> None:
        for strip in self.strips.values():
            for i in range(strip.count()):
                item = strip.item(i)
                image = images.get(item.data(Qt.UserRole))
                if image is not None:
                    item.setIcon(QIcon(QPixmap.fromImage(image)))

    # ------------------------------------------------------------------ adding
    def choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "选择照片或扫描件", "", FILE_FILTER)
        if names:
            self.add_paths(self.record_combo.currentData(), [Path(n) for n in names])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "选择装有照片的文件夹(如从手机复制出的 DCIM)")
        if folder:
            self.add_paths(self.record_combo.currentData(), [Path(folder)])

    def dragEnterEvent(self, event):
        if self.household is not None and _local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = _local_files(event.mimeData())
        if paths and self.household is not None:
            event.acceptProposedAction()
            self.add_paths(self.record_combo.currentData(), paths)

    def add_paths(self, record_id: str | None, paths: list) -> None:
        """Add files (and the photos of folders) to a record of this household, off the GUI thread."""
        if self.household is None or self.busy:
            return
        files, left_out = attachments.image_files(paths)
        self.pending_target = record_id or self.household.id
        self.queue = list(files)
        self.report = attachments.AddReport(left_out=left_out)
        self.digest = attachments.digester(self.store)
        self.position = attachments.keep_gps(self.store)
        self.conf = app_settings.load()
        self.total = len(files)
        self._set_busy(True)
        self._next_batch()

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        for w in (self.add_button, self.folder_button, self.print_button, self.record_combo, self.kind_combo, self.caption):
            w.setEnabled(not busy)
        self._camera_state(not busy and self.household is not None)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, max(self.total, 1))
            self.progress.setValue(0)
            self.status.setText(f"正在处理 {self.total} 个文件…")

    def _next_batch(self) -> None:
        if not self.queue:
            self._finished()
            return
        batch, self.queue = self.queue[:BATCH], self.queue[BATCH:]
        digest, conf, position = self.digest, self.conf, self.position
        workers.start(lambda progress: attachments.prepare_files(batch, digest, conf=conf, keep_position=position)[0],
                      self._batch_ready, self._failed)

    def _batch_ready(self, prepared) -> None:
        target = self.store.get(self.pending_target) or self.household
        try:
            one = attachments.store_prepared(self.store, self.household, prepared, record=target,
                                             kind=self.kind_combo.currentData(), caption=self.caption.text().strip())
        except StoreError as exc:
            self._failed(str(exc))
            return
        self.report.added += one.added
        self.report.same += one.same
        self.report.refused += one.refused
        self.progress.setValue(self.total - len(self.queue))
        self._next_batch()

    def _failed(self, message: str) -> None:
        self.queue = []
        self._set_busy(False)
        QMessageBox.warning(self, "添加照片未完成", f"{message}\n已添加的照片已保存。")
        self.refresh()
        self.changed.emit()

    def _finished(self) -> None:
        self._set_busy(False)
        self.refresh()
        lines = self.report.lines()
        self.status.setText(";".join(lines[:3]) + (" …" if len(lines) > 3 else ""))
        if self.report.refused:
            QMessageBox.warning(self, "有文件未添加", "\n".join(lines))
        if self.report.added:
            self.changed.emit()

    # ------------------------------------------------------------------ the camera
    def _camera_state(self, enabled: bool) -> None:
        """拍照… is enabled only with a camera (and Qt Multimedia); otherwise its tooltip says why. Qt
        Multimedia (a third of a second to load) is loaded when the tab is first shown, not with the editor."""
        self.camera_wanted = enabled
        if not self.isVisible():
            self.camera_button.setEnabled(False)
            return
        from app.ui import camera  # noqa: PLC0415

        reason = camera.unavailable()
        self.camera_button.setEnabled(enabled and reason is None)
        self.camera_button.setToolTip(reason or "用本机摄像头拍照,直接加密保存到这一户(照片不会以明文存到硬盘)")

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._camera_state(getattr(self, "camera_wanted", False))

    def take_photo(self) -> None:
        from app.ui import camera  # noqa: PLC0415

        if self.household is None or self.busy:
            return
        reason = camera.unavailable()
        if reason:  # unplugged since the tab was shown
            self._camera_state(True)
            self.status.setText(reason)
            return
        record_id = self.record_combo.currentData() or self.household.id
        dialog = camera.CaptureDialog(self.store, self.household, record_id, self.record_combo.currentText() or "本户",
                                      kind=self.kind_combo.currentData(), caption=self.caption.text().strip(), parent=self)
        dialog.saved.connect(lambda count: (self.refresh(), self.changed.emit()))
        dialog.exec()

    # ------------------------------------------------------------------ printing
    def print_evidence(self) -> None:
        """The household's evidence pages (as `jiandang print evidence`) into a PDF the user names."""
        if self.household is None or not self.rows:
            self.status.setText("这一户还没有照片,无法打印佐证材料")
            return
        number = self.household.fields.get("household_number") or "佐证材料"
        name, _ = QFileDialog.getSaveFileName(self, "保存佐证材料 PDF", f"佐证材料-{number}.pdf", "PDF 文件 (*.pdf)")
        if not name:
            return
        out = Path(name if name.lower().endswith(".pdf") else name + ".pdf")
        store, household = self.store, self.household
        self.total = 0
        self._set_busy(True)
        self.status.setText("正在生成佐证材料…")
        workers.start(lambda progress: attachments.print_evidence(store, out, household), self._printed, self._print_failed)

    def _printed(self, result) -> None:
        self._set_busy(False)
        path, pages, count = result
        self.status.setText(f"已生成 {path}:佐证材料 {count} 张,共 {pages} 页")

    def _print_failed(self, message: str) -> None:
        self._set_busy(False)
        QMessageBox.warning(self, "未生成佐证材料", message)

    # ------------------------------------------------------------------ viewing and deleting
    def selected_id(self) -> str | None:
        for strip in self.strips.values():
            items = strip.selectedItems()
            if items and items[0].data(Qt.UserRole):
                return items[0].data(Qt.UserRole)
        return None

    def open_viewer(self, item: QListWidgetItem) -> None:
        rid = item.data(Qt.UserRole)
        if not rid:
            return
        ids = [r["id"] for r in self.rows]
        viewer = Viewer(self.store, ids, ids.index(rid), self)
        viewer.changed.connect(self._viewer_changed)
        viewer.exec()

    def _viewer_changed(self) -> None:
        self.refresh()
        self.changed.emit()

    def delete_selected(self) -> None:
        rid = self.selected_id()
        if rid and self.confirm_delete(self, rid):
            self.refresh()
            self.changed.emit()

    def confirm_delete(self, parent, rid: str) -> bool:
        answer = QMessageBox.question(parent, "删除照片", "删除这张照片?删除会记入修改记录并随同步传到县里,照片本身从本机文件中移除。")
        if answer != QMessageBox.Yes:
            return False
        try:
            attachments.delete(self.store, rid)
        except StoreError as exc:
            QMessageBox.warning(parent, "无法删除", str(exc))
            return False
        return True


class Viewer(QDialog):
    """One photo large, with its kind, caption, date and who added it; ←/→ for the others."""

    changed = Signal()

    def __init__(self, store, ids: list[str], index: int, panel: AttachmentsPanel):
        super().__init__(panel)
        self.store, self.ids, self.index, self.panel = store, ids, index, panel
        self.setObjectName("attachment_viewer")
        self.resize(1100, 720)
        layout = QVBoxLayout(self)
        self.image = QLabel("正在打开…")
        self.image.setObjectName("viewer_image")
        self.image.setAlignment(Qt.AlignCenter)
        self.image.setMinimumSize(400, 300)
        layout.addWidget(self.image, 1)
        self.info = QLabel()
        self.info.setWordWrap(True)
        layout.addWidget(self.info)
        row = QHBoxLayout()
        self.prev_button = QPushButton("‹ 上一张")
        self.prev_button.clicked.connect(lambda: self.show_at(self.index - 1))
        self.next_button = QPushButton("下一张 ›")
        self.next_button.clicked.connect(lambda: self.show_at(self.index + 1))
        row.addWidget(self.prev_button)
        row.addWidget(self.next_button)
        row.addWidget(QLabel("类别:"))
        self.kind = QComboBox()
        for code, label in attachments.kinds().items():
            self.kind.addItem(label, code)
        row.addWidget(self.kind)
        row.addWidget(QLabel("说明:"))
        self.caption = QLineEdit()
        self.caption.setObjectName("viewer_caption")
        row.addWidget(self.caption, 1)
        save = QPushButton("保存说明")
        save.clicked.connect(self.save)
        row.addWidget(save)
        delete = QPushButton("删除…")
        delete.clicked.connect(self.delete)
        row.addWidget(delete)
        close = QPushButton("关闭")
        close.clicked.connect(self.accept)
        row.addWidget(close)
        layout.addLayout(row)
        QShortcut(QKeySequence(Qt.Key_Left), self, activated=lambda: self.show_at(self.index - 1))
        QShortcut(QKeySequence(Qt.Key_Right), self, activated=lambda: self.show_at(self.index + 1))
        self.pixmap = None
        self.show_at(index)

    def show_at(self, index: int) -> None:
        if not self.ids:
            self.accept()
            return
        self.index = max(0, min(index, len(self.ids) - 1))
        rec = self.store.get(self.ids[self.index])
        f = rec.fields
        self.setWindowTitle(f"照片 {self.index + 1}/{len(self.ids)}")
        self.kind.setCurrentIndex(max(0, self.kind.findData(str(f.get("kind")))))
        self.caption.setText(f.get("caption") or "")
        words = attachments.record_words(self.store, rec)
        taken = f"拍摄时间 {f['taken']}" if f.get("taken") else "拍摄时间 未记录"
        self.info.setText(f"{words} · {taken} · {f.get('added_by') or ''}({f.get('added_site') or ''})于 "
                          f"{f.get('added_at') or ''} 添加 · {f.get('width')}×{f.get('height')} · 原文件 {f.get('file_name') or ''}")
        self.prev_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(self.index < len(self.ids) - 1)
        data = attachments.image(self.store, rec)
        self.pixmap = None
        if data is None:
            self.image.setText("照片尚未同步到本机:县里或其他电脑同步过来后即可查看")
            return
        self.image.setText("正在打开…")
        shown = self.ids[self.index]
        workers.start(lambda progress: decode_thumbs([(shown, data)], side=4000).get(shown),
                      lambda img, shown=shown: self._decoded(shown, img), lambda message: None)

    def _decoded(self, shown: str, image) -> None:
        if image is None or not self.ids or self.ids[self.index] != shown:
            return
        self.pixmap = QPixmap.fromImage(image)
        self._fit()

    def _fit(self) -> None:
        if self.pixmap is not None:
            self.image.setPixmap(self.pixmap.scaled(self.image.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def save(self) -> None:
        try:
            attachments.update(self.store, self.ids[self.index], caption=self.caption.text().strip(),
                               kind=self.kind.currentData())
        except StoreError as exc:
            QMessageBox.warning(self, "无法保存", str(exc))
            return
        self.changed.emit()

    def delete(self) -> None:
        if self.panel.confirm_delete(self, self.ids[self.index]):
            self.ids.pop(self.index)
            self.changed.emit()
            self.show_at(self.index)
