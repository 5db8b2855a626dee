"""Identity: the county's keys, device certificates, enrollment packages, revocation.

The county holds an Ed25519 signing key and an X25519 encryption key (sealed in its database by the
data key). A device gets its own pair at enrollment and a certificate signed by the county:
site id, site name, role, villages, public keys, validity and a block of household numbers.
The enrollment package is a file in the bundle container, signed by the county, whose body is the
device's private keys, the county-wide blind index key and the certificate, sealed with AES-256-GCM
under a key derived (Argon2id) from a one-time enrollment code the county shows on screen.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import weakref
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from app.store import Store, StoreError, crypto
from app.sync import numbers, refdata, wire

CERT_DAYS = 3 * 365
NUMBER_BLOCK = numbers.MIN_BLOCK  # the smallest block; see app.sync.numbers.block_size
FIRST_BLOCK = numbers.FIRST_BLOCK


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _raw(key) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _priv_raw(key) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


@dataclass
class Certificate:
    body: dict  # site_id, site_name, role, villages, sign_public, enc_public, not_before, not_after, number_block, issuer
    signature: bytes

    @property
    def site_id(self) -> str:
        return self.body["site_id"]

    @property
    def role(self) -> str:
        return self.body["role"]

    @property
    def villages(self) -> list[str]:
        return list(self.body["villages"])

    @property
    def sign_public(self) -> bytes:
        return bytes.fromhex(self.body["sign_public"])

    @property
    def enc_public(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(bytes.fromhex(self.body["enc_public"]))

    def covers(self, village_code: str | None) -> bool:
        """Whether the certificate covers this village: a 12-digit village code named in it, or in a
        township (9 digits) or county (6) it names. Anything else (a 13-digit code, a township code
        itself) is covered by no certificate."""
        if not village_code or len(village_code) != 12 or not village_code.isdigit():
            return False
        return any(village_code.startswith(v) for v in self.body["villages"])

    @cached_property
    def not_after(self) -> dt.datetime:
        """The end of validity, parsed once per certificate: an upload asks at the service's check and
        again at the merge."""
        return parse_iso(self.body["not_after"])

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or _now()) > self.not_after

    def to_json(self) -> str:
        return json.dumps({"body": self.body, "signature": self.signature.hex()}, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Certificate":
        data = json.loads(text)
        return cls(data["body"], bytes.fromhex(data["signature"]))

    def verify(self, county_sign_public: bytes) -> None:
        Ed25519PublicKey.from_public_bytes(county_sign_public).verify(self.signature, wire.canonical(self.body))


# ---------------------------------------------------------------------- county keys


def setup_county(store: Store) -> None:
    """Create the county's signing and encryption keys (once)."""
    if store.role != "county":
        raise StoreError("只有县级数据库有县级密钥")
    with store.transaction():
        if store.get_secret("county_sign_key") is None:
            store.put_secret("county_sign_key", _priv_raw(Ed25519PrivateKey.generate()))
            store.put_secret("county_enc_key", _priv_raw(X25519PrivateKey.generate()))
            store.set_meta("county_site_id", store.site_id)
            store.set_meta("county_sign_public", _raw(county_signing_key(store).public_key()).hex())
            store.set_meta("county_enc_public", _raw(county_encryption_key(store).public_key()).hex())


def county_signing_key(store: Store) -> Ed25519PrivateKey:
    raw = store.get_secret("county_sign_key")
    if raw is None:
        raise StoreError("此数据库没有县级签名密钥(不是用 init --role county 创建的县级数据库)")
    return Ed25519PrivateKey.from_private_bytes(raw)


# A county's own keys never change once made (setup_county): the county service reads them once per
# unlocked store instead of at every upload (two statements, on PostgreSQL two round trips). Kept
# beside the store's sealer, so they are forgotten with it when the store locks or closes.
_COUNTY_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _county_kept(store: Store, name: str, read):
    if store.role != "county":
        return read()
    kept = _COUNTY_KEYS.setdefault(store.sealer(), {})  # StoreLocked when locked, as reading would be
    if name not in kept:
        kept[name] = read()  # a StoreError (no key yet) is not kept
    return kept[name]


