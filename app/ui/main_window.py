"""The work team's main window: township/village tree, household list with instant search and
filters, status bar (operator, unsynced changes, last sync), menus to the other windows, idle
auto-lock, draft recovery, bulk validation off the GUI thread."""

from __future__ import annotations

import importlib
import threading
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QFileDialog,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QStackedWidget,
    QTableView,
    QToolBar,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.dictionary import default
from app.core.validation import ERROR, household_label
from app.services import households
from app.sync.status import sync_status
from app.ui import drafts, preferences, workers
from app.ui.editor import HouseholdEditor
from app.ui.forms import finding_line
from app.ui.model import COLUMNS, MATCH_COLUMN, HouseholdModel, Part, load_parts, rows_of
from app.ui.start import UnlockDialog

# Other windows, imported when their menu item is chosen: (menu, label, module, class, options).
# Options "household_id" and "village_code" are passed to the window; a role ("village", "township",
# "county") among them shows the item only on databases of that role.
EXTERNAL = [
    ("打印", "打印卡、册、簿和公示…", "app.ui.print_dialog", "PrintDialog", ("household_id", "village_code")),
    ("同步", "同步(U 盘或立即同步)…", "app.ui.sync_dialog", "SyncDialog", ("village", "township")),  # a laptop's
    ("同步", "县级导入…", "app.ui.county_import", "CountyImportScreen", ("county",)),
    ("导入导出", "表格导入导出…", "app.ui.table_dialog", "TableDialog", ()),
    ("程序与工作清单", "识别与退出、工作清单…", "app.ui.proposals_panel", "ProposalsWindow", ()),
    ("参考数据", "行政区划、贫困线和监测标准…", "app.ui.reference_dialog", "ReferenceDialog", ()),
]


ROLES = ("village", "township", "county")
RESIZE_PRECISION = 200  # rows measured when the list's columns are fitted to their contents


def shown_for(options, role: str) -> bool:
    """Whether a window of EXTERNAL is offered on a database of `role`."""
    roles = [o for o in options if o in ROLES]
    return not roles or role in roles


class IdleWatch(QObject):
    """Restarts the idle timer on any keyboard or mouse input in the application."""

    def __init__(self, timer: QTimer):
        super().__init__()
        self.timer = timer

    def eventFilter(self, obj, event):
        if event.type() in (QEvent.KeyPress, QEvent.MouseButtonPress, QEvent.Wheel) and self.timer.interval() > 0:
            self.timer.start()
        return False


class SearchKeys(QObject):
    """Enter or Down in the search box goes to the list, its first row chosen: find, then open
    with Enter, without the mouse."""

    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.window = window

    def eventFilter(self, obj, event):
        if event.type() == QEvent.KeyPress and event.key() in (Qt.Key_Return, Qt.Key_Enter, Qt.Key_Down):
            self.window.focus_list()
            return True
        return False


class DraftsDialog(QDialog):
    """Unsaved edits found in the database at unlock: reopen or discard each."""

    recover = Signal(str, dict)

    def __init__(self, store, items: list[tuple[str, dict]], parent=None):
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("有未保存的修改")
        self.setMinimumWidth(480)
        layout = QVBoxLayout(self)
        self.intro = QLabel("上次关闭前有以下未保存的修改(已加密保存在数据库中)。选择一项后“恢复”继续编辑,或“丢弃”。")
        self.intro.setWordWrap(True)  # whole at any width (it was cut after “或”)
        layout.addWidget(self.intro)
        self.list = QListWidget()
        self.list.setObjectName("drafts")
        for key, state in items:
            h = state.get("household", {})
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.get("saved_at", 0)))
            text = f"{household_label(h)} · 自动保存于 {when}"
            item = QListWidgetItem(text)
            item.setData(Qt.UserRole, (key, state))
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        layout.addWidget(self.list)
        buttons = QDialogButtonBox()
        self.recover_button = buttons.addButton("恢复", QDialogButtonBox.ActionRole)
        self.recover_button.setObjectName("recover")
        self.discard_button = buttons.addButton("丢弃", QDialogButtonBox.DestructiveRole)
        close = buttons.addButton("稍后处理", QDialogButtonBox.RejectRole)
        self.recover_button.clicked.connect(self._recover)
        self.discard_button.clicked.connect(self._discard)
        close.clicked.connect(self.reject)
        layout.addWidget(buttons)

    def _take(self):
        item = self.list.currentItem()
        if item is None:
            return None
        self.list.takeItem(self.list.row(item))
        if self.list.count() == 0:
            self.accept()
        return item.data(Qt.UserRole)

    def _recover(self) -> None:
        taken = self._take()
        if taken:
            self.recover.emit(*taken)

    def _discard(self) -> None:
        taken = self._take()
        if taken:
            drafts.delete(self.store, taken[0])


