"""Sync dialog on a laptop: pick the USB folder, export, import, see what happened per file; or
立即同步 through the county sync service (app.server.client). All of it runs off the GUI thread
(app.ui.workers) with a progress bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from app.server import client
from app.store import StoreError
from app.sync import exchange, identity
from app.sync import status as status_texts
from app.ui import workers
from app.ui.typed_path import typed_path

STATUS_LABELS = {"accepted": "已接收", "duplicate": "重复", "refused": "已拒收", "held": "暂缓", "exported": "已导出",
                 "skipped": "已跳过"}


class SyncPanel(QWidget):
    """Folder picker, export/import buttons, progress and the per-file report (shared by the laptop
    dialog and the county screen)."""

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.busy = False
        self.last_reports: list[exchange.Report] = []
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        label = QLabel("U盘文件夹(&F):")
        row.addWidget(label)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("插入U盘后选择其中的文件夹,或输入路径(如 E:\\)")
        label.setBuddy(self.folder)  # Alt+F
        row.addWidget(self.folder, 1)
        browse = QPushButton("选择…")
        browse.clicked.connect(self.browse)
        row.addWidget(browse)
        layout.addLayout(row)
        buttons = QHBoxLayout()
        self.export_button = QPushButton("导出到U盘(&E)" if store.role != "county" else "为各设备导出下发包(&E)")
        self.import_button = QPushButton("从U盘导入(&I)")
        self.export_button.clicked.connect(self.export)
        self.import_button.clicked.connect(self.import_)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.import_button)
        self.buttons = [self.export_button, self.import_button]  # disabled while work runs
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["文件", "结果", "说明"])
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        layout.addWidget(self.table, 1)

    def browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "选择U盘文件夹", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _folder(self) -> Path | None:
        text = typed_path(self.folder.text())
        if not text or not Path(text).is_dir():
            self.summary.setText("请先选择U盘上的文件夹(U盘是否已插好?)")
            return None
        return Path(text)

    def _start(self, fn, on_done, text: str = "正在处理,请不要拔出U盘…", steps=None) -> None:
        self.busy = True
        self.steps = steps
        for button in self.buttons:
            button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.summary.setText(text)
        workers.start(fn, lambda result: self._finish(on_done, result), self._failed, self._progress)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        if self.steps and done < len(self.steps):
            self.summary.setText(f"{self.steps[done]}…({done + 1}/{len(self.steps)})")

    def _finish(self, on_done, result) -> None:
        self.busy = False
        for button in self.buttons:
            button.setEnabled(True)
        self.progress.setVisible(False)
        on_done(result)

    def _failed(self, message: str) -> None:
        self._finish(lambda _: None, None)
        self.summary.setText(f"未完成:{message}")

    def export(self) -> None:
        folder = self._folder()
        if folder is None:
            return
        self._start(lambda progress: exchange.export_to(self.store, folder, progress), self._exported)

    def _exported(self, files) -> None:
        self.table.setRowCount(0)
        for f in files:
            self._add_row(Path(f).name, "exported", "已写入U盘(可以安全拔出)")
        self.summary.setText(f"已导出 {len(files)} 个同步包到 {self.folder.text()}" if files else "没有已登记的设备,未导出")

    def import_(self) -> None:
        folder = self._folder()
        if folder is None:
            return
        self._imported_from = folder
        self._start(lambda progress: exchange.import_paths(self.store, [folder], progress), self.show_reports)

    def _shown_name(self, name: str) -> str:
        """A file as found under the chosen folder (坏U盘/71a2…-up-000001.jdb): two sticks of a drawer
        may hold files of the same name, and the report must say which one was refused."""
        path = Path(name)
        folder = getattr(self, "_imported_from", None)
        if folder is not None:
            try:
                inside = path.relative_to(folder)
            except ValueError:
                return path.name
            return inside.as_posix() if str(inside) != "." else path.name
        return path.name

    def show_reports(self, reports) -> None:
        self.last_reports = list(reports)
        self.table.setRowCount(0)
        for r in reports:
            if r.status == "accepted":
                detail = (f"来自 {status_texts.site_label(self.store, r.sender)}:"
                          f"更改 {r.changes} 条,新应用 {r.applied} 条,冲突 {r.conflicts} 条")
            elif r.status == "duplicate":
                detail = "此包已导入过,未作任何改动"
            else:
                detail = r.message
            extra = [f"注意:{w}" for w in r.warnings] + [r.duplicate_text(d) for d in r.duplicates]
            self._add_row(self._shown_name(r.name), r.status, ";".join([detail, *extra]))
        refused = sum(r.refused for r in reports)
        bundles = [r for r in reports if r.status != "skipped"]  # "skipped": files left out, named in the table
        if not bundles:
            self.summary.setText("此文件夹中没有给本数据库的同步包" + (",已跳过的文件见上表" if reports else ""))
        else:
            self.summary.setText(f"共 {len(bundles)} 个包:接收 {sum(r.status == 'accepted' for r in reports)},"
                                 f"重复 {sum(r.status == 'duplicate' for r in reports)},拒收 {refused}"
                                 + (";拒收的包没有导入任何内容,请按说明处理" if refused else ""))

    def _add_row(self, name: str, status: str, detail: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate((name, STATUS_LABELS.get(status, status), detail)):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if status in ("refused", "held") and col == 1:
                item.setForeground(Qt.red)
            self.table.setItem(row, col, item)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)


class SyncDialog(QDialog):
    """同步 on a laptop: USB folder, or 立即同步 through the county sync service."""

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.retries, self.backoff = 4, 1.0  # network retries of 立即同步 (1, 2, 4, 8 s apart)
        self.setWindowTitle("同步(U盘或网络)")
        self.resize(760, 460)
        layout = QVBoxLayout(self)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.refresh_info()
        layout.addWidget(self.info)
        row = QHBoxLayout()
        row.addWidget(QLabel("县同步服务:"))
        self.server = QLineEdit(store.meta(client.SERVER_KEY) or "")
        self.server.setPlaceholderText("如 https://192.168.1.10:8765(县里登记时设置;没有网络时用U盘)")
        row.addWidget(self.server, 1)
        self.sync_button = QPushButton("立即同步")
        self.sync_button.setToolTip("上传本机更改、取回县级包并导入(需要能连到县里的网络)")
        self.sync_button.clicked.connect(self.sync_now)
        row.addWidget(self.sync_button)
        layout.addLayout(row)
        self.panel = SyncPanel(store, self)
        self.panel.buttons.append(self.sync_button)
        shown = self.panel.show_reports

        def after_import(reports):  # a USB import brings a new county bundle: its expiry, acknowledgements
            shown(reports)
            self.refresh_info()

        self.panel.show_reports = after_import
        layout.addWidget(self.panel, 1)
        close = QPushButton("关闭")
        close.clicked.connect(self.accept)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(close)
        layout.addLayout(row)

    def refresh_info(self) -> None:
        store = self.store
        if not store.meta("certificate"):  # never enrolled (the demo, a stand-alone laptop): it cannot sync
            self.info.setText(f"本机:{status_texts.site_label(store, store.site_id)}。\n"
                              "本库没有在县扶贫办登记,不能与县里同步:数据只在本机,请定期备份(文件 › 备份到U盘)。"
                              "要同步,请用县里发的登记包新建数据库。")
            return
        acked = store.meta("sync_acked_seq", "0")
        mine = store.count_changes(store.site_id, int(acked))
        expires = status_texts.local_time_text(store.meta("sync_down_expires"), "尚未收到")
        county = store.meta("county_site_id")
        self.info.setText(f"本机:{status_texts.site_label(store, store.site_id)}"
                          + (f",登记于 {status_texts.site_label(store, county)}" if county else "")
                          + f"。\n县里尚未确认的本机更改:{mine} 条。最近的县级包有效至:{expires}")

    def sync_now(self) -> None:
        """Export, upload, fetch, import on the thread pool; an unreachable service says so and
        that the USB buttons still work."""
        if not self.store.meta("certificate"):  # never enrolled: say so (not that an address is missing)
            try:
                identity.device_certificate(self.store)
            except StoreError as exc:
                self.panel.summary.setText(f"未完成:{exc}")
            return
        if not (self.server.text().strip() or self.store.meta(client.SERVER_KEY)):  # the window's words, not --server
            self.panel.summary.setText("没有设置县同步服务的地址:请在上面“县同步服务”一栏填写(如 https://192.168.1.10:8765),"
                                       "或请县里在登记时设置;也可以继续用U盘同步")
            self.server.setFocus()
            return
        try:
            url, ca = client.settings(self.store, self.server.text().strip() or None)
        except client.SyncError as exc:
            self.panel.summary.setText(str(exc))
            return
        store, remembered, retries, backoff = self.store, self.store.meta(client.SERVER_KEY), self.retries, self.backoff

        def work(progress):
            result = client.sync_now(store, url, ca, progress, retries=retries, backoff=backoff)
            if url != remembered and not result.refused:
                client.remember(store, url, None)
            return result

        self.panel.table.setRowCount(0)
        self.panel._start(work, self._synced, "正在连接县同步服务…", client.STEPS)

    def _synced(self, result) -> None:
        self.panel.show_reports(result.reports)  # refreshes the info line too
        if not result.refused:
            self.panel.summary.setText(f"已与县同步服务同步:{self.panel.summary.text()}")

    def done(self, result: int) -> None:
        if self.panel.busy:
            self.panel.summary.setText("正在同步、导入或导出,请等待完成后再关闭")
            return
        super().done(result)