def county_encryption_key(store: Store) -> X25519PrivateKey:
    def read() -> X25519PrivateKey:
        raw = store.get_secret("county_enc_key")
        if raw is None:
            raise StoreError("此数据库没有县级加密密钥")
        return X25519PrivateKey.from_private_bytes(raw)
    return _county_kept(store, "county_enc_key", read)


def county_sign_public(store: Store) -> bytes:
    def read() -> bytes:
        value = store.meta("county_sign_public")
        if not value:
            raise StoreError("此数据库没有在县扶贫办登记,不能与县里同步。请用县里发的登记包新建数据库"
                             "(窗口:新建数据库 › 用县扶贫办发的登记包新建;命令行:jiandang init --enrollment)")
        return bytes.fromhex(value)
    return _county_kept(store, "county_sign_public", read)


_CHECKED: dict[tuple[bytes, bytes, bytes], bool] = {}  # (county key, signature, body) -> the signature held
_CHECKED_MAX = 10_000


def check_certificate(store: Store, cert: "Certificate") -> None:
    """The certificate is signed by this county (raises InvalidSignature otherwise). A certificate seen
    before in this process is not checked again: the county service meets each device's at every
    upload. The cache is keyed by the exact signed bytes and the county key, so a changed certificate
    is checked anew."""
    county = county_sign_public(store)
    key = (county, cert.signature, wire.canonical(cert.body))
    if _CHECKED.get(key):
        return
    cert.verify(county)
    if len(_CHECKED) >= _CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED[key] = True


def check_certificates(store: Store) -> int:
    """Check the county's signature on every certificate this county holds that is not revoked, and
    keep those that hold as checked (`check_certificate`'s cache), so that a device's first upload
    after the service starts is not the one that pays for it (about a tenth of the import of a day's
    small bundle: an Ed25519 verification). One that does not hold is not kept: its upload is refused
    as before. Returns how many were found good."""
    county = county_sign_public(store)
    good = 0
    for (text,) in store.conn.execute("SELECT certificate FROM certificates WHERE revoked IS NULL"):
        try:
            cert = Certificate.from_json(text)
            key = (county, cert.signature, wire.canonical(cert.body))
            if not _CHECKED.get(key):
                cert.verify(county)
        except Exception:  # noqa: BLE001 - a damaged or forged row: left to the upload, which refuses it
            continue
        if len(_CHECKED) >= _CHECKED_MAX:
            break
        _CHECKED[key] = True
        good += 1
    return good


def county_enc_public(store: Store) -> X25519PublicKey:
    return X25519PublicKey.from_public_bytes(bytes.fromhex(store.meta("county_enc_public")))


def fingerprint(raw_public: bytes) -> str:
    text = wire.digest(raw_public)[:20].upper()
    return "-".join(text[i:i + 4] for i in range(0, 20, 4))


# ---------------------------------------------------------------------- certificates


def certificates(store: Store, include_revoked: bool = True) -> list[dict]:
    rows = store.conn.execute("SELECT site_id, site_name, role, villages, not_after, number_block, issued, revoked "
                              "FROM certificates ORDER BY issued, site_id").fetchall()
    keys = ("site_id", "site_name", "role", "villages", "not_after", "number_block", "issued", "revoked")
    out = [dict(zip(keys, r)) for r in rows]
    return [c for c in out if include_revoked or not c["revoked"]]


def certificate_of(store: Store, site_id: str) -> tuple[Certificate, str | None] | None:
    row = store.conn.execute("SELECT certificate, revoked FROM certificates WHERE site_id = ?", (site_id,)).fetchone()
    return (Certificate.from_json(row[0]), row[1]) if row else None


