"""识别与退出 window: proposals by stage, the next stage done with its outcome and reason, the exit
criteria and status history of the selected household, and the work lists.

Loading (every proposal and household document of the database) runs on a worker thread; the window
only renders the result. Every write goes through app.services.proposals, which enforces stage order
and this database's role.
"""

from __future__ import annotations

import datetime as dt
import html
import re

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import procedures
from app.core.clock import wall_time
from app.core.dictionary import default
from app.core.procedures import KINDS, STAGE_LABELS, STAGES
from app.services import households, monitoring, proposals, worklists
from app.store.db import short_id
from app.ui import workers
from app.ui.monitoring_box import MonitoringBox

FILTERS = [("pending", "全部未办结")] + [(s, f"等待{STAGE_LABELS[s]}") for s in STAGES[1:]] + [
    ("returned", "已退回"), ("effective", "已公告生效"), ("all", "全部申报")]
COLUMNS = ["编号", "类型", "户编号", "户主", "所处环节", "提名日期", "标准与风险"]


def criteria_cell(p: dict, a, doc: dict) -> tuple[str, str, bool]:
    """The last column of a proposal's row: (text, tooltip, failing). An exit or a 风险消除 is
    达标/未达标 against its own standard; a 监测识别 shows the risks it is about (the household's
    open risks, by type); a 贫困识别 is checked against no standard here."""
    kind = p.get("proposal_kind")
    if kind in ("exit", "eliminate"):
        what = "风险消除标准" if kind == "eliminate" else "脱贫退出标准"
        if a is None:
            return "", "", False
        text = "达标" if a.passed else "未达标"
        return text, f"{what}:{text}(当前数据)", not a.passed
    if kind == "monitor":
        if monitoring.open_risk_types(doc):
            return monitoring.risks_remark(doc), "监测识别针对的风险(户档中未消除的风险)", False
        return monitoring.risks_remark(doc), "户档中没有未消除的风险", True
    return "—", "贫困户识别不对照退出标准", False


def load(store, village: str | None, visit_days: int) -> dict:
    """Read proposals, their households and the work lists (runs on a worker thread)."""
    items = proposals.proposals(store, village_code=village)
    docs = {}
    for p in items:
        if p["household_id"] not in docs:
            docs[p["household_id"]] = households.document(store, p["household_id"])
    assessments = {p["id"]: (proposals.assessment_of(store, p, docs.get(p["household_id"]))
                             or monitoring.assessment_of(store, p, docs.get(p["household_id"])))  # 风险消除, #20
                   for p in items if docs.get(p["household_id"])}
    lists = worklists.build(store, village_code=village, visit_days=visit_days)
    return {"proposals": items, "docs": docs, "assessments": assessments, "lists": lists}


COLUMN_PADDING = 14  # pixels beside a column's widest text, so neighbouring columns do not run together
# the widest text a column usually holds: the table is laid out with these widths before anything is
# read (its first paint), and a column is never made narrower once its rows are in, so nothing moves
# when they arrive (a 户主 of four characters, a 16-digit 户编号, the longest 所处环节 of a pending one)
TYPICAL = ["8" * 8, max(KINDS.values(), key=len), "8" * 16, "欧阳明远", "等待" + max(STAGE_LABELS.values(), key=len),
           "2026-12-31"]
DETAIL_WIDTH = 480  # the detail and 办理 pane's width; the table takes the rest of the window
REASON_HINT = "意见;退回时必须写明原因"  # the 办理 box's hint for 意见/原因 (none while the box is disabled)


def fit_columns(view, count: int, least: list[int] | None = None) -> None:
    """The first `count` columns of a table or tree take their contents' width (header included)
    plus some room, at least `least[col]` when given; the last column takes the rest."""
    for col in range(count):
        view.resizeColumnToContents(col)
        view.setColumnWidth(col, max(view.columnWidth(col) + COLUMN_PADDING, least[col] if least else 0))


