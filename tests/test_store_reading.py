"""Reading a whole database a batch at a time (`Store.records`): on SQLite the cursor steps through
the file; on PostgreSQL a server-side cursor holds the result, so loading a county keeps one batch of
rows in the program, not all of them. The rows come in insertion order, every one once, and the
program may write between batches."""

from __future__ import annotations

import pytest

BACKENDS = ("sqlite", "postgresql")


def _server_cursors(store) -> int:
    """Server-side cursors of the store's own PostgreSQL session."""
    return store.conn.raw.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'jd_rows_%'").fetchone()[0]


def _count_decoded_batches(store) -> list[int]:
    """A list that receives the size of every batch of rows the store decodes from now on."""
    sizes: list[int] = []
    real = store._decode_rows

    def counting(rows):
        sizes.append(len(rows))
        return real(rows)

    store._decode_rows = counting
    return sizes


def test_records_come_a_batch_at_a_time_all_of_them_in_order(demo_store, backend):
    everything = [r.id for r in demo_store.records(include_deleted=True)]
    assert len(everything) > 30
    seen_batches = _count_decoded_batches(demo_store)
    rows = demo_store.records(include_deleted=True, batch=7)
    first = next(rows)
    if backend == "postgresql":  # the server holds the rest of the result, the program one batch
        assert _server_cursors(demo_store) == 1
    got = [first.id] + [r.id for r in rows]
    assert got == everything
    assert seen_batches and max(seen_batches) <= 7 and sum(seen_batches) == len(everything)
    assert len(seen_batches) >= len(everything) // 7
    if backend == "postgresql":
        assert _server_cursors(demo_store) == 0  # closed when the rows ended


def test_a_reading_stopped_early_holds_nothing(demo_store, backend):
    rows = demo_store.records(batch=5)
    next(rows)
    rows.close()
    if backend == "postgresql":
        assert _server_cursors(demo_store) == 0
    assert sum(1 for _ in demo_store.records()) == demo_store.count()


def test_the_program_may_write_between_batches(demo_store):
    """An edit committed while the households are being read (the same connection) neither stops
    the reading nor makes it skip or repeat a household."""
    households = [r.id for r in demo_store.records("household")]
    seen = []
    for record in demo_store.records("household", batch=3):
        seen.append(record.id)
        demo_store.put("household", {"phone": f"1390000{len(seen):04d}"}, record_id=record.id)
    assert seen == households
    assert [demo_store.get(h).fields["phone"] for h in households] == [f"1390000{i:04d}" for i in range(1, len(seen) + 1)]


@pytest.mark.parametrize("batch", [1, 4000])
def test_an_empty_kind_reads_as_nothing(store, batch):
    assert list(store.records("plan", batch=batch)) == []


def test_a_whole_load_decodes_a_few_rows_at_a_time_and_still_names_a_damaged_one(demo_store, backend):
    """SQLite rows are decoded a small step at a time (`_READ_STEP`: a tenth less processor time for a
    whole database, issue 16), PostgreSQL's a round trip's worth; either way every record comes once,
    in insertion order, as `get` gives it, and a tampered body in a later step is skipped and named."""
    from app.store.base import _DECODE_BATCH, _READ_STEP

    ids = [r.id for r in demo_store.records()]
    assert len(ids) > _READ_STEP
    victim, donor = ids[-3], ids[-2]  # the last step: the steps before it decode as before
    demo_store.conn.execute("UPDATE records SET blob = ? WHERE id = ?",
                            (demo_store.conn.execute("SELECT blob FROM records WHERE id = ?", (donor,)).fetchone()[0], victim))
    steps = _count_decoded_batches(demo_store)
    loaded = list(demo_store.records())

    assert [r.id for r in loaded] == [i for i in ids if i != victim]
    assert demo_store.damaged == {victim: demo_store.conn.execute(
        "SELECT kind FROM records WHERE id = ?", (victim,)).fetchone()[0]}
    assert [r == demo_store.get(r.id) for r in loaded] == [True] * len(loaded)  # fields, clocks, village, ...
    assert loaded[-2].id == donor and loaded[-2].clocks == demo_store.get(donor).clocks
    if backend == "sqlite":
        assert max(steps) == _READ_STEP and len(steps) == -(-len(ids) // _READ_STEP)
    else:
        assert steps == [len(ids)] and len(ids) < _DECODE_BATCH
