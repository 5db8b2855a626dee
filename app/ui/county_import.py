"""County screen: import a folder of bundles (progress, per-file report), export downstream
bundles, and review merge conflicts (keep the current value or restore the other one)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QHBoxLayout, QHeaderView, QLabel, QMessageBox, QPushButton, QTableWidget, QTableWidgetItem, QTabWidget,
    QVBoxLayout, QWidget,
)

from app.core import procedures
from app.core.clock import wall_time
from app.services import conflicts
from app.store import StoreError
from app.sync import identity, merge
from app.sync.status import local_time_text
from app.ui.sync_dialog import SyncPanel


def _time(hlc: str) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(wall_time(hlc)).strftime("%Y-%m-%d %H:%M")


def _area(store, code: str) -> str:
    """A village or township of a certificate as county staff say it: 龙湾村(420684102201)."""
    name = store.division_name(code)
    return f"{name}({code})" if name and name != code else code


class ConflictList(QWidget):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.items: list[merge.Conflict] = []
        layout = QVBoxLayout(self)
        self.summary = QLabel("")
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["记录", "字段", "现值(胜出)", "另一方的值", "时间与站点"])
        self.table.horizontalHeader().setSectionResizeMode(4, QHeaderView.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        layout.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.keep = QPushButton("保留现值")
        self.restore = QPushButton("恢复另一方的值")
        self.keep.clicked.connect(lambda: self.resolve("winner"))
        self.restore.clicked.connect(lambda: self.resolve("other"))
        row.addWidget(self.keep)
        row.addWidget(self.restore)
        row.addStretch(1)
        layout.addLayout(row)
        self.refresh()

    def refresh(self) -> None:
        self.items = merge.conflicts(self.store)
        self.table.setRowCount(0)
        for c, t in zip(self.items, conflicts.describe(self.store, self.items)):
            row = self.table.rowCount()
            self.table.insertRow(row)
            now = f"{t['current']}(其后已修改,当时胜出 {t['winner']})" if t["replaced"] else t["winner"]
            texts = (t["record"], t["field"], now, t["other"],
                     f"现值 {_time(c.winner_hlc)} {t['winner_site']}\n另一方 {_time(c.loser_hlc)} {t['loser_site']}")
            for col, text in enumerate(texts):
                item = QTableWidgetItem(str(text))
                item.setToolTip(str(text))
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()  # the time column holds two lines: current value, other value
        self.summary.setText(f"未处理的冲突:{len(self.items)} 个。处理结果会作为一条更改随下次同步发给各设备。"
                             if self.items else "没有未处理的冲突")
        self.keep.setEnabled(bool(self.items))
        self.restore.setEnabled(bool(self.items))

    def resolve(self, keep: str) -> None:
        row = self.table.currentRow()
        if row < 0 or row >= len(self.items):
            self.summary.setText("请先选中一个冲突")
            return
        try:
            merge.resolve(self.store, self.items[row].id, keep)
        except merge.AlreadyResolved as exc:  # another staff member's window got there first
            QMessageBox.information(self, "冲突已处理", f"这个冲突已经处理过({exc.status_label}),无需再处理。列表已刷新。")
        except StoreError as exc:
            QMessageBox.warning(self, "无法处理冲突", str(exc))
        self.refresh()


class CountyImportScreen(QWidget):
    """县级同步: import from USB, export to devices, devices, conflicts."""

    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("县级同步与冲突审核")
        self.resize(960, 600)  # the conflict table's five columns and the file report without cutting
        layout = QVBoxLayout(self)
        tabs = QTabWidget()
        self.panel = SyncPanel(store, self)
        tabs.addTab(self.panel, "导入/导出")
        self.conflicts = ConflictList(store, self)
        tabs.addTab(self.conflicts, "冲突审核")
        devices = QTableWidget(0, 5)
        devices.setHorizontalHeaderLabels(["站点", "名称", "角色", "村/乡镇", "状态"])
        devices.setEditTriggers(QTableWidget.NoEditTriggers)
        devices.verticalHeader().setVisible(False)
        for c in identity.certificates(store):
            row = devices.rowCount()
            devices.insertRow(row)
            status = (f"已吊销 {local_time_text(c['revoked'])}" if c["revoked"]
                      else f"有效至 {local_time_text(c['not_after'])}")
            role = procedures.ROLE_LABELS.get(c["role"], c["role"])
            area = "、".join(_area(store, code) for code in str(c["villages"] or "").split(",") if code)
            for col, text in enumerate((c["site_id"], c["site_name"], role, area, status)):
                devices.setItem(row, col, QTableWidgetItem(text))
        devices.resizeColumnsToContents()
        self.devices = devices
        tabs.addTab(devices, "已登记设备")
        layout.addWidget(tabs)
        self.tabs = tabs
        original = self.panel.show_reports

        def after_import(reports):
            original(reports)
            self.conflicts.refresh()

        self.panel.show_reports = after_import