def typical_widths(view) -> list[int]:
    """Each column's width for its header and TYPICAL text in the view's font, padding included."""
    metrics = QFontMetrics(view.font())
    header = QFontMetrics(view.horizontalHeader().font())
    return [max(metrics.horizontalAdvance(text), header.horizontalAdvance(label)) + 2 * COLUMN_PADDING
            for text, label in zip(TYPICAL, COLUMNS)]


def local_time(hlc: str) -> str:
    return dt.datetime.fromtimestamp(wall_time(hlc)).strftime("%Y-%m-%d %H:%M")


def _date(edit: QDateEdit) -> str:
    return edit.date().toString("yyyy-MM-dd")


def _date_edit(days_ago: int = 0) -> QDateEdit:
    edit = QDateEdit(QDate.currentDate().addDays(-days_ago))
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd")
    return edit


def _row_of(first: QWidget, *rest) -> QWidget:
    """Widgets on one form row, each after its label: _row_of(a, "反对", b, "弃权", c)."""
    row = QWidget()
    line = QHBoxLayout(row)
    line.setContentsMargins(0, 0, 0, 0)
    line.addWidget(first, 1)
    for item in rest:
        line.addWidget(QLabel(item) if isinstance(item, str) else item, 0 if isinstance(item, str) else 1)
    return row


