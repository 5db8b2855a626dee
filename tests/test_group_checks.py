"""The checks before a group's merge at the county service (issue #23, sixth pass): the certificates of
a group's signers and the receipts its bundles are checked against are read together, once per group
(`identity.certificates_by_keys`, `exchange._Receipts`), and the group's answers are handed to the
event loop together. What each upload is told stays its own: accepted, a duplicate, a revoked device,
a key enrolled nowhere, a next bundle after one already held. On a county file and on PostgreSQL."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from app.server import app as server_app
from app.server.limits import Limits
from app.server.receive import Spool
from app.services import households
from app.store import Store
from app.sync import exchange, identity
from tests import factories
from tests.sync_helpers import make_county, make_device

COUNTY_BACKENDS = ("sqlite", "postgresql")


class _Statements:
    """Counts the statements run on a store's connection by the table they read."""

    def __init__(self, store: Store):
        self.texts: list[str] = []
        inner, seen = store.conn, self.texts

        class Counting:
            def __getattr__(self, name):
                return getattr(inner, name)

            def execute(self, sql, params=()):
                seen.append(" ".join(sql.split()))
                return inner.execute(sql, params)

        self.inner, self.store = inner, store
        store.conn = Counting()

    def reading(self, table: str) -> int:
        """SELECTs whose first FROM is `table` (the merge's own receipt re-check reads receipts in a
        sub-select of another statement, under the write lock, and is not one of these)."""
        return sum(1 for t in self.texts if re.match(rf"SELECT [^()]*? FROM {table}\b", t))

    def restore(self) -> None:
        self.store.conn = self.inner


def _merged_as_one_group(county: Store, bundles: list[tuple[str, bytes]],
                         counting: list | None = None) -> list[tuple[int, dict]]:
    """The service's database thread takes these uploads as one group, as when they queued up together.
    `counting`: a list that receives the `_Statements` of the group's checks and merge."""
    app = server_app.create_app(county, Limits(uploads_per_minute=0), spool_dir=Path(tempfile.mkdtemp()))
    service = app.state.service
    if counting is not None:
        counting.append(_Statements(county))
    waiting = []
    for name, data in bundles:
        spool = Spool(service.spool_dir)
        spool.write(data)
        spool.close()
        waiting.append(server_app._Waiting(spool, name))
    service.waiting.extend(waiting)
    try:
        service._merge_waiting()
    finally:
        if counting:
            counting[0].restore()
        service.close()
    assert all(w.error is None for w in waiting), [w.error for w in waiting]
    return [(w.answer[0], w.answer[1]) for w in waiting]


def _laptop(tmp_path: Path, county: Store, i: int) -> Store:
    laptop = make_device(tmp_path, county, f"队{i}")
    households.save(laptop, factories.household(f"户主{i}", f"配偶{i}", seq=60 + 2 * i))
    return laptop


def test_each_upload_of_a_group_is_told_its_own_outcome(tmp_path):
    county = make_county(tmp_path)
    laptops = [_laptop(tmp_path, county, i) for i in range(5)]
    fresh, again, revoked, foreign, second = laptops
    held = exchange.export_upstream(again)
    assert exchange.import_bundle(county, held[1], held[0]).status == "accepted"
    first = exchange.export_upstream(second)
    assert exchange.import_bundle(county, first[1], first[0]).status == "accepted"
    households.save(second, factories.household("户主新", "配偶新", seq=90))
    next_one = exchange.export_upstream(second)  # its bundle 2, after bundle 1 the county holds
    assert next_one[0] != first[0]
    group = [exchange.export_upstream(fresh), held, exchange.export_upstream(revoked),
             exchange.export_upstream(foreign), next_one]
    identity.revoke(county, revoked.site_id)
    with county.transaction():  # a device this county does not know (enrolled elsewhere, or removed)
        county.conn.execute("DELETE FROM certificates WHERE site_id = ?", (foreign.site_id,))

    answers = _merged_as_one_group(county, group)

    assert [status for status, _ in answers] == [200, 200, 403, 403, 200]
    assert [body["error"] for _, body in answers] == [None, None, "revoked", "unknown_site", None]
    assert [body["report"]["status"] for _, body in answers] == ["accepted", "duplicate", "refused", "refused", "accepted"]
    assert [body["report"]["name"] for _, body in answers] == [name for name, _ in group]
    assert "吊销" in answers[2][1]["message"] and "不属于任何已登记的设备" in answers[3][1]["message"]
    assert answers[4][1]["report"]["seq"] == 2
    assert county.conn.execute("SELECT count(*) FROM receipts WHERE sender = ?", (revoked.site_id,)).fetchone()[0] == 0
    assert county.conn.execute("SELECT count(*) FROM receipts WHERE sender = ?", (second.site_id,)).fetchone()[0] == 2
    for s in laptops + [county]:
        s.close()


def test_a_group_reads_its_signers_certificates_and_its_receipts_once(tmp_path):
    """Before, each upload of a group read its signer's certificate and its receipts by itself: on a
    PostgreSQL county two round trips to the server per upload, for what one statement each answers."""
    county = make_county(tmp_path)
    laptops = [_laptop(tmp_path, county, i) for i in range(6)]
    earlier = exchange.export_upstream(laptops[0])
    assert exchange.import_bundle(county, earlier[1], earlier[0]).status == "accepted"
    households.save(laptops[0], factories.household("户主新", "配偶新", seq=90))
    group = [exchange.export_upstream(laptop) for laptop in laptops]  # laptop 0's second bundle (prev: its first)
    counted: list = []
    answers = _merged_as_one_group(county, group, counted)
    counting = counted[0]
    assert [status for status, _ in answers] == [200] * 6
    assert [body["report"]["status"] for _, body in answers] == ["accepted"] * 6
    assert counting.reading("certificates") == 1
    assert counting.reading("receipts") == 1
    for s in laptops + [county]:
        s.close()
