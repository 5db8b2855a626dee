"""Shared fixtures. Databases use a cheap Argon2id profile so the suite stays quick (the default
profile is exercised in test_store.py): the test hooks in tests/support/ are installed into this
process here, and into every program process a test starts through PYTHONPATH (tests/support first,
whose sitecustomize.py installs them). The program itself has no switch for it."""

from __future__ import annotations

import os

import pytest

from tests.support import jiandang_test_hooks

jiandang_test_hooks.install_fast_kdf()
os.environ["PYTHONPATH"] = jiandang_test_hooks.subprocess_env()["PYTHONPATH"]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from app.services import demo  # noqa: E402
from app.store import Store  # noqa: E402

PASSPHRASE = "correct horse battery"


@pytest.fixture(scope="session")
def qapp(qapp):
    """pytest-qt's application with Qt's Chinese translations, as the program installs them
    (app.ui.app.application): message boxes and dialogs in tests show the users' button texts."""
    from app.ui.translations import install_translations

    install_translations(qapp)
    return qapp


@pytest.fixture
def recovery_key():
    return X25519PrivateKey.generate()


@pytest.fixture
def make_store(tmp_path, recovery_key):
    """Factory: a new unlocked village database in tmp_path (closed at the end of the test)."""
    opened = []

    def make(name: str = "village.db", role: str = "village", operator: str = "admin", **kw) -> Store:
        store = Store.create(tmp_path / name, role=role, site_name=f"{name} 站点", operator=operator,
                             passphrase=PASSPHRASE, recovery_public_key=recovery_key.public_key(), **kw)
        opened.append(store)
        return store

    yield make
    for store in opened:
        try:
            store.close()
        except Exception:
            pass


@pytest.fixture
def store(make_store):
    """An empty unlocked village database with the demo divisions and poverty lines."""
    s = make_store()
    demo.install_reference_data(s)
    return s


@pytest.fixture
def demo_store(make_store):
    """A village database filled with 2 households per demo village (12 households)."""
    s = make_store("demo.db")
    demo.fill(s, per_village=2)
    return s