class NewProposalDialog(QDialog):
    """Start a proposal (村民小组提名) for one household; shows the exit criteria live for an exit."""

    def __init__(self, store, village_code: str | None = None, parent=None, household_id: str | None = None):
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("发起申报(村民小组提名)")
        self._docs: dict[str, dict] = {}
        form = QFormLayout()
        self.household = QComboBox()
        self.household.setEditable(True)  # type a 户编号 or a name to find the household
        self.household.setInsertPolicy(QComboBox.NoInsert)
        for record in store.records("household", village_code=village_code):
            f = record.fields
            status = procedures.STATUS_LABELS.get(f.get("status"), "")
            if f.get("household_type"):
                status += "," + monitoring.type_label(f["household_type"])
            self.household.addItem(f"{f.get('household_number', '')} {f.get('head_name', '')}({status})", record.id)
        if household_id:
            self.household.setCurrentIndex(max(0, self.household.findData(household_id)))
        self.kind = QComboBox()
        for key, label in KINDS.items():
            self.kind.addItem(label, key)
        self.reasons = QPlainTextEdit()
        self.reasons.setTabChangesFocus(True)  # Tab moves on (it typed a tab character: a keyboard trap)
        self.reasons.setPlaceholderText("申报理由(必填)")
        self.reasons.setFixedHeight(60)
        self.date = _date_edit()
        self.by = QLineEdit()
        self.by.setPlaceholderText("如村民小组长姓名")
        self.year = QSpinBox()
        self.year.setRange(2013, 2035)
        self.year.setValue(dt.date.today().year - 1)
        self.food = QCheckBox("不愁吃")
        self.clothing = QCheckBox("不愁穿")
        self.water = QCheckBox("饮水安全")
        self.monitoring_box = MonitoringBox()
        self.date.dateChanged.connect(self.monitoring_box.found_by)  # a risk is found by the day it is reported
        self.justification = QPlainTextEdit()
        self.justification.setTabChangesFocus(True)  # Tab moves on (it typed a tab character: a keyboard trap)
        self.justification.setPlaceholderText("未达到退出标准时必须写明书面说明")
        self.justification.setFixedHeight(60)
        self.assessment = QLabel()
        self.assessment.setWordWrap(True)
        self.assessment.setTextFormat(Qt.RichText)
        form.addRow("农户", self.household)  # 贫困户 for 识别/退出, 脱贫户 or 一般农户 for 监测识别, a 监测户 for 风险消除
        form.addRow("申报类型", self.kind)
        form.addRow("申报理由", self.reasons)
        form.addRow("提名日期", self.date)
        form.addRow("提名人", self.by)
        self._form = form
        self.exit_box = QGroupBox("脱贫退出标准")
        exit_form = QFormLayout(self.exit_box)
        exit_form.addRow("收入年度", self.year)
        row = QHBoxLayout()
        row.addWidget(self.food)
        row.addWidget(self.clothing)
        row.addWidget(self.water)
        exit_form.addRow("两不愁", row)
        exit_form.addRow(self.assessment)
        exit_form.addRow("书面说明", self.justification)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020")
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.Ok)
        self.ok_button.setText("提名")
        buttons.button(QDialogButtonBox.Cancel).setText("取消")
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.exit_box)
        layout.addWidget(self.monitoring_box)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.result_proposal: dict | None = None
        for signal in (self.household.currentIndexChanged, self.kind.currentIndexChanged, self.year.valueChanged,
                       self.food.toggled, self.clothing.toggled, self.water.toggled):
            signal.connect(self.refresh_assessment)
        self.refresh_assessment()

    def _doc(self) -> dict | None:
        hid = self.household.currentData()
        if hid and hid not in self._docs:
            self._docs[hid] = households.document(self.store, hid)
        return self._docs.get(hid) if hid else None

    def _name_first_stage(self, kind: str) -> None:
        """The first stage in the kind's own words: 村民小组提名 (提名日期, 提名人, 提名) for poverty
        proposals, 申报排查 / 入户核实 (…日期, 经办人, 申报) for 监测识别 / 风险消除."""
        stage = procedures.stage_label("nominate", kind)
        monitoring_kind = kind in procedures.MONITORING_KINDS
        self.setWindowTitle(f"发起申报({stage})")
        self._form.labelForField(self.date).setText(f"{stage}日期" if monitoring_kind else "提名日期")
        self._form.labelForField(self.by).setText("经办人" if monitoring_kind else "提名人")
        self.by.setPlaceholderText("如驻村工作队员或村干部姓名" if monitoring_kind else "如村民小组长姓名")
        self.ok_button.setText("申报" if monitoring_kind else "提名")

    def refresh_assessment(self) -> None:
        kind = self.kind.currentData()
        self._name_first_stage(kind)
        is_exit = kind in ("exit", "eliminate")
        self.exit_box.setVisible(is_exit)
        self.exit_box.setTitle("风险消除标准" if kind == "eliminate" else "脱贫退出标准")
        self.water.setVisible(kind == "eliminate")
        self.monitoring_box.setVisible(kind == "monitor")
        doc = self._doc()
        if not is_exit or doc is None:
            return
        latest = procedures.latest_income_year(doc)
        if latest and self.sender() is not self.year and procedures.income_of(doc, self.year.value()) is None:
            self.year.blockSignals(True)
            self.year.setValue(latest)
            self.year.blockSignals(False)
        if kind == "eliminate":
            a = monitoring.assess(self.store, doc, year=self.year.value(), food_secure=self.food.isChecked(),
                                  clothing_secure=self.clothing.isChecked(), water_secure=self.water.isChecked())
            self.assessment.setText(criteria_html(a, "风险消除标准"))
            return
        a = proposals.exit_assessment(self.store, doc, year=self.year.value(), food_secure=self.food.isChecked(),
                                      clothing_secure=self.clothing.isChecked())
        self.assessment.setText(criteria_html(a))

    def submit(self) -> None:
        doc = self._doc()
        if doc is None:
            self.message.setText("请选择农户(可输入户编号或户主姓名查找)")
            return
        kind = self.kind.currentData()
        is_exit = kind in ("exit", "eliminate")
        extra = self.monitoring_box.values() if kind == "monitor" else {}
        if kind == "eliminate":
            extra["water_secure"] = self.water.isChecked()
        try:
            self.result_proposal = proposals.propose(
                self.store, doc["id"], self.kind.currentData(), reasons=self.reasons.toPlainText(),
                date=_date(self.date), by=self.by.text().strip() or None,
                income_year=self.year.value() if is_exit else None,
                food_secure=self.food.isChecked() if is_exit else None,
                clothing_secure=self.clothing.isChecked() if is_exit else None,
                justification=self.justification.toPlainText().strip() or None, **extra)
        except proposals.ProcedureError as exc:
            self.message.setText(in_window_words(str(exc)))
            return
        self.accept()


_OPTION_HINT = re.compile(r"[(（]--[^)）]*[)）]")  # (--household-authorised), (--meeting-date --attendance …)


