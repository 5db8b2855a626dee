"""The integrity check's first step on a county database on PostgreSQL, which has no `PRAGMA
integrity_check` (the server keeps its own pages and write-ahead log consistent): are the store's
tables, columns, primary keys and indexes all there, and is every index valid (one left behind by an
interrupted `CREATE INDEX CONCURRENTLY`, or marked invalid, is not)?

What should be there is what the migrations make (app/store/migrations.py), read from a scratch
in-memory SQLite database the same steps build, so the check follows every new migration by itself.
The sealed rows are checked by app/services/integrity.py as on SQLite."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from functools import lru_cache

from app.store.migrations import migrate


@dataclass(frozen=True)
class Schema:
    tables: dict[str, tuple[str, ...]]            # table -> columns
    keyed: frozenset[str]                          # tables with a primary key
    indexes: dict[str, str] = field(default_factory=dict)  # index -> table


class _Db:
    def __init__(self, conn):
        self.conn = conn

    def table_names(self):
        return [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


@lru_cache(maxsize=1)
def expected() -> Schema:
    """The schema the migrations build."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.execute("BEGIN")
        migrate(_Db(conn))
        conn.execute("COMMIT")
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        tables, keyed = {}, set()
        for name in names:
            info = conn.execute(f'PRAGMA table_info("{name}")').fetchall()
            tables[name] = tuple(r[1] for r in info)
            if any(r[5] for r in info):
                keyed.add(name)
        indexes = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"))
        return Schema(tables, frozenset(keyed), indexes)
    finally:
        conn.close()


def postgres_problems(raw) -> list[str]:
    """What is missing or invalid in the store's tables on a PostgreSQL connection (psycopg), in
    words; empty when all is there."""
    schema = expected()
    columns: dict[str, set[str]] = {}
    for table, column in raw.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"):
        columns.setdefault(table, set()).add(column)
    keyed = {r[0] for r in raw.execute(
        "SELECT c.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
        "WHERE k.contype = 'p' AND c.relnamespace = current_schema()::regnamespace")}
    indexes = {name: valid for name, valid in raw.execute(
        "SELECT i.relname, x.indisvalid AND x.indisready FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE i.relnamespace = current_schema()::regnamespace")}
    problems = []
    for table, wanted in schema.tables.items():
        if table not in columns:
            problems.append(f"缺少数据表 {table}")
            continue
        missing = [c for c in wanted if c not in columns[table]]
        if missing:
            problems.append(f"数据表 {table} 缺少列 {'、'.join(missing)}")
        if table in schema.keyed and table not in keyed:
            problems.append(f"数据表 {table} 缺少主键(重复的行不再被拒绝)")
    for index, table in schema.indexes.items():
        if table not in columns:
            continue
        if index not in indexes:
            problems.append(f"数据表 {table} 缺少索引 {index}(查询会变慢)")
        elif not indexes[index]:
            problems.append(f"数据表 {table} 的索引 {index} 无效(需要重建:REINDEX INDEX {index})")
    return problems
