"""Entry widgets generated from the data dictionary (forms/*.toml): one widget per field chosen by
its type, a message beside it, show-if conditions applied live, help text as tooltips.

A FormPanel edits one record (a dict of raw values: codes as codes, dates as ISO text, numbers as
typed). Coercion and validation happen in the editor on the whole document."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QDate, QEvent, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCalendarWidget,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListView,
    QListWidgetItem,
    QMenu,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
    QWidgetAction,
)

from app.core import idnumber, values
from app.core.dictionary import Dictionary, Field
from app.core.validation import collection, field_label

ERROR_STYLE = "color: #b00020;"
WARNING_STYLE = "color: #9a6700;"


finding_field_label = field_label  # one wording for the window and the command line (app.core.validation)


def finding_line(d: Dictionary, f) -> str:
    """One finding on one line: [错误] 贫困户“张三” · 帮扶责任人:该户没有在帮的帮扶责任人."""
    mark = "错误" if f.severity == "error" else "提示"
    k = d.kinds.get(f.kind)
    where = f.record_label or (k.label if k is not None else f.kind)
    return f"[{mark}] {where} · {finding_field_label(d, f.kind, f.field)}:{f.message}"


class DateEdit(QWidget):
    """A date typed as text, keyboard first (2025-03-01, 20250301, 2025.3.1, 2025年3月1日: whatever
    app.core.values reads), with a button for a calendar. (A QDateEdit showing 未填 for an empty
    date could not be typed into and kept the Tab key.) The text is tidied to ISO when the field is
    left; text that is no date stays as typed and validation names it."""

    edited = Signal()

    def __init__(self, parse, parent=None):
        super().__init__(parent)
        self._parse = parse  # text -> (ISO date or the text, message or None)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.line = QLineEdit()
        self.line.setPlaceholderText("年-月-日,如 2025-03-01(未填)")
        self.button = QToolButton()
        self.button.setText("日历")
        self.button.setToolTip("从日历中选择日期")
        self.button.setFocusPolicy(Qt.NoFocus)  # Tab goes from field to field, not through the button
        layout.addWidget(self.line, 1)
        layout.addWidget(self.button)
        self.setFocusProxy(self.line)
        self.line.textEdited.connect(lambda *_: self.edited.emit())
        self.line.editingFinished.connect(self._tidy)
        self.button.clicked.connect(self._pick)

    def text(self) -> str:
        return self.line.text().strip()

    def set_text(self, text: str) -> None:
        self.line.setText(text)

    def _tidy(self) -> None:
        text = self.text()
        if text:
            value, message = self._parse(text)
            if not message and value != text:
                self.line.setText(value)

    def _pick(self) -> None:
        menu = QMenu(self)
        calendar = QCalendarWidget()
        value, message = self._parse(self.text()) if self.text() else (None, "empty")
        if not message:
            parsed = dt.date.fromisoformat(value)
            calendar.setSelectedDate(QDate(parsed.year, parsed.month, parsed.day))
        action = QWidgetAction(menu)
        action.setDefaultWidget(calendar)
        menu.addAction(action)

        def chosen(date: QDate) -> None:
            self.line.setText(date.toString("yyyy-MM-dd"))
            self.edited.emit()
            menu.close()

        calendar.clicked.connect(chosen)
        calendar.activated.connect(chosen)
        menu.popup(self.button.mapToGlobal(self.button.rect().bottomLeft()))


class CheckList(QListWidget):
    """A code list to tick (其他致贫原因): the items flow in rows across the form's width and the
    list is as tall as its rows, so all 14 causes show at once (a box showing 5 of 14 hid the rest).
    Arrow keys move, Space ticks."""

    ROW = 22

    def __init__(self):
        super().__init__()
        self.setFlow(QListView.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.Adjust)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

    def fit(self) -> None:
        if not self.count():
            return
        widest = max(self.fontMetrics().horizontalAdvance(self.item(i).text()) for i in range(self.count()))
        self.setGridSize(QSize(widest + 36, self.ROW))
        for i in range(self.count()):
            self.item(i).setSizeHint(QSize(widest + 32, self.ROW - 2))
        self.fit_height()

    def fit_height(self) -> None:
        grid = self.gridSize()
        if grid.width() <= 0:
            return
        per_row = max(1, (self.viewport().width() or self.width()) // grid.width())
        rows = -(-self.count() // per_row)
        self.setFixedHeight(rows * grid.height() + 2 * self.frameWidth() + 4)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_height()


class FieldInput:
    """One field's widget with get/set of its raw value."""

    def __init__(self, field: Field, d: Dictionary, on_change):
        self.field = field
        self.d = d
        t = field.type
        if t in ("code", "bool"):
            w = QComboBox()
            w.addItem("", None)
            if t == "bool":
                w.addItem("是", True)
                w.addItem("否", False)
            else:
                for code, label in d.codes[field.codes].items():
                    w.addItem(f"{label}", code)
            w.currentIndexChanged.connect(lambda *_: on_change(field.key))
        elif t == "multi_code":
            w = CheckList()
            for code, label in d.codes[field.codes].items():
                item = QListWidgetItem(label)
                item.setData(Qt.UserRole, code)
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(Qt.Unchecked)
                w.addItem(item)
            w.fit()
            w.itemChanged.connect(lambda *_: on_change(field.key))
        elif t == "date":
            w = DateEdit(lambda text: values.coerce(field, text, d))
            w.edited.connect(lambda: on_change(field.key))
        elif t == "text" and field.multiline:
            w = QPlainTextEdit()
            w.setTabChangesFocus(True)  # Tab goes on to the next field, as in every other field (Enter breaks lines)
            w.setMaximumHeight(70)
            w.textChanged.connect(lambda: on_change(field.key))
        else:
            w = QLineEdit()
            if field.type == "id_number":
                w.setPlaceholderText("18位身份证号码")
            elif field.type in ("integer", "decimal"):
                w.setPlaceholderText("数字")
            elif field.type == "phone":
                w.setPlaceholderText("手机或座机")
            w.textEdited.connect(lambda *_: on_change(field.key))
        w.setObjectName(f"field_{field.kind}_{field.key}")
        tip = field.help or ""
        if field.required:
            tip = (tip + "\n" if tip else "") + "必填"
        if field.readonly:
            tip = (tip + "\n" if tip else "") + "只能通过识别与退出程序改变,不能在这里修改"
            w.setEnabled(False)
        w.setToolTip(tip)
        self.widget = w

    def value(self):
        w, t = self.widget, self.field.type
        if t in ("code", "bool"):
            return w.currentData()
        if t == "multi_code":
            return [w.item(i).data(Qt.UserRole) for i in range(w.count()) if w.item(i).checkState() == Qt.Checked]
        if t == "date":  # ISO when it reads as a date; else the text as typed, for validation to name
            text = w.text()
            if not text:
                return None
            value, message = values.coerce(self.field, text, self.d)
            return text if message else value
        if isinstance(w, QPlainTextEdit):
            return w.toPlainText() or None
        return w.text() or None

    def set_value(self, value) -> None:
        w, t = self.widget, self.field.type
        w.blockSignals(True)
        try:
            if t in ("code", "bool"):
                i = w.findData(value) if value is not None else 0
                if i < 0 and value is not None:  # a stored value outside the code list: keep it visible
                    w.addItem(f"{value}(不在代码表中)", value)
                    i = w.count() - 1
                w.setCurrentIndex(max(i, 0))
            elif t == "multi_code":
                chosen = set(value or [])
                for i in range(w.count()):
                    w.item(i).setCheckState(Qt.Checked if w.item(i).data(Qt.UserRole) in chosen else Qt.Unchecked)
            elif t == "date":
                w.set_text("" if value is None else str(value))
            elif isinstance(w, QPlainTextEdit):
                w.setPlainText("" if value is None else str(value))
            else:
                w.setText("" if value is None else str(value))
        finally:
            w.blockSignals(False)