def in_window_words(message: str) -> str:
    """A refusal of app.services as the window shows it: the command's option named in brackets
    after the requirement (须有农户签署的授权承诺书(--household-authorised)) is left out; the
    requirement names the field or box of this window."""
    return _OPTION_HINT.sub("", message)


def criteria_html(a: procedures.ExitAssessment, what: str = "退出标准") -> str:
    rows = []
    for c in a.criteria:
        mark = '<span style="color:#1b7f3b">√</span>' if c.ok else '<span style="color:#b00020">×</span>'
        rows.append(f"<tr><td>{mark}</td><td>{html.escape(c.label)}</td><td>{html.escape(c.detail)}</td></tr>")
    verdict = f"达到{what}" if a.passed else f"<b style='color:#b00020'>未达到{what}</b>"
    return f"<table cellspacing=4>{''.join(rows)}</table><p>结论:{verdict}</p>"


class ProposalsWindow(QWidget):
    """Proposals by stage, the next stage done with outcome and reason, exit criteria, work lists."""

    loaded = Signal()

    def __init__(self, store, parent=None):
        super().__init__(parent, Qt.Window)  # its own window even when the main window is the parent
        self.store = store
        self.setWindowTitle(f"识别与退出 — {store.site_name}({procedures.ROLE_LABELS.get(store.role, store.role)})")
        self.resize(1366, 728)  # a 1366×768 laptop's whole area under the taskbar; smaller where less (screen_fit)
        self.data: dict = {"proposals": [], "docs": {}, "assessments": {}, "lists": None}
        self.current: dict | None = None
        self.loading = False
        self._reload_again = False
        self._done_note = ""  # what the last 办理 did: kept on the status line through the reloads it causes

        self.village = QComboBox()
        self.village.addItem("全部村", None)
        present = set(store.village_codes())
        for row in store.divisions("village"):
            if not present or row["code"] in present:
                self.village.addItem(f"{row['name']}({row['code']})", row["code"])
        self.filter = QComboBox()
        for key, label in FILTERS:
            self.filter.addItem(label, key)
        self.days = QSpinBox()
        self.days.setRange(1, 3650)
        self.days.setValue(worklists.DEFAULT_VISIT_DAYS)
        self.days.setSuffix(" 天")
        self.refresh_button = QPushButton("刷新")
        self.new_button = QPushButton("发起申报…")
        self.new_button.setEnabled(procedures.role_may(store.role, "nominate"))
        if not self.new_button.isEnabled():
            self.new_button.setToolTip("提名只能在村级或乡级数据库办理")
        self.status = QLabel()
        top = QHBoxLayout()
        for w in (QLabel("村:"), self.village, QLabel("环节:"), self.filter, QLabel("未走访:"), self.days,
                  self.refresh_button, self.new_button):
            top.addWidget(w)
        top.addStretch(1)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setSelectionMode(QTableWidget.SingleSelection)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.least_widths = typical_widths(self.table)
        for col, width in enumerate(self.least_widths):
            self.table.setColumnWidth(col, width)
        self.detail = QTextBrowser()
        self.action_box = self._build_action_box()
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.detail, 1)
        self.action_box.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Maximum)
        right_layout.addWidget(self.action_box)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(right)
        split.setStretchFactor(0, 1)  # a wider window widens the table, not the detail
        split.setStretchFactor(1, 0)
        self.split = split
        self._sized = False

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["户编号", "户主", "说明"])
        self.tree.header().setSectionResizeMode(QHeaderView.Interactive)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemExpanded.connect(lambda _item: fit_columns(self.tree, 2))

        self.tabs = QTabWidget()
        self.tabs.addTab(split, "申报")
        self.tabs.addTab(self.tree, "工作清单")
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)

        self.village.currentIndexChanged.connect(self.reload)
        self.days.editingFinished.connect(self.reload)
        self.filter.currentIndexChanged.connect(self.render_table)
        self.refresh_button.clicked.connect(self._refresh_clicked)
        self.new_button.clicked.connect(self.new_proposal)
        self.table.itemSelectionChanged.connect(self.select)
        self.tree.itemDoubleClicked.connect(self._tree_open)
        self._pending_reload = QTimer(self, singleShot=True, interval=200, timeout=self.reload)
        self._closed = False
        workers.listen(store, self._on_changes)
        self._prepare_action(None)  # the 办理 box as it is with nothing chosen, not with every stage's rows
        self.reload()

    def showEvent(self, event) -> None:
        """At its first showing, the detail pane gets DETAIL_WIDTH and the table the rest (a splitter's
        sizes given before it has a width are only proportions)."""
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            self.layout().activate()
            total = sum(self.split.sizes()) or self.split.width()
            right = min(DETAIL_WIDTH, total // 2)
            self.split.setSizes([total - right, right])

    # ------------------------------------------------------------------ building

    def _build_action_box(self) -> QGroupBox:
        box = QGroupBox("办理下一环节")
        self.next_label = QLabel()
        self.next_label.setWordWrap(True)
        self.outcome = QComboBox()
        self.outcome.addItem("通过", "pass")
        self.outcome.addItem("退回", "return")
        self.reason = QLineEdit()
        self.reason.setPlaceholderText(REASON_HINT)
        self.stage_date = _date_edit()
        self.by = QLineEdit()
        self.meeting_date = _date_edit()
        self.attendance = QSpinBox()
        self.attendance.setRange(0, 100000)
        self.votes_for = QSpinBox()
        self.votes_for.setRange(0, 100000)
        self.votes_against = QSpinBox()
        self.votes_against.setRange(0, 100000)
        self.votes_abstain = QSpinBox()
        self.votes_abstain.setRange(0, 100000)
        self.signed = QCheckBox("农户已签字同意")
        self.notice_start = _date_edit(7)
        self.notice_end = _date_edit(1)
        self.do_button = QPushButton("办理")
        self.action_message = QLabel()
        self.action_message.setWordWrap(True)
        self.action_message.setStyleSheet("color: #b00020")
        form = QFormLayout(box)
        form.addRow(self.next_label)
        form.addRow("结果", self.outcome)
        form.addRow("意见/原因", self.reason)
        form.addRow("办理日期", self.stage_date)
        form.addRow("经办人", self.by)
        # a stage's own fields share rows (评议会日期 with 参会人数, the three votes, the notice period), so
        # that at 1366×768 the detail above keeps room for the 办理经过 and the criteria
        meeting = _row_of(self.meeting_date, "参会人数", self.attendance)
        votes = _row_of(self.votes_for, "反对", self.votes_against, "弃权", self.votes_abstain)
        self.review_rows = []
        for label, widget in (("评议会日期", meeting), ("赞成", votes), ("", self.signed)):
            form.addRow(label, widget)
            self.review_rows.append(widget)
        self.notice_rows = [_row_of(self.notice_start, "至", self.notice_end)]
        form.addRow("公示期", self.notice_rows[0])
        form.addRow(self.do_button)
        form.addRow(self.action_message)
        self._form = form
        self.do_button.clicked.connect(self.do_stage)
        return box

    # ------------------------------------------------------------------ loading

    def _on_changes(self, changes) -> None:
        if any(c.kind in ("proposal", "household", "helper", "visit", "income", "member") for c in changes):
            self._pending_reload.start()

    def _refresh_clicked(self) -> None:
        self._done_note = ""
        self.reload()

    def reload(self) -> None:
        if self._closed:  # a change or a timer after the window closed: no more work for it
            return
        if self.loading:
            self._reload_again = True
            return
        self.loading = True
        self.status.setText("正在读取…")
        self.refresh_button.setEnabled(False)
        self.do_button.setEnabled(False)
        store, village, days = self.store, self.village.currentData(), self.days.value()
        self._loader = workers.start(lambda progress: load(store, village, days), self._loaded, self._failed)

    def _finish_loading(self) -> None:
        self.loading = False
        self.refresh_button.setEnabled(True)
        if self._reload_again:
            self._reload_again = False
            self.reload()

    def _failed(self, message: str) -> None:
        self.status.setText("读取失败")
        self._finish_loading()
        if not self._closed:  # no dialog over a window closed (and being deleted) while its list loaded
            QMessageBox.warning(self, "读取失败", message)

    def _loaded(self, data: dict) -> None:
        self.loading = False
        self.data = data
        keep = self.current["id"] if self.current else None
        self.render_table(select=keep)
        self.render_lists()
        n = len(data["proposals"])
        pending = sum(1 for p in data["proposals"] if procedures.is_pending(p))
        self.status.setText(f"申报 {n} 份,未办结 {pending} 份" + (f"。{self._done_note}" if self._done_note else ""))
        self._finish_loading()
        self.loaded.emit()

    # ------------------------------------------------------------------ rendering

    def visible_proposals(self) -> list[dict]:
        key = self.filter.currentData()
        items = self.data["proposals"]
        return items if key == "all" else [p for p in items if proposals.matches_waiting(p, key)]

    def render_table(self, *_, select: str | None = None) -> None:
        items = self.visible_proposals()
        self.table.setRowCount(len(items))
        docs = self.data["docs"]
        chosen = -1
        for row, p in enumerate(items):
            doc = docs.get(p["household_id"]) or {}
            criteria, tip, failing = criteria_cell(p, self.data["assessments"].get(p["id"]), doc)
            values = [short_id(p["id"]), KINDS.get(p.get("proposal_kind"), ""), str(doc.get("household_number", "")),
                      str(doc.get("head_name", "(已删除)")), proposals.state_label(p), str(p.get("nominate_date", "")),
                      criteria]
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, p["id"])
                if col == 6:
                    item.setToolTip(tip)
                    if failing:
                        item.setForeground(Qt.red)
                self.table.setItem(row, col, item)
            if p["id"] == select:
                chosen = row
        fit_columns(self.table, len(COLUMNS) - 1, self.least_widths)
        if chosen >= 0 or items:
            self.table.blockSignals(True)
            self.table.selectRow(max(chosen, 0))
            self.table.blockSignals(False)
            self.select()
        else:
            self.current = None
            self.render_detail()

    def render_lists(self) -> None:
        lists = self.data["lists"]
        self.tree.clear()
        if lists is None:
            return
        groups = [("缺帮扶责任人", lists.missing_helper), (f"{lists.visit_days} 天内未走访", lists.no_recent_visit)]
        groups += [(worklists.stage_title(s), lists.waiting[s]) for s in STAGES[1:]]
        groups.append(("退出未达标(乡级初核重点核查)", lists.failing_exits))
        groups.append(("待完善(必填项未填)", lists.incomplete))
        m = lists.monitoring  # 防返贫动态监测 (issue #20)
        groups += [("收入接近或低于监测收入标准", m.near_line), ("监测对象无在帮措施", m.no_measure),
                   (f"监测对象 {lists.visit_days} 天内未走访", m.not_visited), ("风险超期未消除", m.risks_overdue)]
        for notice in lists.notices:  # 户编号 running out: above the lists, in red
            item = QTreeWidgetItem([f"提醒:{notice}", "", ""])
            item.setForeground(0, Qt.red)
            self.tree.addTopLevelItem(item)
            item.setFirstColumnSpanned(True)
        for title, entries in groups:
            top = QTreeWidgetItem([f"{title}({len(entries)} 户)", "", ""])
            if title.startswith("退出未达标") and entries:
                top.setForeground(0, Qt.red)
            for e in entries:
                child = QTreeWidgetItem([e.household_number, e.head_name, e.detail])
                child.setData(0, Qt.UserRole, e.proposal_id)
                top.addChild(child)
            self.tree.addTopLevelItem(top)
            top.setFirstColumnSpanned(True)  # a list's title across the row: 户编号 keeps its own width
            top.setExpanded(bool(entries) and len(entries) <= 50)
        fit_columns(self.tree, 2)

    def _tree_open(self, item, _column) -> None:
        pid = item.data(0, Qt.UserRole)
        if pid:
            self.filter.setCurrentIndex(self.filter.findData("all"))
            self.render_table(select=pid)
            self.tabs.setCurrentIndex(0)

    def select(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        pid = self.table.item(rows[0].row(), 0).data(Qt.UserRole)
        self.current = next((p for p in self.data["proposals"] if p["id"] == pid), None)
        self.render_detail()

    def render_detail(self) -> None:
        p = self.current
        self.action_message.clear()
        if p is None:
            total = len(self.data["proposals"])
            if total and self.filter.currentData() != "all":  # those done are there, under 全部申报
                self.detail.setHtml(f"<p>“{html.escape(self.filter.currentText())}”中没有申报。"
                                    f"共有申报 {total} 份:在“环节”中选“全部申报”可查看已办结和已退回的申报。</p>")
            else:
                self.detail.setHtml("<p>没有申报。</p>")
            self.do_button.setText("办理")  # not the stage of a proposal no longer shown
            self.next_label.setText("")
            self._prepare_action(None)
            return
        doc = self.data["docs"].get(p["household_id"]) or {}
        parts = [f"<h3>{html.escape(KINDS.get(p.get('proposal_kind'), ''))}申报 {short_id(p['id'])} · "
                 f"{html.escape(proposals.household_title(doc) if doc else '(户已删除)')}</h3>",
                 f"<p>{html.escape(proposals.state_label(p))}。理由:{html.escape(str(p.get('reasons', '')))}</p>"]
        if p.get("justification"):
            parts.append(f"<p><b>未达标书面说明:</b>{html.escape(p['justification'])}</p>")
        rows = []
        for s in STAGES:
            outcome = p.get(f"{s}_outcome")
            if not outcome:
                continue
            extra = ""
            if s == "review":
                extra = (f"评议会 {p.get('review_meeting_date', '')},参会 {p.get('review_attendance', '')} 人,"
                         f"赞成 {p.get('review_votes_for', '')} 反对 {p.get('review_votes_against', 0)} "
                         f"弃权 {p.get('review_votes_abstain', 0)}" + (",农户已签字" if p.get("review_household_signed") else ""))
            if s == "notice":
                extra = f"公示期 {p.get('notice_start', '')} 至 {p.get('notice_end', '')}"
            who = " ".join(str(x) for x in (p.get(f"{s}_site"), p.get(f"{s}_by"), p.get(f"{s}_operator")) if x)
            rows.append(f"<tr><td>{procedures.stage_label(s, p.get('proposal_kind'))}</td><td>{html.escape(str(p.get(f'{s}_date', '')))}</td>"
                        f"<td>{html.escape(who)}</td><td>{procedures.OUTCOMES[outcome]}</td>"
                        f"<td>{html.escape(' '.join(x for x in (extra, p.get(f'{s}_reason') or '') if x))}</td></tr>")
        parts.append("<h4>办理经过</h4><table border=1 cellspacing=0 cellpadding=3><tr><th>环节</th><th>日期</th>"
                     "<th>经办</th><th>结果</th><th>说明</th></tr>" + "".join(rows) + "</table>")
        a = self.data["assessments"].get(p["id"])
        if a is not None:
            what = "风险消除标准" if p.get("proposal_kind") == "eliminate" else "退出标准"
            parts.append(f"<h4>{what}({a.year or '无收入记录'} 年,当前数据)</h4>" + criteria_html(a, what))
            if p.get("assessed_failures"):
                parts.append(f"<p>申报时未达标项:{html.escape(p['assessed_failures'])}</p>")
        if doc:
            status = procedures.STATUS_LABELS.get(doc.get("status"), doc.get("status"))
            hist = proposals.status_history(self.store, doc["id"])
            items = "".join(
                f"<li>{local_time(e.when)} {html.escape(e.operator or '')}:"
                f"{html.escape(procedures.STATUS_LABELS.get(e.old, '') or '(新建)')} 改为 "
                f"{html.escape(procedures.STATUS_LABELS.get(e.new, e.new or ''))}"
                f"{(' · ' + html.escape(e.reason)) if e.reason else ''}</li>" for e in hist)
            parts.append(f"<h4>脱贫状态:{html.escape(str(status))}</h4><ul>{items}</ul>")
            if doc.get("household_type") or doc.get("risks"):  # 防返贫动态监测 (issue #20)
                d = default()
                facts = ",".join(f"{d.field_label('household', k)} {d.display('household', k, doc.get(k))}"
                                 for k in procedures.MONITORING_FIELDS if doc.get(k) not in (None, ""))
                risks = monitoring.risk_summary(doc)
                parts.append(f"<h4>防返贫监测</h4><p>{html.escape(facts)}</p>"
                             + (f"<p>风险:{html.escape(risks)}</p>" if risks else ""))
        self.detail.setHtml("".join(parts))
        self._prepare_action(p)

    def _prepare_action(self, p: dict | None) -> None:
        stage = proposals.waiting_for(p) if p is not None else None
        self.action_box.setEnabled(p is not None)
        # a disabled field's hint is drawn like a disabled value: it would pass for an opinion given
        self.reason.setPlaceholderText(REASON_HINT if p is not None else "")
        for w in self.review_rows:
            self._show_row(w, stage == "review")
        for w in self.notice_rows:
            self._show_row(w, stage == "notice")
        if p is None:
            self._show_row(self.signed, False)
            self.do_button.setEnabled(False)
            return
        if stage is None:
            self.next_label.setText(f"这份申报{proposals.state_label(p)},无需再办理。")
            self.do_button.setEnabled(False)
            return
        self._show_row(self.signed, stage == "review" and p.get("proposal_kind") in ("exit", "eliminate"))
        if stage == "notice" and p.get("notice_start"):
            self.notice_start.setDate(QDate.fromString(p["notice_start"], "yyyy-MM-dd"))
            self.notice_end.setDate(QDate.fromString(p["notice_end"], "yyyy-MM-dd"))
        refusal = procedures.check_stage(p, stage, self.store.role)
        label = procedures.stage_label(stage, p.get("proposal_kind"))
        self.next_label.setText(f"下一环节:<b>{label}</b>" + (f"<br>{html.escape(refusal)}" if refusal else ""))
        self.do_button.setText(f"办理“{label}”")
        self.do_button.setEnabled(refusal is None and not self.loading)

    def _show_row(self, widget, visible: bool) -> None:
        self._form.setRowVisible(widget, visible)

    # ------------------------------------------------------------------ actions

    def do_stage(self) -> None:
        p = self.current
        if p is None:
            return
        stage = proposals.waiting_for(p)
        kw = {}
        if stage == "review":
            kw = dict(meeting_date=_date(self.meeting_date), attendance=self.attendance.value(),
                      votes_for=self.votes_for.value(), votes_against=self.votes_against.value(),
                      votes_abstain=self.votes_abstain.value(), household_signed=self.signed.isChecked() or None)
        if stage == "notice":
            kw = dict(notice_start=_date(self.notice_start), notice_end=_date(self.notice_end))
        try:
            updated = proposals.advance(self.store, p["id"], stage, self.outcome.currentData(),
                                        reason=self.reason.text(), date=_date(self.stage_date),
                                        by=self.by.text().strip() or None, **kw)
        except proposals.ProcedureError as exc:
            self.action_message.setText(in_window_words(str(exc)))
            return
        self.reason.clear()
        self.current = updated
        doc = self.data["docs"].get(p["household_id"]) or {}
        self._done_note = (f"已办理“{procedures.stage_label(stage, p.get('proposal_kind'))}”:"
                           f"{procedures.OUTCOMES[self.outcome.currentData()]}"
                           + (f",{proposals.household_title(doc)}" if doc else "")
                           + ("" if self.filter.currentData() == "all" or proposals.matches_waiting(
                               updated, self.filter.currentData()) else ";该申报已不在当前列表中(选“全部申报”可查看)"))
        self.status.setText(self._done_note)
        self.reload()

    def new_proposal(self) -> None:
        chosen = self.current["household_id"] if self.current else None
        dialog = NewProposalDialog(self.store, self.village.currentData(), self, household_id=chosen)
        if dialog.exec() == QDialog.Accepted and dialog.result_proposal:
            self.current = dialog.result_proposal
            self.filter.setCurrentIndex(self.filter.findData("pending"))
            self.reload()

    def closeEvent(self, event) -> None:
        self._closed = True
        workers.unlisten(self.store, self._on_changes)
        super().closeEvent(event)
