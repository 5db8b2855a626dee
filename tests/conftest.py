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
from tests.pg import pg_databases, pg_url  # noqa: E402, F401 - fixtures

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: a test about the SQLite file itself (modules with BACKENDS)")


def pytest_generate_tests(metafunc):
    """A module with `BACKENDS = ("sqlite", "postgresql")` runs each test that uses the `backend`
    fixture (through make_store, store, where …) once per backend (tests/pg.py). A module with
    `COUNTY_BACKENDS = ("sqlite", "postgresql")` runs each test that makes a county with
    sync_helpers.make_county once with the county in a file and once on PostgreSQL (the laptops stay
    SQLite files)."""
    wanted = getattr(metafunc.module, "BACKENDS", None)
    if wanted and "backend" in metafunc.fixturenames:
        if metafunc.definition.get_closest_marker("sqlite_only"):
            wanted = ("sqlite",)
        metafunc.parametrize("backend", wanted, indirect=True)
    wanted = getattr(metafunc.module, "COUNTY_BACKENDS", None)
    if wanted and "county_backend" in metafunc.fixturenames and _makes_a_county(metafunc):
        if metafunc.definition.get_closest_marker("sqlite_only"):
            wanted = ("sqlite",)
        metafunc.parametrize("county_backend", wanted, indirect=True)


def _makes_a_county(metafunc) -> bool:
    """Whether the test, a fixture it uses or a helper of its module they call makes a county with
    sync_helpers.make_county (read from their source)."""
    import inspect

    functions = [metafunc.function]
    for name in metafunc.fixturenames:
        for fixturedef in metafunc._arg2fixturedefs.get(name, ()):
            if getattr(fixturedef.func, "__module__", None) == metafunc.module.__name__:
                functions.append(fixturedef.func)
    helpers = {n: f for n, f in vars(metafunc.module).items() if inspect.isfunction(f) or inspect.isclass(f)}
    seen, sources = set(), []
    while functions:
        fn = functions.pop()
        if fn in seen:
            continue
        seen.add(fn)
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            continue
        sources.append(source)
        functions += [f for n, f in helpers.items() if f is not fn and f"{n}(" in source]
    return any("make_county(" in s or "county_location(" in s for s in sources)


@pytest.fixture(autouse=True)
def county_backend(request):
    """"sqlite", or "postgresql" in the county variant (COUNTY_BACKENDS): make_county then puts the
    county in a fresh database on the test PostgreSQL server."""
    chosen = getattr(request, "param", "sqlite")
    if chosen == "postgresql":
        from tests import sync_helpers

        made: dict[tuple, str] = {}
        make = request.getfixturevalue("pg_databases")

        def on_server(tmp, name):
            if (str(tmp), name) not in made:
                made[str(tmp), name] = make()
            return made[str(tmp), name]

        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr(sync_helpers, "county_location", on_server)
    return chosen


@pytest.fixture
def backend(request) -> str:
    """"sqlite" (the default everywhere) or "postgresql" in modules that ask for both."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def where(backend, tmp_path, request):
    """Factory: where a database named `name` lives on this test's backend: a file in tmp_path, or
    a fresh database on the test PostgreSQL server (the same one for the same name)."""
    made: dict[str, str] = {}

    def place(name: str = "village.db"):
        if backend == "sqlite":
            return tmp_path / name
        if name not in made:
            made[name] = request.getfixturevalue("pg_databases")()
        return made[name]

    return place

PASSPHRASE = "correct horse battery"


@pytest.fixture(scope="session")
def qapp(qapp):
    """pytest-qt's application with Qt's Chinese translations and the program's palette, as the
    program installs them (app.ui.app.application): message boxes and dialogs in tests show the
    users' button texts, disabled fields no hint."""
    from app.ui.look import quiet_disabled_hints
    from app.ui.translations import install_translations

    install_translations(qapp)
    quiet_disabled_hints(qapp)
    return qapp


@pytest.fixture
def recovery_key():
    return X25519PrivateKey.generate()


@pytest.fixture
def make_store(where, backend, recovery_key):
    """Factory: a new unlocked village database in tmp_path (closed at the end of the test); on
    PostgreSQL (modules with BACKENDS) a county database, the only role PostgreSQL holds."""
    opened = []

    def make(name: str = "village.db", role: str | None = None, operator: str = "admin", **kw) -> Store:
        role = role or ("county" if backend == "postgresql" else "village")
        store = Store.create(where(name), role=role, site_name=f"{name} 站点", operator=operator,
                             passphrase=PASSPHRASE, recovery_public_key=recovery_key.public_key(), **kw)
        opened.append(store)
        return store

    yield make
    _background_work_ends()
    for store in opened:
        try:
            store.close()
        except Exception:
            pass


def _background_work_ends() -> None:
    """As the program does before it closes a database (app/ui/app.py): work a test's windows started
    in the background (a list loading after a change) ends first, so that it never reads a store
    closed under it (once, a later test crashed in such a load)."""
    import sys  # noqa: PLC0415

    if "app.ui.workers" in sys.modules:
        from PySide6.QtCore import QThreadPool  # noqa: PLC0415

        QThreadPool.globalInstance().waitForDone(60000)


@pytest.fixture
def store(make_store):
    """An empty unlocked village database with the demo divisions and poverty lines."""
    s = make_store()
    demo.install_reference_data(s)
    return s


@pytest.fixture
def demo_store(make_store):
    """A village database filled with 2 households per demo village (12 households); on PostgreSQL
    a county database with the same households."""
    s = make_store("demo.db")
    fill_demo(s, per_village=2)
    return s


def fill_demo(store: Store, per_village: int = 2) -> None:
    """demo.fill, also into a county database (which demo.fill refuses, rightly, for a real county):
    the same generated households, for tests that run on a PostgreSQL county."""
    if store.role != "county":
        demo.fill(store, per_village=per_village)
        return
    from app.core import demo as generator

    demo.install_reference_data(store)
    with store.transaction():
        for doc in generator.iter_households(per_village, 2026, monitoring=True):
            demo._save(store, doc)
