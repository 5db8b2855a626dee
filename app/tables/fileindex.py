"""The file-wide indexes of an import's analysis, kept outside Python memory.

Naming every problem of a file in one pass needs to remember, across the whole file, which household
a 户编号 / 户主身份证号 / 户主姓名 belongs to and where each ID number was first seen (a person
registered twice 40,000 rows apart is named in both places). Held in dicts these took about 1.2 KB a
household (tracemalloc at 2,000 households): 60 MB at 50,000. Here they are TEMP tables of a scratch
database (app/tables/scratch.py: on disk past a small cache, removed by SQLite, also after a killed
import) holding keyed digests (scratch.Keys) instead of the names and numbers, beside group numbers and row
positions: equal values give equal digests, which is all the grouping and the duplicate check ask.
"""

from __future__ import annotations

from app.tables import scratch

RECENT = 256  # household keys remembered in memory (a household's rows are usually adjacent)

SCHEMA = """
    CREATE TEMP TABLE households (digest BLOB PRIMARY KEY, grp INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TEMP TABLE ids (digest BLOB PRIMARY KEY, grp INTEGER NOT NULL, sheet INTEGER NOT NULL,
                           row INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TEMP TABLE unnumbered (digest BLOB NOT NULL, grp INTEGER NOT NULL, sheet INTEGER NOT NULL,
                                  PRIMARY KEY (digest, grp)) WITHOUT ROWID
"""


class FileIndex:
    def __init__(self, cache_kib: int | None = None):
        self._keys = scratch.Keys()
        self._db = scratch.connect(SCHEMA, cache_kib)
        self._recent: dict[bytes, int] = {}

    def _digest(self, tag: str, value) -> bytes:
        return self._keys.digest(tag, value)

    def digests(self, keys: list[tuple[str, object]]) -> list[bytes]:
        return [self._digest(tag, value) for tag, value in keys]

    def household(self, keys: list[tuple[str, object]]) -> tuple[int | None, list[bytes]]:
        """The household of the first of `keys` (("n", 户编号), ("h", 户主身份证号)) already given one,
        else None; and the keys' digests, for `remember`."""
        digests = self.digests(keys)
        for digest in digests:
            found = self._recent.get(digest)
            if found is None:
                row = self._db.execute("SELECT grp FROM households WHERE digest = ?", (digest,)).fetchone()
                found = row[0] if row else None
            if found is not None:
                return found, digests
        return None, digests

    def remember(self, digests: list[bytes], group: int) -> None:
        """Each key (by its digest from `household`) belongs to `group`, unless it already belongs to one."""
        for digest in digests:
            if digest in self._recent:
                continue
            owner = group
            if not self._db.execute("INSERT OR IGNORE INTO households VALUES (?, ?)", (digest, group)).rowcount:
                owner = self._db.execute("SELECT grp FROM households WHERE digest = ?", (digest,)).fetchone()[0]
            if len(self._recent) >= RECENT:
                self._recent.clear()
            self._recent[digest] = owner

    def first_seen(self, id_number: str, group: int, sheet: int, row: int) -> tuple[int, int, int] | None:
        """Where `id_number` was seen first, as (group, sheet, row); None when this is the first time
        (then this place is remembered)."""
        digest = self._digest("id", id_number)
        if self._db.execute("INSERT OR IGNORE INTO ids VALUES (?, ?, ?, ?)", (digest, group, sheet, row)).rowcount:
            return None
        return self._db.execute("SELECT grp, sheet, row FROM ids WHERE digest = ?", (digest,)).fetchone()

    def add_unnumbered(self, head_name: str, sheet: int, group: int) -> None:
        """A household of sheet `sheet` without a 户编号, whose head is `head_name` (kept once a household)."""
        self._db.execute("INSERT OR IGNORE INTO unnumbered VALUES (?, ?, ?)", (self._digest("name", head_name), group, sheet))

    def unnumbered(self, head_name: str, other_than_sheet: int) -> list[int]:
        """The households without a 户编号 whose head is `head_name`, on sheets other than the one given
        (at most two: one is an answer, two are namesakes)."""
        return [g for g, in self._db.execute("SELECT grp FROM unnumbered WHERE digest = ? AND sheet != ? LIMIT 2",
                                              (self._digest("name", head_name), other_than_sheet))]

    def close(self) -> None:
        self._db.close()
        self._recent.clear()

    def __enter__(self) -> "FileIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
