"""A real PostgreSQL server for the tests: finds it (or starts the local Debian cluster), and makes a
fresh database per test (random name, dropped afterwards).

The server: `JIANDANG_TEST_PG_URL` (an administrator URL whose role may CREATE DATABASE), by
default the role `.ci/postgres` makes, `postgresql://jiandang_test:jiandang-test@127.0.0.1:5432/postgres`
(password login over TCP, Debian's default pg_hba). When nothing answers there and this machine has
Debian's PostgreSQL tools and runs as root, `.ci/postgres` is run once to start the cluster and make
the role. Otherwise the PostgreSQL tests fail with a message saying how to start it; only on a
developer's machine (not CI) does `JIANDANG_TEST_PG=off` skip them.

Modules opt in to running their store tests on both backends with `BACKENDS = ("sqlite",
"postgresql")` (tests/conftest.py parametrises the `backend` fixture); a test that is about the
SQLite file itself is marked `@pytest.mark.sqlite_only`."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADMIN_URL = "postgresql://jiandang_test:jiandang-test@127.0.0.1:5432/postgres"
_state: dict = {}


def admin_url() -> str:
    return os.environ.get("JIANDANG_TEST_PG_URL", DEFAULT_ADMIN_URL)


def _try_connect():
    import psycopg

    try:
        return psycopg.connect(admin_url(), autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        return exc


def _start_local_cluster() -> str:
    """Run .ci/postgres when this machine can (Debian tools, root); what happened, in words."""
    if sys.platform == "win32" or not shutil.which("pg_lsclusters") or os.geteuid() != 0:
        return "本机没有可自动启动的 Debian PostgreSQL 集群"
    done = subprocess.run(["bash", str(ROOT / ".ci" / "postgres")], capture_output=True, text=True, timeout=300)
    return (done.stdout + done.stderr).strip()


def server():
    """An administrator connection to the test server (once per session)."""
    if "conn" in _state:
        return _state["conn"]
    if "skip" in _state:
        pytest.skip(_state["skip"])
    if "fail" in _state:
        pytest.fail(_state["fail"], pytrace=False)
    conn = _try_connect()
    tried = ""
    if isinstance(conn, Exception) and "JIANDANG_TEST_PG_URL" not in os.environ:
        tried = _start_local_cluster()
        conn = _try_connect()
    if isinstance(conn, Exception):
        message = (f"PostgreSQL 测试服务器不可用({mask(admin_url())}: {conn}). {tried}\n"
                   "Start it: `bash .ci/postgres` (Debian: installs postgresql, runs `pg_ctlcluster <version> main "
                   "start`, creates the role jiandang_test), or point JIANDANG_TEST_PG_URL at a server where the "
                   "role may create databases.")
        if os.environ.get("JIANDANG_TEST_PG") == "off" and os.environ.get("CI", "").lower() not in ("true", "1"):
            _state["skip"] = "JIANDANG_TEST_PG=off: " + message
            pytest.skip(_state["skip"])
        _state["fail"] = message
        pytest.fail(message, pytrace=False)
    _state["conn"] = conn
    return conn


def mask(url: str) -> str:
    from app.store.locations import mask as _mask

    return _mask(url)


def url_of(database: str) -> str:
    parts = urlsplit(admin_url())
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def create_database() -> str:
    """A new empty database on the test server; its URL."""
    name = "jd_test_" + secrets.token_hex(6)
    server().execute(f'CREATE DATABASE "{name}"')
    return url_of(name)


def drop_database(url: str) -> None:
    """Drop a test database (ending the sessions still on it). An autovacuum worker on it may only be
    ended by a member of pg_signal_backend (.ci/postgres grants it): otherwise wait for it a little."""
    import time

    import psycopg

    name = urlsplit(url).path.lstrip("/")
    for attempt in range(20):
        try:
            server().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            if attempt == 19:
                raise
            time.sleep(0.5)


def copy_database(url: str) -> str:
    """A new test database made from another (closed) one; dropped with the session's others."""
    name = urlsplit(url).path.lstrip("/")
    copy = "jd_test_" + secrets.token_hex(6)
    server().execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')
    _state.setdefault("copies", []).append(url_of(copy))
    return url_of(copy)


def drop_copies() -> None:
    for url in _state.pop("copies", []):
        drop_database(url)


def psql(url: str, sql: str) -> list[tuple]:
    """Run SQL on a test database directly (not through the store)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def pg_databases():
    """Factory of fresh test databases (URLs), all dropped after the test."""
    made: list[str] = []

    def make() -> str:
        url = create_database()
        made.append(url)
        return url

    yield make
    drop_copies()
    for url in made:
        drop_database(url)


@pytest.fixture
def pg_url(pg_databases) -> str:
    """The URL of one fresh, empty database on the test server."""
    return pg_databases()
