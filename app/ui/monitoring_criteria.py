"""The 防返贫监测标准 tab of the 参考数据 window (app/ui/reference_dialog.py), beside 贫困线 and built
the same way: one row per year (监测收入标准, 最短监测时间, 风险消除期限, 来源说明), editable in the table
and by the row below it, on the county's database (and one not enrolled); read-only on an enrolled
laptop or township office, which receive the criteria with the sync bundles. The same as
`jiandang reference monitoring`; all checking is app.services.reference.set_monitoring_criteria.
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services import reference

ERROR_STYLE = "color: #b00020;"
OK_STYLE = "color: #1b5e20;"
COLUMNS = ("年度", "监测收入标准(元/人·年)", "最短监测(月)", "风险消除期限(天)", "来源说明")
KEYS = ("year", "line", "min_months", "risk_days", "source")


def _yuan(amount: float) -> str:
    return f"{amount:.2f}".rstrip("0").rstrip(".")



def yearly_table(columns: list[str], editable: bool, on_edit) -> QTableWidget:
    """A table of one row per year (poverty lines, monitoring criteria): the last column stretches,
    whole rows are selected, cells are edited in place only when `editable` (`on_edit` takes the
    changed item)."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    for column in range(len(columns) - 1):
        header.setSectionResizeMode(column, QHeaderView.ResizeToContents)
    header.setSectionResizeMode(len(columns) - 1, QHeaderView.Stretch)
    table.setSelectionBehavior(QAbstractItemView.SelectRows)
    if not editable:
        table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.itemChanged.connect(on_edit)
    return table


def year_box() -> QSpinBox:
    """The year to set a new row for: from the first year the program knows to next year, this year first."""
    box = QSpinBox()
    box.setRange(reference.FIRST_YEAR, dt.date.today().year + 1)
    box.setValue(dt.date.today().year)
    return box

class MonitoringCriteriaTab(QWidget):
    def __init__(self, store, editable: bool, parent=None):
        super().__init__(parent)
        self.store = store
        self.editable = editable
        self._filling = False
        self.setObjectName("monitoring_criteria")
        layout = QVBoxLayout(self)
        explain = QLabel(
            "各年度防返贫监测标准:年人均纯收入低于监测收入标准的户可纳入监测(监测识别);风险消除须收入稳定高于当年"
            "标准,且已监测满“最短监测”月数;风险超过“风险消除期限”天数仍未消除的户列入工作清单。"
            + ("双击单元格修改。" if editable else "由县扶贫办设定,随同步包更新。"))
        explain.setWordWrap(True)
        layout.addWidget(explain)
        self.table = yearly_table(list(COLUMNS), editable, self._edited)
        self.table.setObjectName("criteria_table")
        layout.addWidget(self.table, 1)

        row = QHBoxLayout()
        row.addWidget(QLabel("年度"))
        self.new_year = year_box()
        row.addWidget(self.new_year)
        row.addWidget(QLabel("监测收入标准(元)"))
        self.new_line = QLineEdit()
        self.new_line.setPlaceholderText("如 8800")
        self.new_line.setMaximumWidth(100)
        row.addWidget(self.new_line)
        row.addWidget(QLabel("最短监测(月)"))
        self.new_months = QSpinBox()
        self.new_months.setRange(0, 120)
        self.new_months.setValue(6)
        row.addWidget(self.new_months)
        row.addWidget(QLabel("期限(天)"))
        self.new_days = QSpinBox()
        self.new_days.setRange(0, 3650)
        self.new_days.setValue(180)
        row.addWidget(self.new_days)
        row.addStretch(1)
        second = QHBoxLayout()  # the source on a line of its own: room for a document number
        second.addWidget(QLabel("来源"))
        self.new_source = QLineEdit()
        self.new_source.setPlaceholderText("如 省乡村振兴局文件字号")
        second.addWidget(self.new_source, 1)
        self.set_button = QPushButton("设定")
        self.set_button.setObjectName("criteria_set")
        self.set_button.clicked.connect(self._set_from_row)
        for line in (self.new_line, self.new_source):  # Enter sets the year, as 设定 does
            line.returnPressed.connect(self.set_button.click)
        second.addWidget(self.set_button)
        holder = QWidget()
        rows = QVBoxLayout(holder)
        rows.setContentsMargins(0, 0, 0, 0)
        rows.addLayout(row)
        rows.addLayout(second)
        holder.setVisible(editable)
        layout.addWidget(holder)
        self.message = QLabel("")
        self.message.setObjectName("criteria_message")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        self.fill()

    def fill(self) -> None:
        self._filling = True
        rows = reference.monitoring_criteria(self.store)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            texts = (str(r["year"]), _yuan(r["line"]), str(r["min_months"]), str(r["risk_days"]), r["source"])
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setFlags(item.flags() & ~Qt.ItemIsEditable)
                    item.setData(Qt.UserRole, r["year"])
                elif column < 4:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(i, column, item)
        self.table.resizeRowsToContents()
        self.table.scrollToBottom()  # the recent years are the ones in use
        self._filling = False
        if not rows:
            self.message.setText("还没有设定监测收入标准:没有标准的年度不能判断风险能否消除。"
                                 + ("请在下面一行设定。" if self.editable else "请县扶贫办设定后同步。"))

    def set_criteria(self, year, line, min_months=6, risk_days=180, source: str = "") -> bool:
        try:
            c = reference.set_monitoring_criteria(self.store, year, line, min_months, risk_days, source)
        except reference.ReferenceDataError as exc:
            self._say(f"未设定:{exc}", False)
            return False
        self.fill()
        self._say(f"已设定 {c['year']} 年监测收入标准 {_yuan(c['line'])} 元/人·年,最短监测 {c['min_months']} 个月,"
                  f"风险超过 {c['risk_days']} 天未消除列入工作清单", True)
        return True

    def _set_from_row(self) -> None:
        if self.set_criteria(self.new_year.value(), self.new_line.text(), self.new_months.value(),
                             self.new_days.value(), self.new_source.text()):
            self.new_line.clear()
            self.new_source.clear()

    def _edited(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() == 0:
            return
        row = item.row()
        values = [self.table.item(row, c).text() if self.table.item(row, c) else "" for c in range(len(COLUMNS))]
        if not self.set_criteria(self.table.item(row, 0).data(Qt.UserRole), *values[1:]):
            message = self.message.text()
            self.fill()  # back to what is stored
            self._say(message, False)

    def _say(self, text: str, ok: bool) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(OK_STYLE if ok else ERROR_STYLE)
