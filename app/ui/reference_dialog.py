"""参考数据 window: the county's divisions (县 / 乡(镇) / 村) as a tree with add, rename and import
from a CSV/Excel file, the poverty line per year, editable in a table, and the 防返贫监测 criteria per
year (app/ui/monitoring_criteria.py).

All checking and writing is app.services.reference; the file is read and checked on a worker thread
(app.ui.workers), and nothing is written until the user confirms an import that has no problem.
On an enrolled laptop everything is read-only with the reason shown (the county sends the data).
When the window closes after divisions changed, the main window's township/village tree is
refreshed (MainWindow._external_closed compares the divisions).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.divisions import LEVEL_LABELS
from app.services import reference
from app.tables import divisions as division_files
from app.ui import workers
from app.ui.monitoring_criteria import MonitoringCriteriaTab, year_box, yearly_table

ERROR_STYLE = "color: #b00020;"
OK_STYLE = "color: #1b5e20;"
FILE_FILTER = "区划表 (*.csv *.xlsx *.xlsm *.txt);;所有文件 (*)"
CHILD_LEVEL = {None: "county", "county": "township", "township": "village"}


def _yuan(amount: float) -> str:
    return f"{amount:.2f}".rstrip("0").rstrip(".")


class DivisionForm(QDialog):
    """新增区划: the code (prefilled with the parent's code) and the name."""

    def __init__(self, parent_division: dict | None, parent=None):
        super().__init__(parent)
        level = CHILD_LEVEL.get(parent_division["level"] if parent_division else None, "village")
        self.setWindowTitle(f"新增{LEVEL_LABELS[level]}")
        self.setMinimumWidth(380)
        form = QFormLayout(self)
        where = f"{parent_division['name']}({parent_division['code']})" if parent_division else "(无:县级区划)"
        form.addRow("上级:", QLabel(where))
        digits = {"county": 6, "township": 9, "village": 12}[level]
        self.code = QLineEdit(parent_division["code"] if parent_division else "")
        self.code.setPlaceholderText(f"{digits} 位代码")
        self.code.setMaxLength(12)
        form.addRow("代码:", self.code)
        self.name = QLineEdit()
        self.name.setPlaceholderText({"county": "如 雷山县", "township": "如 西江镇", "village": "如 龙井村"}[level])
        form.addRow("名称:", self.name)
        hint = QLabel(f"{LEVEL_LABELS[level]}代码 {digits} 位(县 6 位,乡(镇) 9 位,村 12 位,前几位是上级代码)")
        hint.setWordWrap(True)
        form.addRow(hint)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("新增")
        buttons.button(QDialogButtonBox.Cancel).setText("取消")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.code.setFocus()
        self.code.setCursorPosition(len(self.code.text()))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        # Qt selects a line edit's whole text when the window gives it focus: typing "101" must add to
        # the parent's code, not replace it
        QTimer.singleShot(0, self._cursor_after_parent_code)

    def _cursor_after_parent_code(self) -> None:
        self.code.deselect()
        self.code.setCursorPosition(len(self.code.text()))


class ReferenceDialog(QDialog):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.refusal = reference.edit_refusal(store)
        self.editable = self.refusal is None
        self.plan: reference.DivisionImport | None = None
        self.busy = False
        self._filling = False
        self.setWindowTitle("参考数据:行政区划、贫困线和防返贫监测标准")
        self.resize(820, 640)
        layout = QVBoxLayout(self)
        self.banner = QLabel(self._banner_text())
        self.banner.setWordWrap(True)
        self.banner.setObjectName("banner")
        if not self.editable:
            self.banner.setStyleSheet("background: #fff8e1; border: 1px solid #ffcc80; padding: 6px;")
        layout.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._divisions_tab(), "行政区划")
        self.tabs.addTab(self._lines_tab(), "贫困线")

        self.criteria = MonitoringCriteriaTab(store, self.editable)
        self.tabs.addTab(self.criteria, "防返贫监测标准")
        layout.addWidget(self.tabs, 1)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        close = QPushButton("关闭")
        close.clicked.connect(self.close)
        bottom.addWidget(close)
        layout.addLayout(bottom)
        self.fill_tree()
        self.fill_lines()

    def _banner_text(self) -> str:
        if not self.editable:
            return "只读:" + self.refusal
        if self.store.role == "county":
            return ("本县的行政区划、各年度贫困线和防返贫监测标准。修改后,下次“为各设备导出下发包”时随包发给各村工作队和乡镇;"
                    "新登记的设备在登记包中得到它们。")
        return "本数据库没有登记到县里,行政区划、贫困线和防返贫监测标准在这里自行设定。"

    # ------------------------------------------------------------------ divisions
    def _divisions_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["名称", "代码", "级别"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.tree.header().setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.tree.header().setStretchLastSection(False)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.tree, 1)
        row = QHBoxLayout()
        self.add_button = QPushButton("新增下级…")
        self.add_button.setToolTip("在选中的区划下新增一个乡(镇)或村;没有区划时新增县")
        self.add_button.clicked.connect(self._ask_add)
        self.rename_button = QPushButton("改名…")
        self.rename_button.clicked.connect(self._ask_rename)
        self.import_button = QPushButton("从文件导入…")
        self.import_button.setToolTip("CSV 或 Excel:列“代码”“名称”,可另有“级别”“上级代码”。有任何问题时整表不导入。")
        self.import_button.clicked.connect(self._ask_import)
        for b in (self.add_button, self.rename_button, self.import_button):
            row.addWidget(b)
            b.setEnabled(self.editable)
        row.addStretch(1)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        layout.addWidget(self.progress)
        self.division_message = QLabel("")
        self.division_message.setWordWrap(True)
        self.division_message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.division_message)
        self.import_list = QListWidget()
        self.import_list.setWordWrap(True)  # a problem line is long: wrap it rather than cut it
        self.import_list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.import_list.setResizeMode(QListWidget.Adjust)
        self.import_list.setVisible(False)
        self.import_list.setMaximumHeight(180)
        layout.addWidget(self.import_list)
        confirm_row = QHBoxLayout()
        confirm_row.addStretch(1)
        self.confirm_button = QPushButton("确认导入")
        self.confirm_button.setVisible(False)
        self.confirm_button.clicked.connect(self.confirm_import)
        self.cancel_import_button = QPushButton("取消")
        self.cancel_import_button.setVisible(False)
        self.cancel_import_button.clicked.connect(self._clear_import)
        confirm_row.addWidget(self.confirm_button)
        confirm_row.addWidget(self.cancel_import_button)
        layout.addLayout(confirm_row)
        self._selection_changed()
        return tab

    def fill_tree(self, select: str | None = None) -> None:
        current = select or self.selected_code()
        self.tree.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for _depth, d in reference.division_tree(self.store):
            item = QTreeWidgetItem([d["name"], d["code"], LEVEL_LABELS.get(d["level"], d["level"])])
            item.setData(0, Qt.UserRole, d)
            parent = items.get(d["parent"])
            if parent is not None:
                parent.addChild(item)
            else:
                self.tree.addTopLevelItem(item)
            items[d["code"]] = item
        self.tree.expandAll()
        if current in items:
            self.tree.setCurrentItem(items[current])
        if not items:
            placeholder = QTreeWidgetItem(["(还没有行政区划" + (":用“从文件导入…”或“新增下级…”)" if self.editable
                                                               else ",等县里下发)")])
            placeholder.setFlags(Qt.NoItemFlags)
            self.tree.addTopLevelItem(placeholder)
        self._selection_changed()

    def selected_division(self) -> dict | None:
        items = self.tree.selectedItems()
        return items[0].data(0, Qt.UserRole) if items else None

    def selected_code(self) -> str | None:
        d = self.selected_division() if hasattr(self, "tree") else None
        return d["code"] if d else None

    def _selection_changed(self) -> None:
        if not self.editable:
            return
        d = self.selected_division()
        has_any = bool(self.store.divisions())
        self.rename_button.setEnabled(d is not None)
        self.add_button.setEnabled(not has_any or (d is not None and d["level"] != "village"))

    def _say(self, label: QLabel, text: str, ok: bool) -> None:
        label.setText(text)
        label.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)

    def add_division(self, code: str, name: str) -> bool:
        try:
            d = reference.add_division(self.store, code, name)
        except reference.ReferenceDataError as exc:
            self._say(self.division_message, f"未新增:{exc}", False)
            return False
        self.fill_tree(select=d["code"])
        self._say(self.division_message, f"已新增{LEVEL_LABELS[d['level']]} {d['code']} {d['name']}", True)
        return True

    def rename_division(self, code: str, name: str) -> bool:
        try:
            old, new = reference.rename_division(self.store, code, name)
        except reference.ReferenceDataError as exc:
            self._say(self.division_message, f"未改名:{exc}", False)
            return False
        self.fill_tree(select=code)
        self._say(self.division_message, f"已改名:{code} {old} 改为 {new}", True)
        return True

    def _ask_add(self) -> None:
        d = self.selected_division()
        if d is None and self.store.divisions():
            self._say(self.division_message, "请先在上面选中要在其下新增的县或乡(镇)", False)
            return
        form = DivisionForm(d, self)
        while form.exec() == QDialog.Accepted:
            if self.add_division(form.code.text(), form.name.text()):
                return
            form.error.setText(self.division_message.text())

    def _ask_rename(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        d = self.selected_division()
        if d is None:
            return
        name, ok = QInputDialog.getText(self, "改名", f"{LEVEL_LABELS[d['level']]} {d['code']} 的新名称:", text=d["name"])
        if ok:
            self.rename_division(d["code"], name)

    # ------------------------------------------------------------------ import
    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "选择区划表", "", FILE_FILTER)
        if path:
            self.start_import(path)

    def start_import(self, path) -> None:
        """Read and check the file on a worker thread; show the problems, or what it would change
        with 确认导入."""
        self._clear_import()
        existing = self.store.divisions()  # read here: the worker does not touch the store
        self.busy = True
        self._set_buttons(False)
        self.progress.setVisible(True)
        self._say(self.division_message, f"正在读取并检查 {path} …", True)
        workers.start(lambda progress: division_files.analyse_divisions(path, existing), self._analysed, self._failed)

    def _analysed(self, plan: reference.DivisionImport) -> None:
        self.busy = False
        self.progress.setVisible(False)
        self._set_buttons(True)
        self.plan = plan
        self.import_list.clear()
        self.import_list.setVisible(True)
        if plan.problems:
            self._say(self.division_message, plan.summary() + ":", False)
            for p in plan.problems:
                self.import_list.addItem(p.line())
            return
        if not plan.rows:
            self._say(self.division_message, plan.summary() + "。没有需要写入的内容。", True)
            self.import_list.setVisible(False)
            return
        self._say(self.division_message, plan.summary() + "。确认后一次写入:", True)
        for code, name, level in plan.added:
            self.import_list.addItem(f"新增 {LEVEL_LABELS[level]} {code} {name}")
        for code, old, new in plan.renamed:
            self.import_list.addItem(f"改名 {code} {old} 改为 {new}")
        self.confirm_button.setVisible(True)
        self.cancel_import_button.setVisible(True)

    def _failed(self, message: str) -> None:
        self.busy = False
        self.progress.setVisible(False)
        self._set_buttons(True)
        self._say(self.division_message, f"读取文件失败:{message}。未导入任何区划。", False)

    def confirm_import(self) -> bool:
        if self.plan is None or self.plan.problems:
            return False
        try:
            plan = reference.apply_divisions(self.store, self.plan)
        except reference.ReferenceDataError as exc:
            self._say(self.division_message, str(exc), False)
            return False
        self._clear_import()
        self.fill_tree()
        self._say(self.division_message, plan.summary(), True)
        return True

    def _clear_import(self) -> None:
        self.plan = None
        self.import_list.clear()
        self.import_list.setVisible(False)
        self.confirm_button.setVisible(False)
        self.cancel_import_button.setVisible(False)

    def _set_buttons(self, enabled: bool) -> None:
        for b in (self.add_button, self.rename_button, self.import_button):
            b.setEnabled(enabled and self.editable)
        if enabled:
            self._selection_changed()

    # ------------------------------------------------------------------ poverty lines
    def _lines_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        explain = QLabel("年人均纯收入低于当年贫困线的户不能申报脱贫退出。双击“贫困线”或“来源说明”单元格修改。"
                         if self.editable else "各年度贫困线(县扶贫办设定)。")
        explain.setWordWrap(True)
        layout.addWidget(explain)
        self.lines = yearly_table(["年度", "贫困线(元/人·年)", "来源说明"], self.editable, self._line_edited)
        layout.addWidget(self.lines, 1)
        row = QHBoxLayout()
        row.addWidget(QLabel("年度"))
        self.new_year = year_box()
        row.addWidget(self.new_year)
        row.addWidget(QLabel("贫困线(元)"))
        self.new_amount = QLineEdit()
        self.new_amount.setPlaceholderText("如 4000")
        self.new_amount.setMaximumWidth(120)
        row.addWidget(self.new_amount)
        row.addWidget(QLabel("来源"))
        self.new_source = QLineEdit()
        self.new_source.setPlaceholderText("如 县扶贫开发领导小组文件字号")
        row.addWidget(self.new_source, 1)
        self.set_button = QPushButton("设定")
        self.set_button.clicked.connect(lambda: self.set_line(self.new_year.value(), self.new_amount.text(),
                                                             self.new_source.text()))
        for line in (self.new_amount, self.new_source):  # Enter in either sets the line, as 设定 does
            line.returnPressed.connect(self.set_button.click)
        row.addWidget(self.set_button)
        holder = QWidget()
        holder.setLayout(row)
        holder.setVisible(self.editable)
        layout.addWidget(holder)
        self.line_message = QLabel("")
        self.line_message.setWordWrap(True)
        layout.addWidget(self.line_message)
        return tab

    def fill_lines(self) -> None:
        self._filling = True
        rows = reference.poverty_lines(self.store)
        self.lines.setRowCount(len(rows))
        for i, r in enumerate(rows):
            year = QTableWidgetItem(str(r["year"]))
            year.setFlags(year.flags() & ~Qt.ItemIsEditable)
            year.setData(Qt.UserRole, r["year"])
            amount = QTableWidgetItem(_yuan(r["line"]))
            amount.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            self.lines.setItem(i, 0, year)
            self.lines.setItem(i, 1, amount)
            self.lines.setItem(i, 2, QTableWidgetItem(r["source"]))
        self.lines.resizeRowsToContents()
        self.lines.scrollToBottom()  # the recent years are the ones in use
        self._filling = False

    def set_line(self, year, amount, source: str = "") -> bool:
        try:
            line = reference.set_poverty_line(self.store, year, amount, source)
        except reference.ReferenceDataError as exc:
            self._say(self.line_message, f"未设定:{exc}", False)
            return False
        self.fill_lines()
        self.new_amount.clear()
        self.new_source.clear()
        self._say(self.line_message, f"已设定 {line['year']} 年贫困线 {_yuan(line['line'])} 元/人·年", True)
        return True

    def _line_edited(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() == 0:
            return
        row = item.row()
        year = self.lines.item(row, 0).data(Qt.UserRole)
        amount = self.lines.item(row, 1).text()
        source = self.lines.item(row, 2).text() if self.lines.item(row, 2) else ""
        if not self.set_line(year, amount, source):
            message = self.line_message.text()
            self.fill_lines()  # back to what is stored
            self.line_message.setText(message)

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:
        if self.busy:  # the worker is reading the file: wait for it
            event.ignore()
            return
        super().closeEvent(event)

    def reject(self) -> None:
        if not self.busy:
            super().reject()

