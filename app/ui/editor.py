"""The household editor: one tab per section of the household, the member roster and the other
child records as tables with a form for the selected row, findings beside the fields and in a list
that jumps to the field, live income totals, the history side panel, draft autosave (sealed in the
database) and a question before unsaved edits are dropped."""

from __future__ import annotations

import copy
import time
import uuid

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QLineEdit,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QStyledItemDelegate,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core import income, values
from app.core.dictionary import default
from app.core.validation import ERROR, collection, has_errors, household_label, validate_household
from app.services import households
from app.store import StoreError
from app.ui import drafts
from app.ui.elided import ElidedLabel
from app.ui.forms import FieldInput, FormPanel, finding_line
from app.ui.history import HistoryPanel
from app.ui.translations import chinese_buttons

DRAFT_DELAY_MS = 2000  # a draft is written at most this long after an edit
VALIDATE_DELAY_MS = 120
TABLE_ROWS = 8  # a child table shows this many records without scrolling (when the window allows)
FORM_MIN_HEIGHT = 220  # the form below it keeps at least this much
KEY = "_key"  # the editor's own key of a child record: its id, or "new-..." before the first save
ROSTER_COLUMNS = {"member": ["name", "sex", "id_number", "relation", "birth_date"],
                  "income": ["year", "wage_income", "business_income", "property_income"]}


