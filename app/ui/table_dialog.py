"""The Excel/CSV dialog: import an existing 台账 (choose the file, check and edit the column mapping,
dry run with every rejected row listed, confirm, progress) and export a village or township.

Reading, checking, importing and exporting run in a worker thread; the dialog only shows results.
The column mapping the user confirms is kept in the database's settings (headers and field names
only, no personal data) and used again next time. The file is read into memory; nothing with
personal data is written to disk except the files the user saves (error workbook, export).
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QSplitter,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.dictionary import default
from app.tables import exporter, importer, mapping
from app.tables import options as table_options
from app.ui import workers

MAPPING_META = "table_mapping"
SHOWN_REJECTIONS = 2000


# a refusal worded for the command line, as the dialog offers the same choice
WINDOW_WORDS = (("请用 --village 指定村代码", "请在上面的“村”中选择这个文件的村"),)


class TableDialog(QDialog):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.plan: importer.Plan | None = None
        self.report: importer.Report | None = None
        self._op: workers.Task | None = None
        self._on_done = None
        self.setWindowTitle("Excel / CSV 导入导出")
        self.resize(900, 720)
        villages = store.divisions("village")
        townships = store.divisions("township")

        # ---- import tab
        self.file_edit = QLineEdit()
        self.file_edit.setPlaceholderText("选择 .xlsx 或 .csv 台账文件")
        self.file_edit.setReadOnly(True)
        choose = QPushButton("选择文件…")
        self.village = QComboBox()
        self.village.addItem("按表中的“村代码/村名称”列", None)
        for v in villages:
            self.village.addItem(f"{v['name']}({v['code']})", v["code"])
        self.check_button = QPushButton("读取并试导入")
        self.mapping_table = QTableWidget(0, 3)
        self.mapping_table.setHorizontalHeaderLabels(["表中的列", "对应字段", "说明"])
        self.mapping_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.mapping_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.mapping_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeToContents)
        self.mapping_table.verticalHeader().setVisible(False)
        self.recheck_button = QPushButton("按此对照和设置重新试导入")
        # what the file does not say: --set, --allow-incomplete, --codes
        self.fixed_table = QTableWidget(0, 2)
        self.fixed_table.setHorizontalHeaderLabels(["表中缺少的字段", "统一填写(空则不填)"])
        self.fixed_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.fixed_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.fixed_table.verticalHeader().setVisible(False)
        self.fixed_label = QLabel("表中缺少必填列:可给全部户统一填写,\n或勾选下面的“待完善”先导入:")
        self.fixed_table.setVisible(False)
        self.fixed_label.setText("")
        self.allow_incomplete = QCheckBox("只缺必填项的户也导入,标为“待完善”(取值错误的户仍不导入)")
        self.codes = QComboBox()
        self.codes.addItem("代码列中的数字:不接受(请写文字)", None)
        self.codes.addItem("代码列中的数字:全国扶贫开发信息系统的代码", "national")
        self.codes.addItem("代码列中的数字:本程序的代码", "jiandang")
        self.save_mapping_button = QPushButton("保存列对照(下次自动使用)")
        self.summary = QLabel("选择文件后点“读取并试导入”:先检查,不写数据库。")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.rejections = QTableWidget(0, 4)
        self.rejections.setHorizontalHeaderLabels(["工作表", "行号", "列", "原因"])
        self.rejections.horizontalHeader().setSectionResizeMode(3, QHeaderView.Stretch)
        self.rejections.verticalHeader().setVisible(False)
        self.rejections.setEditTriggers(QTableWidget.NoEditTriggers)
        self.errors_button = QPushButton("保存错误工作簿…")
        self.import_button = QPushButton("确认导入")
        self.import_button.setDefault(True)
        for b in (self.recheck_button, self.save_mapping_button, self.errors_button, self.import_button):
            b.setEnabled(False)

        import_tab = QWidget()
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("文件"))
        row1.addWidget(self.file_edit, 1)
        row1.addWidget(choose)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("村"))
        row2.addWidget(self.village, 1)
        row2.addWidget(self.check_button)
        map_buttons = QHBoxLayout()
        map_buttons.addWidget(self.recheck_button)
        map_buttons.addWidget(self.save_mapping_button)
        map_buttons.addStretch(1)
        act = QHBoxLayout()
        act.addWidget(self.errors_button)
        act.addStretch(1)
        act.addWidget(self.import_button)
        lay = QVBoxLayout(import_tab)
        lay.addLayout(row1)
        lay.addLayout(row2)
        middle = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(QLabel("列对照(试导入不写数据库;可修改,“不导入”的列将被忽略):"))
        left.addWidget(self.mapping_table, 1)
        right = QVBoxLayout()
        right.addWidget(self.fixed_label)
        right.addWidget(self.fixed_table, 1)
        right.addWidget(self.allow_incomplete)
        right.addWidget(self.codes)
        right.addStretch(0)
        middle.addLayout(left, 3)
        middle.addLayout(right, 2)
        # the mapping above, the report and the rejected rows below, the divider between them movable:
        # after a dry run the rejected rows are what is read (a fixed 4:2 share left them three rows at 1366×768)
        upper, lower = QWidget(), QWidget()
        up = QVBoxLayout(upper)
        up.setContentsMargins(0, 0, 0, 0)
        up.addLayout(middle, 1)
        up.addLayout(map_buttons)
        down = QVBoxLayout(lower)
        down.setContentsMargins(0, 0, 0, 0)
        down.addWidget(self.summary)
        down.addWidget(QLabel("将被拒绝的行:"))
        down.addWidget(self.rejections, 1)
        self.split = QSplitter(Qt.Vertical)
        self.split.setObjectName("import_split")
        self.split.addWidget(upper)
        self.split.addWidget(lower)
        self.split.setChildrenCollapsible(False)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        lay.addWidget(self.split, 1)
        lay.addLayout(act)

        # ---- export tab
        self.scope = QComboBox()
        for v in villages:
            self.scope.addItem(f"村:{v['name']}({v['code']})", f"village:{v['code']}")
        for t in townships:
            self.scope.addItem(f"乡镇:{t['name']}({t['code']})", f"township:{t['code']}")
        if not villages:
            for code in store.village_codes():
                self.scope.addItem(f"村:{code}", f"village:{code}")
        self.export_button = QPushButton("导出…")
        self.export_button.setEnabled(self.scope.count() > 0)
        export_tab = QWidget()
        el = QVBoxLayout(export_tab)
        er = QHBoxLayout()
        er.addWidget(QLabel("范围"))
        er.addWidget(self.scope, 1)
        er.addWidget(self.export_button)
        el.addLayout(er)
        el.addWidget(QLabel("导出为 .xlsx:贫困户、家庭成员、收入、帮扶等各一张表,中文表头和代码名称,冻结首行,\n"
                            "代码列带下拉选择;也可导出 .csv(每名成员一行)。导出的文件可直接再导入。"))
        el.addStretch(1)

        self.tabs = QTabWidget()
        self.tabs.addTab(import_tab, "导入台账")
        self.tabs.addTab(export_tab, "导出")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        close = QPushButton("关闭")
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.progress)
        layout.addLayout(bottom)

        choose.clicked.connect(self.choose_file)
        self.check_button.clicked.connect(lambda: self.check())
        self.recheck_button.clicked.connect(lambda: self.check(self.edited_mapping()))
        self.save_mapping_button.clicked.connect(self.save_mapping)
        self.errors_button.clicked.connect(self.save_errors_as)
        self.import_button.clicked.connect(self.confirm_import)
        self.export_button.clicked.connect(self.export_as)
        close.clicked.connect(self.reject)
        self.allow_incomplete.toggled.connect(self._options_changed)
        self.codes.currentIndexChanged.connect(self._options_changed)
        self._busy_widgets = [choose, self.check_button, self.recheck_button, self.save_mapping_button,
                              self.errors_button, self.import_button, self.export_button, self.village, self.scope,
                              self.allow_incomplete, self.codes, self.fixed_table]

    # ------------------------------------------------------------------ worker

    def _start(self, label: str, fn, on_done) -> None:
        self._states = {w: w.isEnabled() for w in self._busy_widgets}
        for w in self._busy_widgets:
            w.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText(label)
        self._label = label
        self._on_done = on_done
        self._op = workers.start(fn, self._on_finished, self._on_failed, self._on_progress)

    @property
    def busy(self) -> bool:
        return self._op is not None and self._op.running

    def _stop(self) -> None:
        self._op = None
        self.progress.setVisible(False)
        for w, enabled in self._states.items():
            w.setEnabled(enabled)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"{self._label} {done}/{total} 户")

    @Slot(object)
    def _on_finished(self, result) -> None:
        self._stop()
        callback, self._on_done = self._on_done, None
        callback(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._stop()
        for option, choice in WINDOW_WORDS:  # the command's options as the dialog's choices
            message = message.replace(option, choice)
        shown = f"<span style='color:#c00000'>{message}</span>"
        if self.tabs.currentIndex() == 0:  # the import tab: said once, in its summary above the rejected rows
            self.summary.setText(shown)
            self.status.setText("<span style='color:#c00000'>未完成,原因见上方说明。</span>")
        else:  # the export tab has no summary: the status line says it
            self.status.setText(shown)

    def wait_until_done(self, timeout_ms: int = 120000) -> bool:
        """For tests and scripts: block (processing events) until the current job ends."""
        return self._op is None or self._op.wait(timeout_ms)

    # ------------------------------------------------------------------ import

    def saved_mapping(self) -> dict:
        try:
            data = json.loads(self.store.meta(MAPPING_META) or "{}")
        except ValueError:
            return {}
        return {h: t for h, t in data.items() if isinstance(t, str) and mapping.valid_target(t)}

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "选择台账文件", str(Path.home()), "表格 (*.xlsx *.csv)")
        if path:
            self.set_file(path)
            self.check()

    def set_file(self, path) -> None:
        self.file_edit.setText(str(path))
        self.plan = self.report = None
        self.import_button.setEnabled(False)
        self.errors_button.setEnabled(False)

    def check(self, edited: dict | None = None) -> None:
        """Read the file, map its columns (saved mapping, then any edits) and dry-run the import."""
        path = self.file_edit.text()
        if not path:
            self.summary.setText("请先选择文件。")
            return
        village = self.village.currentData()
        used = {**self.saved_mapping(), **(edited or {})}
        store = self.store
        options = self.options()

        def work(progress):
            try:
                plan = importer.analyse(store, path, village=village, saved_mapping=used, options=options)
            except importer.NoNameColumn as exc:  # its columns are shown, to be mapped by hand
                return exc
            return plan, importer.dry_run(store, plan, progress)

        self.import_button.setEnabled(False)
        self._start("正在读取并检查…", work, self._checked)

    def options(self) -> importer.Options:
        """The choices of the dialog, as import-table's --set, --allow-incomplete and --codes."""
        return importer.Options(fixed=self.fixed_values(), codes=self.codes.currentData(),
                                allow_incomplete=self.allow_incomplete.isChecked())

    def fixed_values(self) -> dict:
        out = {}
        for r in range(self.fixed_table.rowCount()):
            target = self.fixed_table.item(r, 0).data(Qt.UserRole)
            text = self.fixed_table.cellWidget(r, 1).currentText().strip()
            if text:
                out[target] = text
        return out

    def set_fixed(self, target: str, value: str) -> None:
        """Fill a missing field for every household (as a user would in the table)."""
        for r in range(self.fixed_table.rowCount()):
            if self.fixed_table.item(r, 0).data(Qt.UserRole) == target:
                self.fixed_table.cellWidget(r, 1).setCurrentText(value)
                return
        raise KeyError(target)

    def _options_changed(self, *_args) -> None:
        """A plan checked with other choices must not be imported: check again first."""
        if self.plan is not None:
            self.import_button.setEnabled(False)
            self.status.setText("设置已改变:请点“按此对照和设置重新试导入”后再确认导入。")

    def _show_missing(self, plan: importer.Plan) -> None:
        """One row per required column the file lacks (and per field already filled), with a value
        box: code fields offer their labels."""
        d = default()
        given = self.fixed_values()
        order = {t: i for i, (t, _) in enumerate(mapping.choices(d))}
        rows = sorted(dict.fromkeys([*(t for t, _ in plan.missing), *given]), key=lambda t: order.get(t, 0))
        self.fixed_table.setRowCount(0)
        for target in rows:
            kind, key = target.split(".", 1)
            f = d.kinds[kind].fields[key]
            r = self.fixed_table.rowCount()
            self.fixed_table.insertRow(r)
            item = QTableWidgetItem(mapping.target_label(target, d))
            item.setData(Qt.UserRole, target)
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
            self.fixed_table.setItem(r, 0, item)
            box = QComboBox()
            box.setEditable(True)
            box.addItem("")
            if f.type == "code":
                box.addItems(list(d.codes[f.codes].values()))
            elif f.type == "bool":
                box.addItems(["是", "否"])
            box.lineEdit().setPlaceholderText("如 2014-08-01" if f.type == "date" else "")
            box.setCurrentText(str(given.get(target, "")))
            box.currentTextChanged.connect(self._options_changed)
            self.fixed_table.setCellWidget(r, 1, box)
        self.fixed_table.setVisible(bool(rows))
        t = self.fixed_table  # every missing column shows (up to four; more scroll), whatever the divider below
        shown = min(t.rowCount(), 4)
        t.setMinimumHeight(t.horizontalHeader().sizeHint().height() + shown * t.verticalHeader().defaultSectionSize()
                           + 2 * t.frameWidth() + 2 if shown else 0)
        self.fixed_label.setText("表中缺少必填列:可给全部户统一填写,\n或勾选下面的“待完善”先导入:" if rows
                                 else "表中没有缺少必填列。")

    def _checked(self, result) -> None:
        if isinstance(result, importer.NoNameColumn):
            self._unmapped(result)
            return
        self.plan, self.report = result
        self._show_mapping(self.plan)
        self._show_missing(self.plan)
        self._show_report(self.report)
        accepted = self.report.created + self.report.updated + self.report.unchanged
        self.import_button.setEnabled(accepted > 0)
        self.errors_button.setEnabled(bool(self.report.rejected_rows))
        self.recheck_button.setEnabled(True)
        self.save_mapping_button.setEnabled(True)
        self.status.setText("试导入完成:数据库没有改动。核对列对照和拒绝的行后点“确认导入”。")

    def _unmapped(self, exc: importer.NoNameColumn) -> None:
        """No column was taken for a name: the file's columns are listed in 列对照 (with the nearest
        field where one is near), so that the user can say which holds the names and check again."""
        self.plan = self.report = None
        self._on_failed(str(exc))
        self._fill_mapping(exc.mapping, lambda header, target: (
            f"未对应;最接近“{mapping.target_label(exc.suggestions[header])}”" if header in exc.suggestions
            else "未对应,不导入") if not target else "")
        self.import_button.setEnabled(False)
        self.errors_button.setEnabled(False)
        self.recheck_button.setEnabled(bool(exc.mapping))
        self.save_mapping_button.setEnabled(bool(exc.mapping))

    def _show_mapping(self, plan: importer.Plan) -> None:
        def note(header: str, target: str) -> str:
            near = next((info.suggestions[header] for info in plan.infos if header in info.suggestions), None)
            summed = next((t for info in plan.infos for t, cols in info.parts.items()
                           if any(plan.sheets[plan.infos.index(info)].headers[c] == header for c in cols)), None)
            if summed:
                return f"相加计入“{mapping.target_label(summed)}”"
            if not target:
                return f"未对应;最接近“{mapping.target_label(near)}”" if near else "未对应,不导入"
            return ""

        self._fill_mapping(plan.mapping, note)

    def _fill_mapping(self, used: dict, note_of) -> None:
        """One row a heading: the heading, the field it goes to (a choice), `note_of(heading, field)`."""
        options = mapping.choices()
        self.mapping_table.setRowCount(0)
        for header, target in used.items():
            r = self.mapping_table.rowCount()
            self.mapping_table.insertRow(r)
            item = QTableWidgetItem(header)
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
            self.mapping_table.setItem(r, 0, item)
            combo = QComboBox()
            combo.addItem("(不导入)", "")
            for t, label in options:
                combo.addItem(label, t)
            if target and combo.findData(target) < 0:
                combo.addItem(mapping.target_label(target), target)
            combo.setCurrentIndex(max(combo.findData(target), 0))
            self.mapping_table.setCellWidget(r, 1, combo)
            note = QTableWidgetItem(note_of(header, target))
            note.setFlags(note.flags() & ~Qt.ItemIsEditable)
            self.mapping_table.setItem(r, 2, note)

    def edited_mapping(self) -> dict:
        out = {}
        for r in range(self.mapping_table.rowCount()):
            combo = self.mapping_table.cellWidget(r, 1)
            out[self.mapping_table.item(r, 0).text()] = combo.currentData() or ""
        return out

    def set_target(self, header: str, target: str) -> None:
        """Change the field a column maps to (as a user would in the mapping table)."""
        for r in range(self.mapping_table.rowCount()):
            if self.mapping_table.item(r, 0).text() == mapping.normalise_header(header):
                combo = self.mapping_table.cellWidget(r, 1)
                combo.setCurrentIndex(combo.findData(target))
                return
        raise KeyError(header)

    def save_mapping(self) -> None:
        current = {**self.saved_mapping(), **self.edited_mapping()}
        self.store.set_meta(MAPPING_META, json.dumps(current, ensure_ascii=False))
        self.status.setText("列对照已保存,下次导入时自动使用。")

    def _show_report(self, report: importer.Report) -> None:
        text = report.summary(window=True).replace("\n", "<br>")
        if report.rejected_rows:
            text += f"<br><span style='color:#c00000'>被拒绝的行不会导入;可保存错误工作簿,改正后再导入。</span>"
        self.summary.setText(text)
        shown = report.to_show(SHOWN_REJECTIONS)
        self.rejections.setRowCount(len(shown))
        for r, rej in enumerate(shown):
            reason = rej.reason.replace(table_options.CODES_HINT, table_options.CODES_HINT_WINDOW)  # the dialog's words
            for c, value in enumerate((rej.sheet, str(rej.row), rej.column, reason)):
                item = QTableWidgetItem(value)
                item.setToolTip(value)  # a long reason (a code list's labels) is cut at the table's edge
                self.rejections.setItem(r, c, item)
        self.rejections.resizeColumnsToContents()
        self.rejections.horizontalHeader().setSectionResizeMode(3, QHeaderView.Stretch)
        if shown:
            self._room_for_rejections(len(shown))

    def _room_for_rejections(self, rows: int) -> None:
        """The divider moves up so that the report and up to eight rejected rows show; the mapping
        keeps what it cannot do without (and scrolls)."""
        total = sum(self.split.sizes())
        if total <= 0:
            return
        t = self.rejections
        row = t.rowHeight(0) if t.rowCount() else t.verticalHeader().defaultSectionSize()
        lower = self.split.widget(1)
        table_now = t.height()
        want = lower.height() - table_now + t.horizontalHeader().height() + min(rows, 8) * row + 2 * t.frameWidth() + 4
        upper = max(self.split.widget(0).minimumSizeHint().height(), total - want)
        if upper < self.split.sizes()[0]:
            self.split.setSizes([upper, total - upper])

    def confirm_import(self) -> None:
        if self.plan is None:
            return
        plan, store = self.plan, self.store

        def work(progress):
            return importer.commit(store, plan, progress)

        self._start("正在导入…", work, self._imported)

    def _imported(self, report: importer.Report) -> None:
        self.report = report
        self.plan = None
        self._show_report(report)
        self.import_button.setEnabled(False)
        self.errors_button.setEnabled(bool(report.rejected_rows))
        self.status.setText("导入完成(一次事务)。")

    def save_errors_to(self, path) -> Path:
        return importer.write_error_workbook(self.report, path)

    def save_errors_as(self) -> None:
        if not self.report or not self.report.rejected_rows:
            return
        start = str(Path(self.file_edit.text()).with_name(Path(self.file_edit.text()).stem + "-错误.xlsx"))
        path, _ = QFileDialog.getSaveFileName(self, "保存错误工作簿", start, "Excel 工作簿 (*.xlsx)")
        if not path:
            return
        if not path.lower().endswith(".xlsx"):
            path += ".xlsx"
        try:
            self.save_errors_to(path)
        except OSError as exc:
            QMessageBox.warning(self, "无法保存", f"无法写入 {path}:{exc.strerror}")
            return
        self.status.setText(f"错误工作簿已保存到 {path}")

    # ------------------------------------------------------------------ export

    def export_to(self, path) -> None:
        level, code = self.scope.currentData().split(":", 1)
        store = self.store

        def work(progress):
            kw = {"village": code} if level == "village" else {"township": code}
            return path, exporter.export_table(store, path, progress=progress, **kw)

        self._start("正在导出…", work, self._exported)

    def _exported(self, result) -> None:
        path, counts = result
        self.status.setText(f"已导出 {counts['households']} 户、{counts['members']} 名成员到 {path}"
                            + (";CSV 不含家庭收入、帮扶、计划和台账,需要时请导出为 .xlsx"
                               if str(path).lower().endswith(".csv") else ""))

    def export_as(self) -> None:
        if self.scope.currentData() is None:
            return
        level, code = self.scope.currentData().split(":", 1)
        start = str(Path.home() / f"贫困户-{code}.xlsx")
        path, chosen = QFileDialog.getSaveFileName(self, "导出", start, "Excel 工作簿 (*.xlsx);;CSV (*.csv)")
        if not path:
            return
        if not path.lower().endswith((".xlsx", ".csv")):
            path += ".csv" if "csv" in chosen.lower() else ".xlsx"
        self.export_to(path)

    def done(self, result: int) -> None:
        if self.busy:
            self.wait_until_done()
        super().done(result)
