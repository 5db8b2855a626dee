"""The blind index's digests: HMAC-SHA256 of "field\\x1fvalue" under the index key, truncated to 16
bytes, whichever way they are computed (a database's existing index rows must keep matching)."""

import hashlib
import hmac

from app.store import crypto


def test_digester_gives_the_digests_of_blind_digest():
    key = bytes(range(32))
    digest = crypto.blind_digester(key)
    values = [("id_number", "11010519491231002X"), ("household_number", "522699101201001"),
              ("id_number", ""), ("name", "郭宇山"), ("id_number", "11010519491231002X")]
    for field, value in values:
        expected = hmac.new(key, f"{field}\x1f{value}".encode(), hashlib.sha256).digest()[:16]
        assert digest(field, value) == crypto.blind_digest(key, field, value) == expected
    # another key gives other digests (the keyed state is not shared between digesters)
    other = crypto.blind_digester(bytes(32))
    assert other("id_number", "11010519491231002X") != digest("id_number", "11010519491231002X")
    assert digest("id_number", "11010519491231002X") == crypto.blind_digest(key, "id_number", "11010519491231002X")


def test_store_blind_follows_the_unlocked_key(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from app.store import Store, StoreLocked

    store = Store.create(tmp_path / "村.db", role="village", site_name="村", operator="admin",
                         passphrase="correct horse battery", recovery_public_key=X25519PrivateKey.generate().public_key())
    key = store._index_key
    first = store.blind("id_number", "11010519491231002X")
    assert first == crypto.blind_digest(key, "id_number", "11010519491231002X")
    store.lock()
    try:
        store.blind("id_number", "11010519491231002X")
    except StoreLocked:
        pass
    else:
        raise AssertionError("a locked store gave a digest")
    store.unlock("admin", "correct horse battery")
    assert store.blind("id_number", "11010519491231002X") == first
    store.close()
