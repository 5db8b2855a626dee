"""Start screen (recent databases, open, create), the first-run wizard and the unlock dialog."""

from __future__ import annotations

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
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from app.core.procedures import ROLE_LABELS
from app.store import Store, StoreError, TooManyAttempts, WrongPassphrase
from app.store.locations import is_url, without_password
from app.store import crypto
from app.ui import preferences, workers
from app.ui.typed_path import typed_path

ROLES = [("village", "村级(驻村工作队)"), ("township", "乡镇"), ("county", "县级")]


class UnlockDialog(QDialog):
    """Operator and passphrase. A wrong passphrase shows the message and keeps the button disabled
    for the delay the store imposes (1 s, 2 s, 4 s, ...).

    The unlock (Argon2id, a quarter of a second and more) and what the first writing unlock of an older
    database does once (record bodies to the current format, 户类型 of older households: seconds on a
    big database) run off the GUI thread (app/ui/workers.py), with a progress bar and the fields and
    buttons disabled. Closing the dialog meanwhile waits for the work to end, then locks the store
    again: the store is never closed under a worker."""

    def __init__(self, store: Store, parent=None, message: str = ""):
        super().__init__(parent)
        self.store = store
        self.task = None  # the running unlock (workers.Task), or None
        self._close_when_done = False
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
        self.status = QLabel()
        self.status.setObjectName("unlock_status")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setObjectName("unlock_progress")
        self.bar.setTextVisible(False)
        form.addRow(self.status)
        form.addRow(self.bar)
        self.status.hide()
        self.bar.hide()
        buttons = QDialogButtonBox()
        self.unlock_button = buttons.addButton("解锁", QDialogButtonBox.AcceptRole)
        self.unlock_button.setObjectName("unlock")
        self.cancel_button = buttons.addButton("取消", QDialogButtonBox.RejectRole)
        buttons.accepted.connect(self.try_unlock)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._wait = QTimer(self, singleShot=True, timeout=self._enable)
        self.passphrase.setFocus()

    @property
    def working(self) -> bool:
        return self.task is not None

    def _enable(self) -> None:
        self.unlock_button.setEnabled(True)

    def _set_working(self, on: bool) -> None:
        for widget in (self.operator, self.passphrase, self.unlock_button, self.cancel_button):
            widget.setEnabled(not on)
        self.status.setVisible(on)
        self.bar.setVisible(on)
        if on:
            self.error.clear()
            self.status.setText("正在解锁…")
            self.bar.setRange(0, 0)  # busy until the conversion, if any, counts its records
            self.setCursor(Qt.BusyCursor)
        else:
            self.unsetCursor()

    def try_unlock(self) -> None:
        if not self.unlock_button.isEnabled() or self.working:
            return
        operator, passphrase = self.operator.currentText().strip(), self.passphrase.text()
        store = self.store

        def work(progress):
            try:
                store.unlock(operator, passphrase, progress)
            except (WrongPassphrase, TooManyAttempts) as exc:
                return ("wait", str(exc), exc.retry_after)
            from app.services import monitoring

            try:  # data migrations that need the data key, once (户类型 of older households, issue #20)
                if monitoring.migration_pending(store):
                    progress(0, 0)
                    monitoring.ensure_migrated(store)
            except Exception as exc:  # noqa: BLE001 - rolled back: the database is as it was
                store.lock()
                return ("error", f"升级户类型时出错({exc}),数据库未改动。请备份后联系县扶贫办", 0)
            return ("ok", "", 0)

        self._set_working(True)
        self.task = workers.start(work, self._done, self._failed, on_progress=self._progress)

    def _progress(self, done: int, total: int) -> None:
        if total:
            self.status.setText(f"正在升级数据格式(只需一次)… {done}/{total} 条记录")
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        else:
            self.status.setText("正在升级数据格式(只需一次)…")
            self.bar.setRange(0, 0)

    def _done(self, outcome) -> None:
        self.task = None
        self._set_working(False)
        kind, message, retry_after = outcome
        if self._close_when_done:
            if self.store.unlocked:
                self.store.lock()  # the user closed the dialog meanwhile: no unlocked store behind it
            super().reject()
            return
        if kind == "wait":
            self.error.setText(message)  # says how long to wait; the button stays disabled until then
            self.passphrase.selectAll()
            self.passphrase.setFocus()
            self.unlock_button.setEnabled(False)
            self._wait.start(int(retry_after * 1000) + 250)  # the store refuses until the delay is over
            return
        if kind == "error":
            self.error.setText(message)
            return
        self.passphrase.clear()
        self.accept()

    def _failed(self, message: str) -> None:
        self.task = None
        self._set_working(False)
        if self._close_when_done:
            super().reject()
            return
        self.error.setText(message)
        self.passphrase.setFocus()

    def reject(self) -> None:
        if self.working:  # the store is in use by the unlock: close when it has ended
            self._close_when_done = True
            self.status.setText("正在结束解锁,完成后关闭…")
            return
        super().reject()

    def closeEvent(self, event) -> None:
        if self.working:
            event.ignore()
            self.reject()
            return
        super().closeEvent(event)


