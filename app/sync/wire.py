"""The bundle container (docs/bundle-format.md): framing, signature, sealing, size limits.

    MAGIC (8) | signer Ed25519 public key (32) | header length (u32 BE) | body length (u32 BE)
    | header (canonical JSON) | body | Ed25519 signature (64) over every byte before it

The reader checks the total size, the framing and the signature BEFORE it parses the header,
decrypts or decompresses anything. Bodies of sync bundles are zlib-compressed canonical JSON sealed
with HPKE (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) to the recipient's X25519 key with
info = INFO_PREFIX + header bytes, so a header cannot be swapped onto another body.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import orjson
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.store.crypto import HPKE_SUITE

try:  # Intel ISA-L's inflate (python-isal): the same zlib format, read about five times faster
    from isal import isal_zlib as _inflating

    INFLATER = "ISA-L"
except ImportError:  # a machine without a wheel for it reads with the standard library's zlib
    _inflating = zlib
    INFLATER = "zlib"

MAGIC = b"JDBNDL01"
INFO_PREFIX = b"jiandang bundle v1|"
PREFIX = len(MAGIC) + 32 + 8
SIGNATURE = 64
MAX_HEADER = 64 * 1024
MAX_BUNDLE = 256 * 1024 * 1024  # bytes on disk
MAX_PAYLOAD = 256 * 1024 * 1024  # bytes after decompression (zip bomb limit; a township's first bundle is ~100 MB)
MAX_RATIO = 100  # and at most this many times the compressed size (real payloads: ~10)...
RATIO_FLOOR = 16 * 1024 * 1024  # ...once past this
FORMAT = 1
# A bundle that continues an export (`continues`): a reader older than parts would import it past a
# missing part and acknowledge beyond the gap, so such a bundle says format 2, which that reader refuses
# ("不支持的包格式版本 2,请升级程序"). The first bundle of every export stays format 1.
PARTS_FORMAT = 2
READABLE_FORMATS = (FORMAT, PARTS_FORMAT)


class BundleError(Exception):
    """A bundle was refused. The message (Chinese) says why and what to do."""


NOT_A_BUNDLE = "不是建档同步包(文件开头不对)"
TRUNCATED = "同步包不完整(文件被截断,可能在写入时拔出了U盘),请在发件电脑上重新导出"
TOO_LONG = "同步包长度与包头不符(文件已损坏或被改动),请重新导出"
UNKNOWN_SIGNER = "签名密钥不属于任何已登记的设备或本县:此包不是由本县登记的电脑导出的,已拒收"


def canonical(obj) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pack(signing_key: Ed25519PrivateKey, header: dict, body: bytes) -> bytes:
    """Frame and sign a header and an already sealed body."""
    head = canonical(header)
    if len(head) > MAX_HEADER:
        raise BundleError("包头过大")
    signed = MAGIC + raw_public(signing_key.public_key()) + struct.pack(">II", len(head), len(body)) + head + body
    return signed + signing_key.sign(signed)


def seal_payload(payload: dict, recipient_public, header: dict) -> bytes:
    """Compress and seal a payload to the recipient with the header bound as HPKE info."""
    return HPKE_SUITE.encrypt(zlib.compress(canonical(payload), 6), recipient_public, info=INFO_PREFIX + canonical(header))


class Verified:
    """A bundle whose framing and signature have been checked: signer key, header bytes, body."""

    def __init__(self, signer: bytes, header_bytes: bytes, body: bytes, data: bytes):
        self.signer = signer
        self.header_bytes = header_bytes
        self.body = body
        self.digest = digest(data)
        self._header = None

    @property
    def header(self) -> dict:
        if self._header is None:
            try:
                header = json.loads(self.header_bytes.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise BundleError("包头不是有效的 JSON(签名虽然正确,但发件程序有误),请联系县扶贫办") from None
            if not isinstance(header, dict) or header.get("format") not in READABLE_FORMATS:
                raise BundleError(f"不支持的包格式版本 {header.get('format') if isinstance(header, dict) else '?'},请升级程序")
            self._header = header
        return self._header


class Frame(NamedTuple):
    signer: bytes  # raw Ed25519 public key
    head_len: int
    body_len: int
    total: int  # the exact file length the framing announces


def check_prefix(prefix) -> Frame:
    """Magic, signer key and framing lengths from the first PREFIX bytes (bytes or any buffer). The
    county service refuses junk with this before it reads the rest of an upload."""
    if len(prefix) < len(MAGIC) or prefix[: len(MAGIC)] != MAGIC:
        raise BundleError(NOT_A_BUNDLE)
    if len(prefix) < PREFIX:
        raise BundleError(TRUNCATED)
    head_len, body_len = struct.unpack(">II", prefix[len(MAGIC) + 32: PREFIX])
    if head_len > MAX_HEADER:
        raise BundleError("包头长度超出上限,文件已损坏")
    return Frame(bytes(prefix[len(MAGIC): len(MAGIC) + 32]), head_len, body_len, PREFIX + head_len + body_len + SIGNATURE)


def verify(data, known_signer: Callable[[bytes], object | None]) -> tuple[Verified, object]:
    """Check size, framing and signature. `data` is bytes or any buffer (the county service passes a
    memory map of the uploaded file: nothing is copied). `known_signer(raw_public_key)` returns the
    signer's identity (certificate) or None when the key is not enrolled. Nothing is parsed before
    the signature has been verified."""
    if len(data) > MAX_BUNDLE:
        raise BundleError(f"文件过大({len(data) // (1024 * 1024)} MB,上限 {MAX_BUNDLE // (1024 * 1024)} MB),不是本系统导出的同步包")
    if len(data) < PREFIX + SIGNATURE:
        check_prefix(data)  # not a bundle at all, or cut short
        raise BundleError(TRUNCATED)
    frame = check_prefix(data[:PREFIX])
    signer = frame.signer
    if len(data) < frame.total:
        raise BundleError(TRUNCATED)
    if len(data) > frame.total:
        raise BundleError(TOO_LONG)
    identity = known_signer(signer)
    if identity is None:
        raise BundleError(UNKNOWN_SIGNER)
    try:
        Ed25519PublicKey.from_public_bytes(signer).verify(data[-SIGNATURE:], data[:-SIGNATURE])
    except (InvalidSignature, ValueError):
        raise BundleError("签名校验失败:文件已损坏或被改动,已拒收。请在发件电脑上重新导出") from None
    head = bytes(data[PREFIX: PREFIX + frame.head_len])
    body = data[PREFIX + frame.head_len: frame.total - SIGNATURE]
    return Verified(signer, head, body, data), identity


def open_payload(verified: Verified, recipient_private, limit: int | None = None) -> dict:
    """Decrypt (HPKE, header bound as info) and decompress with a size limit, then parse."""
    return inflate_payload(decrypt_body(verified, recipient_private), limit)


def decrypt_body(verified: Verified, recipient_private) -> bytes:
    try:
        return HPKE_SUITE.decrypt(verified.body, recipient_private, info=INFO_PREFIX + verified.header_bytes)
    except (InvalidTag, ValueError):  # for another database, or changed on the way
        raise BundleError("无法解密:此包不是发给本数据库的,或已被改动") from None


def inflate_payload(compressed, limit: int | None = None) -> dict:
    """The payload: `inflate` then `parse`."""
    return parse(*inflate(compressed, limit))


def inflate(compressed, limit: int | None = None, *, scan: bool = True) -> tuple[bytearray, bool | None]:
    """The payload's JSON text and whether it holds a run of 19 or more digits (see `parse`; None
    without `scan`: the county's typed reading of an upload reads long numbers exactly itself, and
    `parse` looks for them when it is given None).
    Decompresses in 1 MiB steps with a running limit on the output (zip bomb); parses nothing.

    The limit is MAX_PAYLOAD, and also MAX_RATIO times the compressed size once past RATIO_FLOOR:
    real payloads compress about 9-10 to 1 (measured on demo data), a zip bomb about 1000 to 1, so a
    204 KB body that would inflate to 200 MB is refused after 20 MB instead of being held whole.
    The output goes into one buffer (no list of pieces joined into a second copy), and the scan
    for long digit runs (see `parse`) is done piece by piece as they come. Inflated with ISA-L
    (`isal`, where installed: 0.1 µs a change of an upload against zlib's 0.48; the same results,
    the same limits, tests/test_bundle.py)."""
    limit = min(limit or MAX_PAYLOAD, max(RATIO_FLOOR, MAX_RATIO * len(compressed)))
    inflater = _inflating.decompressobj()
    out = bytearray()
    long_number, tail = False, b""

    def take(chunk: bytes) -> None:
        nonlocal long_number, tail
        if len(out) + len(chunk) > limit:
            raise BundleError(f"解压后内容超过上限({limit / (1024 * 1024):.0f} MB,不超过压缩数据的 {MAX_RATIO} 倍):"
                              "疑似恶意压缩包,已拒收")
        if scan and not long_number:
            scanned = (tail + chunk).translate(_DIGITS_AS_ZERO)
            long_number = _LONG_NUMBER in scanned
            tail = scanned[-(len(_LONG_NUMBER) - 1):]
        out.extend(chunk)

    source = memoryview(compressed)
    try:
        for start in range(0, len(source), _IN_STEP):  # the input in pieces: unconsumed_tail is a copy
            data = source[start: start + _IN_STEP]
            while data:
                take(inflater.decompress(data, _OUT_STEP))
                data = inflater.unconsumed_tail
        while not inflater.eof and (chunk := inflater.decompress(b"", _OUT_STEP)):
            take(chunk)
        if not inflater.eof:
            raise BundleError("包内容不完整(压缩数据被截断)")
    except (zlib.error, _inflating.error):
        raise BundleError("包内容无法解压(已损坏)") from None
    return out, long_number if scan else None


_IN_STEP = 256 * 1024
_OUT_STEP = 1024 * 1024
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def parse(raw, long_number: bool | None = None):
    """JSON of a payload. orjson (faster; the county parses every bundle) unless the text holds a run
    of 19 or more digits: orjson reads an integer beyond 64 bits as an inexact float where the
    standard library keeps it exact. Everything orjson refuses (NaN, lone surrogates, invalid UTF-8)
    goes to the standard library too, so the result is always the standard library's."""
    if long_number is None:
        long_number = _LONG_NUMBER in raw.translate(_DIGITS_AS_ZERO)
    if not long_number:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise BundleError("包内容不是有效的 JSON") from None


def peek_header(data: bytes) -> dict:
    """The header of a bundle this program has just written, for saying what it holds (how many
    changes). Not a check: an imported bundle is read only through `verify`."""
    head_len, _ = struct.unpack(">II", data[len(MAGIC) + 32: PREFIX])
    return json.loads(data[PREFIX: PREFIX + head_len].decode("utf-8"))


def write_atomic(path: Path, data: bytes) -> None:
    """Temporary file, fsync, rename, fsync of the folder: a pulled stick leaves no half file
    under the final name."""
    from app import fileio  # noqa: PLC0415

    fileio.write_atomic(path, data)  # owner-only, the temporary file removed in every path