class FormPanel(QWidget):
    """Edits one record of a kind: every section as a group of rows."""

    changed = Signal(str)  # field key
    left = Signal(str)  # field key: the user moved on from the field (Tab, a click elsewhere)

    def __init__(self, kind: str, d: Dictionary, sections=None, parent=None):
        super().__init__(parent)
        self.kind = kind
        self.d = d
        self.record: dict = {}
        self.inputs: dict[str, FieldInput] = {}
        self._focus_keys: dict = {}  # the widget that takes the focus -> field key
        self.messages: dict[str, QLabel] = {}
        self._rows: dict[str, tuple[QFormLayout, int]] = {}
        layout = QVBoxLayout(self)
        k = d.kinds[kind]
        chosen = sections if sections is not None else k.sections
        for section in chosen:
            box = QGroupBox(section.label) if len(chosen) > 1 else QWidget()
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
            for field in section.fields:
                inp = FieldInput(field, d, self._edited)
                holder = QWidget()
                v = QVBoxLayout(holder)
                v.setContentsMargins(0, 0, 0, 0)
                v.setSpacing(1)
                v.addWidget(inp.widget)
                msg = QLabel()
                msg.setObjectName(f"message_{kind}_{field.key}")
                msg.setWordWrap(True)
                msg.hide()
                v.addWidget(msg)
                label = QLabel(field.label + ("*" if field.required else "") + ("(只读)" if field.readonly else ""))
                label.setToolTip(inp.widget.toolTip())
                form.addRow(label, holder)
                self._rows[field.key] = (form, form.rowCount() - 1)
                focused = inp.widget.line if isinstance(inp.widget, DateEdit) else inp.widget
                focused.installEventFilter(self)
                self._focus_keys[focused] = field.key
                self.inputs[field.key] = inp
                self.messages[field.key] = msg
            layout.addWidget(box)
        layout.addStretch(1)
        self.setEnabled(False)

    def set_record(self, record: dict | None) -> None:
        """Show a record (the dict is edited in place) or nothing."""
        self.record = record if record is not None else {}
        self.setEnabled(record is not None)
        for key, inp in self.inputs.items():
            inp.set_value(self.record.get(key))
        self.apply_show_if()
        self.show_findings([])

    def eventFilter(self, watched, event) -> bool:
        """A field left by Tab or a click elsewhere (not by its own drop-down list opening, nor by
        the window losing the focus) says so (`left`): the editor shows its problems from then on."""
        if event.type() == QEvent.FocusOut and event.reason() not in (Qt.PopupFocusReason, Qt.ActiveWindowFocusReason):
            key = self._focus_keys.get(watched)
            if key is not None and self.isEnabled():
                self.left.emit(key)
        return super().eventFilter(watched, event)

    def _edited(self, key: str) -> None:
        if not self.isEnabled():
            return
        self.record[key] = self.inputs[key].value()
        if self.inputs[key].field.type == "id_number":
            self._fill_from_id_number(self.record[key])
        self.apply_show_if()
        self.changed.emit(key)

    def _fill_from_id_number(self, number) -> None:
        """A valid ID number gives the birth date and sex."""
        if not number or not idnumber.is_valid(number):
            return
        info = idnumber.parse(number)
        for key, value in (("birth_date", info.birth_date.isoformat()), ("sex", info.sex)):
            if key in self.inputs and self.record.get(key) != value:
                self.record[key] = value
                self.inputs[key].set_value(value)
                self.changed.emit(key)

    def apply_show_if(self) -> None:
        for key, inp in self.inputs.items():
            if inp.field.show_if is not None:
                form, row = self._rows[key]
                form.setRowVisible(row, inp.field.visible(self.record))

    def is_shown(self, key: str) -> bool:
        return self.inputs[key].field.visible(self.record)

    def show_findings(self, findings) -> None:
        """Messages beside the fields: findings of this record (Finding objects)."""
        by_field: dict[str, list] = {}
        for f in findings:
            by_field.setdefault(f.field, []).append(f)
        for key, label in self.messages.items():
            items = by_field.get(key, [])
            if not items:
                label.hide()
                label.clear()
                continue
            errors = [f for f in items if f.severity == "error"]
            label.setStyleSheet(ERROR_STYLE if errors else WARNING_STYLE)
            label.setText("；".join(f.message for f in items))
            label.show()

    def focus_field(self, key: str) -> None:
        if key in self.inputs:
            self.inputs[key].widget.setFocus(Qt.OtherFocusReason)
