"""The county sync service (jiandang serve) and the laptop client (jiandang sync now, 立即同步):
real server processes on loopback, TLS pinned at enrollment, bad input, crashes and retries."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.cli.main import main
from app.server import client, protocol, tls
from app.server.app import Challenges, Limits, RateLimiter, SyncServer
from app.services import households
from app.store import Store, service_state
from app.sync import exchange, identity
from tests import factories
from tests.support.jiandang_test_hooks import subprocess_env
from tests.sync_helpers import PASSPHRASE, address, change_ids, digest, make_county, make_device, state

COUNTY_BACKENDS = ("sqlite", "postgresql")  # the county also on PostgreSQL (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- helpers


def _env(tmp_path: Path, **extra) -> dict:
    return subprocess_env(JIANDANG_PASSPHRASE=PASSPHRASE, JIANDANG_OPERATOR="admin",
                          JIANDANG_HOME=str(tmp_path / "home"), **extra)


class ServiceProcess:
    """`python -m app serve COUNTY_DB ...` in its own process; the URL is read from its start line."""

    def __init__(self, tmp_path: Path, db: Path, *args: str, **env):
        self.log = open(tmp_path / f"serve-{time.monotonic_ns()}.log", "wb")
        group = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" else {}
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve", str(db), *args], env=_env(tmp_path, **env),
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, **group)
        line = self.first_line = self.proc.stdout.readline()
        assert "县同步服务已启动" in line, (line, self.proc.poll(), self.log_text())
        self.url = line.split(":", 1)[1].split("(")[0].strip()

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self) -> int:
        """A clean stop as a service manager sends it: SIGTERM on POSIX, Ctrl+Break on Windows (where
        SIGTERM is TerminateProcess, a hard kill)."""
        self.proc.send_signal(signal.CTRL_BREAK_EVENT if sys.platform == "win32" else signal.SIGTERM)
        code = self.proc.wait(30)
        self.log.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self.log.close()


def _open(path: Path) -> Store:
    s = Store.open(path)
    s.unlock("admin", PASSPHRASE)
    return s


def _post(url: str, path: str, body: bytes, headers: dict | None = None, source: str | None = None) -> tuple[int, dict, dict]:
    """One POST; `source` is the client's own loopback address (127.0.0.x: a machine of its own for the
    service's per-address limits)."""
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=(source, 0) if source else None)
    conn.request("POST", path, body=body, headers=headers or {})
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    try:
        payload = json.loads(data)
    except ValueError:
        payload = {"raw": data}
    return answer.status, payload, {k.lower(): v for k, v in answer.getheaders()}


def _upload(url: str, data: bytes, name: str = "x-up-000001.jdb", source: str | None = None):
    return _post(url, protocol.BUNDLES, data, {protocol.NAME_HEADER: name, "Content-Type": "application/octet-stream"},
                 source)


@pytest.fixture
def hub(tmp_path):
    """A county with two laptops of one village (each with one household) and the service on a thread."""
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    b = make_device(tmp_path, county, "乙队")
    households.save(a, factories.household())
    households.save(b, factories.household("诸葛长青", "上官玉梅", seq=7))
    servers = []

    def start(**limits) -> SyncServer:
        server = SyncServer(county, "127.0.0.1", 0, limits=Limits(**limits), access_log=False).start()
        servers.append(server)
        return server

    yield county, a, b, start
    for server in servers:
        server.stop()
    for s in (a, b, county):
        s.close()


def _counts(county: Store) -> tuple:
    return (county.change_count(), county.conn.execute("SELECT count(*) FROM receipts").fetchone()[0], digest(county))


# ---------------------------------------------------------------------- the real thing, end to end


