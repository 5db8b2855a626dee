"""Cryptographic building blocks, all from the `cryptography` package.

- Data key: 32 random bytes per database. Records and change payloads are sealed with AES-256-GCM
  (random 96-bit nonce) with associated data binding database id, kind, record id and key version.
- Operator wrap: the data key sealed with AES-256-GCM under a key derived from the passphrase with
  Argon2id (random 16-byte salt; parameters stored beside the wrap).
- Recovery wrap: the data key sealed to the county's X25519 recovery public key with HPKE
  (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), info binding the database id.
- Blind index: HMAC-SHA256 under an index key over the normalised value, for equality lookups.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

NONCE = 12
HPKE_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


class DecryptionError(Exception):
    """A ciphertext failed authentication: wrong key, or data swapped or tampered with."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters, stored with every passphrase wrap so they can be raised later."""

    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "KdfParams":
        return cls(**json.loads(text))


DEFAULT_KDF = KdfParams()
_new_wrap_kdf = DEFAULT_KDF


def new_wrap_kdf() -> KdfParams:
    """The Argon2id profile for a new passphrase wrap (a new database or operator, a changed
    passphrase): DEFAULT_KDF. No environment variable or setting changes it; only a test suite lowers
    it, for its own process, through `use_kdf_in_this_process`. Each wrap stores its profile, so
    unlocking always uses the one it was made with."""
    return _new_wrap_kdf


def use_kdf_in_this_process(params: KdfParams) -> None:
    """For test suites (tests/conftest.py, tests/support/sitecustomize.py): new wraps made by this
    process use `params`. The program itself never calls this."""
    global _new_wrap_kdf
    _new_wrap_kdf = params


def derive_key(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    return Argon2id(
        salt=salt, length=32, iterations=params.iterations, lanes=params.lanes, memory_cost=params.memory_kib
    ).derive(passphrase.encode("utf-8"))


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], aad)
    except (InvalidTag, ValueError):
        raise DecryptionError("密文校验失败") from None


class _Heads(dict):
    """kind -> the start of a record's associated data ("jd1|db id|kind|"), made on first use."""

    def __init__(self, prefix: bytes):
        super().__init__()
        self.prefix = prefix

    def __missing__(self, kind: str) -> bytes:
        head = self[kind] = self.prefix + kind.encode() + b"|"
        return head


class Sealer:
    """Seals and opens record blobs and change payloads of one database under its data key."""

    def __init__(self, data_key: bytes, db_id: str, key_version: int = 1):
        self._aead = AESGCM(data_key)
        self._prefix = f"jd1|{db_id}|".encode()
        self.key_version = key_version
        self._heads = _Heads(self._prefix)

    def _aad(self, kind: str, record_id: str) -> bytes:
        return self._prefix + f"{kind}|{record_id}|{self.key_version}".encode()

    def seal(self, kind: str, record_id: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, self._aad(kind, record_id))

    def seal_many(self, items) -> list[bytearray]:
        """`seal` of many (kind, record id, plaintext) at once (a merge seals thousands of change rows):
        the same associated data, one random nonce each, drawn from the system's random source in
        one call. Each as a bytearray: the sqlite3 module binds one as a BLOB directly, where a bytes
        value first goes through its adapter lookup (about 1 µs a value, more than the copy costs)."""
        encrypt, heads, tail = self._aead.encrypt, self._heads, f"|{self.key_version}".encode()
        nonces = os.urandom(NONCE * len(items))
        out = []
        append = out.append
        at = 0
        for kind, record_id, plaintext in items:
            nonce = nonces[at:at + NONCE]
            at += NONCE
            blob = bytearray(nonce)
            blob += encrypt(nonce, plaintext, heads[kind] + record_id.encode() + tail)
            append(blob)
        return out

    def change_sealer(self) -> tuple:
        """What `seal_many` does for change rows, in parts for a caller's own loop (app.store.changelog):
        `encrypt` (nonce, plaintext, associated data), and the text the associated data of the change
        `site:seq` is made of, `head` + "site:seq" + `tail` (what `seal("change", "site:seq", …)`
        binds), so that the caller makes it with one format."""
        return self._aead.encrypt, self._prefix.decode() + "change|", f"|{self.key_version}"

    def open(self, kind: str, record_id: str, blob: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:NONCE], blob[NONCE:], self._aad(kind, record_id))
        except (InvalidTag, ValueError):
            raise DecryptionError(f"记录 {record_id} ({kind}) 解密失败:数据被篡改或与其他记录互换") from None

    def record_opener(self):
        """What `open` does, in parts for a caller's own loop over many rows (app.store.bodies): `decrypt`
        (nonce, ciphertext, associated data; raises one of `errors`), `heads[kind]` + record id + `tail`
        is the associated data `open` binds."""
        return self._aead.decrypt, self._heads, f"|{self.key_version}".encode(), (InvalidTag, ValueError, TypeError)


