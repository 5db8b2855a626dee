"""Opening a county database on a PostgreSQL server from the start screen: its address and the
server password (asked each time, never remembered: the recent list keeps the address without it)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from app.store.locations import is_url, with_password, without_password

EXAMPLE = "postgresql://county@192.168.1.10:5432/jiandang"


class ServerAddressDialog(QDialog):
    """`url` holds the address to open (with the password) once accepted."""

    def __init__(self, parent=None, address: str = ""):
        super().__init__(parent)
        self.setWindowTitle("打开服务器上的县级数据库")
        self.setMinimumWidth(560)
        self.url: str | None = None
        layout = QVBoxLayout(self)
        hint = QLabel("县扶贫办的县级数据库可以放在 PostgreSQL 服务器上,供同步服务和多位同事同时使用。"
                      "请填写管理服务器的同事给出的地址和服务器密码(与建档操作员密码不同,不会保存)。")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        form = QFormLayout()
        self.address = QLineEdit(without_password(address) if address else "")
        self.address.setObjectName("server_address")
        self.address.setPlaceholderText(EXAMPLE)
        self.password = QLineEdit()
        self.password.setObjectName("server_password")
        self.password.setEchoMode(QLineEdit.Password)
        self.password.setPlaceholderText("服务器密码(地址中已写或服务器不要求时可留空)")
        form.addRow("地址:", self.address)
        form.addRow("服务器密码:", self.password)
        layout.addLayout(form)
        example = QLabel(f"格式:postgresql://用户名@服务器:端口/数据库名,例如 {EXAMPLE}")
        example.setStyleSheet("color: #555;")
        example.setWordWrap(True)
        layout.addWidget(example)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        layout.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("打开")
        buttons.button(QDialogButtonBox.Cancel).setText("取消")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        (self.password if address else self.address).setFocus()

    def _accept(self) -> None:
        text = self.address.text().strip()
        if not is_url(text):
            self.error.setText("地址应以 postgresql:// 开头,例如 " + EXAMPLE)
            return
        try:
            self.url = with_password(text, self.password.text())
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        self.accept()
