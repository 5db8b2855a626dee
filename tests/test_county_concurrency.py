"""A county day with several writers on one county database (issue #23): the service taking 200
uploads from 20 laptops while a USB `sync import` (its own process) and a staff edit (a Store of its
own) run; every change applied exactly once, and the county and every laptop converge (digests of
the decrypted records after the laptops pull). Harness: tests/county_day.py.

On a SQLite county the service runs with one worker and holds the file: the USB import and the staff
edit wait their turn (they start during the load and finish after the service stops)."""

from __future__ import annotations

import re
import threading

from tests import county_day

LAPTOPS, ROUNDS = 20, 10


def test_a_sqlite_county_day_the_usb_import_and_staff_wait_for_the_service_and_nothing_is_lost(tmp_path):
    day = county_day.prepare(tmp_path, str(tmp_path / "县级.db"), laptops=LAPTOPS, rounds=ROUNDS)
    service = county_day.Service(day, 1)
    started = threading.Event()
    staff: dict = {}
    usb = None
    load_box: dict = {}
    loader = threading.Thread(target=lambda: load_box.setdefault("load", county_day.run_load(service.url, day.bundles,
                                                                                            started=started)))
    loader.start()
    assert started.wait(120)
    usb = county_day.start_usb_import(day)  # during the load: it waits for the service's lock
    said: list[str] = []
    waiting = threading.Event()

    def listen() -> None:  # the USB import's messages as they come (it says when it starts waiting)
        for line in usb.stderr:
            said.append(line)
            if "正被另一个建档程序" in line:
                waiting.set()

    listener = threading.Thread(target=listen)
    listener.start()
    editor = threading.Thread(target=county_day.staff_edit, args=(day, staff))
    editor.start()
    loader.join(600)
    load = load_box["load"]
    # it reached the county's file and waits for the service, saying so (the service holds the SQLite
    # file until it stops, however soon its load ended)
    assert waiting.wait(300), "".join(said)
    assert usb.poll() is None and editor.is_alive()  # still waiting: the service holds the SQLite file
    assert service.stop() == 0
    logs = [service.log_text()]
    usb.wait(300)
    listener.join(60)
    out, err = usb.stdout.read(), "".join(said)
    editor.join(300)
    assert usb.returncode == 0, err
    assert "正被另一个建档程序" in err  # it said it was waiting
    assert staff.get("change") is not None

    assert len(load.results) == LAPTOPS * ROUNDS
    bad = [(i, r, status, answer.get("message")) for i, r, status, answer, _ in load.results
           if status != 200 or answer["report"]["status"] not in ("accepted", "duplicate")]
    assert not bad, bad[:5]
    lines = out.splitlines()
    assert len(lines) == 3 and sum("已接收" in line for line in lines) == 2, out  # two USB laptops' bundles…
    assert sum("重复" in line for line in lines) == 1, out  # …and the one that came over the network too

    service = county_day.Service(day, 1)
    try:
        county_day.pull_all(day, service.url)
    finally:
        assert service.stop() == 0
    figures = county_day.check_day(day)
    assert figures["bundles"] >= LAPTOPS * ROUNDS + 2
    logs.append(service.log_text())
    assert "已接收" in logs[0] and not re.search(r"户主\d+之\d+|1390\d{3}", "".join(logs))  # nothing personal logged


def test_a_postgresql_county_day_four_workers_a_usb_import_and_staff_at_once(tmp_path, pg_url):
    """The same day on a county on PostgreSQL: the service runs 4 workers, and the USB import and the
    staff edit run beside the load and finish while the service is still up (nobody waits for it)."""
    day = county_day.prepare(tmp_path, pg_url, laptops=LAPTOPS, rounds=ROUNDS)
    service = county_day.Service(day, 4)
    try:
        assert "4 个工作进程" in service.start_line and "jiandang-test" not in service.start_line  # no password shown
        started = threading.Event()
        staff: dict = {}
        load_box: dict = {}
        loader = threading.Thread(target=lambda: load_box.setdefault(
            "load", county_day.run_load(service.url, day.bundles, started=started)))
        loader.start()
        assert started.wait(120)
        usb = county_day.start_usb_import(day)
        editor = threading.Thread(target=county_day.staff_edit, args=(day, staff))
        editor.start()
        out, err = usb.communicate(timeout=300)  # finishes with the service up and loaded
        editor.join(300)
        loader.join(600)
        assert usb.returncode == 0, err
        assert "正被另一个建档程序" not in err and staff.get("change") is not None
        assert service.proc.poll() is None
        load = load_box["load"]
        assert len(load.results) == LAPTOPS * ROUNDS
        bad = [(i, r, status, answer.get("message")) for i, r, status, answer, _ in load.results
               if status != 200 or answer["report"]["status"] not in ("accepted", "duplicate")]
        assert not bad, bad[:5]
        lines = out.splitlines()
        assert len(lines) == 3 and all("已接收" in line or "重复" in line for line in lines), out
        # the bundle that came both ways (whichever was first) was taken once and called 重复 the other time
        both = [answer["report"]["status"] for i, r, _, answer, _ in load.results if (i, r) == day.both_ways]
        name = day.bundles[day.both_ways[0]][day.both_ways[1]][0]
        usb_line = next(line for line in lines if name in line)
        assert sorted(both + ["accepted" if "已接收" in usb_line else "duplicate"]) == ["accepted", "duplicate"]
        county_day.pull_all(day, service.url)
    finally:
        code = service.stop()
    assert code == 0
    figures = county_day.check_day(day)
    assert figures["bundles"] >= LAPTOPS * ROUNDS + 2
    log = service.log_text()
    assert "已接收" in log and not re.search(r"户主\d+之\d+|1390\d{3}", log)


def test_one_bundle_imported_by_two_programs_at_once_is_taken_once_and_called_a_duplicate(tmp_path, pg_url,
                                                                                         monkeypatch):
    """A worker and a USB import hold the same bundle at the same moment (it came both ways): both see
    no receipt yet; the second waits for the first's write lock and must then call it 重复, not refuse it."""
    from app.store import Store
    from app.sync import exchange

    day = county_day.prepare(tmp_path, pg_url, laptops=1, rounds=1, usb_laptops=0)
    name, data = day.bundles[0][0]
    first, second = Store.open(pg_url), Store.open(pg_url)
    for s in (first, second):
        s.unlock(county_day.OPERATOR, county_day.PASSPHRASE)
    inside, go = threading.Event(), threading.Event()
    real = exchange._import_upstream

    def held(store, *args):  # the first import stops inside its transaction until told to go on
        result = real(store, *args)
        if store is first:
            inside.set()
            go.wait(60)
        return result

    monkeypatch.setattr(exchange, "_import_upstream", held)
    reports = {}
    one = threading.Thread(target=lambda: reports.setdefault("first", exchange.import_bundle(first, data, name)))
    two = threading.Thread(target=lambda: reports.setdefault("second", exchange.import_bundle(second, data, name)))
    try:
        one.start()
        assert inside.wait(60)
        two.start()  # checks the receipts (none yet), then waits for the write lock
        two.join(1.0)
        assert two.is_alive()
        go.set()
        one.join(60)
        two.join(60)
        assert reports["first"].status == "accepted" and reports["first"].applied == 9
        assert reports["second"].status == "duplicate", reports["second"].line()
        rows = first.conn.execute("SELECT count(*), sum(applied) FROM receipts WHERE kind = 'up'").fetchone()
        assert tuple(rows) == (1, 9)
    finally:
        go.set()
        first.close()
        second.close()
