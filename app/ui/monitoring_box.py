"""The 监测识别 part of the nomination dialog (issue #20): 监测对象类型, 发现方式, the risks found, each
with its 发现日期, and the household's signed authorisation. Code lists come from forms/ (the dictionary)."""

from __future__ import annotations

from PySide6.QtCore import QDate
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QWidget,
)

from app.core.dictionary import default

RISKS_PER_ROW = 3  # nine risk types in three rows: the dialog fits a 1366×768 screen


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
        # each risk type: ticked when found, with the date it was found (发现日期, forms/risk.toml),
        # which can be typed only once the risk is ticked
        self.risks = QWidget()
        grid = QGridLayout(self.risks)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        self.risk_checks: dict[str, QCheckBox] = {}
        self.risk_dates: dict[str, QDateEdit] = {}
        found_label = d.field_label("risk", "found_date")
        for i, (code, label) in enumerate(d.codes["risk_type"].items()):
            check = QCheckBox(label)
            date = QDateEdit(QDate.currentDate())
            date.setDisplayFormat("yyyy-MM-dd")
            date.setCalendarPopup(True)
            date.setMaximumDate(QDate.currentDate())
            date.setEnabled(False)
            date.setToolTip(f"“{label}”的{found_label}")
            date.setAccessibleName(f"{label}{found_label}")
            check.toggled.connect(date.setEnabled)
            cell = QHBoxLayout()
            cell.addWidget(check)
            cell.addStretch(1)
            cell.addWidget(date)
            grid.addLayout(cell, i // RISKS_PER_ROW, i % RISKS_PER_ROW)
            self.risk_checks[code] = check
            self.risk_dates[code] = date
        self.authorised = QCheckBox("农户已签署授权承诺书")
        form.addRow("监测对象类型", self.monitoring_type)
        form.addRow("发现方式", self.source)
        form.addRow(f"风险及{found_label}", self.risks)
        form.addRow("", self.authorised)

    def found_by(self, day: QDate) -> None:
        """No risk found after `day` (the 申报排查 date): a later 发现日期 becomes that day."""
        for date in self.risk_dates.values():
            date.setMaximumDate(day)

    def check_risk(self, label: str, found: QDate | None = None) -> None:
        """Tick the risk type of this label, found on `found` (default: as shown)."""
        code = next(c for c, box in self.risk_checks.items() if box.text() == label)
        self.risk_checks[code].setChecked(True)
        if found is not None:
            self.risk_dates[code].setDate(found)

    def checked_risks(self) -> list[tuple[str, str]]:
        """(risk type code, 发现日期) of each ticked risk."""
        return [(code, self.risk_dates[code].date().toString("yyyy-MM-dd"))
                for code, box in self.risk_checks.items() if box.isChecked()]

    def values(self) -> dict:
        return {"monitoring_type": self.monitoring_type.currentData(), "risk_source": self.source.currentData(),
                "risks": self.checked_risks(), "household_authorised": self.authorised.isChecked() or None}