def test_two_laptops_sync_through_a_real_service_process_mixed_with_a_usb_day(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("JIANDANG_OPERATOR", "admin")
    cert, key = tmp_path / "tls.pem", tmp_path / "tls.key"
    tls.write(cert, key, ["127.0.0.1"])
    county = make_county(tmp_path)
    a = make_device(tmp_path, county, "甲队")
    # the county sets the certificate once; every later enrollment carries it
    county.set_meta(identity.SERVER_CA, cert.read_text())
    b = make_device(tmp_path, county, "乙队")
    assert a.meta(client.CA_KEY) is None and b.meta(client.CA_KEY) == cert.read_text()
    h1 = households.save(a, factories.household()).household_id
    h2 = households.save(b, factories.household("诸葛长青", "上官玉梅", seq=7)).household_id
    paths = {"county": address(county), "a": Path(a.path), "b": Path(b.path)}
    for s in (county, a, b):
        s.close()

    service = ServiceProcess(tmp_path, paths["county"], "--tls-cert", str(cert), "--tls-key", str(key), "--port", "0")
    url = service.url
    assert url.startswith("https://127.0.0.1:")
    # laptop A was enrolled before the county had a certificate: it is given one, and remembers it
    assert main(["sync", "now", str(paths["a"]), "--server", url, "--ca-cert", str(cert), "--remember"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and all("已接收" in line for line in out), out
    assert main(["sync", "now", str(paths["b"]), "--server", url, "--remember"]) == 0
    out = capsys.readouterr().out
    assert "更改 0 条" not in out.splitlines()[1]  # B received A's household
    assert main(["sync", "now", str(paths["a"])]) == 0  # the remembered address and certificate
    assert "新应用 0 条" not in capsys.readouterr().out.splitlines()[1]  # A received B's household
    assert service.stop() == 0  # SIGTERM: a clean stop

    # a USB day in between (the service is stopped: it holds the county database while it runs)
    with _open(paths["b"]) as b:
        b.put("household", {"phone": "13900000002"}, record_id=h1)
    with _open(paths["a"]) as a:
        a.put("household", {"note": "甲队的备注"}, record_id=h2)
    usb = tmp_path / "usb"
    usb.mkdir()
    assert main(["sync", "export", str(paths["b"]), "--to", str(usb)]) == 0
    assert main(["sync", "import", str(paths["county"]), str(usb)]) == 0
    assert main(["sync", "export", str(paths["county"]), "--to", str(usb)]) == 0
    assert main(["sync", "import", str(paths["a"]), str(usb)]) == 0
    capsys.readouterr()

    service = ServiceProcess(tmp_path, paths["county"], "--tls-cert", str(cert), "--tls-key", str(key),
                             "--port", str(int(url.rsplit(":", 1)[1])))
    for laptop in ("a", "b", "a"):
        assert main(["sync", "now", str(paths[laptop])]) == 0
    capsys.readouterr()
    # the bundle that travelled by USB, uploaded again over the network: the county never takes it twice
    [usb_bundle] = usb.glob("*-up-*.jdb")
    with _open(paths["b"]) as b:
        report = client.Client(url, b.meta(client.CA_KEY)).upload(usb_bundle.name, usb_bundle.read_bytes())
    assert report.status == "duplicate"
    assert service.stop() == 0

    stores = {k: _open(p) for k, p in paths.items()}
    try:
        county, a, b = stores["county"], stores["a"], stores["b"]
        assert state(county) == state(a) == state(b)
        assert county.get(h1).fields["phone"] == "13900000002" and county.get(h2).fields["note"] == "甲队的备注"
        assert county.change_count() == len(change_ids(county)) == len(change_ids(a)) == len(change_ids(b))
        assert county.count("household") == 2
    finally:
        for s in stores.values():
            s.close()
    log = "".join(p.read_text(encoding="utf-8") for p in tmp_path.glob("serve-*.log"))
    assert "13900000002" not in log and "诸葛长青" not in log  # no personal data in the service's log


def test_serve_speaks_chinese_on_the_terminal_and_keeps_uvicorns_lines_for_the_log(tmp_path):
    county = make_county(tmp_path)
    county_db = address(county)
    county.close()
    service = ServiceProcess(tmp_path, county_db, "--port", "0")
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:  # not HTTP: uvicorn warns
        sock.sendall(b"\x16\x03\x01 not a request\r\n\r\n")
        sock.recv(1024)
    assert service.stop() == 0
    terminal = Path(service.log.name).read_text(encoding="utf-8")
    for english in ("Started server process", "Waiting for application", "Application startup complete",
                    "Uvicorn running", "Shutting down", "Application shutdown complete", "Finished server process"):
        assert english not in terminal, terminal
    assert "正在停止县同步服务:不再接受新的连接,等待进行中的导入完成…" in terminal
    assert terminal.rstrip().endswith("县同步服务已停止"), terminal
    assert "WARNING Invalid HTTP request received." in terminal  # uvicorn's warnings and errors still show
    log_file = next((tmp_path / "home").rglob("*.log")).read_text(encoding="utf-8")
    assert "uvicorn.error: Started server process" in log_file and "uvicorn.error: Shutting down" in log_file


def test_a_service_killed_mid_import_merges_nothing_and_the_laptop_retry_succeeds(tmp_path):
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    hid = households.save(laptop, factories.household()).household_id
    county_db = address(county)
    county.close()
    marker = tmp_path / "holding"
    service = ServiceProcess(tmp_path, county_db, "--port", "0", JIANDANG_TEST_HOLD_IMPORT=str(marker))
    outcome = {}

    def sync():
        try:
            outcome["result"] = client.sync_now(laptop, service.url, retries=10, backoff=0.2)
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    worker = threading.Thread(target=sync)
    worker.start()
    for _ in range(600):
        if marker.exists():
            break
        time.sleep(0.05)
    assert marker.exists(), service.log_text()
    service.kill()  # inside the upload's open import transaction
    with _open(county_db) as after:
        assert after.count("household") == 0 and after.conn.execute("SELECT count(*) FROM receipts").fetchone()[0] == 0
    service = ServiceProcess(tmp_path, county_db, "--port", str(service.port))  # the laptop is still retrying
    worker.join(60)
    assert "error" not in outcome, outcome.get("error")
    up, down = outcome["result"].reports
    assert up.status == "accepted" and up.applied == up.changes > 0
    assert down.status == "accepted"
    assert int(laptop.meta("sync_acked_seq")) == laptop.change_count()  # the county acknowledged everything
    assert service.stop() == 0
    laptop.close()
    with _open(county_db) as final:
        assert final.count("household") == 1 and final.get(hid) is not None
        assert final.change_count() == len(change_ids(final))


# ---------------------------------------------------------------------- bad input (service on a thread)


def test_a_request_without_a_bundle_is_refused_with_a_message(hub):
    county, a, _, start = hub
    server = start()
    before = _counts(county)
    status, body, _ = _upload(server.url, b"")
    assert status == 400 and body["error"] == "no_bundle" and "没有同步包" in body["message"]
    status, body, _ = _upload(server.url, b"this is not a bundle at all")
    assert status == 422 and "不是建档同步包" in body["message"] and body["report"]["status"] == "refused"
    assert _counts(county) == before
    name, data = exchange.export_upstream(a)
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "accepted"
    assert body["line"].startswith(f"{name}: 已接收")  # the line the CLI prints


def test_a_tampered_bundle_is_refused_before_anything_is_stored_and_the_original_then_goes_in(hub):
    county, a, _, start = hub
    server = start()
    before = _counts(county)
    name, data = exchange.export_upstream(a)
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x01
    status, body, _ = _upload(server.url, bytes(tampered), name)
    assert status == 422 and body["error"] == "bad_bundle" and "签名校验失败" in body["message"]
    assert body["line"] == f"{name}: 已拒收:{body['message']}"
    cut = data[:-100]
    status, body, _ = _upload(server.url, cut, name)
    assert status == 422 and "不完整" in body["message"]
    assert _counts(county) == before
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["applied"] == body["report"]["changes"] > 0


def test_an_oversized_upload_is_refused_unread_and_the_client_says_so_before_sending(hub):
    county, a, _, start = hub
    server = start(max_upload=1000)
    before = _counts(county)
    name, data = exchange.export_upstream(a)
    assert len(data) > 1000
    status, body, headers = _upload(server.url, data, name)
    assert status == 413 and body["error"] == "too_large" and "U盘" in body["message"]
    # no Content-Length (chunked): refused once the limit is passed
    host, port = server.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", protocol.BUNDLES, body=iter([data[:600], data[600:]]),
                 headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    answer = conn.getresponse()
    assert answer.status == 413 and json.loads(answer.read())["error"] == "too_large"
    conn.close()
    assert _counts(county) == before
    seq = a.meta("sync_out_seq")
    with pytest.raises(client.SyncError, match="上传上限"):
        client.sync_now(a, server.url, retries=0)
    assert _counts(county) == before and int(a.meta("sync_out_seq")) == int(seq) + 1  # exported, never sent


def test_a_revoked_site_can_neither_upload_nor_fetch(hub):
    county, a, b, start = hub
    server = start()
    identity.revoke(county, a.site_id)
    before = _counts(county)
    name, data = exchange.export_upstream(a)
    status, body, _ = _upload(server.url, data, name)
    assert status == 403 and body["error"] == "revoked" and "吊销" in body["message"]
    assert body["report"]["status"] == "refused"
    result = client.sync_now(a, server.url, retries=0)
    assert [r.status for r in result.reports] == ["refused", "refused"]
    assert "吊销" in result.reports[0].message and "吊销" in result.reports[1].message
    assert _counts(county) == before
    assert county.count("household") == 0
    # the other laptop is unaffected
    result = client.sync_now(b, server.url, retries=0)
    assert [r.status for r in result.reports] == ["accepted", "accepted"]


def test_a_bundle_from_a_device_of_another_county_is_refused_as_unknown(hub, tmp_path):
    county, _, _, start = hub
    server = start()
    (tmp_path / "other").mkdir()
    other = make_county(tmp_path / "other")
    stranger = make_device(tmp_path / "other", other, "外县队")
    households.save(stranger, factories.household())
    before = _counts(county)
    name, data = exchange.export_upstream(stranger)
    status, body, _ = _upload(server.url, data, name)
    assert status == 403 and body["error"] == "unknown_site" and "已登记" in body["message"]
    assert _counts(county) == before
    with pytest.raises(client.SyncError, match="另一个县级数据库"):
        client.sync_now(stranger, server.url, retries=0)
    stranger.close()
    other.close()


def test_a_replayed_upload_is_a_duplicate_and_changes_nothing(hub):
    county, a, _, start = hub
    server = start()
    name, data = exchange.export_upstream(a)
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "accepted"
    after_first = _counts(county)
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "duplicate" and "重复" in body["line"]
    assert _counts(county) == after_first


def test_an_upload_parses_the_certificates_expiry_once(hub, monkeypatch):
    """The service's check and the merge both ask whether the sender's certificate has expired: the
    date is read from the certificate once per upload."""
    county, a, _, start = hub
    server = start()
    parsed = []
    real = identity.parse_iso
    monkeypatch.setattr(identity, "parse_iso", lambda text: parsed.append(text) or real(text))
    name, data = exchange.export_upstream(a)
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "accepted"
    assert len(parsed) == 1, parsed


def test_without_uvloop_and_httptools_the_service_runs_on_asyncio_and_h11(hub, monkeypatch):
    """As on Windows (uvloop is not made for it) or an install without the C parser: the same service."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    monkeypatch.setitem(sys.modules, "uvloop", None)  # importing it raises ImportError
    monkeypatch.setitem(sys.modules, "uvicorn.protocols.http.httptools_impl", None)
    county, a, _, start = hub
    server = start(header_seconds=0.5)
    assert server.config.loop == "asyncio" and issubclass(server.config.http, H11Protocol)
    name, data = exchange.export_upstream(a)
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "accepted"
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "duplicate"
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # no headers: closed after header_seconds
    assert idle.recv(1) == b""
    idle.close()


def test_a_client_dropping_the_connection_mid_upload_leaves_nothing_and_the_next_try_succeeds(hub, caplog):
    county, a, _, start = hub
    server = start()
    before = _counts(county)
    name, data = exchange.export_upstream(a)
    caplog.set_level(logging.WARNING, logger="app.server")
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall((f"POST {protocol.BUNDLES} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
                  f"{protocol.NAME_HEADER}: {name}\r\n\r\n").encode() + data[: len(data) // 2])
    time.sleep(0.1)
    sock.close()
    for _ in range(200):
        if "断开" in caplog.text:
            break
        time.sleep(0.05)
    assert "断开" in caplog.text and "未导入任何内容" in caplog.text
    assert _counts(county) == before
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "accepted"
    assert body["report"]["applied"] == body["report"]["changes"] > 0


def test_uploads_are_rate_limited_per_site(hub):
    county, a, b, start = hub
    server = start(uploads_per_minute=2)
    bundles = [exchange.export_upstream(a) for _ in range(3)]
    statuses = [_upload(server.url, data, name) for name, data in bundles]
    assert [s[0] for s in statuses[:2]] == [200, 200]
    status, body, headers = statuses[2]
    assert status == 429 and body["error"] == "rate_limited" and "过于频繁" in body["message"]
    assert 1 <= int(headers["retry-after"]) <= 30
    name, data = exchange.export_upstream(b)  # another site is not held back
    assert _upload(server.url, data, name)[0] == 200


def test_the_downstream_fetch_needs_the_device_key_and_a_fresh_challenge(hub, tmp_path):
    county, a, _, start = hub
    server = start()
    conn_url = server.url
    c = client.Client(conn_url)

    def challenge() -> str:
        return c.request("GET", protocol.CHALLENGE).json()["challenge"]

    county_id = a.meta("county_site_id")
    ch = challenge()
    forged = Ed25519PrivateKey.generate().sign(protocol.fetch_message(county_id, a.site_id, ch)).hex()
    status, body, _ = _post(conn_url, protocol.DOWNSTREAM, json.dumps({"site": a.site_id, "challenge": ch,
                                                                       "signature": forged}).encode())
    assert status == 403 and body["error"] == "bad_signature"
    ch = challenge()
    good = identity.device_signing_key(a).sign(protocol.fetch_message(county_id, a.site_id, ch)).hex()
    request = json.dumps({"site": a.site_id, "challenge": ch, "signature": good}).encode()
    status, body, headers = _post(conn_url, protocol.DOWNSTREAM, request)
    assert status == 200 and headers[protocol.NAME_HEADER.lower()] == f"{a.site_id}-down-000001.jdb"
    assert exchange.import_bundle(a, body["raw"], "down").status == "accepted"
    status, body, _ = _post(conn_url, protocol.DOWNSTREAM, request)  # the same request again
    assert status == 401 and body["error"] == "challenge"
    status, body, _ = _post(conn_url, protocol.DOWNSTREAM, b"{not json")
    assert status == 400 and "格式不对" in body["message"]
    status, body, _ = _post(conn_url, "/api/v1/nothing-here", b"")
    assert status == 404 and "没有地址" in body["message"]


def test_concurrent_uploads_are_merged_one_group_at_a_time(hub, tmp_path, monkeypatch):
    """Uploads arriving together are merged by one thread, a group at a time (the uploads waiting
    when the previous group committed): groups never overlap and every bundle is merged once."""
    county, a, b, start = hub
    laptops = [a, b] + [make_device(tmp_path, county, f"队{i}") for i in range(4)]
    for i, laptop in enumerate(laptops[2:]):
        households.save(laptop, factories.household(f"户主{i}", f"配偶{i}", seq=20 + 2 * i))
    server = start()
    running, overlaps, merged = [0], [], []
    real = exchange.import_bundles

    def watched(store, bundles, **kw):
        running[0] += 1
        overlaps.append(running[0])
        merged.extend(name for _, name, _ in bundles)
        time.sleep(0.02)
        try:
            return real(store, bundles, **kw)
        finally:
            running[0] -= 1

    monkeypatch.setattr(exchange, "import_bundles", watched)
    bundles = [exchange.export_upstream(laptop) for laptop in laptops]
    results = [None] * len(bundles)
    barrier = threading.Barrier(len(bundles))

    def send(i):  # each laptop from its own address (one address may only hold a few uploads at once)
        barrier.wait()
        results[i] = _upload(server.url, bundles[i][1], bundles[i][0], source=f"127.0.0.{10 + i}")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bundles))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r[0] for r in results] == [200] * len(bundles)
    assert max(overlaps) == 1 and sorted(merged) == sorted(name for name, _ in bundles)
    assert county.count("household") == len(laptops)
    for laptop in laptops[2:]:
        laptop.close()


# ---------------------------------------------------------------------- the laptop side


def test_sync_now_says_when_the_service_is_unreachable_and_the_usb_path_still_works(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    households.save(laptop, factories.household())
    db, county_db = Path(laptop.path), address(county)
    laptop.close()
    county.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nobody listens there
    monkeypatch.setattr(client.time, "sleep", lambda s: None)
    assert main(["sync", "now", str(db), "--server", f"http://127.0.0.1:{port}", "--retries", "2"]) == 3
    err = capsys.readouterr().err
    assert "无法连接县同步服务" in err and "已试 3 次" in err and "U盘" in err and "重试" in err
    with _open(db) as s:
        assert s.meta("sync_out_seq") is None  # nothing was exported for a service that is not there
    assert main(["sync", "now", str(db)]) == 1
    assert "没有设置县同步服务的地址" in capsys.readouterr().err
    usb = tmp_path / "usb"
    usb.mkdir()
    assert main(["sync", "export", str(db), "--to", str(usb)]) == 0
    assert main(["sync", "import", str(county_db), str(usb)]) == 0
    assert "已接收" in capsys.readouterr().out


def test_a_service_with_another_certificate_than_the_pinned_one_gets_nothing(hub, tmp_path):
    county, a, _, _ = hub
    cert, key = tmp_path / "tls.pem", tmp_path / "tls.key"
    tls.write(cert, key, ["127.0.0.1"])
    impostor_cert, _ = tls.self_signed(["127.0.0.1"])
    server = SyncServer(county, "127.0.0.1", 0, tls_cert=cert, tls_key=key, access_log=False).start()
    try:
        before = a.meta("sync_out_seq")
        with pytest.raises(client.SyncError, match=r"证书与本机登记时保存的不符\(对方用的是另一张自签名证书\)"):
            client.sync_now(a, server.url, impostor_cert.decode(), retries=0)
        assert a.meta("sync_out_seq") == before  # nothing exported, nothing sent
        # no certificate of the county on the laptop at all: said so, not called a mismatch
        with pytest.raises(client.SyncError, match="本机也没有保存县里的证书.*--ca-cert") as refused:
            client.Client(server.url, None, retries=0).health()
        assert "不符" not in str(refused.value)
        # plain http:// to a TLS service: the message says what to change
        with pytest.raises(client.SyncError, match="应以 https:// 开头"):
            client.sync_now(a, server.url.replace("https://", "http://"), None, retries=0)
        assert a.meta("sync_out_seq") == before
        result = client.sync_now(a, server.url, cert.read_text(), retries=0)
        assert [r.status for r in result.reports] == ["accepted", "accepted"]
        assert server.url.startswith("https://")
    finally:
        server.stop()


def test_enrollment_carries_the_service_address_and_certificate(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county_db, usb = tmp_path / "county.db", tmp_path / "usb"
    usb.mkdir()
    cert = tmp_path / "tls.pem"
    assert main(["tls-cert", "--host", "192.168.1.10", "--host", "county.local", "--out-cert", str(cert),
                 "--out-key", str(tmp_path / "tls.key")]) == 0
    if os.name == "posix":  # mode bits exist only there
        assert (tmp_path / "tls.key").stat().st_mode & 0o077 == 0
    assert main(["init", str(county_db), "--role", "county", "--site-name", "雷山县扶贫办"]) == 0
    assert main(["enroll", str(county_db), "--site-name", "甲队", "--role", "village", "--villages",
                 "522634101201", "--out", str(usb / "a.jde"), "--server-ca", str(tmp_path / "tls.key")]) == 1
    assert "不是 PEM 格式的证书" in capsys.readouterr().err
    assert main(["enroll", str(county_db), "--site-name", "甲队", "--role", "village", "--villages",
                 "522634101201", "--out", str(usb / "a.jde"), "--server", "https://192.168.1.10:8765",
                 "--server-ca", str(cert)]) == 0
    assert main(["enroll", str(county_db), "--site-name", "乙队", "--role", "village", "--villages",
                 "522634101201", "--out", str(usb / "b.jde")]) == 0
    out = capsys.readouterr().out
    assert out.count("县同步服务:https://192.168.1.10:8765") == 2
    codes = [line.split(":", 1)[1] for line in out.splitlines() if line.startswith("登记码")]
    for name, code in zip("ab", codes):
        monkeypatch.setenv("JIANDANG_ENROLLMENT_CODE", code)
        assert main(["init", str(tmp_path / f"{name}.db"), "--enrollment", str(usb / f"{name}.jde")]) == 0
        assert "县同步服务 https://192.168.1.10:8765" in capsys.readouterr().out
        with _open(tmp_path / f"{name}.db") as s:
            assert s.meta(client.SERVER_KEY) == "https://192.168.1.10:8765"
            assert s.meta(client.CA_KEY) == cert.read_text()
            assert client.settings(s) == ("https://192.168.1.10:8765", cert.read_text())
            assert client.settings(s, "http://10.0.0.1:9", None)[0] == "http://10.0.0.1:9"


def test_serve_refuses_a_laptop_database_and_a_certificate_without_its_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county = make_county(tmp_path)
    laptop = make_device(tmp_path, county, "甲队")
    laptop_db = Path(laptop.path)
    laptop.close()
    county.close()
    assert main(["serve", str(laptop_db), "--port", "0"]) == 1
    assert "只能在县级数据库上运行" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "county.db"), "--tls-cert", str(tmp_path / "x.pem")]) == 1
    assert "一起给出" in capsys.readouterr().err


def test_rate_limiter_and_challenges_follow_the_clock(tmp_path):
    county = make_county(tmp_path)
    state = service_state.connect(county)  # kept in the county database (shared by worker processes)
    now = [0.0]
    limiter = RateLimiter(state, "upload", 6, clock=lambda: now[0])  # one every 10 s, burst 6
    assert [limiter.take("a") for _ in range(6)] == [0.0] * 6
    assert limiter.take("a") == pytest.approx(10.0)
    assert limiter.take("b") == 0.0
    now[0] = 10.0
    assert limiter.take("a") == 0.0 and limiter.take("a") > 0
    assert RateLimiter(state, "upload", 0).take("a") == 0.0  # 0 = no limit
    challenges = Challenges(state, seconds=120, per_address=3, cap=5, clock=lambda: now[0])
    first = challenges.new("10.0.0.5")
    assert not challenges.take(first, "10.0.0.66")  # only good from the address it was given to
    assert challenges.take(first, "10.0.0.5") and not challenges.take(first, "10.0.0.5")  # single use
    old = challenges.new("10.0.0.5")
    now[0] += 121
    assert not challenges.take(old, "10.0.0.5")  # expired
    laptop = challenges.new("10.0.0.5")
    flood = [challenges.new("10.0.0.66") for _ in range(1000)]  # a flood drops only the flooder's own
    assert challenges.count == 4 and challenges.take(flood[-1], "10.0.0.66") and not challenges.take(flood[0], "10.0.0.66")
    others = [challenges.new(f"10.0.1.{i}") for i in range(3)]
    assert None not in others[:2] and others[2] is None  # full: a new address waits…
    assert challenges.take(laptop, "10.0.0.5")  # …and nobody's challenge was evicted
    now[0] += 121
    assert None not in [challenges.new(f"10.0.2.{i}") for i in range(5)]  # expired ones make room
    assert challenges.count == 5
    state.close()
    county.close()


def test_taking_a_token_does_not_wait_for_the_disk_and_another_worker_sees_it(tmp_path):
    """Each upload takes a rate-limit token in the county database: a commit that need not reach the
    disk (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit off: a power cut loses at most the
    last tokens), still seen at once by every other connection (another worker, a restart)."""
    county = make_county(tmp_path)
    state, other = service_state.connect(county), service_state.connect(county)
    if county.shared:
        assert state.raw.raw.execute("SHOW synchronous_commit").fetchone()[0] == "off"
    else:
        assert state.raw.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL (the default, FULL, is 2)
    limiter, seen = RateLimiter(state, "upload", 6, clock=lambda: 0.0), RateLimiter(other, "upload", 6, clock=lambda: 0.0)
    assert [limiter.take("a") for _ in range(5)] == [0.0] * 5
    assert seen.take("a") == 0.0 and seen.take("a") == pytest.approx(10.0)  # the sixth token, then none left
    state.close()
    other.close()
    county.close()


def test_a_laptop_is_not_told_who_in_another_village_shares_an_id_number(hub, tmp_path):
    """The county's own import line names both households of a duplicate ID number; the answer the
    service sends back to the uploading laptop names only households of that laptop's villages."""
    from tests.sync_helpers import FAR_VILLAGE

    county, a, _, start = hub
    server = start()
    assert _upload(server.url, exchange.export_upstream(a)[1])[1]["report"]["status"] == "accepted"
    far = make_device(tmp_path, county, "石门村工作队", villages=(FAR_VILLAGE,))
    same = dict(factories.household("令狐冲", "任盈盈", seq=9), village_code=FAR_VILLAGE)
    same["members"][1]["id_number"] = factories.household()["members"][1]["id_number"]  # 司马秀兰's ID number
    same["members"][1]["birth_date"] = factories.household()["members"][1]["birth_date"]
    households.save(far, same, allow_errors=True)
    name, data = exchange.export_upstream(far)
    status, body, _ = _upload(server.url, data, name)
    assert status == 200 and body["report"]["status"] == "accepted"
    assert "重复身份证号" in body["line"] and "另一村的一户" in body["line"]
    assert "欧阳明远" not in json.dumps(body, ensure_ascii=False) and "令狐冲" in body["line"]
    far.close()


def test_serve_stop_ends_the_service_cleanly_on_any_platform(tmp_path, monkeypatch, capsys):
    """`jiandang serve DB --stop` (a stop file) is how a scheduled task or script stops the service on
    Windows, where SIGTERM is a hard kill: in-flight work finishes, the database is closed, exit 0."""
    from app.cli import server_commands

    county = make_county(tmp_path)
    db = address(county)
    county.close()
    service = ServiceProcess(tmp_path, db, "--port", "0")
    assert f"jiandang serve {county.path} --stop" in service.first_line  # a URL's password masked
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))  # the same user as the service (its data folder)
    assert main(["serve", str(db), "--stop"]) == 0
    assert "已请求县同步服务停止" in capsys.readouterr().out
    assert service.proc.wait(30) == 0
    assert "县同步服务已停止" in service.log_text()
    service.log.close()
    assert not server_commands.stop_file(db).exists()
    with _open(db):  # the service let go of the database
        pass
    # nobody running: said so, and no request is left behind for the next start
    monkeypatch.setattr(server_commands, "STOP_WAIT_SECONDS", 1.0)
    assert main(["serve", str(db), "--stop"]) == 1
    assert "没有正在运行的县同步服务" in capsys.readouterr().err
    assert not server_commands.stop_file(db).exists()
