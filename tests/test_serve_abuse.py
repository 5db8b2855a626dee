"""The county sync service under abuse (issue #22): junk refused from its first bytes, uploads spooled
to an owner-only temporary file that never outlives the request, slow clients dropped, per-address
caps, challenge floods, and a 4xx JSON answer (never a 500 or a reset) for every malformed request.
The service runs on a thread over loopback; each client binds its own 127.0.0.x address."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from app.server import client, protocol
from app.server import app as server_app
from app.server import receive
from app.sync import exchange, identity, wire
from tests.test_serve import _counts, _post, _upload, hub  # noqa: F401 - hub is a fixture

MB = 1024 * 1024


# ---------------------------------------------------------------------- helpers


def _connect(server, source: str | None = None, timeout: float = 30) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout,
                                    source_address=(source, 0) if source else None)


def _head(length: int | None = None, path: str = protocol.BUNDLES, chunked: bool = False) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: county", f"{protocol.NAME_HEADER}: x-up-000001.jdb"]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict, dict]:
    """Read one HTTP answer; a reset instead of an answer fails the test."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, f"connection closed without an answer: {data!r}"
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", 0))
    while len(body) < length:
        part = sock.recv(65536)
        assert part, "connection closed in the middle of the answer"
        body += part
    return int(lines[0].split()[1]), json.loads(body[:length]), headers


