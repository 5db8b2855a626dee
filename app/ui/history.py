"""The audit trail of one record (who, when, old value, new value, reason) as a side panel, in
plain words: 修改人 (not 操作员), 原来 / 改为 (not 原值 / 新值), the reason as a line of its own
under the change so a narrow panel never cuts it off, and the values never cut (`fit_columns`)."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app.core.clock import wall_time
from app.core.dictionary import default


def local_time(hlc: str) -> str:
    return dt.datetime.fromtimestamp(wall_time(hlc)).strftime("%Y-%m-%d %H:%M:%S")


VERBS = {"create": "新建", "update": "修改", "delete": "删除", "restore": "恢复"}


def change_rows(change, d=None) -> tuple[list[str], list[tuple[str, str, str]]]:
    """([time, operator, action, reason], [(field label, old, new)]) of one Change. Values of a
    field marked `masked` in forms/ (bank accounts) are partly hidden as printed ID numbers are
    (`Dictionary.display_masked`, as the sync conflicts show them)."""
    d = d or default()
    kind = d.kinds.get(change.kind)
    reason = change.reason or ""
    if reason and change.op == "delete":
        reason = d.code_label("member_change_reason", reason)
    head = [local_time(change.hlc), change.operator, VERBS.get(change.op, change.op) + (kind.label if kind else change.kind), reason]
    fields = []
    for key, new in change.new.items():
        label = "所在村" if key == "__village_code" else (d.field_label(change.kind, key) if kind else key)
        old = change.old.get(key)
        show = lambda v: d.display_masked(change.kind, key, v)  # noqa: E731 - bank accounts partly hidden
        fields.append((label, "" if change.op == "create" else (show(old) or "(空)"), show(new) or "(空)"))
    return head, fields


class HistoryPanel(QWidget):
    def __init__(self, store, parent=None):
        super().__init__(parent)
        self.store = store
        self.record_id: str | None = None
        layout = QVBoxLayout(self)
        self.title = QLabel("修改记录")
        layout.addWidget(self.title)
        self.tree = QTreeWidget()
        self.tree.setObjectName("history")
        self.tree.setHeaderLabels(["时间 / 项目", "修改人 / 原来", "操作 / 改为"])
        self.tree.setIndentation(12)
        self.tree.header().setStretchLastSection(True)
        self.tree.itemExpanded.connect(lambda _item: self.fit_columns())
        layout.addWidget(self.tree)

    def show_record(self, record_id: str | None, title: str = "") -> None:
        self.record_id = record_id
        self.tree.clear()
        self.title.setText(f"修改记录:{title}" if title else "修改记录")
        if not record_id or not self.store.unlocked:
            return
        d = default()
        changes = self.store.history(record_id)
        for change in reversed(changes):  # newest first
            head, fields = change_rows(change, d)
            item = QTreeWidgetItem(head[:3])
            item.setData(0, Qt.UserRole, head[3])
            for col, text in enumerate(head[:3]):
                item.setToolTip(col, text)
            if head[3]:
                fields = [("原因", "", head[3])] + fields
            for label, old, new in fields:
                child = QTreeWidgetItem([label, old, new])
                for col, text in enumerate((label, old, new)):
                    child.setToolTip(col, text)
                item.addChild(child)
            self.tree.addTopLevelItem(item)
        if self.tree.topLevelItemCount():
            self.tree.topLevelItem(0).setExpanded(True)
        if not changes:
            empty = QTreeWidgetItem(["尚未保存,没有修改记录"])
            self.tree.addTopLevelItem(empty)
            empty.setFirstColumnSpanned(True)
        self.fit_columns()

    def fit_columns(self) -> None:
        """Every column takes its contents' width when the panel has room. When it has not (at
        1366×768 the panel is about 440 pixels wide), 时间 / 项目 gives way, down to a date's width (a
        long field name is elided), so that 原来 and 改为 keep the values whole: an ID number, a 户编号,
        a bank account. Only when that is not enough does the panel scroll sideways. Every cell has
        its full text as a tooltip too."""
        tree = self.tree
        for col in range(3):
            tree.resizeColumnToContents(col)
        over = sum(tree.columnWidth(c) for c in range(3)) - tree.viewport().width()
        if tree.viewport().width() > 0 and over > 0:
            floor = tree.fontMetrics().horizontalAdvance("2026-12-05") + 2 * tree.indentation()
            tree.setColumnWidth(0, max(floor, tree.columnWidth(0) - over))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.fit_columns()

    def entries(self) -> list[list[str]]:
        """The panel's text (for tests and copying): one list per change and field."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            out.append([item.text(c) for c in range(3)] + [item.data(0, Qt.UserRole) or ""])
            for j in range(item.childCount()):
                child = item.child(j)
                out.append([child.text(c) for c in range(3)])
        return out
