"""Start screen (recent databases, open, create), the first-run wizard and the unlock dialog."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from app.store import Store, StoreError, TooManyAttempts, WrongPassphrase
from app.store import crypto
from app.ui import preferences

ROLES = [("village", "村级(驻村工作队)"), ("township", "乡镇"), ("county", "县级")]


class UnlockDialog(QDialog):
    """Operator and passphrase. A wrong passphrase shows the message and keeps the button disabled
    for the delay the store imposes (1 s, 2 s, 4 s, ...)."""

    def __init__(self, store: Store, parent=None, message: str = ""):
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("解锁数据库")
        self.setMinimumWidth(420)
        form = QFormLayout(self)
        self.message = QLabel(message or f"数据库:{store.path.name}(站点“{store.site_name}”)")
        self.message.setObjectName("unlock_message")
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.operator = QComboBox()
        self.operator.setEditable(True)
        self.operator.setObjectName("operator")
        self.operator.addItems(store.operators())
        form.addRow("操作员", self.operator)
        self.passphrase = QLineEdit()
        self.passphrase.setObjectName("passphrase")
        self.passphrase.setEchoMode(QLineEdit.Password)
        form.addRow("密码", self.passphrase)
        self.error = QLabel()
        self.error.setObjectName("unlock_error")
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QDialogButtonBox()
        self.unlock_button = buttons.addButton("解锁", QDialogButtonBox.AcceptRole)
        self.unlock_button.setObjectName("unlock")
        buttons.addButton("取消", QDialogButtonBox.RejectRole)
        buttons.accepted.connect(self.try_unlock)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._wait = QTimer(self, singleShot=True, timeout=self._enable)
        self.passphrase.setFocus()

    def _enable(self) -> None:
        self.unlock_button.setEnabled(True)

    def try_unlock(self) -> None:
        if not self.unlock_button.isEnabled():
            return
        self.setCursor(Qt.WaitCursor)
        try:
            self.store.unlock(self.operator.currentText().strip(), self.passphrase.text())
        except (WrongPassphrase, TooManyAttempts) as exc:
            self.error.setText(str(exc))  # says how long to wait; the button stays disabled until then
            self.passphrase.selectAll()
            self.unlock_button.setEnabled(False)
            self._wait.start(int(exc.retry_after * 1000) + 250)  # the store refuses until the delay is over
            return
        except StoreError as exc:
            self.error.setText(str(exc))
            return
        finally:
            self.unsetCursor()
        self.passphrase.clear()
        self.accept()


class CreateWizard(QWizard):
    """First run: role, site name, operator and passphrase, file, county recovery key."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("新建数据库")
        self.store: Store | None = None
        self.key_written: Path | None = None
        self.setButtonText(QWizard.NextButton, "下一步")
        self.setButtonText(QWizard.BackButton, "上一步")
        self.setButtonText(QWizard.FinishButton, "创建")
        self.setButtonText(QWizard.CancelButton, "取消")

        site = QWizardPage()
        site.setTitle("单位")
        form = QFormLayout(site)
        self.role = QComboBox()
        for code, label in ROLES:
            self.role.addItem(label, code)
        form.addRow("角色", self.role)
        self.site_name = QLineEdit()
        self.site_name.setPlaceholderText("如:某某村驻村工作队")
        form.addRow("站点名称", self.site_name)
        self.addPage(site)

        person = QWizardPage()
        person.setTitle("操作员和密码")
        form = QFormLayout(person)
        self.operator = QLineEdit()
        form.addRow("操作员", self.operator)
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.Password)
        form.addRow("密码(至少 8 个字符)", self.passphrase)
        self.passphrase2 = QLineEdit()
        self.passphrase2.setEchoMode(QLineEdit.Password)
        form.addRow("再输一次密码", self.passphrase2)
        self.addPage(person)

        files = QWizardPage()
        files.setTitle("文件和恢复公钥")
        form = QFormLayout(files)
        self.path = QLineEdit(str(Path.home() / "建档.db"))
        pick = QPushButton("选择…")
        pick.clicked.connect(self._pick_path)
        row = QHBoxLayout()
        row.addWidget(self.path)
        row.addWidget(pick)
        form.addRow("数据库文件", row)
        self.key_file = QLineEdit()
        self.key_file.setPlaceholderText("县扶贫办提供的恢复公钥(.pem);留空则生成一对,私钥写在数据库旁")
        pick_key = QPushButton("选择…")
        pick_key.clicked.connect(self._pick_key)
        row = QHBoxLayout()
        row.addWidget(self.key_file)
        row.addWidget(pick_key)
        form.addRow("恢复公钥", row)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        self.addPage(files)

    def _pick_path(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "新数据库文件", self.path.text(), "建档数据库 (*.db)")
        if name:
            self.path.setText(name)

    def _pick_key(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "县级恢复公钥", "", "PEM 文件 (*.pem)")
        if name:
            self.key_file.setText(name)

    def validateCurrentPage(self) -> bool:
        page = self.currentId()
        if page == 0 and not self.site_name.text().strip():
            QMessageBox.warning(self, "请填写", "请填写站点名称。")
            return False
        if page == 1:
            if not self.operator.text().strip():
                QMessageBox.warning(self, "请填写", "请填写操作员名称。")
                return False
            if self.passphrase.text() != self.passphrase2.text():
                QMessageBox.warning(self, "密码不一致", "两次输入的密码不一样,请重新输入。")
                return False
            if len(self.passphrase.text()) < 8:
                QMessageBox.warning(self, "密码太短", "密码至少需要 8 个字符。")
                return False
        if page == 2:
            return self.create()
        return True

    def create(self) -> bool:
        db = Path(self.path.text().strip())
        written = None
        try:
            if self.key_file.text().strip():
                key = crypto.load_x25519_public(Path(self.key_file.text().strip()).read_bytes())
            else:
                from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

                if db.exists():
                    raise StoreError(f"{db} 已存在:不会覆盖已有文件,请换一个文件名")
                private = X25519PrivateKey.generate()
                written = db.with_name(db.name + ".recovery-key.pem")
                fd = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(crypto.x25519_private_pem(private))
                key = private.public_key()
            self.store = Store.create(db, role=self.role.currentData(), site_name=self.site_name.text().strip(),
                                      operator=self.operator.text().strip(), passphrase=self.passphrase.text(),
                                      recovery_public_key=key)
        except (StoreError, OSError, ValueError) as exc:
            if written:
                written.unlink(missing_ok=True)
            self.error.setText(f"未能创建:{exc}")
            return False
        self.key_written = written
        if written:
            QMessageBox.information(self, "恢复私钥", f"恢复私钥已写入 {written}。\n请把它交县扶贫办离线保管,并从本机删除:"
                                    "持有它的人可以打开此数据库。")
        preferences.remember(str(db))
        return True


