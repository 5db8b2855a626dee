"""Load test of the county sync service (issue #22): junk, slow and valid uploads at the same time
against `jiandang serve` in its own process, over loopback (127.0.0.x only), bounded in count and
time (about 30 s). Stated bounds, with the service's default limits:

- every valid sync (upload + fetch, `sync now`) finishes within VALID_SECONDS while slow clients
  hold connections and junk streams in;
- the service's resident memory peaks under idle + PEAK_GROWTH and comes back under
  idle + IDLE_GROWTH afterwards (before the change it grew by about 30 MB per junk upload and kept it);
- every junk upload gets its 4xx answer (no reset), every slow client is dropped with 408 within one
  20 s rate window (plus slack), not held for ever.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

from app.server import client, protocol
from app.services import households
from app.sync import exchange, wire
from bench.procmem import MIB, rss
from tests import factories
from tests.sync_helpers import make_county, make_device
from tests.test_serve import ServiceProcess

VALID_SECONDS = 10.0
PEAK_GROWTH = 100 * MIB
IDLE_GROWTH = 30 * MIB
LAPTOPS = 6
SLOW = 20  # more than the 16 upload slots the service had: they locked every laptop out
JUNK_THREADS, JUNK_EACH, JUNK_MB = 4, 6, 16  # 24 uploads of 16 MB of random bytes, 4 at a time
FRAMED_EACH = 3  # uploads of 16 MB with a real device's key in their first bytes: spooled, then refused


def _answer_status(sock: socket.socket) -> str:
    data = b""
    while b"\r\n" not in data:
        part = sock.recv(4096)
        if not part:
            return "closed"
        data += part
    return data.split(b" ", 2)[1].decode()


def _junk(port: int, source: str, body: bytes) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60, source_address=(source, 0)) as sock:
            sock.sendall(f"POST {protocol.BUNDLES} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            sock.sendall(body)
            return _answer_status(sock)
    except (ConnectionResetError, BrokenPipeError):
        return "reset"


def _slow(port: int, source: str, bundle: bytes, stop: threading.Event) -> tuple[float, str]:
    """A real bundle, one byte a second (its first bytes pass every early check)."""
    t = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(f"POST {protocol.BUNDLES} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(bundle)}\r\n\r\n".encode())
        sock.settimeout(1.0)
        for i in range(len(bundle)):
            if stop.is_set():
                return time.monotonic() - t, "held until the end"
            try:
                sock.sendall(bundle[i: i + 1])
                return time.monotonic() - t, _answer_status(sock)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return time.monotonic() - t, "closed"
    return time.monotonic() - t, "sent everything"


def test_valid_syncs_go_through_junk_and_slow_uploads_and_memory_comes_back(tmp_path, monkeypatch):
    county = make_county(tmp_path)
    laptops = [make_device(tmp_path, county, f"队{i}") for i in range(LAPTOPS)]
    for i, laptop in enumerate(laptops):
        households.save(laptop, factories.household(f"户主{i}", f"配偶{i}", seq=30 + 2 * i))
    slow_bundles = [exchange.export_upstream(laptop)[1] for laptop in laptops]  # never completed by the slow clients
    device_key = slow_bundles[0][8:40]
    county_db = Path(county.path)
    county.close()

    # each laptop syncs from its own loopback address, as machines on the county LAN do
    where = threading.local()
    real_connection = client.Client._connection
    monkeypatch.setattr(client.Client, "_connection", lambda self, timeout: _bound(real_connection(self, timeout)))

    def _bound(conn):
        conn.source_address = (getattr(where, "source", "127.0.0.1"), 0)
        return conn

    service = ServiceProcess(tmp_path, county_db, "--port", "0", "--quiet", "--uploads-per-minute", "0")
    pid, port = service.proc.pid, service.port
    samples: list[int] = []
    stop = threading.Event()
    try:
        where.source = "127.0.0.2"
        assert not client.sync_now(laptops[0], service.url, retries=0).refused  # warm: every code path loaded once
        time.sleep(1)
        idle = rss(pid)[0]

        def sample():
            while not stop.is_set():
                samples.append(rss(pid)[0])
                time.sleep(0.05)

        junk_body = os.urandom(JUNK_MB * MIB)
        framed = wire.MAGIC + device_key + struct.pack(">II", 200, len(junk_body)) + junk_body[:200] + junk_body + junk_body[:64]
        junk_answers, slow_answers, valid = [], [], []

        def junk(i):
            for _ in range(JUNK_EACH):
                junk_answers.append(_junk(port, f"127.0.1.{1 + i // 2}", junk_body))

        def framed_junk():
            for _ in range(FRAMED_EACH):
                junk_answers.append(_junk(port, "127.0.1.9", framed))

        def slow(i):
            slow_answers.append(_slow(port, f"127.0.2.{1 + i}", slow_bundles[i % LAPTOPS], stop))

        def laptop(i):
            where.source = f"127.0.3.{1 + i}"
            for _ in range(2):  # at once, and again while the slow clients still hold their connections
                t = time.monotonic()
                result = client.sync_now(laptops[i], service.url, retries=2, backoff=0.5)
                valid.append((time.monotonic() - t, [r.status for r in result.reports]))
                time.sleep(4)

        threads = [threading.Thread(target=sample)]
        threads += [threading.Thread(target=slow, args=(i,)) for i in range(SLOW)]
        threads += [threading.Thread(target=junk, args=(i,)) for i in range(JUNK_THREADS)]
        threads += [threading.Thread(target=framed_junk)]
        for t in threads:
            t.start()
        time.sleep(1)
        laptop_threads = [threading.Thread(target=laptop, args=(i,)) for i in range(LAPTOPS)]
        for t in laptop_threads:
            t.start()
        deadline = time.monotonic() + 45  # bounded: the slow clients are told to stop after this at the latest
        for t in laptop_threads + threads[1:]:
            t.join(max(0.1, deadline - time.monotonic()))
        stop.set()
        for t in laptop_threads + threads[1:]:
            t.join(30)
        threads[0].join(5)
        after = rss(pid)[0]
        for _ in range(10):  # memory once it has stopped falling (at most 10 s)
            time.sleep(1)
            now = rss(pid)[0]
            if now >= after - MIB:
                break
            after = now
    finally:
        stop.set()
        assert service.stop() == 0
        for laptop_store in laptops:
            laptop_store.close()

    assert len(valid) == 2 * LAPTOPS, f"{2 * LAPTOPS - len(valid)} laptops did not finish within 45 s"
    assert all(statuses == ["accepted", "accepted"] for _, statuses in valid), valid
    slowest = max(seconds for seconds, _ in valid)
    assert slowest < VALID_SECONDS, valid
    assert sorted(junk_answers) == ["422"] * (JUNK_THREADS * JUNK_EACH + FRAMED_EACH), junk_answers
    assert len(slow_answers) == SLOW and all(answer == "408" and 19 < seconds < 30 for seconds, answer in slow_answers), \
        slow_answers
    peak = max(samples)
    assert peak < idle + PEAK_GROWTH, (idle / MIB, peak / MIB)
    assert after < idle + IDLE_GROWTH, (idle / MIB, after / MIB)
    print(f"valid syncs: slowest {slowest:.2f} s; service RSS idle {idle / MIB:.0f} MB, peak {peak / MIB:.0f} MB, "
          f"after {after / MIB:.0f} MB")
