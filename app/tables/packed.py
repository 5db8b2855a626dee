"""The households of an import's plan, kept packed outside Python memory.

`Groups` holds a file's households (importer.Group) in file order, each pickled, zlib-compressed and
sealed (AES-256-GCM under a key made for this import, held only in memory) in a scratch database
(app/tables/scratch.py: on disk past a small cache, removed by SQLite, also after a killed import),
except the few being filled while the file is read. The dry run and the import unpack one at a time
(indexing and iterating give a fresh copy; changing it changes nothing stored). The first household
packed is the compression's preset dictionary for all the others (their field names, sheet titles
and code values are mostly its own: 1.3 KB a household without it, 0.6 KB with it). Kept in a list
of bytes these were 0.6 KB a household of memory: 30 MB at 50,000.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Iterator, Sequence

from app.tables import scratch


class Groups(Sequence):
    LIVE = 64  # unpacked groups kept while reading (a household's rows are usually adjacent)

    def __init__(self, cache_kib: int | None = None):
        self._keys = scratch.Keys()
        self._db = scratch.connect("CREATE TEMP TABLE groups (i INTEGER PRIMARY KEY, sealed BLOB NOT NULL)", cache_kib)
        self._count = 0
        self._live: dict = {}
        self._zdict: bytes | None = None

    def _pack(self, i: int, group) -> None:
        raw = pickle.dumps(group, pickle.HIGHEST_PROTOCOL)
        if self._zdict is None:
            self._zdict = raw
        packer = zlib.compressobj(1, zdict=self._zdict)
        sealed = self._keys.seal(packer.compress(raw) + packer.flush(), i.to_bytes(8, "big"))
        self._db.execute("INSERT OR REPLACE INTO groups VALUES (?, ?)", (i, sealed))

    def _unpack(self, i: int):
        sealed = self._db.execute("SELECT sealed FROM groups WHERE i = ?", (i,)).fetchone()[0]
        return pickle.loads(zlib.decompressobj(zdict=self._zdict).decompress(self._keys.open(sealed, i.to_bytes(8, "big"))))

    def add(self, group) -> int:
        self._live[self._count] = group
        self._count += 1
        return self._count - 1

    def open(self, i: int):
        """Group i to change in place (kept unpacked until the next `settle`)."""
        group = self._live.get(i)
        if group is None:
            group = self._live[i] = self._unpack(i)
        return group

    def settle(self, keep: int | None = None) -> None:
        """Pack the unpacked groups (all but `keep`) once there are more than LIVE of them."""
        if len(self._live) > self.LIVE or keep is None:
            for i in [i for i in self._live if i != keep]:
                self._pack(i, self._live.pop(i))

    def close(self) -> None:
        self._live.clear()
        self._db.close()

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        if i in self._live:
            return self._live[i]
        return self._unpack(i)

    def __iter__(self) -> Iterator:
        for i in range(len(self)):
            yield self[i]