class StartDialog(QDialog):
    """Recent databases, open another, or create a new one. `chosen` holds a path or a Store."""

    def __init__(self, parent=None, message: str = ""):
        super().__init__(parent)
        self.setWindowTitle("建档 · 精准扶贫建档立卡")
        self.setMinimumSize(520, 360)
        self.chosen = None
        layout = QVBoxLayout(self)
        title = QLabel("建档立卡数据库")
        title.setStyleSheet("font-size: 16pt; font-weight: bold;")
        layout.addWidget(title)
        self.message = QLabel(message)
        self.message.setStyleSheet("color: #b00020;")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        layout.addWidget(QLabel("最近打开:"))
        self.recent = QListWidget()
        self.recent.setObjectName("recent")
        for p in preferences.load().recent:
            item = QListWidgetItem(p + ("" if Path(p).exists() else "(文件不存在)"))
            item.setData(Qt.UserRole, p)
            self.recent.addItem(item)
        self.recent.itemActivated.connect(lambda item: self._choose(item.data(Qt.UserRole)))
        layout.addWidget(self.recent)
        row = QHBoxLayout()
        open_recent = QPushButton("打开所选")
        open_recent.clicked.connect(lambda: self.recent.currentItem() and self._choose(self.recent.currentItem().data(Qt.UserRole)))
        other = QPushButton("打开其他数据库…")
        other.clicked.connect(self._open_other)
        create = QPushButton("新建数据库…")
        create.clicked.connect(self._create)
        quit_button = QPushButton("退出")
        quit_button.clicked.connect(self.reject)
        for b in (open_recent, other, create, quit_button):
            row.addWidget(b)
        layout.addLayout(row)

    def _choose(self, chosen) -> None:
        self.chosen = chosen
        self.accept()

    def _open_other(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "打开数据库", str(Path.home()), "建档数据库 (*.db);;所有文件 (*)")
        if name:
            self._choose(name)

    def _create(self) -> None:
        wizard = CreateWizard(self)
        if wizard.exec() == QWizard.Accepted and wizard.store is not None:
            self._choose(wizard.store)