def _error_shape(status: int, body: dict) -> None:
    assert 400 <= status < 500, (status, body)
    assert body["ok"] is False and isinstance(body["error"], str) and body["error"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body  # a Chinese message


class _Spools:
    """Records every temporary upload file: its mode when created and its bytes when handed to the import."""

    def __init__(self, monkeypatch):
        self.made: list[receive.Spool] = []
        self.modes: list[int] = []
        self.contents: list[bytes] = []
        outer = self

        class Recording(receive.Spool):
            def __init__(self, folder):
                super().__init__(folder)
                outer.made.append(self)
                outer.modes.append(os.stat(self.path).st_mode)

            def mapped(self):
                outer.contents.append(self.path.read_bytes())
                return super().mapped()

        monkeypatch.setattr(server_app, "Spool", Recording)

    def left(self) -> list[Path]:
        return [s.path for s in self.made if s.path.exists()]


def _wait(condition, seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# ---------------------------------------------------------------------- junk and the temporary file


def test_junk_is_refused_from_its_first_bytes_without_reading_or_storing_the_rest(hub, monkeypatch):
    county, _, _, start = hub
    spools = _Spools(monkeypatch)
    looked_up = []
    real = identity.certificate_by_key
    monkeypatch.setattr(identity, "certificate_by_key", lambda *a: looked_up.append(a) or real(*a))
    server = start(linger_seconds=0.5)
    before = _counts(county)
    with _connect(server, "127.0.0.11") as sock:
        sock.sendall(_head(30 * MB) + b"\x00junk" + os.urandom(64 * 1024))  # declares 30 MB, sends 64 KB
        t = time.monotonic()
        status, body, headers = _answer(sock)
        waited = time.monotonic() - t
    assert status == 422 and body["error"] == "bad_bundle" and "不是建档同步包" in body["message"]
    assert body["report"]["status"] == "refused" and body["line"].endswith(body["message"])
    assert waited < 5  # answered after a short linger, not after 30 MB or a 60 s stall
    assert spools.made == [] and looked_up == []  # nothing written, the database not even asked
    # a bundle-shaped prefix from a key no device of this county holds: refused from its first 48 bytes
    fake = wire.MAGIC + os.urandom(32) + struct.pack(">II", 100, 20 * MB)
    with _connect(server, "127.0.0.11") as sock:
        sock.sendall(_head(48 + 100 + 20 * MB + 64) + fake)
        status, body, _ = _answer(sock)
    assert status == 403 and body["error"] == "unknown_site" and "已登记" in body["message"]
    assert spools.made == []
    assert _counts(county) == before


def test_an_upload_goes_through_an_owner_only_temporary_file_that_never_outlives_the_request(hub, monkeypatch):
    county, a, _, start = hub
    folder = Path(county.path).parent
    leftover = folder / f"{receive.SPOOL_PREFIX}killed{receive.SPOOL_SUFFIX}"
    leftover.write_bytes(b"from a service that was killed mid-upload")
    spools = _Spools(monkeypatch)
    monkeypatch.setattr(server_app, "SMALL_UPLOAD", 0)  # a day's bundle is small: as if it were a large one
    server = start(linger_seconds=0.5)
    assert not leftover.exists()  # swept at start
    name, data = exchange.export_upstream(a)
    # a tampered copy (refused by the signature, on the worker), a cut one (the client goes away), then the real one
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 1
    status, body, _ = _upload(server.url, bytes(tampered), name, source="127.0.0.12")
    assert status == 422 and "签名校验失败" in body["message"]
    sock = _connect(server, "127.0.0.12")
    sock.sendall(_head(len(data)) + data[: len(data) // 2])
    assert _wait(lambda: len(spools.made) == 2)
    sock.close()
    status, body, _ = _upload(server.url, data, name, source="127.0.0.12")
    assert status == 200 and body["report"]["status"] == "accepted"
    assert len(spools.made) == 3
    assert _wait(lambda: spools.left() == [])  # removed after a refusal, a dropped connection and an import
    assert list(folder.glob(f"{receive.SPOOL_PREFIX}*")) == []
    if os.name != "nt":
        assert all(mode & 0o077 == 0 for mode in spools.modes)  # owner-only
    # what reached the disk is the bundle exactly as sent: signed and encrypted, nothing decrypted
    assert spools.contents == [bytes(tampered), data]
    for text in ("欧阳明远", "司马秀兰", "13912345678"):
        assert all(text.encode() not in content for content in spools.contents)


def test_a_small_upload_is_merged_from_memory_without_a_temporary_file(hub, monkeypatch):
    county, a, _, start = hub
    folder = Path(county.path).parent
    spools = _Spools(monkeypatch)
    server = start(linger_seconds=0.5)
    name, data = exchange.export_upstream(a)
    assert len(data) <= receive.SMALL_UPLOAD
    status, body, _ = _upload(server.url, data, name, source="127.0.0.14")
    assert status == 200 and body["report"]["status"] == "accepted"
    assert spools.made == [] and list(folder.glob(f"{receive.SPOOL_PREFIX}*")) == []
    status, body, _ = _upload(server.url, data, name, source="127.0.0.14")  # the same bytes again: nothing kept
    assert status == 200 and body["report"]["status"] == "duplicate"


def test_a_downstream_bundle_sent_back_to_the_county_is_called_the_wrong_kind_of_bundle(hub):
    county, a, _, start = hub
    server = start(linger_seconds=0.5)
    name, down = exchange.export_downstream(county, a.site_id)
    before = _counts(county)
    status, body, _ = _upload(server.url, down, name, source="127.0.0.13")
    assert status == 422 and body["error"] == "wrong_kind"
    assert "本县自己签发的包" in body["message"] and "笔记本电脑上导入" in body["message"]
    assert "不属于任何已登记的设备" not in body["message"]
    # the same file brought to the county on a USB stick: the same words
    report = exchange.import_bundle(county, down, name)
    assert report.refused and "本县自己签发的包" in report.message
    assert _counts(county) == before


# ---------------------------------------------------------------------- slow clients and slots


def test_a_trickling_upload_is_dropped_after_one_rate_window_though_it_never_stalls(hub):
    """One byte every 0.2 s: a stall timer restarted by every byte would keep it for ever."""
    county, a, _, start = hub
    server = start(rate_window=1.0, min_rate=1024, uploads_per_address=1)
    name, data = exchange.export_upstream(a)
    sock = _connect(server, "127.0.0.14")
    sock.sendall(_head(len(data)))
    t = time.monotonic()
    answer = None
    for i in range(len(data)):  # bounded: the service answers long before the end
        try:
            sock.sendall(data[i: i + 1])
        except OSError:
            break
        sock.settimeout(0.2)
        try:
            answer = _answer(sock)
            break
        except (TimeoutError, socket.timeout):
            continue
    held = time.monotonic() - t
    sock.close()
    assert answer is not None, "the trickle was never dropped"
    status, body, _ = answer
    assert status == 408 and body["error"] == "timeout" and "上传太慢" in body["message"]
    assert held < 3
    # its slot is free again: the same address uploads at once
    status, body, _ = _upload(server.url, data, name, source="127.0.0.14")
    assert status == 200 and body["report"]["status"] == "accepted"


def test_an_upload_must_finish_within_the_total_time_limit(hub):
    county, a, _, start = hub
    server = start(upload_seconds=1.5, rate_window=0.5, min_rate=64)
    name, data = exchange.export_upstream(a)
    assert len(data) > 600  # over 3 s at 200 bytes/s
    with _connect(server, "127.0.0.15") as sock:
        sock.sendall(_head(len(data)))
        t = time.monotonic()
        answer = None
        for i in range(0, len(data), 20):  # 20 bytes every 0.1 s: fast enough for the rate, too slow in all
            sock.sendall(data[i: i + 20])
            sock.settimeout(0.1)
            try:
                answer = _answer(sock)
                break
            except (TimeoutError, socket.timeout):
                continue
    assert answer is not None
    status, body, _ = answer
    assert status == 408 and "上传超时(超过 1.5 秒" in body["message"]
    assert 1.4 < time.monotonic() - t < 4


def test_one_address_cannot_hold_every_upload_slot(hub):
    county, a, b, start = hub
    server = start(uploads_per_address=2, max_uploads=3)
    name, data = exchange.export_upstream(a)
    held = []
    for _ in range(2):  # an attacker's address: two uploads that stall (they hold their slots)
        sock = _connect(server, "127.0.0.16")
        sock.sendall(_head(len(data)) + data[:10])
        held.append(sock)
    time.sleep(0.3)
    status, body, headers = _upload(server.url, data, name, source="127.0.0.16")
    assert status == 429 and body["error"] == "busy" and "同时进行的上传过多" in body["message"]
    assert headers["retry-after"].isdigit()
    # a laptop at another address is not held back
    result = client.sync_now(b, server.url, retries=0)
    assert [r.status for r in result.reports] == ["accepted", "accepted"]
    sock = _connect(server, "127.0.0.17")  # a third stalled upload fills the service
    sock.sendall(_head(len(data)) + data[:10])
    held.append(sock)
    time.sleep(0.3)
    status, body, headers = _upload(server.url, data, name, source="127.0.0.18")
    assert status == 503 and body["error"] == "busy" and "正忙" in body["message"] and headers["retry-after"]
    for sock in held:
        sock.close()
    assert _wait(lambda: _upload(server.url, data, name, source="127.0.0.18")[0] == 200)


def test_a_challenge_flood_evicts_no_laptops_challenge_and_is_rate_limited_per_address(hub):
    county, a, _, start = hub
    server = start(challenges_per_minute=0)  # no rate limit: the flood reaches the store of challenges
    host = ("127.0.0.1", server.port)
    laptop = http.client.HTTPConnection(*host, timeout=30, source_address=("127.0.0.19", 0))
    laptop.request("GET", protocol.CHALLENGE)
    mine = json.loads(laptop.getresponse().read())["challenge"]
    laptop.close()  # the laptop's client uses a new connection for each request, from the same address
    flood = http.client.HTTPConnection(*host, timeout=30, source_address=("127.0.0.20", 0))
    for _ in range(2000):  # on one keep-alive connection, about a second
        flood.request("GET", protocol.CHALLENGE)
        answer = flood.getresponse()
        answer.read()
        assert answer.status == 200
    flood.close()
    county_id = a.meta("county_site_id")
    signature = identity.device_signing_key(a).sign(protocol.fetch_message(county_id, a.site_id, mine)).hex()
    request = json.dumps({"site": a.site_id, "challenge": mine, "signature": signature}).encode()
    status, body, _ = _post(server.url, protocol.DOWNSTREAM, request, source="127.0.0.21")
    assert status == 401 and body["error"] == "challenge"  # only good from the address it was given to
    status, body, _ = _post(server.url, protocol.DOWNSTREAM, request, source="127.0.0.19")
    assert status == 200 and body["raw"][:8] == wire.MAGIC  # still valid after 2,000 others
    # with the default rate limit: a burst, then 429 with Retry-After, for that address only
    limited = start()
    flood = http.client.HTTPConnection("127.0.0.1", limited.port, timeout=30, source_address=("127.0.0.22", 0))
    statuses = []
    for _ in range(40):
        flood.request("GET", protocol.CHALLENGE)
        answer = flood.getresponse()
        statuses.append((answer.status, answer.getheader("Retry-After"), json.loads(answer.read())))
    flood.close()
    assert [s for s, _, _ in statuses[:30]] == [200] * 30
    status, retry, body = statuses[-1]
    assert status == 429 and retry.isdigit() and body["error"] == "rate_limited"
    result = client.sync_now(a, limited.url, retries=0)
    assert [r.status for r in result.reports] == ["accepted", "accepted"]


# ---------------------------------------------------------------------- malformed requests


def test_every_malformed_request_gets_a_4xx_json_answer_never_a_500(hub, caplog):
    county, a, _, start = hub
    server = start(linger_seconds=2)
    caplog.set_level(logging.WARNING)
    before = _counts(county)
    deep = ("[" * 2000 + "]" * 2000).encode()  # fits the 4 KB limit; json.loads raised RecursionError (500)
    cases = [
        (protocol.DOWNSTREAM, deep, 400),
        (protocol.DOWNSTREAM, ("{\"a\":" * 600 + "1" + "}" * 600).encode(), 400),
        (protocol.DOWNSTREAM, b"[1, 2]", 400),
        (protocol.DOWNSTREAM, b"\"site\"", 400),
        (protocol.DOWNSTREAM, b"\xff\xfe not utf-8", 400),
        (protocol.DOWNSTREAM, json.dumps({"site": a.site_id, "challenge": "x", "signature": "zz"}).encode(), 401),
        (protocol.DOWNSTREAM, b"[" * 10_000, 413),
        (protocol.BUNDLES, wire.MAGIC, 422),
        (protocol.BUNDLES, wire.MAGIC + os.urandom(32) + struct.pack(">II", 1 << 20, 0), 422),  # header too long
        (protocol.BUNDLES, b"JDBNDL02" + os.urandom(100), 422),
    ]
    for path, body, expected in cases:
        status, answer, _ = _post(server.url, path, body, source="127.0.0.23")
        _error_shape(status, answer)
        assert status == expected, (body[:20], status, answer)
    name, data = exchange.export_upstream(a)
    for wrong in (len(data) - 1, len(data) + 1):  # Content-Length not what the bundle's framing says
        with _connect(server, "127.0.0.23") as sock:
            sock.sendall(_head(wrong) + data[:wrong])
            status, answer, _ = _answer(sock)
        _error_shape(status, answer)
        assert status == 422 and answer["error"] == "bad_bundle"
    for method, path in (("GET", protocol.BUNDLES), ("POST", protocol.HEALTH), ("PUT", protocol.DOWNSTREAM),
                         ("GET", "/../../etc/passwd"), ("POST", "/api/v2/bundles")):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request(method, path, body=b"")
        answer = conn.getresponse()
        _error_shape(answer.status, json.loads(answer.read()))
        conn.close()
    assert _counts(county) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text  # no 500, no traceback


@pytest.mark.parametrize("kind", ["junk", "framed"])
def test_a_chunked_100_mb_upload_is_answered_not_reset(hub, kind):
    """No Content-Length: junk is refused at its first byte (422), a bundle frame announcing 100 MB
    at its 48th (413); either way the rest is read and discarded so that the client gets the answer."""
    county, a, _, start = hub
    server = start()
    name, data = exchange.export_upstream(a)
    piece = os.urandom(MB)
    first = piece if kind == "junk" else data[:40] + struct.pack(">II", 100, 100 * MB) + piece[48:]
    with _connect(server, "127.0.0.24", timeout=60) as sock:
        sock.sendall(_head(chunked=True))
        for i in range(100):
            chunk = first if i == 0 else piece
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        status, body, _ = _answer(sock)
    _error_shape(status, body)
    assert (status, body["error"]) == ((422, "bad_bundle") if kind == "junk" else (413, "too_large"))


def test_a_connection_trickling_its_headers_is_closed(hub):
    """uvicorn waits for ever for a request's headers; the service closes such a connection after
    `header_seconds` (here 1 s), and a keep-alive connection likewise between requests."""
    _, _, _, start = hub
    server = start(header_seconds=1.0)
    with _connect(server, "127.0.0.25", timeout=10) as sock:
        t = time.monotonic()
        sock.sendall(b"POST /api/v1/bun")
        closed = None
        for piece in (b"dles HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n", b"X-C: 3\r\n", b"X-D: 4\r\n"):
            time.sleep(0.4)
            try:
                sock.sendall(piece)
                sock.settimeout(0.01)
                if sock.recv(1) == b"":
                    closed = time.monotonic() - t
                    break
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                closed = time.monotonic() - t
                break
    assert closed is not None and 0.9 < closed < 2.5
    # an ordinary request on a fresh connection is untouched
    assert client.Client(server.url, retries=0).health()["service"] == protocol.SERVICE


def test_stopping_the_service_does_not_wait_for_a_slow_upload(hub):
    """Ctrl+C lets an import finish, but a client still trickling its upload is told to come back
    (503 busy, which the laptop retries) instead of holding the stop until the rate limit drops it."""
    _, a, _, start = hub
    server = start()
    name, data = exchange.export_upstream(a)
    with _connect(server, "127.0.0.26", timeout=30) as sock:
        sock.sendall(_head(len(data)) + data[:10])
        time.sleep(0.3)
        t = time.monotonic()
        server.stop()
        took = time.monotonic() - t
        status, body, _ = _answer(sock)
    assert took < 5, took  # the rate window alone would have held it for 20 s
    assert status == 503 and body["error"] == "busy" and "正在停止" in body["message"]