class CreateWizard(QWizard):
    """First run. Two ways:

    - 登记包 (village and township laptops): the county's enrollment package and its one-time code
      (`identity.open_enrollment`); role, site, villages, the county's keys, divisions and poverty
      lines come from the package (`identity.create_from_enrollment`), the same as
      `jiandang init DB --enrollment FILE`.
    - 不用登记包 (the county's own database, or a laptop that never syncs): role and site name typed
      here and the county's recovery public key, or a key pair generated beside the database.

    Then operator and passphrase, and the file."""

    MODE, ENROLL, SITE, PERSON, FILES = range(5)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("新建数据库")
        self.setMinimumSize(680, 440)
        self.store: Store | None = None
        self.key_written: Path | None = None
        self.enrollment = None  # identity.EnrollmentContents once the package is opened with its code
        self.setButtonText(QWizard.NextButton, "下一步")
        self.setButtonText(QWizard.BackButton, "上一步")
        self.setButtonText(QWizard.FinishButton, "创建")
        self.setButtonText(QWizard.CancelButton, "取消")

        mode = QWizardPage()
        mode.setTitle("新建方式")
        layout = QVBoxLayout(mode)
        self.use_enrollment = QRadioButton("用县扶贫办发的登记包新建(村级、乡镇的笔记本电脑)")
        self.use_enrollment.setObjectName("use_enrollment")
        self.use_enrollment.setChecked(True)
        self.manual = QRadioButton("不用登记包新建(县级数据库,或不与县里同步的单机)")
        self.manual.setObjectName("manual")
        for button, text in ((self.use_enrollment, "需要登记包文件(.jde,县扶贫办用“登记设备”导出)和另外交给你的一次性登记码。"
                              "角色、站点、所管的村和县级密钥都取自登记包,之后可以与县里同步。"),
                             (self.manual, "自己填写角色和站点名称。县级数据库用这种方式新建;村级或乡镇的电脑这样新建后不能与县里同步。")):
            layout.addWidget(button)
            hint = QLabel(text)
            hint.setWordWrap(True)
            hint.setStyleSheet("color: #555; margin-left: 22px;")
            layout.addWidget(hint)
        layout.addStretch(1)
        self.setPage(self.MODE, mode)

        enroll = QWizardPage()
        enroll.setTitle("登记包和登记码")
        form = QFormLayout(enroll)
        self.package = QLineEdit()
        self.package.setObjectName("package")
        self.package.setPlaceholderText("县扶贫办发的登记包文件(.jde)")
        pick_package = QPushButton("选择…")
        pick_package.clicked.connect(self._pick_package)
        row = QHBoxLayout()
        row.addWidget(self.package)
        row.addWidget(pick_package)
        form.addRow("登记包", row)
        self.code = QLineEdit()
        self.code.setObjectName("enrollment_code")
        self.code.setPlaceholderText("如 4IKM-DCGS-KDRZ-KHDT-KW6P-DGVE(横线和大小写不限)")
        form.addRow("登记码", self.code)
        note = QLabel("登记码由县扶贫办另外交给你(不和登记包放在同一个U盘里),只用这一次。")
        note.setWordWrap(True)
        form.addRow(note)
        self.enroll_error = QLabel()
        self.enroll_error.setObjectName("enroll_error")
        self.enroll_error.setStyleSheet("color: #b00020;")
        self.enroll_error.setWordWrap(True)
        form.addRow(self.enroll_error)
        self.setPage(self.ENROLL, enroll)

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
        self.setPage(self.SITE, site)

        person = QWizardPage()
        person.setTitle("操作员和密码")
        form = QFormLayout(person)
        self.enrolled_as = QLabel()
        self.enrolled_as.setObjectName("enrolled_as")
        self.enrolled_as.setWordWrap(True)
        form.addRow(self.enrolled_as)
        self.operator = QLineEdit()
        form.addRow("操作员", self.operator)
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.Password)
        form.addRow("密码(至少 8 个字符)", self.passphrase)
        self.passphrase2 = QLineEdit()
        self.passphrase2.setEchoMode(QLineEdit.Password)
        form.addRow("再输一次密码", self.passphrase2)
        self.setPage(self.PERSON, person)

        files = QWizardPage()
        files.setTitle("数据库文件")
        form = QFormLayout(files)
        self.path = QLineEdit(str(Path.home() / "建档.db"))
        pick = QPushButton("选择…")
        pick.clicked.connect(self._pick_path)
        row = QHBoxLayout()
        row.addWidget(self.path)
        row.addWidget(pick)
        form.addRow("数据库文件", row)
        self.key_file = QLineEdit()
        self.key_file.setObjectName("key_file")
        self.key_file.setPlaceholderText("县扶贫办提供的恢复公钥(.pem)")
        pick_key = QPushButton("选择…")
        pick_key.clicked.connect(self._pick_key)
        row = QHBoxLayout()
        row.addWidget(self.key_file)
        row.addWidget(pick_key)
        self.key_label = QLabel("恢复公钥")
        form.addRow(self.key_label, row)
        self._key_row = row
        self.key_hint = QLabel()
        self.key_hint.setWordWrap(True)
        self.key_hint.setStyleSheet("color: #555;")
        form.addRow(self.key_hint)
        self.error = QLabel()
        self.error.setStyleSheet("color: #b00020;")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        self._files_form = form
        self.setPage(self.FILES, files)
        self.setStartId(self.MODE)

    def nextId(self) -> int:
        page = self.currentId()
        if page == self.MODE:
            return self.ENROLL if self.use_enrollment.isChecked() else self.SITE
        if page in (self.ENROLL, self.SITE):
            return self.PERSON
        if page == self.PERSON:
            return self.FILES
        return -1

    def initializePage(self, page_id: int) -> None:
        super().initializePage(page_id)
        enrolled = self.use_enrollment.isChecked()
        if page_id == self.PERSON:
            self.enrolled_as.setVisible(enrolled and self.enrollment is not None)
        if page_id == self.FILES:
            self._files_form.setRowVisible(self._key_row, not enrolled)
            self.key_hint.setText(
                "县级的恢复公钥取自登记包:忘记密码时,县扶贫办可以恢复这个数据库。" if enrolled else
                "恢复公钥由县扶贫办提供。留空则生成一对密钥,私钥写在数据库旁(文件名后加 .recovery-key.pem),"
                "请交县扶贫办离线保管,并从本机删除。")

    def _pick_path(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "新数据库文件", self.path.text(), "建档数据库 (*.db)")
        if name:
            self.path.setText(name)

    def _pick_key(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "县级恢复公钥", "", "PEM 文件 (*.pem)")
        if name:
            self.key_file.setText(name)

    def _pick_package(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "县扶贫办发的登记包", str(Path.home()), "登记包 (*.jde);;所有文件 (*)")
        if name:
            self.package.setText(name)

    def open_package(self) -> bool:
        """Open the enrollment package with the typed code; a clear message beside the fields if not."""
        from app.sync import identity, wire

        self.enrollment = None
        self.enroll_error.clear()
        name = typed_path(self.package.text())
        code = self.code.text().strip()
        if not name:
            self.enroll_error.setText("请选择县扶贫办发的登记包文件(.jde)。")
            return False
        if not code:
            self.enroll_error.setText("请输入登记码。")
            return False
        try:
            data = Path(name).read_bytes()
        except FileNotFoundError:
            self.enroll_error.setText(f"找不到登记包文件 {Path(name).name},请重新选择。")
            return False
        except OSError as exc:
            self.enroll_error.setText(f"无法读取登记包 {Path(name).name}(系统提示:{exc.strerror or exc}),请把它复制到本机后再选择。")
            return False
        self.setCursor(Qt.WaitCursor)
        try:
            self.enrollment = identity.open_enrollment(data, code, Path(name).name)
        except wire.BundleError as exc:
            detail = str(exc)
            if "登记码不对" in detail:
                self.enroll_error.setText("登记码不对:请核对县扶贫办给出的登记码(字母和数字,横线可以不输)。")
            elif "这不是登记包" in detail:
                self.enroll_error.setText(detail)
            else:
                self.enroll_error.setText("这个文件不能作为登记包使用:它已损坏、不完整,或不是县扶贫办导出的登记包。"
                                          f"请重新拷贝一次,或请县扶贫办重新导出登记包。\n(详情:{detail})")
            return False
        finally:
            self.unsetCursor()
        cert = self.enrollment.certificate
        role = ROLE_LABELS.get(cert.role, cert.role)
        names = {d[0]: d[1] for d in self.enrollment.divisions if d}
        villages = "、".join(names.get(v, v) for v in cert.villages)
        self.enrolled_as.setText(f"登记为:{cert.body['site_name']}({role}),村 {villages},"
                                 f"证书有效至 {cert.body['not_after'][:10]}。")
        if typed_path(self.path.text()) == str(Path.home() / "建档.db"):
            self.path.setText(str(Path.home() / f"{cert.body['site_name']}.db"))
        return True

    def validateCurrentPage(self) -> bool:
        page = self.currentId()
        if page == self.ENROLL:
            return self.open_package()
        if page == self.SITE and not self.site_name.text().strip():
            QMessageBox.warning(self, "请填写", "请填写站点名称。")
            return False
        if page == self.PERSON:
            if not self.operator.text().strip():
                QMessageBox.warning(self, "请填写", "请填写操作员名称。")
                return False
            if self.passphrase.text() != self.passphrase2.text():
                QMessageBox.warning(self, "密码不一致", "两次输入的密码不一样,请重新输入。")
                return False
            if len(self.passphrase.text()) < 8:
                QMessageBox.warning(self, "密码太短", "密码至少需要 8 个字符。")
                return False
        if page == self.FILES:
            return self.create()
        return True

    def create(self) -> bool:
        if self.use_enrollment.isChecked():
            return self._create_enrolled()
        db = Path(typed_path(self.path.text()))
        written = None
        key_file = typed_path(self.key_file.text())
        try:
            if key_file:
                key = crypto.load_x25519_public(Path(key_file).read_bytes())
            else:
                from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

                if db.exists():
                    raise StoreError(f"{db} 已存在:不会覆盖已有文件,请换一个文件名")
                private = X25519PrivateKey.generate()
                target = db.with_name(db.name + ".recovery-key.pem")
                try:
                    crypto.write_new_key_file(target, crypto.x25519_private_pem(private))
                except FileExistsError:
                    raise StoreError(f"恢复私钥文件 {target} 已存在(可能是以前同名数据库的唯一一份恢复私钥):"
                                     "不会覆盖。请先把它移到别处保管好,或换一个数据库文件名") from None
                written = target
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

    def _create_enrolled(self) -> bool:
        """The database from the opened enrollment package (identity.create_from_enrollment)."""
        from app.sync import identity

        if self.enrollment is None and not self.open_package():
            self.error.setText(f"未能创建:{self.enroll_error.text()}")
            return False
        db = Path(typed_path(self.path.text()))
        if db.exists():
            self.error.setText(f"未能创建:{db} 已存在:不会覆盖已有文件,请换一个文件名")
            return False
        self.setCursor(Qt.WaitCursor)
        try:
            self.store = identity.create_from_enrollment(db, self.enrollment, operator=self.operator.text().strip(),
                                                         passphrase=self.passphrase.text())
        except (StoreError, OSError, ValueError) as exc:
            self.error.setText(f"未能创建:{exc}")
            return False
        finally:
            self.unsetCursor()
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
            item = QListWidgetItem(p + ("" if is_url(p) or Path(p).exists() else "(文件不存在)"))
            item.setData(Qt.UserRole, p)
            self.recent.addItem(item)
        self.recent.itemActivated.connect(lambda item: self._choose(item.data(Qt.UserRole)))
        layout.addWidget(self.recent)
        row = QHBoxLayout()
        open_recent = QPushButton("打开所选")
        open_recent.clicked.connect(lambda: self.recent.currentItem() and self._choose(self.recent.currentItem().data(Qt.UserRole)))
        other = QPushButton("打开其他数据库…")
        other.clicked.connect(self._open_other)
        server = QPushButton("服务器上的县级库…")
        server.setObjectName("open_server")
        server.setToolTip("打开 PostgreSQL 服务器上的县级数据库(县扶贫办多人同时使用)")
        server.clicked.connect(lambda: self._open_server())
        create = QPushButton("新建数据库…")
        create.clicked.connect(self._create)
        quit_button = QPushButton("退出")
        quit_button.clicked.connect(self.reject)
        for b in (open_recent, other, server, create, quit_button):
            row.addWidget(b)
        layout.addLayout(row)

    def _choose(self, chosen) -> None:
        if isinstance(chosen, str) and is_url(chosen) and chosen == without_password(chosen):
            self._open_server(chosen)  # a remembered server address: ask for its password
            return
        self.chosen = chosen
        self.accept()

    def _open_server(self, address: str = "") -> None:
        from app.ui.server_address import ServerAddressDialog  # noqa: PLC0415

        dialog = ServerAddressDialog(self, address)
        if dialog.exec() == QDialog.Accepted and dialog.url:
            self.chosen = dialog.url
            self.accept()

    def _open_other(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "打开数据库", str(Path.home()), "建档数据库 (*.db);;所有文件 (*)")
        if name:
            self._choose(name)

    def _create(self) -> None:
        wizard = CreateWizard(self)
        if wizard.exec() == QWizard.Accepted and wizard.store is not None:
            self._choose(wizard.store)