def recovery_info(db_id: str) -> bytes:
    return b"jiandang recovery v1|" + db_id.encode()


def wrap_to_recovery(public_key: X25519PublicKey, data_key: bytes, db_id: str) -> bytes:
    return HPKE_SUITE.encrypt(data_key, public_key, info=recovery_info(db_id))


def unwrap_with_recovery(private_key: X25519PrivateKey, wrapped: bytes, db_id: str) -> bytes:
    try:
        return HPKE_SUITE.decrypt(wrapped, private_key, info=recovery_info(db_id))
    except (InvalidTag, ValueError):  # another key, or a damaged wrap
        raise DecryptionError("恢复密钥不匹配此数据库") from None


def blind_digest(index_key: bytes, field: str, value: str) -> bytes:
    """HMAC-SHA256 over the field type and normalised value, truncated to 16 bytes."""
    return hmac.new(index_key, f"{field}\x1f{value}".encode(), hashlib.sha256).digest()[:16]


def blind_digester(index_key: bytes):
    """`blind_digest` under one index key, as a function of (field, value): the HMAC keyed once and
    copied for each value (the standard library's `HMAC.copy`, as its documentation suggests for
    values with a common prefix) instead of keyed again each time: a third less time a value, which a
    merge of many members' ID numbers pays per member. The same digests (tests/test_blind_digest.py)."""
    keyed = hmac.new(index_key, digestmod=hashlib.sha256)

    def digest(field: str, value: str) -> bytes:
        mac = keyed.copy()
        mac.update(f"{field}\x1f{value}".encode())
        return mac.digest()[:16]

    return digest


def content_digest(index_key: bytes, data: bytes) -> str:
    """The content address of an attachment: HMAC-SHA256 under the (county-wide) index key, in hex.
    Keyed, so the address of a photo on disk does not confirm the photo to someone holding a copy;
    county-wide, so a laptop and the county name the same photo the same way."""
    return hmac.new(index_key, b"jiandang attachment\x1f" + data, hashlib.sha256).hexdigest()


def load_x25519_public(data: bytes) -> X25519PublicKey:
    """An X25519 public key from PEM, or 32 raw bytes, or 64 hex characters."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, X25519PublicKey):
            raise ValueError("不是 X25519 公钥")
        return key
    if len(text) == 64:
        return X25519PublicKey.from_public_bytes(bytes.fromhex(text.decode()))
    if len(data) == 32:
        return X25519PublicKey.from_public_bytes(data)
    raise ValueError("无法识别的公钥格式(应为 PEM 或 64 位十六进制)")


def load_x25519_private(data: bytes) -> X25519PrivateKey:
    key = serialization.load_pem_private_key(data.strip(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError("不是 X25519 私钥")
    return key


def x25519_public_pem(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_new_key_file(path, data: bytes) -> None:
    """Create a private-key file that did not exist (O_EXCL, as age-keygen does): an existing file, which
    may be the only copy of an older database's key, is never overwritten (FileExistsError).
    Mode 0o600 where the system has POSIX modes; on Windows the profile folder's ACL applies."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(path)
        raise


def x25519_private_pem(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
