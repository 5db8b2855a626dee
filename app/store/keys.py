"""Keys and operators: each operator's passphrase wraps the data key (Argon2id + AES-GCM), the
county's recovery key wraps it too (HPKE); wrong passphrases make the next try wait; secrets are key
material sealed under the data key. Part of `Store` (app/store/db.py)."""

from __future__ import annotations

import math
import secrets

from app.store import crypto
from app.store.base import StoreError, StoreLocked, TooManyAttempts, WrongPassphrase, _now_iso

MAX_DELAY_SECONDS = 300


class Keys:
    """Unlocking, locking, operators and sealed secrets of a `Store` (uses its `conn`, `db_id`,
    `_wall`, `transaction()`)."""

    def operators(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT login FROM operators ORDER BY created, login")]

    def unlock(self, operator: str, passphrase: str, progress=None) -> None:
        """Unlock with an operator's passphrase. A wrong passphrase raises WrongPassphrase and makes
        the next attempt wait (1 s, 2 s, 4 s, ... up to 5 minutes). `progress(done, total)` hears the
        one-time conversion of older record bodies, if this unlock does it (`upgrade_pending`)."""
        self._unlocked(self._open_wrap(operator, passphrase), operator, progress)

    def _open_wrap(self, operator: str, passphrase: str) -> bytes:
        """The data key from an operator's passphrase wrap, counting failures."""
        row = self.conn.execute(
            "SELECT salt, kdf, wrapped_key, failed, locked_until FROM operators WHERE login = ?", (operator,)
        ).fetchone()
        if row is None:
            raise StoreError(f"没有名为“{operator}”的操作员。已有操作员:{'、'.join(self.operators())}")
        salt, kdf, wrapped, failed, locked_until = row
        now = self._wall()
        # a wait longer than the longest delay means the machine's clock jumped back (a flat CMOS
        # battery): it must not lock the operator out for years, so that wait is over
        if now < locked_until <= now + MAX_DELAY_SECONDS:
            wait = locked_until - now
            raise TooManyAttempts(f"上一次密码错误(已连续错 {failed} 次),每次错误后须等待一会儿再试:"
                                  f"请 {math.ceil(wait)} 秒后再输入密码", wait)
        kek = crypto.derive_key(passphrase, salt, crypto.KdfParams.from_json(kdf))
        try:
            data_key = crypto.open_sealed(kek, wrapped, self._wrap_aad(operator))
        except crypto.DecryptionError:
            failed += 1
            delay = min(2 ** (failed - 1), MAX_DELAY_SECONDS)
            self.conn.execute(
                "UPDATE operators SET failed = ?, locked_until = ? WHERE login = ?", (failed, now + delay, operator)
            )
            raise WrongPassphrase(
                f"操作员“{operator}”的密码不正确(第 {failed} 次)。请 {delay} 秒后再试;忘记密码请联系县扶贫办用恢复密钥重置。",
                delay,
            ) from None
        if failed:
            self.conn.execute("UPDATE operators SET failed = 0, locked_until = 0 WHERE login = ?", (operator,))
        return data_key

    def unlock_with_recovery(self, private_key, operator: str = "县级恢复") -> None:
        """Unlock with the county's recovery private key (X25519)."""
        wrapped = self.conn.execute("SELECT wrapped_key FROM recovery ORDER BY id DESC").fetchone()[0]
        data_key = crypto.unwrap_with_recovery(private_key, wrapped, self.db_id)
        self._unlocked(data_key, operator)

    def _wrap_aad(self, operator: str) -> bytes:
        return f"jd1|{self.db_id}|operator|{operator}".encode()

    def _unlocked(self, data_key: bytes, operator: str, progress=None) -> None:
        self._data_key = data_key
        self._sealer = crypto.Sealer(data_key, self.db_id)
        self.operator = operator
        blob = self.conn.execute("SELECT blob FROM secrets WHERE name = 'index_key'").fetchone()[0]
        self._index_key = self._sealer.open("secret", "index_key", blob)

    @property
    def unlocked(self) -> bool:
        return self._sealer is not None

    def lock(self) -> None:
        """Forget the keys and the decrypted search index (idle lock, close)."""
        self._sealer = None
        self._data_key = None
        self._index_key = None
        self._search = None
        self.operator = None

    def _require(self) -> crypto.Sealer:
        if self._sealer is None:
            raise StoreLocked("数据库已锁定,请先输入密码解锁")
        return self._sealer

    def sealer(self) -> crypto.Sealer:
        """The data key's sealer, for code that seals or opens rows itself (sync, integrity check);
        raises StoreLocked when locked."""
        return self._require()

    def add_operator(self, login: str, passphrase: str, kdf: crypto.KdfParams | None = None) -> None:
        self._require()
        login = login.strip()
        if not login:
            raise StoreError("操作员名称不能为空")
        if login in self.operators():
            raise StoreError(f"操作员“{login}”已存在")
        _check_passphrase(passphrase)
        with self.transaction():
            _add_wrap(self.conn, login, passphrase, self._data_key, kdf or crypto.new_wrap_kdf(), self.db_id)

    def change_passphrase(self, login: str, old: str, new: str, kdf: crypto.KdfParams | None = None) -> None:
        """Change an operator's passphrase; the old one must be right."""
        data_key = self._open_wrap(login, old)  # raises on a wrong passphrase
        _check_passphrase(new)
        with self.transaction():
            self.conn.execute("DELETE FROM operators WHERE login = ?", (login,))
            _add_wrap(self.conn, login, new, data_key, kdf or crypto.new_wrap_kdf(), self.db_id)

    def reset_passphrase(self, login: str, new: str, kdf: crypto.KdfParams | None = None) -> None:
        """Set a new passphrase for an operator without the old one (after `unlock_with_recovery`)."""
        self._require()
        _check_unknown_login(self, login)
        _check_passphrase(new)
        with self.transaction():
            self.conn.execute("DELETE FROM operators WHERE login = ?", (login,))
            _add_wrap(self.conn, login, new, self._data_key, kdf or crypto.new_wrap_kdf(), self.db_id)

    def put_secret(self, name: str, value: bytes) -> None:
        sealer = self._require()
        self.conn.execute("INSERT OR REPLACE INTO secrets(name, blob) VALUES (?, ?)", (name, sealer.seal("secret", name, value)))

    def get_secret(self, name: str) -> bytes | None:
        sealer = self._require()
        row = self.conn.execute("SELECT blob FROM secrets WHERE name = ?", (name,)).fetchone()
        return sealer.open("secret", name, row[0]) if row else None

    def delete_secret(self, name: str) -> None:
        self.conn.execute("DELETE FROM secrets WHERE name = ?", (name,))

    def secret_names(self, prefix: str = "") -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM secrets WHERE name LIKE ? ORDER BY name",
                                                (prefix.replace("%", r"\%") + "%",))]


def _check_unknown_login(store, login: str) -> None:
    """A mistyped login must not become a new operator: resetting is for an operator who exists."""
    logins = store.operators()
    if login not in logins:
        raise StoreError(f"本数据库没有操作员“{login}”(已有:{'、'.join(logins)}):请用 --login 给出其中一个;"
                         "要添加操作员,请用 jiandang operator add")


def _check_passphrase(passphrase: str) -> None:
    if len(passphrase or "") < 8:
        raise StoreError("密码至少需要 8 个字符")


def _add_wrap(conn, login: str, passphrase: str, data_key: bytes, kdf: crypto.KdfParams, db_id: str | None = None) -> None:
    if db_id is None:
        db_id = dict(conn.execute("SELECT key, value FROM meta").fetchall())["db_id"]
    salt = secrets.token_bytes(16)
    kek = crypto.derive_key(passphrase, salt, kdf)
    wrapped = crypto.seal(kek, data_key, f"jd1|{db_id}|operator|{login}".encode())
    conn.execute(
        "INSERT INTO operators(login, salt, kdf, wrapped_key, failed, locked_until, created) VALUES (?,?,?,?,0,0,?)",
        (login, salt, kdf.to_json(), wrapped, _now_iso()),
    )
