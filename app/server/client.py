"""The laptop side of the county sync service: `jiandang sync now` and 立即同步.

Standard library only (http.client + ssl): the laptop build needs no HTTP package, and http.client,
unlike urllib, never sends county data through a proxy taken from the environment.

One sync is: health check (is this our county's service?), export the upstream bundle, upload it,
fetch the downstream bundle with a signed request, import it - the same library functions as the
USB path (app.sync.exchange). Network failures are retried with exponential back-off; an upload
is idempotent at the county (a bundle received twice is a duplicate), so retrying is always safe.
When the service cannot be reached the error says so and that the USB path still works.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.server import protocol
from app.store import Store
from app.sync import exchange, identity

SERVER_KEY = "sync_server_url"  # laptop meta: the county service's address (set at enrollment)
CA_KEY = "sync_server_ca"  # laptop meta: the county service's TLS certificate (PEM), pinned at enrollment
STEPS = ("连接县同步服务", "导出本机更改", "上传同步包", "取回县级包", "导入县级包")
USB_HINT = "本机数据没有丢失,可以稍后再试,或改用U盘同步(同步 › 导出到U盘)"


class SyncError(Exception):
    """The sync could not be completed; the message (Chinese) says why and what to do."""


class Unreachable(SyncError):
    """The service could not be reached (network down, wrong address, service not running)."""


class _Retry(Exception):
    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self) -> dict:
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}


@dataclass
class SyncResult:
    reports: list = field(default_factory=list)  # [upload report from the county, import report of the downstream bundle]
    notes: list = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return any(r.refused for r in self.reports)


def read_ca_file(ca_file) -> str:
    """The county service's TLS certificate (PEM, from `jiandang tls-cert`), or a SyncError saying in
    Chinese why the file cannot be used."""
    from app.core.oserrors import os_reason  # noqa: PLC0415

    try:
        data = Path(ca_file).read_bytes()
    except OSError as exc:
        raise SyncError(f"无法读取证书文件 {ca_file}:{os_reason(exc)}") from None
    if not data.isascii() or b"BEGIN CERTIFICATE" not in data:
        raise SyncError(f"{ca_file} 不是 PEM 格式的证书(应以 -----BEGIN CERTIFICATE----- 开头;"
                        "请给 jiandang tls-cert 生成的 .pem 证书,不是私钥)")
    return data.decode("ascii")


def settings(store: Store, server: str | None = None, ca_file=None) -> tuple[str, str | None]:
    """The service address and pinned certificate: the overrides when given, else the laptop's own
    (set at enrollment or remembered by `sync now --remember`)."""
    url = (server or store.meta(SERVER_KEY) or "").strip()
    if not url:
        raise SyncError("没有设置县同步服务的地址:请用 --server 指定(如 https://192.168.1.10:8765),"
                        "或请县里在登记时设置;也可以继续用U盘同步")
    if ca_file:
        ca = read_ca_file(ca_file)
    else:
        ca = store.meta(CA_KEY) or None
    return url, ca


def remember(store: Store, url: str, ca: str | None) -> None:
    with store.transaction():
        store.set_meta(SERVER_KEY, url)
        if ca:
            store.set_meta(CA_KEY, ca)


_VERIFY_REASONS = (  # OpenSSL's verification messages, as a county IT person would read them
    ("self-signed", "对方用的是另一张自签名证书"),
    ("self signed", "对方用的是另一张自签名证书"),
    ("hostname mismatch", "证书上写的地址与所连的地址不符"),
    ("ip address mismatch", "证书上写的地址与所连的地址不符"),
    ("expired", "证书已过期"),
    ("not yet valid", "证书尚未生效(请核对本机日期时间)"),
    ("local issuer", "证书不是由登记时保存的那张签发的"),
)


def _verify_reason(exc: ssl.SSLCertVerificationError) -> str:
    message = (exc.verify_message or str(exc) or "").lower()
    for needle, text in _VERIFY_REASONS:
        if needle in message:
            return text
    return f"校验失败:{exc.verify_message or exc}"


class Client:
    """HTTP(S) to one county service with retries and back-off."""

    def __init__(self, url: str, ca_pem: str | None = None, *, retries: int = 4, backoff: float = 1.0,
                 timeout: float = 30.0, import_timeout: float = 600.0, note: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] | None = None):
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SyncError(f"县同步服务地址不对:{url}(应像 https://192.168.1.10:8765)")
        self.url = url.strip().rstrip("/")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.base = parts.path.rstrip("/")
        self.context = None
        self.pinned = bool(ca_pem)
        if self.https:
            try:
                self.context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()
            except (ssl.SSLError, ValueError) as exc:
                raise SyncError(f"登记时设置的县同步服务证书无法使用({exc}):请向县里索取证书,用 --ca-cert 指定") from None
        self.retries, self.backoff = retries, backoff
        self.timeout, self.import_timeout = timeout, import_timeout
        self.note = note or (lambda text: None)
        self.sleep = sleep or time.sleep

    # ------------------------------------------------------------------ one request

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float | None = None) -> Response:
        """One attempt. Network failures raise _Retry; TLS verification failures raise SyncError."""
        conn = self._connection(self.timeout)
        try:
            conn.connect()
            if timeout:
                conn.sock.settimeout(timeout)
            conn.request(method, self.base + path, body=body, headers=headers or {})
            answer = conn.getresponse()
            data = answer.read()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data)
        except ssl.SSLCertVerificationError as exc:
            if not self.pinned:  # no certificate from the county on this laptop: the system's authorities were asked
                raise SyncError(f"县同步服务 {self.url} 的证书无法验证({_verify_reason(exc)}),本机也没有保存县里的证书:"
                                "已停止,未发送任何数据。请向县里索取证书文件(用 jiandang tls-cert 生成的 .pem),"
                                "用 --ca-cert 指定(加 --remember 记住)") from None
            raise SyncError(f"县同步服务 {self.url} 的证书与本机登记时保存的不符({_verify_reason(exc)}):"
                            "可能连到了别的机器,已停止,未发送任何数据。请核对地址,或向县里索取正确的证书"
                            "(--ca-cert)") from None
        except ssl.SSLError as exc:
            raise _Retry(f"TLS 握手失败({exc.reason or exc})") from None
        except socket.gaierror:
            raise _Retry(f"找不到主机 {self.host}") from None
        except (TimeoutError, socket.timeout):
            raise _Retry("等待应答超时") from None
        except ConnectionRefusedError:
            raise _Retry("连接被拒绝(服务没有运行,或端口不对)") from None
        except (http.client.HTTPException, OSError) as exc:
            hint = ";若县同步服务用了 TLS 证书,地址应以 https:// 开头" if self.url.startswith("http://") else ""
            raise _Retry(f"连接中断({type(exc).__name__}){hint}") from None
        finally:
            conn.close()

    def call(self, what: str, attempt: Callable[[], Response]) -> Response:
        """Retry `attempt` on network failures, 5xx and 429 with exponential back-off."""
        tries = self.retries + 1
        for i in range(tries):
            try:
                answer = attempt()
                if answer.status >= 500:
                    raise _Retry(f"服务出错(HTTP {answer.status})")
                if answer.status == 429:
                    wait = answer.headers.get("retry-after", "")
                    raise _Retry(answer.json().get("message") or "请求过于频繁",
                                 float(wait) if wait.isdigit() else None)
                return answer
            except _Retry as exc:
                if i == tries - 1:
                    raise Unreachable(f"{what}失败:无法连接县同步服务 {self.url}({exc})。已试 {tries} 次。{USB_HINT}") from None
                wait = exc.wait if exc.wait is not None else self.backoff * (2 ** i)
                wait = min(wait, 60.0) * (1 + random.random() * 0.25)
                self.note(f"{what}:{exc},{wait:.0f} 秒后重试(第 {i + 1} 次重试,最多重试 {tries - 1} 次)")
                self.sleep(wait)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ the endpoints

    def health(self) -> dict:
        answer = self.call("连接县同步服务", lambda: self.request("GET", protocol.HEALTH))
        data = answer.json()
        if answer.status != 200 or data.get("service") != protocol.SERVICE:
            raise SyncError(f"{self.url} 不是建档县同步服务(HTTP {answer.status}):请核对地址")
        return data

    def upload(self, name: str, data: bytes) -> exchange.Report:
        headers = {"Content-Type": "application/octet-stream", protocol.NAME_HEADER: name}
        answer = self.call("上传同步包", lambda: self.request("POST", protocol.BUNDLES, data, headers, self.import_timeout))
        body = answer.json()
        if "report" in body:
            return protocol.report_from_dict(body["report"])
        return exchange.Report(name, "refused", body.get("message") or f"县同步服务拒绝了上传(HTTP {answer.status})")

    def fetch(self, store: Store, after: int | None = None, part_of: int | None = None) -> tuple[str, bytes]:
        """The site's downstream bundle, requested with the device key's signature over a challenge; with
        `after` (the `rowid` of the bundle of this export imported last) the export's next part."""
        county, site, key = store.meta("county_site_id"), store.site_id, identity.device_signing_key(store)

        def attempt() -> Response:
            got = self.request("GET", protocol.CHALLENGE)
            if got.status != 200:
                return got
            challenge = str(got.json().get("challenge", ""))
            signature = key.sign(protocol.fetch_message(county, site, challenge, after, part_of)).hex()
            asked = {"site": site, "challenge": challenge, "signature": signature}
            if after is not None:
                asked.update(after=int(after), part_of=int(part_of or 0))
            body = json.dumps(asked).encode()
            answer = self.request("POST", protocol.DOWNSTREAM, body, {"Content-Type": "application/json"},
                                  self.import_timeout)
            if answer.status == 401:  # the challenge expired (e.g. the service restarted): a new one
                raise _Retry("取件请求码已过期", 0)
            return answer

        answer = self.call("取回县级包", attempt)
        if answer.status != 200:
            raise SyncError(answer.json().get("message") or f"县同步服务拒绝了取件(HTTP {answer.status})")
        return protocol.safe_name(answer.headers.get(protocol.NAME_HEADER.lower()), "县级包.jdb"), answer.body


