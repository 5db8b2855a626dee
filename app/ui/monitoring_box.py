"""The 监测识别 part of the nomination dialog (issue #20): 监测对象类型, 发现方式, the risks found and the
household's signed authorisation. Code lists come from forms/ (the dictionary)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QListWidget, QListWidgetItem

from app.core.dictionary import default


class MonitoringBox(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("监测识别", parent)
        d = default()
        form = QFormLayout(self)
        self.monitoring_type = QComboBox()
        for code, label in d.codes["monitoring_type"].items():
            self.monitoring_type.addItem(label, code)
        self.source = QComboBox()
        for code, label in d.codes["risk_source"].items():
            self.source.addItem(label, code)
        self.risks = QListWidget()
        self.risks.setFlow(QListWidget.LeftToRight)
        self.risks.setWrapping(True)
        self.risks.setFixedHeight(64)
        for code, label in d.codes["risk_type"].items():
            item = QListWidgetItem(label)
            item.setData(Qt.UserRole, code)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Unchecked)
            self.risks.addItem(item)
        self.authorised = QCheckBox("农户已签署授权承诺书")
        form.addRow("监测对象类型", self.monitoring_type)
        form.addRow("发现方式", self.source)
        form.addRow("风险类型", self.risks)
        form.addRow("", self.authorised)

    def checked_risks(self) -> list[str]:
        return [self.risks.item(i).data(Qt.UserRole) for i in range(self.risks.count())
                if self.risks.item(i).checkState() == Qt.Checked]

    def values(self) -> dict:
        return {"monitoring_type": self.monitoring_type.currentData(), "risk_source": self.source.currentData(),
                "risks": self.checked_risks(), "household_authorised": self.authorised.isChecked() or None}
