"""Group commit at the county (issue #23): uploads that queue up while the service merges are merged
together in ONE transaction, each bundle in a savepoint of its own (app.sync.exchange.import_bundles,
app.server.app `Service._merge_waiting`). A bundle refused inside a group leaves nothing and the
others of its group stay; a process killed in the middle of a group leaves nothing of it; every
upload is answered only after its group committed. On a county file and on PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from app.server.app import Service
from app.services import households
from app.store import Store
from app.sync import exchange, wire
from tests import factories
from tests.support.jiandang_test_hooks import subprocess_env
from tests.sync_helpers import PASSPHRASE, address, make_county, make_device

COUNTY_BACKENDS = ("sqlite", "postgresql")

ROOT = Path(__file__).resolve().parents[1]


def _laptops(tmp_path: Path, county: Store, n: int = 3) -> list[Store]:
    out = []
    for i in range(n):
        laptop = make_device(tmp_path, county, f"队{i}")
        households.save(laptop, factories.household(f"户主{i}", f"配偶{i}", seq=30 + 2 * i))
        out.append(laptop)
    return out


def _held(county: Store, laptop: Store) -> tuple[int, int, int]:
    """What the county holds of the laptop: change rows, records, receipts."""
    site = laptop.site_id
    return (county.conn.execute("SELECT count(*) FROM changes WHERE site_id = ?", (site,)).fetchone()[0],
            county.conn.execute("SELECT count(*) FROM records WHERE id IN (SELECT record_id FROM changes "
                                "WHERE site_id = ?)", (site,)).fetchone()[0],
            county.conn.execute("SELECT count(*) FROM receipts WHERE sender = ?", (site,)).fetchone()[0])


def test_a_bundle_refused_inside_a_group_leaves_nothing_and_the_others_stay(tmp_path, monkeypatch):
    county = make_county(tmp_path)
    laptops = _laptops(tmp_path, county)
    bundles = [exchange.export_upstream(laptop) for laptop in laptops]
    refused_site = laptops[1].site_id
    real = exchange._import_attachments

    def refusing_late(store, sender, *args, **kw):  # after the bundle's records and changes were written
        if sender == refused_site:
            assert store.conn.execute("SELECT count(*) FROM changes WHERE site_id = ?", (sender,)).fetchone()[0] > 0
            raise wire.BundleError("测试:此包在合并的最后一步被拒收")
        return real(store, sender, *args, **kw)

    monkeypatch.setattr(exchange, "_import_attachments", refusing_late)
    reports = exchange.import_bundles(county, [(data, name, None) for name, data in bundles])
    assert [r.status for r in reports] == ["accepted", "refused", "accepted"]
    assert "最后一步被拒收" in reports[1].message
    assert _held(county, laptops[1]) == (0, 0, 0)
    for laptop in (laptops[0], laptops[2]):
        changes, records, receipts = _held(county, laptop)
        assert changes == laptop.change_count() and records > 0 and receipts == 1
    assert county.conn.execute("SELECT have_seq FROM peers WHERE site_id = ?", (refused_site,)).fetchone()[0] == 0
    # the refused bundle goes in whole later, and the others are duplicates
    monkeypatch.setattr(exchange, "_import_attachments", real)
    again = exchange.import_bundles(county, [(data, name, None) for name, data in bundles])
    assert [r.status for r in again] == ["duplicate", "accepted", "duplicate"]
    assert _held(county, laptops[1])[0] == laptops[1].change_count()
    for s in laptops + [county]:
        s.close()


def test_the_same_bundle_twice_in_one_group_is_merged_once(tmp_path):
    county = make_county(tmp_path)
    laptop = _laptops(tmp_path, county, 1)[0]
    name, data = exchange.export_upstream(laptop)
    reports = exchange.import_bundles(county, [(data, name, None), (data, name, None)])
    assert [r.status for r in reports] == ["accepted", "duplicate"]
    changes, records, receipts = _held(county, laptop)
    assert (changes, receipts) == (laptop.change_count(), 1) and records > 0
    laptop.close()
    county.close()


MID_GROUP = """
import sys
from pathlib import Path
from app.store import Store
from app.sync import exchange
county = Store.open(sys.argv[1])
county.unlock("admin", sys.argv[2])
files = [Path(p) for p in sys.argv[3:]]
reports = exchange.import_bundles(county, [(f.read_bytes(), f.name, None) for f in files])
print([r.status for r in reports])
"""


def test_a_process_killed_in_the_middle_of_a_group_leaves_nothing_of_it(tmp_path):
    county = make_county(tmp_path)
    laptops = _laptops(tmp_path, county)
    files = []
    for laptop in laptops:
        name, data = exchange.export_upstream(laptop)
        (tmp_path / name).write_bytes(data)
        files.append(str(tmp_path / name))
    where = address(county)
    before = exchange.store_digest(county)
    county.close()
    marker = tmp_path / "holding"
    # the second bundle's merge holds (the first one's rows are written in the open transaction); killed there
    proc = subprocess.Popen([sys.executable, "-c", MID_GROUP, where, PASSPHRASE, *files], cwd=ROOT,
                            env=subprocess_env(JIANDANG_TEST_HOLD_IMPORT=str(marker), JIANDANG_TEST_HOLD_IMPORT_CALL="2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(30)
    county = Store.open(where, wait=30)
    county.unlock("admin", PASSPHRASE)
    assert exchange.store_digest(county) == before
    assert all(_held(county, laptop) == (0, 0, 0) for laptop in laptops)
    reports = exchange.import_bundles(county, [(Path(f).read_bytes(), Path(f).name, None) for f in files])
    assert [r.status for r in reports] == ["accepted"] * 3
    for laptop in laptops:
        assert _held(county, laptop)[0] == laptop.change_count()
        laptop.close()
    county.close()


def test_uploads_waiting_together_are_one_group_answered_after_its_commit(tmp_path, monkeypatch):
    """Through the service: while the database thread is busy, three uploads queue up; they are then
    merged as one group; the one refused inside it is answered 422 and left out, the others 200, and
    no answer leaves before the group's transaction has committed."""
    from app.server.app import SyncServer
    from tests.test_serve import _upload

    county = make_county(tmp_path)
    laptops = _laptops(tmp_path, county)
    bundles = [exchange.export_upstream(laptop) for laptop in laptops]
    refused_site = laptops[2].site_id
    real_attachments, real_group, real_merge = exchange._import_attachments, exchange.import_bundles, Service._merge_waiting
    gate, groups, committed = threading.Event(), [], []

    def refusing_late(store, sender, *args, **kw):
        if sender == refused_site:
            raise wire.BundleError("测试:此包在合并的最后一步被拒收")
        return real_attachments(store, sender, *args, **kw)

    def group(store, items, **kw):
        groups.append([name for _, name, _ in items])
        reports = real_group(store, items, **kw)
        committed.append(time.monotonic())
        return reports

    def held_merge(self):
        gate.wait(30)  # the database thread is busy: uploads arriving now wait together
        return real_merge(self)

    monkeypatch.setattr(exchange, "_import_attachments", refusing_late)
    monkeypatch.setattr(exchange, "import_bundles", group)
    monkeypatch.setattr(Service, "_merge_waiting", held_merge)
    server = SyncServer(county, "127.0.0.1", 0, access_log=False).start()
    try:
        answers: list = [None] * len(bundles)

        def send(i):
            name, data = bundles[i]
            status, body, _ = _upload(server.url, data, name, source=f"127.0.0.{20 + i}")
            answers[i] = (status, body, time.monotonic())

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bundles))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(server.app.state.service.waiting) < len(bundles):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        gate.set()
        for t in threads:
            t.join(60)
    finally:
        server.stop()
    assert len(groups) == 1 and sorted(groups[0]) == sorted(name for name, _ in bundles)  # one group
    assert [a[0] for a in answers] == [200, 200, 422]
    assert answers[2][1]["report"]["status"] == "refused" and "最后一步被拒收" in answers[2][1]["message"]
    assert all(a[2] >= committed[0] for a in answers)  # answered after the commit
    assert _held(county, laptops[2]) == (0, 0, 0)
    assert all(_held(county, laptop)[2] == 1 for laptop in laptops[:2])
    for s in laptops + [county]:
        s.close()


