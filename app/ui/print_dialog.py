"""The print dialog: choose a document (户有卡, 村有册, 乡有簿, 公示, 防返贫监测公示, 防返贫监测对象名册 and
监测对象簿), generate it off the GUI thread
with progress, preview it page by page (the whole page scaled into the window, or the page width
with a scroll bar), open it with the system viewer or save it.

The PDF is generated into memory; nothing with personal data touches the disk until the user saves
it ("另存为", written atomically) or asks for the system viewer (a file in a private temporary folder
that is removed when the dialog closes).

Preview: PySide6.QtPdf when installed (PySide6-Addons), else pypdfium2 (a wheel for Windows, macOS
and Linux). Without either the dialog says so and still opens/saves the PDF.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QDate, QSize, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.procedures import default_place_and_contact, min_notice_days
from app.reports.common import ReportError, write_pdf
from app.reports.notice import MIN_DAYS, NoticeInfo, period_of
from app.services import printing
from app.ui import workers

log = logging.getLogger(__name__)

PREVIEW_WIDTH = 520
RENDER_WIDTH = 1240  # pixels across the page when rendered for the preview (A4 at 150 dpi)


def render_page(pdf: bytes, index: int = 0, width: int = PREVIEW_WIDTH) -> QImage | None:
    """Page `index` (from 0) of a PDF as an image `width` pixels wide, or None when no renderer is
    available (see the module docstring) or the page does not exist."""
    try:
        from PySide6.QtCore import QBuffer, QByteArray
        from PySide6.QtPdf import QPdfDocument
    except ImportError:
        pass
    else:
        document = QPdfDocument()
        buffer = QBuffer()
        buffer.setData(QByteArray(pdf))
        buffer.open(QBuffer.ReadOnly)
        document.load(buffer)
        try:
            if not 0 <= index < document.pageCount():
                return None
            size = document.pagePointSize(index)
            height = int(width * size.height() / size.width())
            return document.render(index, QSize(width, height))
        finally:
            document.close()
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return None
    document = pdfium.PdfDocument(pdf)
    try:
        if not 0 <= index < len(document):
            return None
        page = document[index]
        scale = width / page.get_width()
        bitmap = page.render(scale=scale, rev_byteorder=True)
        image = QImage(bitmap.buffer, bitmap.width, bitmap.height, bitmap.stride,
                       QImage.Format_RGB888 if bitmap.n_channels == 3 else QImage.Format_RGBA8888)
        return image.copy()  # detach from pdfium's buffer before it is freed
    finally:
        document.close()


def render_first_page(pdf: bytes, width: int = PREVIEW_WIDTH) -> QImage | None:
    """The first page of a PDF as an image `width` pixels wide (see `render_page`)."""
    return render_page(pdf, 0, width)


class PagePreview(QScrollArea):
    """One page image shown either whole, scaled to fit the visible area ("整页", the default), or
    scaled to the visible width with a vertical scroll bar ("页宽"). Re-scales when resized."""

    FIT_PAGE, FIT_WIDTH = "page", "width"
    MARGIN = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignCenter)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setAlignment(Qt.AlignCenter)
        self.setMinimumSize(300, 300)
        self.image: QImage | None = None
        self.mode = self.FIT_PAGE

    def set_text(self, text: str) -> None:
        self.image = None
        self.label.setPixmap(QPixmap())
        self.label.setWordWrap(True)
        self.label.setText(text)

    def set_image(self, image: QImage) -> None:
        self.image = image
        self.label.setWordWrap(False)
        self.verticalScrollBar().setValue(0)
        self.rescale()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.rescale()

    def rescale(self) -> None:
        if self.image is None or self.image.isNull():
            return
        area = self.maximumViewportSize()  # the viewport without scroll bars
        if self.mode == self.FIT_WIDTH:
            width = area.width() - self.verticalScrollBar().sizeHint().width() - 2 * self.MARGIN
            target = QSize(max(width, 50), 1_000_000)
        else:
            target = QSize(max(area.width() - 2 * self.MARGIN, 50), max(area.height() - 2 * self.MARGIN, 50))
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap.fromImage(self.image.scaled(target * ratio, Qt.KeepAspectRatio, Qt.SmoothTransformation))
        pixmap.setDevicePixelRatio(ratio)
        self.label.setPixmap(pixmap)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self.rescale()


def make_pdf(store, document: str, options: dict, progress) -> tuple[bytes, int, int]:
    """Generate one document into memory (runs on a worker thread): (pdf, pages, households)."""
    buffer = io.BytesIO()
    o = options
    if document in ("card_household", "card_village"):
        result = printing.print_cards(store, buffer, household_id=o.get("household_id"),
                                      village_code=o.get("village_code"), full_id=o.get("full_id", False),
                                      progress=progress)
    elif document == "register":
        result = printing.print_register(store, buffer, o["village_code"], progress=progress)
    elif document == "book":
        result = printing.print_book(store, buffer, o["township_code"], progress=progress)
    elif document in MONITORING_REGISTERS:  # the same PDF as `jiandang print monitoring`
        result = printing.print_monitoring_register(store, buffer, o["place_code"])
    else:
        level, kind = NOTICE_DOCUMENTS[document]
        info, items, place = o["info"], None, o["place_code"]
        if level == "village" and o.get("period_from_proposals"):
            printing.check_village(store, place)
            items = printing.notice_items(store, place, kind)
            period = period_of(items)
            if period:
                info = replace(info, start=period[0], end=period[1])
        if level == "county":
            info = replace(info, end=info.start)  # a 公告 has a date, not a period
        result = printing.print_notice(store, buffer, place, kind, info, items, level=level)
    return buffer.getvalue(), result.pages, result.households


NOTICE_DOCUMENTS = {  # document key -> (level, kind) of app.services.printing.print_notice
    "notice_entry": ("village", "entry"), "notice_exit": ("village", "exit"),
    "notice_township_entry": ("township", "entry"), "notice_township_exit": ("township", "exit"),
    "announce_entry": ("county", "entry"), "announce_exit": ("county", "exit"),
    "notice_monitor": ("village", "monitor"), "notice_eliminate": ("village", "eliminate"),  # 防返贫监测, village only
}


MONITORING_REGISTERS = {"monitoring_register": 12, "monitoring_book": 9}  # document key -> digits of its place code


class PrintDialog(QDialog):
    DOCUMENTS = [
        ("card_household", "户有卡(本户)"),
        ("card_village", "户有卡(全村合订)"),
        ("register", "村有册(花名册及汇总图)"),
        ("book", "乡有簿(本乡镇各村汇总)"),
        ("notice_entry", "公示:拟纳入(新识别、返贫纳入)"),
        ("notice_exit", "公示:拟退出(脱贫)"),
        ("notice_township_entry", "乡级公示:拟纳入(已通过乡级初核)"),
        ("notice_township_exit", "乡级公示:拟退出(已通过乡级初核)"),
        ("announce_entry", "县级公告:新识别(纳入)(已通过县级审定)"),
        ("announce_exit", "县级公告:脱贫退出(已通过县级审定)"),
        ("notice_monitor", "防返贫监测公示:拟纳入监测对象(监测识别)"),
        ("notice_eliminate", "防返贫监测公示:监测对象拟风险消除"),
        ("monitoring_register", "防返贫监测对象名册(本村监测户及其风险)"),
        ("monitoring_book", "防返贫监测对象簿(本乡镇各村监测户)"),
    ]
    ROLES = {"notice_township_entry": ("township", "county"), "notice_township_exit": ("township", "county"),
             "announce_entry": ("county",), "announce_exit": ("county",)}  # who issues these

    @staticmethod
    def _DIGITS_NEEDED(key: str) -> int:
        """How much of a division code a document needs: a village's (12 digits), a township's book,
        notices and 监测对象簿 (9), the county's 公告 (6)."""
        if key == "book":
            return 9
        if key in MONITORING_REGISTERS:  # the 监测对象簿 of a township chosen in the tree too
            return MONITORING_REGISTERS[key]
        return printing.NOTICE_LEVELS[NOTICE_DOCUMENTS[key][0]][1] if key in NOTICE_DOCUMENTS else 12

    def __init__(self, store, parent=None, household_id: str | None = None, village_code: str | None = None):
        """`village_code` is the village chosen (or the chosen household's); a township's or the
        county's code offers that level's documents only."""
        super().__init__(parent)
        self.store = store
        self.household_id = household_id
        if household_id and not village_code:
            record = store.get(household_id)
            village_code = record.village_code if record else None
        self.village_code = village_code
        self.pdf: bytes | None = None
        self.pages = 0
        self._op: workers.Task | None = None
        self._tempdir: str | None = None
        self.setWindowTitle("打印")
        self.resize(640, 820)

        self.document = QComboBox()
        for key, label in self.DOCUMENTS:
            if key == "card_household" and not household_id:
                continue
            if key != "card_household" and len(village_code or "") < self._DIGITS_NEEDED(key):
                continue  # a township chosen in the tree: its book and notices, not a village's documents
            if key in self.ROLES and store.role not in self.ROLES[key]:
                continue
            self.document.addItem(label, key)
        self.full_id = QCheckBox("打印完整证件号码和银行账号(默认部分隐藏)")
        self.notice_box = QWidget()
        form = QFormLayout(self.notice_box)
        form.setContentsMargins(0, 0, 0, 0)
        today = QDate.currentDate()
        self.start = QDateEdit(today)
        self.end = QDateEdit(today.addDays(MIN_DAYS - 1))
        self._auto_end = self.end.date()  # the end date the dialog chose (follows the start and the kind)
        for edit in (self.start, self.end):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.place, self.contact = (QLineEdit(text) for text in default_place_and_contact("village"))
        self.phone = QLineEdit()
        self.use_proposal_period = QCheckBox("采用申报中设定的公示期(没有设定时用下面的日期)")
        self.use_proposal_period.setChecked(True)
        form.addRow(self.use_proposal_period)
        form.addRow("公示开始", self.start)
        form.addRow("公示结束", self.end)
        form.addRow("公示地点", self.place)
        form.addRow("异议受理", self.contact)
        form.addRow("联系电话", self.phone)

        self.generate_button = QPushButton("生成")
        self.generate_button.setDefault(True)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel(
            "选择文档后点“生成”。" if self.document.count() else "没有可打印的文档:请先选择一户或一个村。")
        self.status.setWordWrap(True)
        self.page_view = PagePreview()
        self.preview = self.page_view.label  # the label showing the current page
        self.page_index = 0
        self.previous_button = QPushButton("上一页")
        self.next_button = QPushButton("下一页")
        self.page_label = QLabel()
        self.zoom = QComboBox()
        self.zoom.addItem("整页", PagePreview.FIT_PAGE)
        self.zoom.addItem("页宽", PagePreview.FIT_WIDTH)
        self.zoom.setToolTip("整页:整页缩放到窗口内;页宽:按窗口宽度显示,上下滚动查看")
        self.open_button = QPushButton("用系统查看器打开")
        self.save_button = QPushButton("另存为…")
        close = QPushButton("关闭")
        for b in (self.open_button, self.save_button):
            b.setEnabled(False)

        top = QHBoxLayout()
        top.addWidget(QLabel("文档"))
        top.addWidget(self.document, 1)
        top.addWidget(self.generate_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.save_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.full_id)
        layout.addWidget(self.notice_box)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        pages = QHBoxLayout()
        pages.addWidget(self.previous_button)
        pages.addWidget(self.page_label)
        pages.addWidget(self.next_button)
        pages.addStretch(1)
        pages.addWidget(QLabel("显示"))
        pages.addWidget(self.zoom)
        layout.addLayout(pages)
        layout.addWidget(self.page_view, 1)
        layout.addLayout(buttons)

        self.document.currentIndexChanged.connect(self._document_changed)
        self.start.dateChanged.connect(lambda _date: self._default_end())
        self.generate_button.clicked.connect(self.generate)
        self.open_button.clicked.connect(self.open_in_viewer)
        self.save_button.clicked.connect(self.save_as)
        close.clicked.connect(self.reject)
        self.previous_button.clicked.connect(lambda: self.show_page(self.page_index - 1))
        self.next_button.clicked.connect(lambda: self.show_page(self.page_index + 1))
        self.zoom.currentIndexChanged.connect(lambda: self.page_view.set_mode(self.zoom.currentData()))
        self.generate_button.setEnabled(self.document.count() > 0)
        self._document_changed()

    # ------------------------------------------------------------------ choosing

    def current_document(self) -> str | None:
        return self.document.currentData()

    def select(self, key: str) -> None:
        index = self.document.findData(key)
        if index >= 0:
            self.document.setCurrentIndex(index)

    def _document_changed(self) -> None:
        key = self.current_document() or ""
        self.full_id.setVisible(key.startswith("card"))
        self.notice_box.setVisible(key in NOTICE_DOCUMENTS)
        if key in NOTICE_DOCUMENTS:
            self._notice_fields_for(NOTICE_DOCUMENTS[key][0])
            self._default_end()
        self.pdf = None
        self.open_button.setEnabled(False)
        self.save_button.setEnabled(False)
        self.pages = self.page_index = 0
        self.page_view.set_text("(生成后在这里预览)")
        self._update_page_buttons()

    def _default_end(self) -> None:
        """The shortest period the notice's kind allows (监测识别 5 days, the others 7), as
        `jiandang print notice` takes it, unless the user chose the end date."""
        kind = NOTICE_DOCUMENTS.get(self.current_document() or "", ("", None))[1]
        if self.end.date() != self._auto_end:
            return  # typed by the user: kept
        self._auto_end = self.start.date().addDays(min_notice_days(kind) - 1)
        self.end.setDate(self._auto_end)

    def _notice_fields_for(self, level: str) -> None:
        """The notice fields a level uses, with its own defaults (kept when the user typed others)."""
        form = self.notice_box.layout()
        for widget in (self.end, self.place, self.contact, self.phone):
            form.setRowVisible(widget, level != "county")  # a 公告 has only its date
        form.setRowVisible(self.use_proposal_period, level == "village")
        form.labelForField(self.start).setText("公告日期" if level == "county" else "公示开始")
        township = self.store.division_name((self.village_code or "")[:9]) if self.village_code else ""
        defaults = {lv: default_place_and_contact(lv, township) for lv in ("village", "township")}
        own = {text for pair in defaults.values() for text in pair}
        if level in defaults:
            place, contact = defaults[level]
            if self.place.text() in own or not self.place.text():
                self.place.setText(place)
            if self.contact.text() in own or not self.contact.text():
                self.contact.setText(contact)

    def options(self) -> dict:
        key = self.current_document()
        o: dict = {}
        if key == "card_household":
            o["household_id"] = self.household_id
        if key == "card_village" or key == "register":
            o["village_code"] = self.village_code
        if key in NOTICE_DOCUMENTS:
            o["place_code"] = self._place_code(key)
        if key == "book":
            o["township_code"] = (self.village_code or "")[:9]
        if key in MONITORING_REGISTERS:
            o["place_code"] = self._place_code(key)
        if key and key.startswith("card"):
            o["full_id"] = self.full_id.isChecked()
        if key in NOTICE_DOCUMENTS:
            o["info"] = NoticeInfo(start=self.start.date().toPython(), end=self.end.date().toPython(),
                                   place=self.place.text().strip(), contact=self.contact.text().strip(),
                                   phone=self.phone.text().strip())
            o["period_from_proposals"] = self.use_proposal_period.isChecked()
        return o

    def _place_code(self, key: str) -> str:
        """The village's code, or its township's or county's for a notice of that level (or for the
        township's 监测对象簿)."""
        if key in MONITORING_REGISTERS:
            return (self.village_code or "")[:MONITORING_REGISTERS[key]]
        level = NOTICE_DOCUMENTS[key][0] if key in NOTICE_DOCUMENTS else "village"
        return (self.village_code or "")[:printing.NOTICE_LEVELS[level][1]]

    def suggested_name(self) -> str:
        key = self.current_document() or "document"
        names = {"card_household": "户有卡", "card_village": "户有卡", "register": "村有册", "book": "乡有簿",
                 "notice_entry": "公示-拟纳入", "notice_exit": "公示-拟退出",
                 "notice_township_entry": "乡级公示-拟纳入", "notice_township_exit": "乡级公示-拟退出",
                 "announce_entry": "公告-新识别", "announce_exit": "公告-脱贫退出",
                 "notice_monitor": "公示-监测识别", "notice_eliminate": "公示-风险消除",
                 "monitoring_register": "监测对象名册", "monitoring_book": "监测对象簿"}
        code = (self.village_code or "")[:9] if key == "book" else self._place_code(key)
        place = self.store.division_name(code) if code else ""
        return f"{names.get(key, key)}-{place}-{dt.date.today():%Y%m%d}.pdf"

    # ------------------------------------------------------------------ generating

    def generate(self) -> None:
        key = self.current_document()
        if not key or self.busy:
            return
        self.pdf = None
        self.open_button.setEnabled(False)
        self.save_button.setEnabled(False)
        self.generate_button.setEnabled(False)
        self.document.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText("正在生成…")
        store, options = self.store, self.options()
        self._op = workers.start(lambda progress: make_pdf(store, key, options, progress),
                                 self._on_finished, self._on_failed, self._on_progress)

    @property
    def busy(self) -> bool:
        return self._op is not None and self._op.running

    def _stop_thread(self) -> None:
        self._op = None
        self.progress.setVisible(False)
        self.generate_button.setEnabled(True)
        self.document.setEnabled(True)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"正在生成… {done}/{total} 户")

    def _on_finished(self, made: tuple[bytes, int, int]) -> None:
        pdf, pages, count = made
        self._stop_thread()
        self.pdf, self.pages = pdf, pages
        self.open_button.setEnabled(True)
        self.save_button.setEnabled(True)
        self.show_page(0)
        more = ",用“上一页”“下一页”翻看" if pages > 1 else ""
        self.status.setText(f"已生成:{count} 户,共 {pages} 页。下面是预览{more}。")

    # ------------------------------------------------------------------ preview

    def show_page(self, index: int) -> None:
        """Show page `index` (from 0) of the generated PDF in the preview."""
        if not self.pdf or not 0 <= index < max(self.pages, 1):
            return
        self.page_index = index
        image = render_page(self.pdf, index, RENDER_WIDTH)
        if image is None or image.isNull():
            self.page_view.set_text("本机没有 PDF 预览组件(QtPdf 或 pypdfium2);请用系统查看器打开查看。")
        else:
            self.page_view.set_image(image)
        self._update_page_buttons()

    def _update_page_buttons(self) -> None:
        shown = bool(self.pdf) and self.pages > 0
        self.page_label.setText(f"第 {self.page_index + 1} 页 共 {self.pages} 页" if shown else "")
        self.previous_button.setEnabled(shown and self.page_index > 0)
        self.next_button.setEnabled(shown and self.page_index < self.pages - 1)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._stop_thread()
        self.status.setText(f"<span style='color:#c00000'>无法生成:{message}</span>")

    def wait_until_done(self, timeout_ms: int = 60000) -> bool:
        """For tests and scripts: block until the current generation ends."""
        return self._op is None or self._op.wait(timeout_ms)

    # ------------------------------------------------------------------ output

    def save_to(self, path) -> Path:
        """Write the generated PDF atomically to `path` (ReportError with a message on failure)."""
        data = self.pdf or b""

        def build(tmp):
            with open(tmp, "wb") as fh:
                fh.write(data)

        return write_pdf(path, build)

    def save_as(self) -> None:
        if not self.pdf:
            return
        start = str(Path.home() / self.suggested_name())
        path, _ = QFileDialog.getSaveFileName(self, "另存为", start, "PDF 文件 (*.pdf)")
        if not path:
            return
        if not path.lower().endswith(".pdf"):
            path += ".pdf"
        try:
            self.save_to(path)
        except ReportError as exc:
            QMessageBox.warning(self, "无法保存", str(exc))
            return
        self.status.setText(f"已保存到 {path}")

    def open_in_viewer(self) -> None:
        if not self.pdf:
            return
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix=PREVIEW_PREFIX)
            os.chmod(self._tempdir, 0o700)
        path = Path(self._tempdir) / self.suggested_name()
        try:
            self.save_to(path)
        except ReportError as exc:
            QMessageBox.warning(self, "无法打开", str(exc))
            return
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
            QMessageBox.information(self, "无法打开", f"系统没有可以打开 PDF 的程序。请用“另存为”保存后再打开。")

    def done(self, result: int) -> None:
        if self.busy:
            self.wait_until_done()
        if self._tempdir:
            _remove_preview_folder(Path(self._tempdir))
            self._tempdir = None
        super().done(result)


PREVIEW_PREFIX = "jiandang-print-"


def _remove_preview_folder(folder: Path) -> bool:
    """Delete a folder of PDFs written for the system viewer; False (and a log line) when it cannot be
    (on Windows a viewer that still has the file open keeps it)."""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        return True
    except OSError as exc:
        log.warning("无法删除打印预览的临时文件夹 %s:%s(下次启动时再删)", folder, exc.strerror or exc)
        return False
    return True


def remove_leftover_previews(min_age_seconds: float = 3600, folder: Path | None = None) -> int:
    """At start-up: delete preview folders an earlier run left behind (it crashed, or the viewer
    still had the file open), which hold household cards in plain text. Folders younger than
    `min_age_seconds` may belong to another running window and are left alone. Returns how many
    were deleted."""
    import time

    removed = 0
    for leftover in Path(folder or tempfile.gettempdir()).glob(PREVIEW_PREFIX + "*"):
        try:
            old = time.time() - leftover.stat().st_mtime >= min_age_seconds
        except OSError:
            continue
        if leftover.is_dir() and old and _remove_preview_folder(leftover):
            removed += 1
    return removed