def certificate_by_key(store: Store, raw_sign_public: bytes) -> tuple[Certificate, str | None] | None:
    row = store.conn.execute("SELECT certificate, revoked FROM certificates WHERE sign_public = ?",
                             (raw_sign_public,)).fetchone()
    return (Certificate.from_json(row[0]), row[1]) if row else None


def certificates_by_keys(store: Store, raw_sign_publics) -> dict[bytes, tuple[Certificate, str | None]]:
    """`certificate_by_key` for several keys in one statement (the county service's group of uploads:
    one round trip to a PostgreSQL county instead of one per upload). Keys enrolled nowhere are absent."""
    keys = list(dict.fromkeys(bytes(k) for k in raw_sign_publics))
    found: dict[bytes, tuple[Certificate, str | None]] = {}
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        for raw, text, revoked in store.conn.execute(
                f"SELECT sign_public, certificate, revoked FROM certificates WHERE sign_public IN ({','.join('?' * len(part))})",
                part):
            found[bytes(raw)] = (Certificate.from_json(text), revoked)
    return found


def _next_number_block(store: Store, villages: list[str]) -> list[int]:
    """A block of household numbers for a new device, sized to its villages (app.sync.numbers)."""
    return numbers.allocate(store, villages)


def revoke(store: Store, site_id: str) -> None:
    found = certificate_of(store, site_id)
    if found is None:
        raise StoreError(f"没有站点 {site_id} 的证书。已登记的站点:{'、'.join(c['site_id'] for c in certificates(store)) or '无'}")
    with store.transaction():
        store.conn.execute("UPDATE certificates SET revoked = ? WHERE site_id = ? AND revoked IS NULL", (iso(_now()), site_id))