def test_an_upload_is_answered_when_its_group_commits_not_after_the_next_group(tmp_path, monkeypatch):
    """Uploads A and B are merged as one group; C arrives while that group is merging and is merged
    in the next one. B is answered as soon as its own group has committed, before C's group ends (it
    used to wait for the next job on the database thread, which by then merged C's group)."""
    from app.server.app import SyncServer
    from tests.test_serve import _upload

    county = make_county(tmp_path)
    laptops = _laptops(tmp_path, county)
    bundles = [exchange.export_upstream(laptop) for laptop in laptops]
    real_group, real_merge = exchange.import_bundles, Service._merge_waiting
    gate, merging, ended = threading.Event(), threading.Event(), []

    def slow_group(store, items, **kw):
        merging.set()
        time.sleep(1.0)  # each group takes a while
        reports = real_group(store, items, **kw)
        ended.append(([name for _, name, _ in items], time.monotonic()))
        return reports

    def held_merge(self):
        gate.wait(30)
        return real_merge(self)

    monkeypatch.setattr(exchange, "import_bundles", slow_group)
    monkeypatch.setattr(Service, "_merge_waiting", held_merge)
    server = SyncServer(county, "127.0.0.1", 0, access_log=False).start()
    answers: dict = {}

    def send(i):
        name, data = bundles[i]
        status, _, _ = _upload(server.url, data, name, source=f"127.0.0.{40 + i}")
        answers[i] = (status, time.monotonic())

    try:
        first = [threading.Thread(target=send, args=(i,)) for i in (0, 1)]
        for t in first:
            t.start()
        deadline = time.monotonic() + 30
        while len(server.app.state.service.waiting) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        gate.set()
        assert merging.wait(30)
        late = threading.Thread(target=send, args=(2,))  # arrives while A and B are being merged
        late.start()
        for t in [*first, late]:
            t.join(60)
    finally:
        server.stop()
    assert [sorted(names) for names, _ in ended] == [sorted([bundles[0][0], bundles[1][0]]), [bundles[2][0]]]
    assert all(answers[i][0] == 200 for i in range(3))
    first_end, second_end = ended[0][1], ended[1][1]
    assert answers[0][1] >= first_end and answers[1][1] >= first_end
    assert answers[0][1] < second_end and answers[1][1] < second_end  # not held back by C's group
    for s in laptops + [county]:
        s.close()