MAX_ROUNDS = 50  # bundles of images only each way in one sync (images beyond that go with the next sync)
MAX_CHANGE_BUNDLES = 10_000  # bundles that continue with changes, each way (10,000 changes each): no real county nears it


def sync_now(store: Store, url: str, ca_pem: str | None = None, progress: Callable[[int, int], None] | None = None,
             *, retries: int = 4, backoff: float = 1.0, note: Callable[[str], None] | None = None,
             budget: int = exchange.attachment_sync.DEFAULT_BUDGET) -> SyncResult:
    """Export, upload, fetch, import. Raises Unreachable when the service cannot be reached (nothing
    is lost: the USB path still works) and SyncError for other failures; refused bundles are
    reported, not raised."""
    if store.role == "county":
        raise SyncError("县级数据库不用“立即同步”:它运行同步服务(jiandang serve)")
    identity.device_certificate(store)  # a clear message when this database was not enrolled
    result = SyncResult()
    notes = note or result.notes.append
    client = Client(url, ca_pem, retries=retries, backoff=backoff, note=notes)
    step = _stepper(progress)
    step(0)
    health = client.health()
    if health.get("county") != store.meta("county_site_id"):
        raise SyncError(f"{client.url} 上运行的是另一个县级数据库({health.get('county_name')},{health.get('county')})"
                        f"的同步服务,不是本机登记的县({store.meta('county_site_id')}):请核对地址")
    if health.get("county_name") and health["county_name"] != store.meta("county_name"):
        store.set_meta("county_name", health["county_name"])  # named in the sync dialog and import lines
    step(1)
    limit = int(health.get("max_upload") or 0)
    if limit:  # images per bundle well under the service's upload limit
        budget = max(1, min(budget, limit // 2))
    after, part_of, image_rounds = None, None, 0
    for _ in range(MAX_CHANGE_BUNDLES + MAX_ROUNDS):
        # every change the county has not acknowledged, exchange.CHANGES_PER_BUNDLE a bundle, each
        # bundle continuing after the last change of the one before; then images. The images are
        # remembered as sent only once the county has them: an upload cut off sends them again
        # next time, an accepted one never
        exported = exchange.export_upstream(store, budget=budget, after=after, part_of=part_of, mark=False)
        name, data = exported
        if limit and len(data) > limit:
            raise SyncError(f"本机同步包 {len(data) // (1024 * 1024)} MB,超过县同步服务的上传上限 {limit // (1024 * 1024)} MB:"
                            "请改用U盘同步,或请县里调大上限")
        step(2)
        report = client.upload(name, data)
        result.reports.append(report)
        if report.status not in ("accepted", "duplicate"):
            break
        exported.mark_sent(store)
        if not exported.more:
            break
        if not exported.more_changes:
            image_rounds += 1
            if image_rounds >= MAX_ROUNDS:
                break
        after, part_of = exported.last, exported.part_of
        del exported, data  # one bundle in memory at a time
    step(3)
    after, part_of, image_rounds = None, None, 0
    for _ in range(MAX_CHANGE_BUNDLES + MAX_ROUNDS):
        # the county's changes for this laptop, exchange.CHANGES_PER_BUNDLE a bundle, each fetched
        # after the one before was imported; then images
        try:
            down_name, down = client.fetch(store, after, part_of)
        except Unreachable:
            raise
        except SyncError as exc:
            result.reports.append(exchange.Report("县级包", "refused", str(exc)))
            step(5)
            return result
        step(4)
        report = exchange.import_bundle(store, down, down_name)
        result.reports.append(report)
        if report.status != "accepted" or not (report.more or report.more_changes):
            break
        if not report.more_changes:
            image_rounds += 1
            if image_rounds >= MAX_ROUNDS:
                break
        after, part_of = int(store.meta("sync_down_rowid", 0) or 0), part_of or report.seq
        del down
    step(5)
    return result


def _stepper(progress):
    def step(done: int) -> None:
        if progress:
            progress(done, len(STEPS))
    return step