def revoked_sites(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT site_id FROM certificates WHERE revoked IS NOT NULL ORDER BY site_id")]


# ---------------------------------------------------------------------- enrollment


def new_enrollment_code() -> str:
    return base64.b32encode(secrets.token_bytes(15)).decode().rstrip("=")  # 24 characters, 120 bits


def _grouped(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isascii() and ch.isalnum())


@dataclass
class Enrollment:
    site_id: str
    code: str  # shown to the county officer, typed on the laptop
    package: bytes

    @property
    def code_display(self) -> str:
        return _grouped(self.code)


SERVER_URL = "enroll_server_url"  # county meta: the sync service address given to devices at enrollment
SERVER_CA = "enroll_server_ca"  # county meta: the service's TLS certificate (PEM) pinned on devices


_LEVEL_OF_LENGTH = {6: "county", 9: "township", 12: "village"}


def unknown_codes(store: Store, codes: list[str]) -> list[str]:
    """The codes (village 12 digits, township 9, county 6) that are not divisions of that level in
    the county's reference data. Nothing can be checked while the county has no divisions at all
    (a laptop enrolled then gets them with its next downstream bundle): []."""
    known = {(d["code"], d["level"]) for d in store.divisions()}
    if not known:
        return []
    return [c for c in codes if (c, _LEVEL_OF_LENGTH.get(len(c))) not in known]


def enroll(store: Store, *, site_name: str, role: str, villages: list[str], days: int = CERT_DAYS,
           site_id: str | None = None, code: str | None = None, server: str | None = None,
           server_ca: str | None = None) -> Enrollment:
    """Issue a certificate for a new device and build its enrollment package. `server` and
    `server_ca` (the county sync service's address and TLS certificate, docs/serve.md) go into the
    package and are remembered for later enrollments."""
    if store.role != "county":
        raise StoreError("只有县级数据库可以登记设备")
    if role not in ("village", "township"):
        raise StoreError(f"设备角色应为 village 或 township,而不是 {role!r}")
    if not (site_name or "").strip():
        raise StoreError("请给出设备的站点名称(如“龙井村工作队”):它出现在同步报告、冲突和设备列表里")
    if days < 1:
        raise StoreError(f"证书有效天数应至少为 1 天,而不是 {days}(不给出时为 {CERT_DAYS} 天)")
    bad = [v for v in villages if not (v.isdigit() and len(v) in (6, 9, 12))]
    if not villages or bad:
        raise StoreError(f"村代码应为 12 位数字(乡 9 位):{'、'.join(bad) or '未给出'}")
    unknown = unknown_codes(store, villages)
    if unknown:
        raise StoreError(f"以下代码不在本县的行政区划中:{'、'.join(unknown)}。"
                         f"请用 jiandang reference divisions {store.path.name} 查看本县的乡镇和村代码"
                         "(新设的村先用 jiandang reference add-division 添加),再登记")
    sign = Ed25519PrivateKey.generate()
    enc = X25519PrivateKey.generate()
    site_id = site_id or secrets.token_hex(8)
    now = _now()
    with store.transaction():
        body = {
            "site_id": site_id, "site_name": site_name, "role": role, "villages": sorted(set(villages)),
            "sign_public": _raw(sign.public_key()).hex(), "enc_public": _raw(enc.public_key()).hex(),
            "not_before": iso(now), "not_after": iso(now + dt.timedelta(days=days)),
            "number_block": _next_number_block(store, sorted(set(villages))), "issuer": store.site_id,
        }
        county_key = county_signing_key(store)
        cert = Certificate(body, county_key.sign(wire.canonical(body)))
        store.conn.execute(
            "INSERT INTO certificates(site_id, site_name, role, villages, sign_public, enc_public, not_after, number_block, "
            "certificate, issued) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (site_id, site_name, role, ",".join(body["villages"]), _raw(sign.public_key()), _raw(enc.public_key()),
             body["not_after"], json.dumps(body["number_block"]), cert.to_json().encode("utf-8"), iso(now)))
        # bytes for the BLOB (BYTEA) column: PostgreSQL would read text there in bytea's escape format,
        # where the backslash JSON puts before every '"' is not valid
        store.conn.execute("INSERT OR IGNORE INTO peers(site_id) VALUES (?)", (site_id,))
        if server is not None:
            store.set_meta(SERVER_URL, server)
        if server_ca is not None:
            store.set_meta(SERVER_CA, server_ca)
        server, server_ca = store.meta(SERVER_URL) or None, store.meta(SERVER_CA) or None
    code = _normalise_code(code) if code else new_enrollment_code()
    salt = secrets.token_bytes(16)
    kdf = crypto.new_wrap_kdf()
    header = {
        "format": wire.FORMAT, "type": "enrollment", "sender": store.site_id, "recipient": site_id, "seq": 0,
        "created": iso(now), "salt": salt.hex(), "kdf": json.loads(kdf.to_json()),
        "county_sign_public": store.meta("county_sign_public"), "county_enc_public": store.meta("county_enc_public"),
    }
    secret = {
        "certificate": json.loads(cert.to_json()), "sign_key": _priv_raw(sign).hex(), "enc_key": _priv_raw(enc).hex(),
        "index_key": store.get_secret("index_key").hex(), "county_site_id": store.site_id,
        "county_name": store.site_name,  # shown on the laptop (sync dialog, import lines)
        **refdata.outgoing(store, body["villages"]),  # divisions of its area, poverty lines with sources
        "server": server, "server_ca": server_ca,
    }
    key = crypto.derive_key(code, salt, kdf)
    body_bytes = crypto.seal(key, wire.canonical(secret), wire.canonical(header))
    return Enrollment(site_id, code, wire.pack(county_key, header, body_bytes))


@dataclass
class EnrollmentContents:
    header: dict
    certificate: Certificate
    sign_key: bytes
    enc_key: bytes
    index_key: bytes
    poverty_lines: dict
    divisions: list
    server: str | None = None
    server_ca: str | None = None
    poverty_line_sources: dict | None = None
    county_name: str | None = None
    monitoring_criteria: list | None = None  # 防返贫动态监测 (issue #20)

    @property
    def county_enc_public(self) -> X25519PublicKey:
        return X25519PublicKey.from_public_bytes(bytes.fromhex(self.header["county_enc_public"]))


