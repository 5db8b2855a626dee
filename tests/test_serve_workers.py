"""Several service processes on one county database (issue #23): the challenges and rate limits live
in the county database, so a second worker and a restarted service see the same ones; `serve
--workers N` is refused on a SQLite county (one writer holds the file)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest

from app.cli.main import main
from app.server import client, protocol
from app.server.limits import Challenges, RateLimiter
from app.store import Store, service_state
from app.sync import exchange, identity, wire
from tests.sync_helpers import PASSPHRASE
from tests.test_serve import _post, _upload, hub  # noqa: F401 - hub is a fixture


def _challenge(url: str) -> str:
    return client.Client(url).request("GET", protocol.CHALLENGE).json()["challenge"]


def _fetch_request(laptop, challenge: str) -> bytes:
    county_id = laptop.meta("county_site_id")
    signature = identity.device_signing_key(laptop).sign(protocol.fetch_message(county_id, laptop.site_id, challenge))
    return json.dumps({"site": laptop.site_id, "challenge": challenge, "signature": signature.hex()}).encode()


def test_a_challenge_from_one_worker_is_good_once_at_another_and_after_a_restart(hub):
    county, a, b, start = hub
    first, second = start(), start()  # two services on one county database, as two worker processes
    request = _fetch_request(a, _challenge(first.url))
    status, body, _ = _post(second.url, protocol.DOWNSTREAM, request)
    assert status == 200 and body["raw"][:8] == wire.MAGIC
    status, body, _ = _post(first.url, protocol.DOWNSTREAM, request)  # replayed at the worker that issued it
    assert status == 401 and body["error"] == "challenge"
    waiting = _fetch_request(b, _challenge(first.url))
    first.stop()
    second.stop()
    restarted = start()  # a challenge issued before a restart is still good (within its two minutes)
    status, body, _ = _post(restarted.url, protocol.DOWNSTREAM, waiting)
    assert status == 200 and body["raw"][:8] == wire.MAGIC
    assert county.conn.execute("SELECT count(*) FROM service_challenges").fetchone()[0] == 0  # used up
    value = _challenge(restarted.url)  # kept as its digest only: what the database holds cannot be replayed
    stored = [row[0] for row in county.conn.execute("SELECT digest FROM service_challenges")]
    assert stored == [hashlib.sha256(value.encode()).hexdigest()]


def test_a_sites_upload_limit_holds_across_workers_and_a_restart(hub):
    county, a, _, start = hub
    first, second = start(uploads_per_minute=2), start(uploads_per_minute=2)
    bundles = [exchange.export_upstream(a) for _ in range(3)]
    assert _upload(first.url, bundles[0][1], bundles[0][0])[0] == 200
    assert _upload(second.url, bundles[1][1], bundles[1][0])[0] == 200
    status, body, headers = _upload(first.url, bundles[2][1], bundles[2][0])  # the third within the minute
    assert status == 429 and body["error"] == "rate_limited" and int(headers["retry-after"]) >= 1
    first.stop()
    second.stop()
    status, body, _ = _upload(start(uploads_per_minute=2).url, bundles[2][1], bundles[2][0])
    assert status == 429 and body["error"] == "rate_limited"  # a restart does not hand out a new burst


def test_a_challenge_flood_at_one_worker_is_limited_at_the_other_too(hub):
    county, a, _, start = hub
    first, second = start(challenges_per_minute=6), start(challenges_per_minute=6)
    statuses = [client.Client(server.url).request("GET", protocol.CHALLENGE).status
                for server in (first, second) * 5]
    assert statuses[:6] == [200] * 6 and set(statuses[6:]) == {429}


def test_serve_with_several_workers_is_refused_on_a_sqlite_county(tmp_path, monkeypatch, capsys):
    from tests.sync_helpers import make_county

    monkeypatch.setenv("JIANDANG_PASSPHRASE", PASSPHRASE)
    county = make_county(tmp_path)
    db = Path(county.path)
    county.close()
    assert main(["serve", str(db), "--port", "0", "--workers", "4"]) == 1
    err = capsys.readouterr().err
    assert "SQLite" in err and "一个进程" in err and "PostgreSQL" in err and "Traceback" not in err
    assert main(["serve", str(db), "--port", "0", "--workers", "0"]) == 1
    assert "--workers 至少为 1" in capsys.readouterr().err


# ---------------------------------------------------------------------- on both backends

BACKENDS = ("sqlite", "postgresql")


def _county(where) -> Store:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from app.services import demo

    county = Store.create(where("county.db"), role="county", site_name="雷山县扶贫办", operator="admin",
                          passphrase=PASSPHRASE, recovery_public_key=X25519PrivateKey.generate().public_key())
    identity.setup_county(county)
    demo.install_reference_data(county)
    return county


def test_racing_workers_take_each_token_and_each_challenge_once(where):
    """Eight connections of their own (as eight worker processes) draw from one site's bucket and
    hand in one challenge at the same moment: exactly `burst` uploads pass and the challenge is
    accepted once."""
    county = _county(where)
    conns = [service_state.connect(county) for _ in range(8)]
    try:
        now = 1_000_000.0
        limiters = [RateLimiter(conn, "upload", 10, clock=lambda: now) for conn in conns]  # burst 10
        value = Challenges(conns[0], 120, clock=lambda: now).new("10.0.0.5")
        barrier = threading.Barrier(len(conns))
        taken, accepted = [], []

        def worker(k: int) -> None:
            barrier.wait()
            accepted.append(Challenges(conns[k], 120, clock=lambda: now).take(value, "10.0.0.5"))
            taken.extend(limiters[k].take("site-a") == 0.0 for _ in range(5))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(taken) == 10 and len(taken) == 40
        assert accepted.count(True) == 1 and len(accepted) == 8
        assert limiters[0].take("site-a") == pytest.approx(6.0)  # the next token in 60/10 s
    finally:
        for conn in conns:
            conn.close()
        county.close()


def test_the_limits_and_challenges_follow_the_clock_on_either_backend(where):
    county = _county(where)
    state = service_state.connect(county)
    try:
        now = [0.0]
        limiter = RateLimiter(state, "fetch", 6, clock=lambda: now[0])
        assert [limiter.take("a") for _ in range(6)] == [0.0] * 6 and limiter.take("a") == pytest.approx(10.0)
        challenges = Challenges(state, seconds=120, per_address=3, cap=5, clock=lambda: now[0])
        laptop = challenges.new("10.0.0.5")
        flood = [challenges.new("10.0.0.66") for _ in range(50)]
        assert challenges.count == 4 and not challenges.take(flood[0], "10.0.0.66")
        assert [challenges.new(f"10.0.1.{i}") is None for i in range(2)] == [False, True]  # full: a new address waits
        now[0] += 121
        assert limiter.take("a") == 0.0 and not challenges.take(laptop, "10.0.0.5")  # refilled; expired
        assert challenges.expire() == 4 and challenges.count == 0  # the flooder's three, 10.0.1.0's one
        assert limiter.forget_full() == 0
        now[0] += 61  # full again: forgotten (as good as kept)
        assert limiter.forget_full() == 1 and limiter.take("a") == 0.0
    finally:
        state.close()
        county.close()


def test_serve_with_workers_on_a_postgresql_county_stops_on_request_and_runs_once_per_machine(tmp_path, pg_url,
                                                                                             monkeypatch, capsys):
    """`serve URL --workers 2`: a second service on the same county from this machine is refused,
    `serve URL --stop` stops every worker (exit 0), and the password of the URL is never printed."""
    from tests import county_day

    day = county_day.prepare(tmp_path, pg_url, laptops=1, rounds=1, usb_laptops=0)
    monkeypatch.setenv("JIANDANG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("JIANDANG_PASSPHRASE", county_day.PASSPHRASE)
    bad = tmp_path / "not-a-certificate.pem"
    bad.write_text("junk")
    assert main(["serve", pg_url, "--port", "0", "--workers", "2", "--tls-cert", str(bad), "--tls-key", str(bad)]) == 1
    assert "无法使用 TLS 证书或私钥" in capsys.readouterr().err  # said before any worker starts
    service = county_day.Service(day, 2)
    try:
        assert "2 个工作进程" in service.start_line and "jiandang-test" not in service.start_line
        assert _upload(service.url, day.bundles[0][0][1], day.bundles[0][0][0])[0] == 200
        assert main(["serve", pg_url, "--port", "0", "--workers", "2"]) == 1
        err = capsys.readouterr().err
        assert "已有县同步服务" in err and "jiandang-test" not in err
        assert main(["serve", pg_url, "--stop"]) == 0
        assert service.proc.wait(120) == 0
    finally:
        if service.proc.poll() is None:
            service.stop()
    assert "县同步服务已停止" in service.log_text()
    capsys.readouterr()
    assert main(["serve", pg_url, "--stop"]) == 1  # nobody running: said at once
    assert "没有正在运行的县同步服务" in capsys.readouterr().err


def test_a_worker_that_dies_is_started_again_and_the_service_serves_on(tmp_path, pg_url):
    import os
    import re
    import signal
    import time

    from tests import county_day

    day = county_day.prepare(tmp_path, pg_url, laptops=2, rounds=1, usb_laptops=0)
    service = county_day.Service(day, 2)
    try:
        pids = dict(re.findall(r"工作进程 (\d) 已启动\(进程号 (\d+)\)", service.log_text()))
        assert sorted(pids) == ["0", "1"] and str(os.getpid()) not in pids.values()
        os.kill(int(pids["0"]), signal.SIGTERM)  # on Windows: TerminateProcess, a hard kill
        deadline = time.monotonic() + 120
        while service.log_text().count("已启动(进程号") < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "工作进程 0 意外退出" in service.log_text() and service.log_text().count("工作进程 0 已启动") == 2
        for name, data in (bundles[0] for bundles in day.bundles):
            assert _upload(service.url, data, name)[0] == 200
    finally:
        code = service.stop()
    assert code == 0


def test_when_the_postgresql_server_drops_the_connections_the_workers_reconnect(tmp_path, pg_url):
    """The server restarting (here: every session of the county database ended by the server) breaks
    each worker's connection: the request that finds it broken is answered 503 (the laptop retries,
    nothing imported), the worker stops and is started again with a new connection, and uploads go
    in again. A single service (no --workers) exits with status 1 for its service manager instead."""
    import time

    from tests import county_day
    from tests.pg import psql

    day = county_day.prepare(tmp_path, pg_url, laptops=3, rounds=1, usb_laptops=0)
    service = county_day.Service(day, 2)
    end_sessions = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    try:
        name, data = day.bundles[0][0]
        assert _upload(service.url, data, name)[0] == 200
        assert psql(pg_url, end_sessions)[0][0] >= 4  # two connections per worker
        statuses = []
        deadline = time.monotonic() + 120
        for name, data in (b[0] for b in day.bundles[1:]):
            while time.monotonic() < deadline:
                status, answer, _ = _upload(service.url, data, name)
                statuses.append(status)
                if status == 200:
                    assert answer["report"]["status"] == "accepted"
                    break
                assert status == 503 and "连接中断" in answer["message"], (status, answer)
                time.sleep(0.5)
        assert statuses[-1] == 200 and statuses.count(200) == 2
        log = service.log_text()
        assert "与县级数据库的连接中断了" in log and "意外退出" in log
    finally:
        assert service.stop() == 0

    single = county_day.Service(day, 1)
    psql(pg_url, end_sessions)
    status, answer, _ = _upload(single.url, *reversed(day.bundles[0][0]))
    assert status == 503
    assert single.proc.wait(60) == 1
    assert "连接中断了,服务已停止" in single.log_text()
    single.log.close()


def test_new_connections_are_spread_over_the_workers_and_wait_while_none_is_running():
    """`serve --workers N` on Linux: each worker listens on a socket of its own on the service's port
    (SO_REUSEPORT) besides the supervisor's shared one, so the kernel spreads new connections over
    the workers by the client's address and port (with only the shared socket the worker that woke
    first took every connection waiting at that moment). The shared socket stays listening in the
    supervisor: with every worker gone (restarting), a new connection waits there instead of being
    refused. Where connections cannot be spread so (Windows, macOS) the workers share the one socket."""
    import socket

    from app.server import workers
    from app.server.app import bind

    plain = bind("127.0.0.1", 0)
    try:
        assert workers.listeners(plain) == [plain]  # bound without SO_REUSEPORT: shared as before
    finally:
        plain.close()
    if not workers.SPREAD:
        return
    shared = bind("127.0.0.1", 0, reuse_port=True)
    port = shared.getsockname()[1]
    shared.listen(256)
    shared.setblocking(False)
    # what each worker process is handed (a duplicate of the supervisor's socket), and its own socket
    handed = [workers.listeners(socket.fromfd(shared.fileno(), shared.family, shared.type)) for _ in range(4)]
    own = [socks[0] for socks in handed]
    clients = []

    def accepted(sock) -> int:
        n = 0
        while True:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                return n
            conn.close()
            n += 1

    def connect(k: int) -> None:  # each from its own loopback address, as laptops from their own
        clients.append(socket.create_connection(("127.0.0.1", port), source_address=(f"127.0.{k // 250}.{k % 250 + 2}", 0)))

    try:
        for sock, socks in zip(own, handed):
            assert socks[1].fileno() != shared.fileno() and sock.getsockname()[1] == port
            sock.listen(256)
            sock.setblocking(False)
        for k in range(250):
            connect(k)
        taken = [accepted(sock) for sock in own]
        assert sum(taken) + accepted(shared) == 250 and min(taken) >= 25, taken  # about 50 each (a hash)
        for socks in handed:  # every worker gone
            for sock in socks:
                sock.close()
        for k in range(250, 260):
            connect(k)  # not refused
        assert accepted(shared) == 10  # the next worker takes them
    finally:
        for c in clients:
            c.close()
        for socks in handed:
            for sock in socks:
                sock.close()
        shared.close()


def test_a_second_service_on_the_port_of_a_service_with_workers_is_refused():
    """The workers' sockets share the port with SO_REUSEPORT, but a port stays one service's: a second
    `serve` on it (with workers or without) is refused as it always was, rather than taking part of
    the first one's connections."""
    import socket

    from app.server import workers
    from app.server.app import bind

    if not workers.SPREAD:  # the shared socket alone: a second bind fails as for any listening socket
        return
    first = bind("127.0.0.1", 0, reuse_port=True)
    port = first.getsockname()[1]
    own = workers.listeners(socket.fromfd(first.fileno(), first.family, first.type))
    try:
        for sock in own:
            sock.listen(16)
        with pytest.raises(OSError):
            bind("127.0.0.1", port, reuse_port=True)  # another `serve --workers`
        with pytest.raises(OSError):
            bind("127.0.0.1", port)  # another `serve` of one process
    finally:
        for sock in own:
            sock.close()
        first.close()
    again = bind("127.0.0.1", port, reuse_port=True)  # free again once the first one stopped
    again.close()


def test_one_service_per_county_database_however_its_address_is_written(monkeypatch, tmp_path):
    """The stop and lock files of `serve URL` are named by the server, port, database and user, not by
    the address's spelling: the default port written out or not, localhost or its loopback address,
    the server's name in any case, with or without a password. Otherwise `serve … --stop` written
    another way said no service was running, and a second service started on the same database."""
    from app import settings
    from app.cli.server_commands import _service_files

    monkeypatch.setattr(settings, "data_dir", lambda: tmp_path)
    same = ["postgresql://county@127.0.0.1/jd", "postgresql://county@127.0.0.1:5432/jd",
            "postgresql://county:secret@localhost:5432/jd", "postgresql://county@LOCALHOST/jd"]
    assert len({_service_files(url) for url in same}) == 1
    others = ["postgresql://county@127.0.0.1:5433/jd", "postgresql://county@127.0.0.1/jd2",
              "postgresql://staff@127.0.0.1/jd", "postgresql://county@10.0.0.5/jd"]
    assert len({_service_files(url) for url in [same[0], *others]}) == 5