class MainWindow(QMainWindow):
    loaded_signal = Signal()

    def __init__(self, store, parent=None, *, unclean: bool = False, daily_backup: bool = False):
        super().__init__(parent)
        self.store = store
        self._check_integrity = unclean  # the last session did not close cleanly
        self._daily_backup = daily_backup
        self.d = default()
        self.loaded = False  # every household read and the store free for other work
        self.shown = False  # the list shows the households read so far and takes input
        self.locked = False
        self._village_counts: dict[str, int] = {}  # households per village code, for the tree
        self._tree_items: dict[str, QTreeWidgetItem] = {}  # division code ("" the root) -> its item
        self._tree_names: dict[str, str] = {}
        self._tree_towns: dict[str, str] = {}  # village code -> its township's code
        self._open_when_loaded: str | None = None
        self._all_read = self._backing_up = False
        self.editors: list[HouseholdEditor] = []
        self.external: dict[str, QWidget] = {}
        self.unlock_dialog: UnlockDialog | None = None
        self.drafts_dialog: DraftsDialog | None = None
        self.setWindowTitle(f"建档 · {store.site_name} · {store.path.name}")
        self.list_state = preferences.load().main_list  # how the list was left last time
        size = self.list_state.get("size")
        if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 400 <= v <= 10000 for v in size):
            self.resize(*size)
        else:
            self.resize(1200, 760)

        # --- list page
        page = QWidget()
        outer = QVBoxLayout(page)
        bar = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setObjectName("search")
        self.search.setPlaceholderText("搜索:户主或成员的姓名、身份证号码、户编号或电话的一部分(Ctrl+F;Enter 到列表,再按 Enter 打开)")
        self._search_keys = SearchKeys(self)
        self.search.installEventFilter(self._search_keys)
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._search_changed)
        bar.addWidget(self.search, 3)
        self.status_filter = QComboBox()
        self.status_filter.setObjectName("status_filter")
        self.status_filter.addItem("全部状态", "")
        for code, label in self.d.codes[self.d.kinds["household"].fields["status"].codes].items():
            self.status_filter.addItem(label, code)
        self.status_filter.currentIndexChanged.connect(lambda *_: self.model.set_filters(status=self.status_filter.currentData()))
        bar.addWidget(self.status_filter, 1)
        self.cause_filter = QComboBox()
        self.cause_filter.setObjectName("cause_filter")
        self.cause_filter.addItem("全部致贫原因", "")
        for code, label in self.d.codes[self.d.kinds["household"].fields["main_cause"].codes].items():
            self.cause_filter.addItem(label, code)
        self.cause_filter.currentIndexChanged.connect(lambda *_: self.model.set_filters(cause=self.cause_filter.currentData()))
        bar.addWidget(self.cause_filter, 1)
        self.count_label = QLabel()
        bar.addWidget(self.count_label)
        outer.addLayout(bar)

        split = QSplitter(Qt.Horizontal)
        self.tree = QTreeWidget()
        self.tree.setObjectName("divisions")
        self.tree.setHeaderLabels(["乡镇 / 村"])
        self.tree.itemSelectionChanged.connect(self._tree_changed)
        split.addWidget(self.tree)
        self.model = HouseholdModel(store, self)
        for signal in (self.model.modelReset, self.model.rowsInserted, self.model.layoutChanged):
            signal.connect(self._update_count)
        self.table = QTableView()
        self.table.setObjectName("households")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setTabKeyNavigation(False)  # Tab leaves the list (↑/↓ choose a household; cells are not edited here)
        # by 户编号 until the user sorts otherwise: the list is in the order its header shows
        self.table.horizontalHeader().setSortIndicator(0, Qt.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        # no column stretches: 完整度 once took 40% of the list to show 100%
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.setColumnHidden(MATCH_COLUMN, True)  # shown while searching: why each household matched
        # fit the columns to the first rows only: measuring all 10,000 took half a second on the GUI thread
        self.table.horizontalHeader().setResizeContentsPrecision(RESIZE_PRECISION)
        self.table.doubleClicked.connect(lambda index: self.open_household(self.model.row_at(index.row()).id))
        self.table.activated.connect(lambda index: self.open_household(self.model.row_at(index.row()).id))
        split.addWidget(self.table)
        split.setSizes([260, 940])
        outer.addWidget(split, 1)

        # --- locked page
        locked = QWidget()
        lv = QVBoxLayout(locked)
        self.locked_label = QLabel("数据库已锁定。请输入密码解锁。")
        self.locked_label.setAlignment(Qt.AlignCenter)
        self.locked_label.setStyleSheet("font-size: 16pt;")
        lv.addWidget(self.locked_label)

        self.stack = QStackedWidget()
        self.stack.addWidget(page)
        self.stack.addWidget(locked)
        self.setCentralWidget(self.stack)

        # --- status bar
        self.operator_label = QLabel()
        self.unsynced_label = QLabel()
        self.sync_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setMaximumWidth(240)
        self.progress.hide()
        for w in (self.operator_label, self.unsynced_label, self.sync_label):
            self.statusBar().addPermanentWidget(w)
        self.statusBar().addWidget(self.progress)

        self._menus()
        self._toolbar()
        prefs = preferences.load()
        self.idle_timer = QTimer(self, singleShot=True, timeout=self.lock)
        self.set_auto_lock_minutes(prefs.auto_lock_minutes)
        self._idle_watch = IdleWatch(self.idle_timer)
        QApplication.instance().installEventFilter(self._idle_watch)
        workers.listen(store, self._store_changed)  # delivered on the GUI thread, also after a worker's commit
        self.reload()

    # ------------------------------------------------------------------ menus
    def _menus(self) -> None:
        m = self.menuBar().addMenu("文件")
        self.new_action = m.addAction("新建贫困户", self.new_household)
        self.new_action.setShortcut("Ctrl+N")
        self.check_action = m.addAction("检查全部贫困户", self.validate_all)
        self.backup_action = m.addAction("备份到U盘…", self.backup_to)
        m.addSeparator()
        m.addAction("自动锁定时间…", self._ask_auto_lock)
        m.addAction("立即锁定", lambda: self.lock(manual=True)).setShortcut("Ctrl+L")
        m.addSeparator()
        m.addAction("退出", self.close)
        find = self.menuBar().addMenu("查找")
        self.search_action = find.addAction("搜索 (Ctrl+F)", lambda: (self.search.setFocus(), self.search.selectAll()))
        self.search_action.setShortcut("Ctrl+F")
        menus = {}
        for menu_name, label, module, cls, options in EXTERNAL:
            if not shown_for(options, self.store.role):
                continue
            menu = menus.get(menu_name) or menus.setdefault(menu_name, self.menuBar().addMenu(menu_name))
            menu.addAction(label, lambda module=module, cls=cls, options=options: self.open_external(module, cls, options))

    def _toolbar(self) -> None:
        """The main actions as visible buttons with their keys (a new user looks for 新建 on the
        screen, not in a menu)."""
        bar = QToolBar("常用")
        bar.setObjectName("main_toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        self.addToolBar(Qt.TopToolBarArea, bar)
        self.toolbar = bar
        self.open_action = bar.addAction("打开 (Enter)", self.open_current)
        self.open_action.setObjectName("open_household")
        self.new_action.setText("新建贫困户 (Ctrl+N)")
        bar.insertAction(self.open_action, self.new_action)
        bar.addAction(self.search_action)
        bar.addSeparator()
        # U 盘同步 at the county is its own import and export (县级导入): the laptop's window would say that
        # this database is not enrolled at a county
        usb = (("app.ui.county_import", "CountyImportScreen") if self.store.role == "county"
               else ("app.ui.sync_dialog", "SyncDialog"))
        for label, module, cls, options, key in (
                ("打印 (Ctrl+P)", "app.ui.print_dialog", "PrintDialog", ("household_id", "village_code"), "Ctrl+P"),
                ("U 盘同步 (Ctrl+U)", *usb, (), "Ctrl+U"),
                ("识别与退出、工作清单", "app.ui.proposals_panel", "ProposalsWindow", (), None),
                ("表格导入导出", "app.ui.table_dialog", "TableDialog", (), None)):
            action = bar.addAction(label, lambda module=module, cls=cls, options=options: self.open_external(module, cls, options))
            action.setObjectName(f"toolbar_{cls}")
            if key:
                action.setShortcut(key)
        bar.addSeparator()
        bar.addAction(self.check_action)
        bar.addAction(self.backup_action)

    def focus_list(self) -> None:
        """The list gets the keyboard, with its first row chosen when none is."""
        self.table.setFocus()
        if self.model.rowCount() and not self.table.selectionModel().selectedRows():
            self.table.selectRow(0)
            self.table.setCurrentIndex(self.model.index(0, 0))

    def open_current(self) -> None:
        hid = self.current_household_id()
        if hid:
            self.open_household(hid)
        else:
            self.statusBar().showMessage("请先在列表中选中一户(方向键选择,Enter 打开)", 5000)

    def open_external(self, module: str, cls: str, options=()) -> QWidget | None:
        """Import another engineer's window only when asked for, and show it."""
        try:
            factory = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            QMessageBox.warning(self, "功能不可用", f"这个功能在本版本中不可用({exc})。")
            return None
        kw = {}
        if "household_id" in options:
            kw["household_id"] = self.current_household_id()
        if "village_code" in options:  # else the township (or county) chosen in the tree: its book and notices
            items = self.tree.selectedItems()
            kw["village_code"] = self.current_village() or (items[0].data(0, Qt.UserRole) if items else None) or None
        window = factory(self.store, self, **kw)
        if not window.isWindow():  # a QWidget with a parent would be drawn inside the main window
            window.setWindowFlag(Qt.Window, True)
        window.setAttribute(Qt.WA_DeleteOnClose)
        self.external[cls] = window
        window.destroyed.connect(self._external_closed)
        window.show()
        return window

    def _change_mark(self) -> int:
        return self.store.change_mark()

    def _external_closed(self, *_args) -> None:
        """Sync and county imports write merged changes in bulk without per-record notifications:
        when a window closes after such writes, read the list again."""
        if not self.isVisible() or not self.store.unlocked or self.locked:
            return  # the main window itself is closing (its child windows go with it)
        if self.loaded and self._change_mark() > self._seen_mark:
            self.reload()
        else:
            if self.loaded and self._divisions_mark() != self._seen_divisions:
                self._fill_tree()  # villages added or renamed (参考数据 window, or a county bundle with no records)
            self._update_status()

    def _divisions_mark(self) -> list:
        return self.store.divisions()

    # ------------------------------------------------------------------ loading
    def _set_loading(self, loading: bool) -> None:
        """While the list is read, what needs the store (menus, opening, printing, ...) waits; the
        list, its search box and filters work on the households read so far."""
        self.menuBar().setEnabled(not loading)
        for action in self.toolbar.actions():
            if action is not self.search_action:
                action.setEnabled(not loading)

    def reload(self) -> None:
        """Decrypt every household into list rows on a worker thread; the list shows the first
        part at once and takes the rest as it comes (`load_parts`)."""
        self.loaded = self.shown = False
        self._set_loading(True)
        self.stack.setEnabled(False)
        self.model.clear()
        self._village_counts = {}
        self.store.start_search_index()  # filled part by part on this thread (`_part`)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.statusBar().showMessage("正在读取贫困户…")
        self._load_started = time.perf_counter()
        check, backup_due = self._check_integrity, self._daily_backup
        self._check_integrity = self._daily_backup = False
        self._backing_up = backup_due
        self._all_read = False
        first_shown = self._first_shown = threading.Event()

        def work(progress, part):
            outcome = {}
            if check:
                from app.services import integrity

                outcome["integrity"] = integrity.check(self.store, progress)
            divisions = self.store.divisions()
            parts = 0

            def hand_over(p: Part) -> None:
                nonlocal parts
                parts += 1
                if parts == 1:
                    p.divisions = divisions
                part(p)
                if parts == 1:  # let the first screenful be drawn before decrypting on
                    first_shown.wait(0.5)

            outcome["households"] = load_parts(self.store, hand_over, progress)
            if backup_due:  # once per unlock of the program: a file copy, off the GUI thread
                from app.services import backup

                try:
                    outcome["backup"] = backup.daily_backup(self.store)
                except OSError as exc:
                    outcome["backup_error"] = str(exc)
            return outcome

        workers.start(work, self._loaded, self._load_failed, self._progress, self._part)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _part(self, part: Part) -> None:
        """A part of the households read: into the search index, the list and the tree counts."""
        if self.locked:
            return
        self.store.add_search_entries(part.entries)
        first = not self.shown
        if first:
            self._apply_sort()  # before the rows come in: they arrive in place
        self.model.add_rows(part.rows)
        touched = set()
        for r in part.rows:
            self._village_counts[r.village_code] = self._village_counts.get(r.village_code, 0) + 1
            touched.add(r.village_code)
        if first:
            self._fill_tree(part.divisions)
            self._fit_columns()
            self.stack.setEnabled(True)
            self.shown = True
            QTimer.singleShot(0, self._first_shown.set)  # after this part is painted
        else:
            self._relabel_tree(touched)
        self._all_read = part.done >= part.total > 0 or (part.total == 0 and not part.rows)
        self._update_count()
        if part.total:
            self._progress(part.done, part.total)
        if self._all_read and self._backing_up:
            self.statusBar().showMessage(f"已读取 {part.done} 户,正在做今天的自动备份…")
        else:
            then = ",读完后打开所选的一户" if self._open_when_loaded else ""
            of = f" / {part.total}" if part.total else ""
            self.statusBar().showMessage(f"正在读取贫困户…(已读 {part.done}{of} 户{then})")

    def _loaded(self, outcome) -> None:
        self._first_shown.set()
        if self.locked:
            return
        report = outcome.get("integrity")
        if report is not None:
            box = QMessageBox.information if report.ok else QMessageBox.warning
            box(self, "上次未正常关闭", "上次程序没有正常关闭,已检查数据库:\n" + report.summary()
                + "".join("\n· " + p.line() for p in report.problems[:10]))
        if outcome.get("backup_error"):
            QMessageBox.warning(self, "自动备份失败", f"今天的自动备份没有完成:{outcome['backup_error']}\n请检查备份文件夹(设置)。")
        damaged = self.store.damaged_summary()
        if damaged:
            QMessageBox.warning(self, "部分记录无法读取", damaged + "。其余贫困户照常显示。")
        self._seen_mark = self._change_mark()
        self.progress.hide()
        self.stack.setEnabled(True)
        self._set_loading(False)
        self.statusBar().showMessage(
            f"已读取 {len(self.model.rows)} 户({time.perf_counter() - self._load_started:.1f} 秒)", 5000)
        self._update_status()
        self.loaded = True
        self._update_count()
        self.loaded_signal.emit()
        self.offer_drafts()
        if self._open_when_loaded:
            household_id, self._open_when_loaded = self._open_when_loaded, None
            if household_id in self.model._by_id:
                self.open_household(household_id)

    def _load_failed(self, message: str) -> None:
        self._first_shown.set()
        self.store.forget_search_index()  # unfinished: built again when a search needs it
        self.progress.hide()
        self.stack.setEnabled(True)
        self._set_loading(False)
        QMessageBox.critical(self, "读取失败", f"读取数据库时出错:{message}")

    def _fill_tree(self, divisions: list[dict] | None = None) -> None:
        """The township/village tree with each village's households (`_village_counts`); the
        divisions as the worker read them while loading, else from the store."""
        if divisions is None:
            divisions = self.store.divisions()
        self._seen_divisions = divisions
        self.tree.blockSignals(True)
        self.tree.clear()
        root = QTreeWidgetItem(["全部"])
        root.setData(0, Qt.UserRole, "")
        self.tree.addTopLevelItem(root)
        self._tree_items, self._tree_names, self._tree_towns = {"": root}, {}, {}
        towns = {}
        for t in divisions:
            if t["level"] == "township":
                item = QTreeWidgetItem([t["name"]])
                item.setData(0, Qt.UserRole, t["code"])
                root.addChild(item)
                towns[t["code"]] = item
                self._tree_items[t["code"]], self._tree_names[t["code"]] = item, t["name"]
        for v in divisions:
            if v["level"] == "village":
                item = QTreeWidgetItem([v["name"]])
                item.setData(0, Qt.UserRole, v["code"])
                (towns.get(v["parent"]) or root).addChild(item)
                self._tree_items[v["code"]], self._tree_names[v["code"]] = item, v["name"]
                self._tree_towns[v["code"]] = v["parent"] or ""
        self._relabel_tree(None)
        root.setExpanded(True)
        for item in towns.values():
            item.setExpanded(True)
        want = self.model.village_prefix or self.list_state.get("village") or ""
        chosen = self._tree_items.get(want, root)
        self.tree.setCurrentItem(chosen)
        chosen.setSelected(True)
        self.tree.blockSignals(False)
        self.model.set_filters(village_prefix=chosen.data(0, Qt.UserRole) or "")

    def _relabel_tree(self, villages: set[str] | None) -> None:
        """Put the household counts on the tree items of these villages, their townships and the
        root (None: every item)."""
        counts = self._village_counts
        if villages is None:
            codes = set(self._tree_items)
        else:
            codes = {""} | {c for v in villages if v for c in (v, self._tree_towns.get(v), v[:9]) if c}
        for code in codes:
            item = self._tree_items.get(code)
            if item is None:
                continue
            if not code:
                item.setText(0, f"全部({sum(counts.values())} 户)")
            elif code in self._tree_towns:
                item.setText(0, f"{self._tree_names[code]}({counts.get(code, 0)})")
            else:  # a township: the households of the villages under its code
                total = sum(n for vc, n in counts.items() if vc.startswith(code))
                item.setText(0, f"{self._tree_names[code]}({total})")

    def _apply_sort(self) -> None:
        """The sort order the list was left in (else by 户编号)."""
        sort = self.list_state.get("sort")
        header = self.table.horizontalHeader()
        if isinstance(sort, list) and len(sort) == 2 and all(isinstance(v, int) for v in sort) and 0 <= sort[0] < len(COLUMNS):
            header.setSortIndicator(sort[0], Qt.SortOrder(sort[1]))  # the view asks the model to sort
        self.model.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())

    def _fit_columns(self) -> None:
        """Column widths as the list was left (else fitted to the first rows' contents)."""
        widths = self.list_state.get("widths")
        if isinstance(widths, list) and len(widths) == len(COLUMNS) and all(isinstance(w, int) for w in widths):
            for col, width in enumerate(widths):
                if 20 <= width <= 2000:
                    self.table.setColumnWidth(col, width)
        else:
            self.table.resizeColumnsToContents()
            self.table.setColumnWidth(MATCH_COLUMN, 200)

    def save_list_state(self) -> None:
        """Remember sort, column widths, the open village and the window size (ui.json: numbers and
        a division code, no personal data)."""
        header = self.table.horizontalHeader()
        code = ""
        items = self.tree.selectedItems()
        if items:
            code = items[0].data(0, Qt.UserRole) or ""
        self.list_state = {
            "sort": [header.sortIndicatorSection(), int(header.sortIndicatorOrder().value)],
            "widths": [self.table.columnWidth(c) if self.table.columnWidth(c) > 0 else 200 for c in range(len(COLUMNS))],
            "village": code or self.list_state.get("village", ""),
            "size": [self.width(), self.height()],
        }
        prefs = preferences.load()
        prefs.main_list = self.list_state
        try:
            preferences.save(prefs)
        except OSError:
            pass  # a convenience: never keep the window from closing

    def _tree_changed(self) -> None:
        items = self.tree.selectedItems()
        self.model.set_filters(village_prefix=items[0].data(0, Qt.UserRole) if items else "")

    def _search_changed(self, text: str) -> None:
        if self.shown:  # also while the rest is read: parts that come in are searched as they arrive
            self.model.set_search(text)
            self.table.setColumnHidden(MATCH_COLUMN, not text.strip())

    def _update_count(self) -> None:
        reading = "" if self.loaded or self._all_read or not self.shown else "(读取中…)"
        self.count_label.setText(f"{len(self.model.visible)} / {len(self.model.rows)} 户{reading}")

    def _update_status(self) -> None:
        if not self.store.unlocked:
            return
        self.operator_label.setText(f"操作员:{self.store.operator}")
        status = sync_status(self.store)
        self.unsynced_label.setText(status.unsynced_label())
        self.unsynced_label.setVisible(bool(status.unsynced_label()))
        self.sync_label.setText(status.last_sync_label())
        self.sync_label.setVisible(bool(status.last_sync_label()))

    def _store_changed(self, changes) -> None:
        """Refresh the rows of the households a commit touched (an edit, or the thousands of a
        table or sync import), and the counts of their villages in the tree."""
        if not self.loaded or self.locked:
            return
        touched = {c.record_id if c.kind == "household" else c.parent_id for c in changes} - {None, ""}
        if touched:
            fresh = rows_of(self.store, touched, self.d)
            villages = set()
            for hid, row in fresh.items():
                old = self.model.row_of_id(hid)
                for r, step in ((old, -1), (row, 1)):
                    if r is not None:
                        self._village_counts[r.village_code] = self._village_counts.get(r.village_code, 0) + step
                        villages.add(r.village_code)
            self.model.update_rows(fresh)
            self._relabel_tree(villages)
        self._seen_mark = self._change_mark()
        self._update_status()

    # ------------------------------------------------------------------ selection
    def current_household_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()).id if rows else None

    def current_village(self) -> str | None:
        items = self.tree.selectedItems()
        code = items[0].data(0, Qt.UserRole) if items else ""
        if code and len(code) == 12:
            return code
        hid = self.current_household_id()
        if hid:
            return self.model.rows[self.model._by_id[hid]].village_code
        return None

    # ------------------------------------------------------------------ editors
    def _editor(self, **kw) -> HouseholdEditor:
        editor = HouseholdEditor(self.store, **kw)
        editor.closed.connect(lambda e: e in self.editors and self.editors.remove(e))
        self.editors.append(editor)
        editor.show()
        return editor

    def open_household(self, household_id: str) -> HouseholdEditor | None:
        if not self.loaded:  # the store is still being read: open it when it is done
            self._open_when_loaded = household_id
            self.statusBar().showMessage("正在读取贫困户,读完后打开所选的一户…")
            return None
        for e in self.editors:
            if e.household_id == household_id:
                e.raise_()
                e.activateWindow()
                return e
        return self._editor(household_id=household_id)

    def new_household(self) -> HouseholdEditor | None:
        village = self.current_village()
        known = {r["code"] for r in self.store.divisions("village")} | set(self.store.village_codes())
        if not village and len(known) == 1:  # a laptop of one village: nothing to choose
            village = next(iter(known))
        if not village:
            if not known:
                QMessageBox.information(
                    self, "还没有村",
                    "本数据库还没有任何村,无法新建贫困户。请先在“参考数据 › 行政区划、贫困线和监测标准…”中添加乡(镇)和村"
                    "(用县扶贫办的登记包新建的电脑会自动收到所管的村)。")
            else:
                QMessageBox.information(self, "请选择村", "请先在左侧选择一个村,再新建贫困户。")
            return None
        return self._editor(village_code=village)

    def offer_drafts(self) -> DraftsDialog | None:
        open_keys = {e.draft_key for e in self.editors}
        items = [(k, s) for k, s in drafts.pending(self.store) if k not in open_keys]
        if not items:
            return None
        self.drafts_dialog = DraftsDialog(self.store, items, self)
        self.drafts_dialog.recover.connect(self._recover_draft)
        self.drafts_dialog.open()
        return self.drafts_dialog

    def _recover_draft(self, key: str, state: dict) -> None:
        hid = state.get("household_id")
        if hid and households.document(self.store, hid) is None:
            QMessageBox.warning(self, "无法恢复", "这份草稿对应的贫困户已不存在,草稿已保留。")
            return
        self._editor(household_id=hid, village_code=state.get("village_code"), draft_key=key)

    # ------------------------------------------------------------------ backup
    def backup_to(self, folder: str | None = None) -> None:
        """文件 › 备份到…: an encrypted backup (app.services.backup) into a folder the user picks, e.g.
        a USB stick, on a worker thread. Saved data only: open editors' unsaved changes are not in it."""
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "选择备份到哪个文件夹(如U盘)")
        if not folder:
            return
        from app.services import backup  # noqa: PLC0415

        unsaved = any(e.dirty for e in self.editors)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.stack.setEnabled(False)
        self.statusBar().showMessage("正在备份…")

        def done(info) -> None:
            self.progress.hide()
            self.stack.setEnabled(True)
            self.statusBar().showMessage(f"已备份到 {info.path}", 10000)
            QMessageBox.information(
                self, "备份完成",
                f"已备份到 {info.path}({info.size / 1e6:.1f} MB,已加密,用本库的操作员密码或县里的恢复密钥才能打开)。"
                + ("\n注意:编辑窗口中尚未保存的修改不在这份备份中。" if unsaved else "")
                + "\n恢复时用 jiandang restore(见使用说明“备份与恢复”)。")

        def failed(message: str) -> None:
            self.progress.hide()
            self.stack.setEnabled(True)
            self.statusBar().clearMessage()
            QMessageBox.warning(self, "备份失败", f"没有完成备份:{message}\n数据库本身没有改动。")

        workers.start(lambda progress: backup.backup(self.store, folder), done, failed)

    # ------------------------------------------------------------------ bulk validation
    def validate_all(self) -> None:
        self.progress.setRange(0, 0)
        self.progress.show()
        self.stack.setEnabled(False)
        self.statusBar().showMessage("正在检查全部贫困户…")
        workers.start(lambda progress: households.validate_all(self.store, progress=progress),
                      self._validated, self._load_failed, self._progress)

    def _validated(self, findings) -> None:
        self.progress.hide()
        self.stack.setEnabled(True)
        errors = [f for f in findings if f.severity == ERROR]
        self.findings_dialog = QDialog(self)
        self.findings_dialog.setWindowTitle(f"检查结果:{len(errors)} 个错误,{len(findings) - len(errors)} 个提示")
        self.findings_dialog.resize(760, 480)
        layout = QVBoxLayout(self.findings_dialog)
        lst = QListWidget()
        lst.setObjectName("all_findings")
        for f in findings[:5000]:
            item = QListWidgetItem(finding_line(self.d, f))
            if f.severity == ERROR:
                item.setForeground(Qt.red)
            lst.addItem(item)
        if not findings:
            lst.addItem("没有发现错误或提示。")
        layout.addWidget(lst)
        self.findings_dialog.show()
        self.statusBar().showMessage(f"检查完毕:{len(errors)} 个错误", 8000)

    # ------------------------------------------------------------------ locking
    def set_auto_lock_minutes(self, minutes: float) -> None:
        self.idle_timer.setInterval(int(minutes * 60_000))
        if minutes > 0:
            self.idle_timer.start()
        else:
            self.idle_timer.stop()

    def _ask_auto_lock(self) -> None:
        prefs = preferences.load()
        minutes, ok = QInputDialog.getInt(self, "自动锁定", "无操作多少分钟后锁定(0 表示不锁定):",
                                          int(prefs.auto_lock_minutes), 0, 240)
        if ok:
            prefs.auto_lock_minutes = minutes
            preferences.save(prefs)
            self.set_auto_lock_minutes(minutes)

    def lock(self, manual: bool = False) -> None:
        """Save drafts of open editors, hide every window with data, forget the keys, ask to unlock.
        `manual`: the user chose 立即锁定 (Ctrl+L); otherwise the idle timer locked."""
        if self.locked or not self.store.unlocked:
            return
        if not self.loaded:  # a worker is using the store: try again shortly
            QTimer.singleShot(1000, lambda: self.lock(manual))
            return
        for e in self.editors:
            e.commit_cells()  # a cell being typed in goes into the draft too
            e.write_draft()
            e.hide()
        for w in list(self.external.values()):
            try:
                w.close()
            except RuntimeError:
                pass
        self.external.clear()
        if self.drafts_dialog is not None:
            self.drafts_dialog.reject()
        self.locked = True
        self.idle_timer.stop()
        self.model.clear()
        self.tree.clear()
        self._tree_items = {}
        self.search.clear()
        self.stack.setCurrentIndex(1)
        self.menuBar().setEnabled(False)
        self.store.lock()
        self.operator_label.clear()
        why = "已按“立即锁定”锁定" if manual else "已因长时间无操作而锁定"
        self.unlock_dialog = UnlockDialog(self.store, self, message=f"{why}。请重新输入密码。")
        self.unlock_dialog.accepted.connect(self._unlocked)
        self.unlock_dialog.rejected.connect(lambda: QTimer.singleShot(0, self._relock_prompt))
        self.unlock_dialog.open()

    def _relock_prompt(self) -> None:
        if self.locked and self.isVisible():
            self.unlock_dialog.open()

    def _unlocked(self) -> None:
        self.locked = False
        self.stack.setCurrentIndex(0)
        self.menuBar().setEnabled(True)
        for e in self.editors:
            e.show()
        if self.idle_timer.interval() > 0:
            self.idle_timer.start()
        self.reload()

    def closeEvent(self, event) -> None:
        if self.unlock_dialog is not None and self.unlock_dialog.working:
            event.ignore()  # the unlock is using the store: close once it has ended (and locked again)
            self.unlock_dialog.finished.connect(lambda _result: QTimer.singleShot(0, self.close))
            self.unlock_dialog.reject()
            return
        for e in list(self.editors):
            if not e.close():
                event.ignore()
                return
        if self.loaded and not self.locked:
            self.save_list_state()
        QApplication.instance().removeEventFilter(self._idle_watch)
        workers.unlisten(self.store, self._store_changed)
        super().closeEvent(event)