def open_enrollment(data: bytes, code: str, name: str = "登记包") -> EnrollmentContents:
    """Verify and open an enrollment package with its code."""
    try:
        verified, _ = wire.verify(data, lambda raw: raw)  # self-signed by the county key it names
        header = verified.header
        if header.get("type") != "enrollment":
            raise wire.BundleError("这不是登记包(是同步包),请使用县扶贫办导出的登记包")
        if header.get("county_sign_public") != verified.signer.hex():
            raise wire.BundleError("登记包的签名者与其中的县级公钥不符,已拒绝")
        kdf = crypto.KdfParams(**header["kdf"])
        key = crypto.derive_key(_normalise_code(code), bytes.fromhex(header["salt"]), kdf)
        try:
            secret = json.loads(crypto.open_sealed(key, verified.body, verified.header_bytes))
        except crypto.DecryptionError:
            raise wire.BundleError("登记码不对(或登记包已损坏):请核对县扶贫办给出的登记码") from None
        cert = Certificate.from_json(json.dumps(secret["certificate"]))
        cert.verify(verified.signer)
        if cert.site_id != header["recipient"]:
            raise wire.BundleError("登记包中的证书与包头不符,已拒绝")
    except wire.BundleError as exc:
        raise wire.BundleError(f"{name}:{exc}") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise wire.BundleError(f"{name}:登记包内容不完整({exc})") from None
    return EnrollmentContents(header, cert, bytes.fromhex(secret["sign_key"]), bytes.fromhex(secret["enc_key"]),
                              bytes.fromhex(secret["index_key"]), secret.get("poverty_lines", {}), secret.get("divisions", []),
                              secret.get("server"), secret.get("server_ca"), secret.get("poverty_line_sources"),
                              secret.get("county_name"), secret.get("monitoring_criteria"))


def create_from_enrollment(path, contents: EnrollmentContents, *, operator: str, passphrase: str) -> Store:
    """Create a device database from an opened enrollment package. The county's encryption key is
    the recovery key; the blind index key is the county-wide one."""
    cert = contents.certificate
    store = Store.create(path, role=cert.role, site_name=cert.body["site_name"], operator=operator,
                         passphrase=passphrase, recovery_public_key=contents.county_enc_public,
                         site_id=cert.site_id, index_key=contents.index_key)
    try:
        with store.transaction():
            store.put_secret("device_sign_key", contents.sign_key)
            store.put_secret("device_enc_key", contents.enc_key)
            store.set_meta("county_site_id", contents.header["sender"])
            if contents.county_name:
                store.set_meta("county_name", contents.county_name)
            store.set_meta("county_sign_public", contents.header["county_sign_public"])
            store.set_meta("county_enc_public", contents.header["county_enc_public"])
            store.set_meta("certificate", cert.to_json())
            start, end = cert.body["number_block"]
            store.set_meta("number_block", f"{start}-{end}")
            if contents.server:
                store.set_meta("sync_server_url", contents.server)
            if contents.server_ca:
                store.set_meta("sync_server_ca", contents.server_ca)
            refdata.install(store, {"divisions": contents.divisions, "poverty_lines": contents.poverty_lines,
                                    "poverty_line_sources": contents.poverty_line_sources,
                                    "monitoring_criteria": contents.monitoring_criteria})
    except BaseException:
        store.close()
        raise
    return store


def device_certificate(store: Store) -> Certificate:
    text = store.meta("certificate")
    if not text:
        raise StoreError("此数据库没有在县扶贫办登记(没有设备证书),不能与县里同步。请用县里发的登记包新建数据库"
                         "(窗口:新建数据库 › 用县扶贫办发的登记包新建;命令行:jiandang init --enrollment)")
    return Certificate.from_json(text)


def device_signing_key(store: Store) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(store.get_secret("device_sign_key"))


def device_encryption_key(store: Store) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(store.get_secret("device_enc_key"))