def scroll(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(widget)
    area.setFocusPolicy(Qt.NoFocus)  # Tab goes to the fields (the area scrolls to the one focused), not the frame
    return area


def coerced(kind: str, record: dict, d) -> dict:
    """Canonical values where the input is understood, the raw input otherwise (then reported)."""
    out = {}
    fields = d.kinds[kind].fields
    for key, value in record.items():
        if key == KEY or key not in fields:
            continue
        stored, message = values.coerce(fields[key], value, d)
        out[key] = value if message else stored
    return out


def unsaved_question(parent) -> QMessageBox:
    """保存 / 放弃 / 取消 before unsaved edits are dropped: the button texts are set here, so they
    match the message whatever Qt's translation says (Qt's own word for Discard is 丢弃)."""
    # which household: closing the main window asks once for each open editor with edits
    fields = getattr(parent, "household", None)
    who = household_label(fields) if isinstance(fields, dict) else "这一户"
    box = QMessageBox(QMessageBox.Question, "有未保存的修改", f"{who}有未保存的修改。要保存吗?\n选“放弃”将丢弃这些修改。",
                      QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, parent)
    box.setDefaultButton(QMessageBox.Save)
    box.setEscapeButton(QMessageBox.Cancel)
    chinese_buttons(box)
    return box


def ask_unsaved(parent) -> QMessageBox.StandardButton:
    box = unsaved_question(parent)
    box.exec()
    return box.standardButton(box.clickedButton()) if box.clickedButton() else QMessageBox.Cancel


class RemoveDialog(QDialog):
    """Asks the reason for removing a member (code list 成员增减)."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle("删除成员")
        d = default()
        form = QFormLayout(self)
        form.addRow(QLabel(f"删除{title}。删除会保留记录(标记为已删除),并写入修改记录。"))
        self.reason = QComboBox()
        for code, label in d.codes["member_change_reason"].items():
            if code.startswith("2"):  # 转出 reasons
                self.reason.addItem(label, code)
        for code, label in d.codes["member_change_reason"].items():
            if not code.startswith("2"):
                self.reason.addItem(label, code)
        form.addRow("删除原因", self.reason)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("删除")
        buttons.button(QDialogButtonBox.Cancel).setText("取消")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class CellDelegate(QStyledItemDelegate):
    """In-cell editing of a child table with the same widgets as the form (drop-down lists for
    codes, date editor, ...). The value goes into the record, not into the table item."""

    def __init__(self, panel: "ChildPanel"):
        super().__init__(panel.table)
        self.panel = panel
        self._input: FieldInput | None = None  # one cell is edited at a time

    def createEditor(self, parent, option, index):
        field = self.panel.d.kinds[self.panel.kind].fields[self.panel.columns[index.column()]]
        if field.readonly or field.type == "multi_code":
            return None
        inp = FieldInput(field, self.panel.d, lambda key: None)
        inp.widget.setParent(parent)
        self._input = inp
        if isinstance(inp.widget, QLineEdit):  # Enter commits the cell
            inp.widget.returnPressed.connect(lambda w=inp.widget: (self.commitData.emit(w), self.closeEditor.emit(w)))
        return inp.widget

    def _input_of(self, editor) -> FieldInput | None:
        inp = self._input
        return inp if inp is not None and inp.widget.objectName() == editor.objectName() else None

    def setEditorData(self, editor, index):
        inp = self._input_of(editor)
        if inp is not None:
            inp.set_value(self.panel.records[index.row()].get(self.panel.columns[index.column()]))

    def setModelData(self, editor, model, index):
        inp = self._input_of(editor)
        if inp is not None:
            self.panel.set_cell(index.row(), self.panel.columns[index.column()], inp.value())

    def commit_open(self) -> None:
        """The cell being edited (F2, double-click) goes into its record and its editor closes."""
        inp = self._input
        if inp is not None and self.panel.table.state() == QAbstractItemView.EditingState:
            self.commitData.emit(inp.widget)
            self.closeEditor.emit(inp.widget, QAbstractItemDelegate.NoHint)
        self._input = None


class ChildPanel(QWidget):
    """Child records of one kind: a table (add/remove) and the form of the selected record."""

    changed = Signal(str, str)  # record key, field key
    left = Signal(str, str)  # record key, field key: the field was left (FormPanel.left)
    selected = Signal(str)  # record key
    remove_requested = Signal(str)

    def __init__(self, kind: str, d, parent=None):
        super().__init__(parent)
        self.kind = kind
        self.d = d
        self.records: list[dict] = []
        k = d.kinds[kind]
        self.columns = ROSTER_COLUMNS.get(kind) or list(k.fields)[:4]
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.add_button = QPushButton(f"添加{k.label}(&A)")  # Alt+A on the tab shown
        self.add_button.setObjectName(f"add_{kind}")
        self.remove_button = QPushButton(f"删除{k.label}(&D)")
        self.remove_button.setObjectName(f"remove_{kind}")
        self.add_button.clicked.connect(self._add_clicked)
        self.remove_button.clicked.connect(self._remove_clicked)
        self._mnemonics(False)  # until the tab is shown
        bar.addWidget(self.add_button)
        bar.addWidget(self.remove_button)
        bar.addStretch(1)
        self.extra = QLabel()  # income totals
        self.extra.setObjectName(f"totals_{kind}")
        bar.addWidget(self.extra)
        layout.addLayout(bar)
        split = QSplitter(Qt.Vertical)
        self.table = QTableWidget(0, len(self.columns))
        self.table.setObjectName(f"table_{kind}")
        self.table.setHorizontalHeaderLabels([k.fields[c].label for c in self.columns])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
                                   | QAbstractItemView.SelectedClicked)
        self.table.setItemDelegate(CellDelegate(self))
        self.table.setTabKeyNavigation(False)  # Tab leaves the list for the form below (arrows move in it)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setDefaultSectionSize(120)
        if "id_number" in self.columns:
            self.table.setColumnWidth(self.columns.index("id_number"), 180)
        self.table.itemSelectionChanged.connect(self._select)
        split.addWidget(self.table)
        self.form = FormPanel(kind, d)
        self.form.changed.connect(self._form_changed)
        self.form.left.connect(lambda key: self.current() is not None and self.left.emit(self.current()[KEY], key))
        split.addWidget(scroll(self.form))
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([160, 500])
        self.split = split
        self._fitted = False
        layout.addWidget(split)

    def commit_cell(self) -> None:
        """Before a save or a close: a value typed in a cell of the table and not yet confirmed with
        Enter counts, as it shows (Ctrl+S and closing the window leave the cell's editor open)."""
        self.table.itemDelegate().commit_open()

    def set_records(self, records: list[dict]) -> None:
        self.records = records
        self.table.setRowCount(len(records))
        for i in range(len(records)):
            self._refresh_row(i)
        if records:
            self.table.selectRow(0)
        else:
            self.form.set_record(None)
        self._fitted = False
        self.fit_table()

    def table_height(self, rows: int) -> int:
        """Height of the table showing `rows` rows, header and frame included."""
        t = self.table
        row = t.rowHeight(0) if t.rowCount() else t.verticalHeader().defaultSectionSize()
        scrollbar = t.horizontalScrollBar().sizeHint().height() if t.horizontalScrollBar().isVisible() else 0
        return t.horizontalHeader().sizeHint().height() + rows * row + 2 * t.frameWidth() + scrollbar + 2

    def fit_table(self, grow_only: bool = False) -> None:
        """Give the table room for every record (up to TABLE_ROWS; at least 3 rows), the form the
        rest: a household of six shows all six members. Done when the tab is first shown and after
        the records change, so a splitter the user moved stays where it is in between."""
        total = sum(self.split.sizes())
        if not self.isVisible() or total <= 0:
            return
        want = self.table_height(max(3, min(len(self.records), TABLE_ROWS)))
        want = min(want, total - FORM_MIN_HEIGHT)
        now = self.split.sizes()[0]
        if (grow_only and now >= want) or (self._fitted and not grow_only):
            return
        self.split.setSizes([want, total - want])
        self._fitted = True

    def _mnemonics(self, on: bool) -> None:
        """Alt+A / Alt+D belong to the tab shown: every list has the same keys, and a key shared
        with hidden tabs would only move the focus (Qt's rule for an ambiguous shortcut)."""
        for button, key in ((self.add_button, "Alt+A"), (self.remove_button, "Alt+D")):
            button.setShortcut(QKeySequence(key) if on else QKeySequence())

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self._mnemonics(False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._mnemonics(True)
        if not self._fitted:
            QTimer.singleShot(0, self.fit_table)  # after the layout has given the splitter its height

    def _refresh_row(self, i: int) -> None:
        record = self.records[i]
        for c, key in enumerate(self.columns):
            self.table.setItem(i, c, QTableWidgetItem(self.d.display(self.kind, key, record.get(key)) or ""))

    def set_cell(self, row: int, key: str, value) -> None:
        """A value typed in the table: into the record, the form and the checks."""
        if not 0 <= row < len(self.records):
            return
        record = self.records[row]
        if record.get(key) == value:
            return
        record[key] = value
        if self.table.currentRow() == row:
            self.form.inputs[key].set_value(value)
            self.form._edited(key)  # fills birth date and sex from an ID number, show-if, changed
        else:
            self.changed.emit(record[KEY], key)
        self._refresh_row(row)

    def current(self) -> dict | None:
        row = self.table.currentRow()
        return self.records[row] if 0 <= row < len(self.records) else None

    def select_key(self, key: str) -> None:
        for i, r in enumerate(self.records):
            if r[KEY] == key:
                self.table.selectRow(i)
                return

    def _select(self) -> None:
        record = self.current()
        self.form.set_record(record)
        if record is not None:
            self.selected.emit(record[KEY])

    def add(self) -> dict:
        record = {KEY: f"new-{uuid.uuid4().hex[:10]}"}
        for f in self.d.kinds[self.kind].fields.values():
            if f.default is not None:
                record[f.key] = f.default
        self.records.append(record)
        self.table.setRowCount(len(self.records))
        self._refresh_row(len(self.records) - 1)
        self.table.selectRow(len(self.records) - 1)
        self.fit_table(grow_only=True)
        self.changed.emit(record[KEY], "")
        return record

    def _add_clicked(self) -> None:
        """添加 by mouse or keyboard: the new record, with the cursor in its first field to type."""
        self.add()
        first = next((key for key, inp in self.form.inputs.items() if inp.widget.isEnabled()), None)
        if first is not None:
            self.form.focus_field(first)

    def _remove_clicked(self) -> None:
        record = self.current()
        if record is not None:
            self.remove_requested.emit(record[KEY])

    def drop(self, key: str) -> None:
        i = next((i for i, r in enumerate(self.records) if r[KEY] == key), None)
        if i is None:
            return
        self.records.pop(i)
        self.table.removeRow(i)
        if not self.records:
            self.form.set_record(None)

    def _form_changed(self, field_key: str) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.records):
            self._refresh_row(row)
            self.changed.emit(self.records[row][KEY], field_key)


class HouseholdEditor(QMainWindow):
    """Edits one household (or a new one). Signals `saved(household_id)` after each save."""

    saved = Signal(str)
    closed = Signal(object)

    def __init__(self, store, household_id: str | None = None, village_code: str | None = None,
                 draft_key: str | None = None, parent=None):
        super().__init__(parent)
        self.setAttribute(Qt.WA_DeleteOnClose)
        self.store = store
        self.d = default()
        self.household_id = household_id
        self.village_code = village_code
        self.draft_key = draft_key or household_id or f"new-{uuid.uuid4().hex[:12]}"
        self.dirty = False
        self.findings = []
        # records whose errors wait until a field is left or edited (`touched`) or a save is tried: a new
        # household, a record just added. A loaded household shows its problems at once.
        self.fresh: set[str] = set()
        self.touched: set[tuple[str, str]] = set()  # (record id as the checks name it, field)
        self.held_back = 0  # errors not shown yet (counted on the 检查结果 line)
        self._known_villages = households.known_villages(store)  # as saving checks them
        self.resize(1240, 760)

        central = QWidget()
        outer = QVBoxLayout(central)
        self.banner = QLabel()
        self.banner.setObjectName("draft_banner")
        self.banner.setStyleSheet("background: #fff4c2; padding: 4px;")
        self.banner.setWordWrap(True)  # a long message wraps instead of widening the window
        self.banner.hide()
        outer.addWidget(self.banner)
        head = QHBoxLayout()
        self.title = ElidedLabel()
        self.title.setStyleSheet("font-size: 15pt; font-weight: bold;")
        # a long name or village is cut at the right and ends in “…” (whole in the tooltip) rather
        # than pushing the 修改记录 panel aside
        head.addWidget(self.title, 1)
        self.draft_state = QLabel()  # 已保存 / 草稿已自动保存: on the 检查结果 line, where there is room
        self.draft_state.setObjectName("draft_state")
        self.save_button = QPushButton("保存 (Ctrl+S)")
        self.save_button.setObjectName("save")
        self.save_button.clicked.connect(self.save)
        head.addWidget(self.save_button)
        self.print_button = QPushButton("打印本户 (Ctrl+P)")
        self.print_button.setObjectName("print_household")
        self.print_button.clicked.connect(self.print_card)
        head.addWidget(self.print_button)
        outer.addLayout(head)
        # the keys, on the screen: a cadre finds them without the docs
        self.keys_hint = QLabel("键盘:Alt+数字 切换页签 · Alt+A 添加 · Tab 下一项 · Ctrl+S 保存 · "
                                "Ctrl+P 打印本户 · Ctrl+W 关闭")
        self.keys_hint.setObjectName("keys_hint")
        self.keys_hint.setStyleSheet("color: #555;")
        outer.addWidget(self.keys_hint)

        split = QSplitter(Qt.Vertical)
        self.split = split
        self.tabs = QTabWidget()
        self.tabs.setObjectName("editor_tabs")
        self.household_forms: list[FormPanel] = []
        sections = self.d.kinds["household"].sections
        # a section nobody types into (防返贫监测: written by procedures only) comes after the lists, so the
        # Alt+digit of every tab typed into stays where it was
        shown_only = [s for s in sections if s.fields and all(f.readonly for f in s.fields)]
        for section in [s for s in sections if s not in shown_only]:
            self._add_section_tab(section)
        self.panels: dict[str, ChildPanel] = {}
        for kind in self.d.child_kinds("household"):
            panel = ChildPanel(kind.key, self.d)
            panel.changed.connect(self._child_changed)
            panel.left.connect(self._left)
            panel.selected.connect(lambda key, k=kind.key: self._show_history(k, key))
            panel.remove_requested.connect(lambda key, k=kind.key: self.remove_child(k, key))
            self.panels[kind.key] = panel
            self._add_tab(panel, kind.tab_label, kind.label)
        from app.ui.attachments import AttachmentsPanel  # photos and scans (docs/attachments.md)

        self.attachments = AttachmentsPanel(store)
        self.attachments.changed.connect(lambda: self.saved.emit(self.household_id))
        self._add_tab(self.attachments, "照片", "照片和扫描件(佐证材料)")
        for section in shown_only:
            self._add_section_tab(section)
        self.tabs.currentChanged.connect(self._tab_changed)
        split.addWidget(self.tabs)
        box = QWidget()
        bl = QVBoxLayout(box)
        bl.setContentsMargins(0, 0, 0, 0)
        self.findings_title = QLabel("检查结果")
        line = QHBoxLayout()
        line.addWidget(self.findings_title)
        line.addStretch(1)
        line.addWidget(self.draft_state)
        bl.addLayout(line)
        self.findings_list = QListWidget()
        self.findings_list.setObjectName("findings")
        self.findings_list.itemActivated.connect(self._jump)
        self.findings_list.itemClicked.connect(self._jump)
        bl.addWidget(self.findings_list)
        split.addWidget(box)
        split.setSizes([640, 110])
        self.findings_box = box
        outer.addWidget(split)
        self.setCentralWidget(central)

        self.history = HistoryPanel(store)
        dock = QDockWidget("修改记录", self)
        dock.setObjectName("history_dock")
        dock.setWidget(self.history)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetClosable)
        self.addDockWidget(Qt.RightDockWidgetArea, dock)
        self.resizeDocks([dock], [440], Qt.Horizontal)  # the form keeps most of a 1366-pixel screen
        self.history_dock = dock

        QShortcut(QKeySequence.Save, self, activated=self.save)
        QShortcut(QKeySequence("Ctrl+P"), self, activated=self.print_card)
        QShortcut(QKeySequence("Ctrl+W"), self, activated=self.close)
        self.validate_timer = QTimer(self, singleShot=True, interval=VALIDATE_DELAY_MS, timeout=self.validate)
        self.draft_timer = QTimer(self, singleShot=True, interval=DRAFT_DELAY_MS, timeout=self.write_draft)
        self.load()
        self._first_focus()

    def _first_focus(self) -> None:
        """Typing starts in the first required field still empty of the first tab (户主姓名 of a new
        household); a household with none opens on the tab bar (←/→ choose a tab, Tab goes into its
        fields), where a key typed by mistake changes nothing. Not on the 保存 button (Space saved)."""
        form = self.household_forms[0]
        inputs = [i for i in form.inputs.values() if i.widget.isEnabled() and not i.widget.isHidden()]
        empty = [i for i in inputs if i.field.required and self.household.get(i.field.key) in (None, "", [])]
        (empty[0].widget if empty else self.tabs.tabBar()).setFocus(Qt.OtherFocusReason)

    # ------------------------------------------------------------------ state
    def load(self) -> None:
        """Read the household (and restore a draft if one exists)."""
        draft = drafts.load(self.store, self.draft_key)
        if self.household_id:
            doc = households.document(self.store, self.household_id) or {}
            self.village_code = doc.get("village_code") or self.village_code
        else:
            doc = {}
        self.household = {k: v for k, v in doc.items() if k in self.d.kinds["household"].fields}
        self._stored_number = {"household_number": doc.get("household_number")} if doc else None
        self.children = {}
        for kind in self.d.child_kinds("household"):
            self.children[kind.key] = [{KEY: r["id"], **{k: v for k, v in r.items() if k != "id"}}
                                       for r in doc.get(collection(kind.key), [])]
        self.touched = set()
        self.fresh = set() if (self.household_id or draft) else {self._own_id()}
        if draft:
            self.household = draft.get("household", self.household)
            self.children = {k: draft.get("children", {}).get(k, v) for k, v in self.children.items()}
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(draft.get("saved_at", time.time())))
            self.banner.setText(f"已恢复 {when} 自动保存的未保存修改。请检查后保存;不需要时关闭窗口并选择“放弃”。")
            self.banner.show()
            self.dirty = True
        self._show_state()
        self.validate()
        self.attachments.set_household(self.household_id, self._attachable_records())

    def _attachable_records(self) -> list[tuple[str, str]]:
        """(id, words) of the household's saved child records, for the 照片 tab."""
        out = []
        for kind in self.d.child_kinds("household"):
            for r in self.children.get(kind.key, []):
                if not str(r[KEY]).startswith("new-"):
                    title = r.get(kind.title_field) if kind.title_field else None
                    shown = self.d.display(kind.key, kind.title_field, title) if title not in (None, "") else ""
                    out.append((r[KEY], f"{kind.label} {shown}".strip()))
        return out

    def _show_state(self) -> None:
        for form in self.household_forms:
            form.set_record(self.household)
        for kind, panel in self.panels.items():
            panel.set_records(self.children[kind])
        self._update_title()
        self._update_totals()
        self._show_history("household", self.household_id)

    def _update_title(self) -> None:
        name = self.household.get("head_name") or "新贫困户"
        number = self.household.get("household_number") or "未编号"
        village = self.store.division_name(self.village_code) if self.village_code else "未选村"
        self.title.setText(f"{name}  ·  户编号 {number}  ·  {village}")  # the tooltip: the whole title
        self.setWindowTitle(f"贫困户:{name}" + (" *" if self.dirty else ""))

    def state(self) -> dict:
        return {"household_id": self.household_id, "village_code": self.village_code,
                "household": self.household, "children": self.children}

    def document(self, for_check: bool = False) -> dict:
        """The household document of the editor's current state."""
        doc = {"id": self.household_id or ("new" if for_check else None), "village_code": self.village_code}
        doc.update(coerced("household", self.household, self.d) if for_check else
                   {k: v for k, v in self.household.items()})
        for kind, records in self.children.items():
            items = []
            for r in records:
                item = coerced(kind, r, self.d) if for_check else {k: v for k, v in r.items() if k != KEY}
                rid = r[KEY]
                if for_check:
                    item["id"] = rid
                elif not rid.startswith("new-"):
                    item["id"] = rid
                items.append(item)
            doc[collection(kind)] = items
        if not for_check and doc["id"] is None:
            doc.pop("id")
        return doc

    # ------------------------------------------------------------------ edits
    def _mark_dirty(self) -> None:
        if not self.dirty:
            self.dirty = True
            self._update_title()
        if not self.draft_timer.isActive():
            self.draft_timer.start()
        self.validate_timer.start()

    def _own_id(self) -> str:
        """The household's id as the checks name it (`document(for_check=True)`)."""
        return self.household_id or "new"

    def _left(self, record_id: str, key: str) -> None:
        """A field left: its problems show from now on (at once, not at the next edit)."""
        if record_id in self.fresh and (record_id, key) not in self.touched:
            self.touched.add((record_id, key))
            self.validate()

    def _shown(self, f) -> bool:
        """Whether a finding shows: a warning always; an error of a fresh record once its field was
        left or edited (a new household opened with six red 必填项 errors before anything was typed)."""
        return f.severity != ERROR or f.record_id not in self.fresh or (f.record_id, f.field) in self.touched

    def _household_changed(self, key: str) -> None:
        self.touched.add((self._own_id(), key))
        for form in self.household_forms:  # apply show-if across tabs
            form.apply_show_if()
        if key in ("head_name", "household_number"):
            self._update_title()
        self._mark_dirty()

    def _child_changed(self, record_key: str, field_key: str) -> None:
        if field_key:
            self.touched.add((record_key, field_key))
        elif record_key.startswith("new-"):  # just added: its empty fields wait to be typed
            self.fresh.add(record_key)
        self._update_totals()
        self._mark_dirty()

    def _update_totals(self) -> None:
        panel = self.panels.get("income")
        if panel is None:
            return
        size = len(self.children.get("member", []))
        parts = []
        for r in self.children["income"]:
            c = coerced("income", r, self.d)
            net = income.net_income(c)
            per = income.per_capita(c, size) if size else None
            parts.append(f"{c.get('year') or '?'} 年:家庭纯收入 {net:,.2f} 元,人均 "
                         + (f"{per:,.2f} 元" if per is not None else "—(无成员)"))
        panel.extra.setText(";".join(parts) or "尚无收入记录")

    # ------------------------------------------------------------------ checks
    def validate(self) -> list:
        doc = self.document(for_check=True)
        self.findings = validate_household(doc, self.d, self._known_villages)
        if self.store.unlocked:  # what only the database can tell: an ID number or 户编号 another household holds
            self.findings += households.duplicate_id_findings(self.store, doc)
            self.findings += households.duplicate_number_findings(self.store, doc, getattr(self, "_stored_number", None))
        own = doc["id"]
        shown = [f for f in self.findings if self._shown(f)]
        for form in self.household_forms:
            form.show_findings([f for f in shown if f.record_id == own and f.kind == "household"])
        for kind, panel in self.panels.items():
            cur = panel.current()
            panel.form.show_findings([f for f in shown if cur is not None and f.record_id == cur[KEY]])
        self.findings_list.clear()
        errors = sum(f.severity == ERROR for f in shown)
        held = [f for f in self.findings if not self._shown(f)]
        self.held_back = len(held)
        for f in shown:
            item = QListWidgetItem(finding_line(self.d, f))
            item.setData(Qt.UserRole, (f.kind, f.record_id, f.field))
            if f.severity == ERROR:
                item.setForeground(Qt.red)
            self.findings_list.addItem(item)
        waiting = ""
        if held:  # said calmly: what is left to fill in, checked when a field is left or on 保存
            waiting = (f";带 * 的必填项还有 {len(held)} 项未填" if all(f.rule == "required" for f in held)
                       else f";还有 {len(held)} 项待填写或核对") + "(离开该项或保存时检查)"
        self.findings_title.setText(f"检查结果:{errors} 个错误,{len(shown) - errors} 个提示" + waiting
                                    + (",双击可跳到该项" if shown else "。"))
        self._fit_findings(shown)
        return self.findings

    def _fit_findings(self, shown: list) -> None:
        """An empty result list is one line, not a box taking the form's room (the member form then
        scrolled in a small pane); findings get their box back."""
        empty = not shown
        if empty == self.findings_list.isHidden():
            return
        self.findings_list.setVisible(not empty)
        if empty:
            self.findings_box.setMaximumHeight(self.findings_title.sizeHint().height() + 2)
        else:
            self.findings_box.setMaximumHeight(16777215)
            total = sum(self.split.sizes())
            if total > 0:
                self.split.setSizes([max(total - 110, 200), 110])

    def _jump(self, item: QListWidgetItem) -> None:
        kind, record_id, field = item.data(Qt.UserRole)
        self.jump_to(kind, record_id, field)

    def jump_to(self, kind: str, record_id, field: str) -> None:
        child = next((p for k, p in self.panels.items() if field in (k, collection(k))), None)
        if kind == "household" and child is not None:  # a rule about a whole list: members, helpers
            self.tabs.setCurrentWidget(child)
            return
        if kind == "household":
            for form in self.household_forms:
                if field in form.inputs:
                    self.tabs.setCurrentIndex(next(i for i in range(self.tabs.count())
                                                   if self.tabs.widget(i).isAncestorOf(form)))
                    form.focus_field(field)
            return
        panel = self.panels.get(kind)
        if panel is None:
            return
        self.tabs.setCurrentWidget(panel)
        panel.select_key(record_id)
        panel.form.focus_field(field)

    def _add_section_tab(self, section) -> None:
        form = FormPanel("household", self.d, sections=[section])
        form.changed.connect(self._household_changed)
        form.left.connect(lambda key: self._left(self._own_id(), key))
        self.household_forms.append(form)
        self._add_tab(scroll(form), section.tab_label, section.label)

    def _add_tab(self, widget, short: str, full: str) -> None:
        """A tab with its short name (forms/ `tab_label`: all eleven fit a 1366-pixel screen) and Alt+1 … Alt+0
        for the first ten, the digit in front (3.成员); the full name in its tooltip."""
        number = self.tabs.count() + 1
        # the key's digit in front, as a numbered tab (1.基本情况 … 0.照片): behind the name in brackets it read
        # as a count (成员(3) for six members, 照片(0) beside the photos)
        index = self.tabs.addTab(widget, f"&{number % 10}.{short}" if number <= 10 else short)
        self.tabs.setTabToolTip(index, full if number > 10 else f"{full}(Alt+{number % 10})")

    def _tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        for kind, panel in self.panels.items():
            if panel is widget:
                cur = panel.current()
                self._show_history(kind, cur[KEY] if cur else None)
                self.validate()
                return
        self._show_history("household", self.household_id)

    def _show_history(self, kind: str, key) -> None:
        if key and not str(key).startswith("new-"):
            record = self.children.get(kind, [])
            title = self.d.kinds[kind].label
            for r in record:
                if r[KEY] == key:
                    title = self.d.kinds[kind].label + "“" + str(r.get(self.d.kinds[kind].title_field) or "") + "”"
            if kind == "household":
                title = "户主“" + str(self.household.get("head_name") or "") + "”一户"
            self.history.show_record(key, title)
        else:
            self.history.show_record(None, "尚未保存")
        if kind != "household":
            self.validate_timer.start()

    # ------------------------------------------------------------------ drafts, removal, save
    def write_draft(self) -> None:
        if self.dirty and self.store.unlocked:
            drafts.save(self.store, self.draft_key, copy.deepcopy(self.state()))
            self.draft_state.setText("草稿已自动保存 " + time.strftime("%H:%M:%S"))

    def remove_child(self, kind: str, key: str, reason: str | None = None) -> bool:
        """Remove a child record. A saved one becomes a tombstone at once, with a reason."""
        panel = self.panels[kind]
        record = next((r for r in self.children[kind] if r[KEY] == key), None)
        if record is None:
            return False
        if key.startswith("new-"):
            panel.drop(key)
            self._mark_dirty()
            return True
        if reason is None:
            title = self.d.kinds[kind].label + "“" + str(record.get(self.d.kinds[kind].title_field) or "") + "”"
            dialog = RemoveDialog(title, self)
            if dialog.exec() != QDialog.Accepted:
                return False
            reason = dialog.reason.currentData()
        try:
            households.remove_child(self.store, key, reason)
        except (households.InputError, StoreError) as exc:
            QMessageBox.warning(self, "无法删除", str(exc))
            return False
        panel.drop(key)
        self._update_totals()
        self.validate()
        self.saved.emit(self.household_id)
        return True

    def save(self) -> bool:
        """Save through the change log. Errors do not block the save: they stay listed (all of them
        from now on, also those of fields not yet reached)."""
        self.commit_cells()
        if self.fresh:
            self.fresh.clear()
            self.validate()
        if not self.village_code:
            QMessageBox.warning(self, "无法保存", "请先在主窗口左侧选择这一户所在的村,再新建贫困户。")
            return False
        if self.household_id is None and not any(v not in (None, "", []) for v in self.household.values()) \
                and not any(self.children.values()):
            QMessageBox.information(self, "未保存", "这一户还什么都没有填写,未保存。请先填写户主姓名等内容。")
            return False
        try:
            result = households.save(self.store, self.document(), allow_errors=True)
        except (households.InputError, households.ValidationFailed, StoreError) as exc:
            QMessageBox.warning(self, "无法保存", f"未保存:{exc}")
            return False
        drafts.delete(self.store, self.draft_key)
        self.household_id = result.household_id
        self.draft_key = result.household_id
        self.dirty = False
        self.banner.hide()
        self.draft_timer.stop()
        current = self.tabs.currentIndex()
        self.load()
        self.tabs.setCurrentIndex(current)
        errors = sum(f.severity == ERROR for f in self.findings)
        self.draft_state.setText(f"已保存 {time.strftime('%H:%M:%S')}" + (f",仍有 {errors} 个错误待改正" if errors else ""))
        self.saved.emit(self.household_id)
        for f in result.findings:  # the laptop's 户编号 ran out: kept as a draft, say why
            if f.rule == "numbers_exhausted":
                QMessageBox.information(self, "暂无户编号", f.message)
        return True

    def commit_cells(self) -> None:
        for panel in self.panels.values():
            panel.commit_cell()

    def has_errors(self) -> bool:
        return has_errors(self.findings)

    def discard(self) -> None:
        drafts.delete(self.store, self.draft_key)
        self.dirty = False

    def print_card(self):
        """打印本户 (Ctrl+P): the print dialog for this household's card, saving first (the card
        prints what is stored). Returns the dialog, or None when the household could not be saved."""
        if self.dirty or not self.household_id:
            if not self.save() or not self.household_id:
                return None
        from app.ui.print_dialog import PrintDialog  # noqa: PLC0415 - only when asked for

        dialog = PrintDialog(self.store, self, household_id=self.household_id)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.show()
        self.print_dialog = dialog
        return dialog

    def closeEvent(self, event) -> None:
        if QApplication.closingDown():  # the process is ending: the draft in the database keeps the edits
            super().closeEvent(event)
            return
        if self.store.unlocked:
            self.commit_cells()
        if self.dirty and self.store.unlocked:
            answer = ask_unsaved(self)
            if answer == QMessageBox.Cancel:
                event.ignore()
                return
            if answer == QMessageBox.Save and not self.save():
                event.ignore()
                return
            if answer == QMessageBox.Discard:
                self.discard()
        self.draft_timer.stop()
        self.validate_timer.stop()
        self.closed.emit(self)
        super().closeEvent(event)
