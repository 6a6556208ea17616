"""Read results kept while the SQLite database is unchanged, so a status poll costs no query.

Under load the SQL was the largest part of a status poll in an API replica: not
the query (about 100 us alone) but the GIL, which the ``sqlite3`` module
releases around every call into SQLite and the replica's other busy threads then
hold (``bench/api_load.py``: 0.65 ms of replica CPU per status request; even one
``PRAGMA data_version`` per request still cost about 0.2 ms).

Freshness is exact, not a time to live. The version of the database is read
where SQLite itself keeps it for its readers: the WAL-index header at the start
of the ``-shm`` file, which every commit rewrites (its change counter, last frame
and salts; https://www.sqlite.org/walformat.html, "The WAL-Index Header"), read
through a read-only memory map, so no call into SQLite and no GIL hand-off.
SQLite writes the header's two copies in opposite order; copies that differ are
a commit in progress and that read asks SQLite instead. Where there is no
WAL-index (another journal mode or VFS), and once a second as a cross-check,
``PRAGMA data_version`` answers: it changes as soon as any other connection, in
any process, has committed. Should the header ever miss a commit the cross-check
sees, the memo stops trusting it for good (and says so in the log).

Every write goes through the job registry's connection, so a write acknowledged
to any client is seen by the next read in every replica. A value is cached under
the version taken *before* it was read, so it is never older than its version
says; a commit in between only discards it at the next check. No library keeps
results by a database's version; this is small.

A commit drops only the reads of the tables it wrote: each value names the tables it was read from,
and when the header moves the memo reads the per-table versions that triggers keep
(``table_versions.py``; one query per commit, not per read). A table's version is read before any value
kept under it is fetched, so a write after that read always shows as a change. A database without
those versions (not yet migrated by its writer) drops everything at each commit, as before.
"""

from __future__ import annotations

import logging
import mmap
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from . import table_versions

T = TypeVar("T")
log = logging.getLogger("sienn_ray.store")
# What one replica keeps between two commits: bounded in bytes, since a list page can be a megabyte.
MAX_BYTES = 32 * 1024 * 1024
VERIFY_S = 1.0  # how often the WAL-index header is checked against PRAGMA data_version
HEADER = 48  # bytes of one copy of the WAL-index header; two copies follow each other
ANY_TABLE = "*"  # what a value that names no tables is filed under: dropped at every change


class ReadMemo:
    """Results by key, dropped when a table they were read from has changed since."""

    def __init__(self, path: str, max_bytes: int = MAX_BYTES, verify_s: float = VERIFY_S):
        self.path, self.max_bytes, self.verify_s = path, max_bytes, verify_s
        self._lock = threading.Lock()  # the connection, the map and the entries are shared by threads
        self._conn: sqlite3.Connection | None = None
        self._index: mmap.mmap | None = None
        self._verified: tuple[int, bytes] | None = None  # (data_version, header) at the last cross-check
        self._verified_at = 0.0
        self._version: object = None
        self._table_versions: dict[str, int] | None = None  # read when the version last moved
        self._bytes = 0
        self._entries: OrderedDict[Hashable, tuple[object, int, frozenset[str]]] = OrderedDict()
        self._by_table: dict[str, set[Hashable]] = {}  # the keys read from each table (or ANY_TABLE)

    @property
    def reads_wal_index(self) -> bool:
        """Whether the version comes from the mapped WAL-index header (else from SQLite, each read)."""
        return self._index is not None

    def get(self, key: Hashable, fetch: Callable[[], T], tables: Iterable[str] | None = None) -> T:
        """The value remembered for ``key`` if none of ``tables`` (None: any table) had a commit since it
        was read; else ``fetch()``."""
        with self._lock:
            version = self._checked_version()
            if version is not None and key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][0]  # type: ignore[return-value]
        value = fetch()
        size = approx_size(value)
        with self._lock:
            # Kept unless a newer version dropped the entries meanwhile, or it would crowd out all others.
            if version is not None and self._version == version and key not in self._entries \
                    and size <= self.max_bytes // 16:
                names = frozenset(tables if tables is not None else (ANY_TABLE,))
                self._entries[key] = (value, size, names)
                self._bytes += size
                for name in names:
                    self._by_table.setdefault(name, set()).add(key)
                while self._bytes > self.max_bytes:
                    self._remove(next(iter(self._entries)))
        return value

    def close(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._clear()
            self._version, self._verified, self._table_versions = None, None, None

    def _checked_version(self) -> object:
        """The database's version now, the entries dropped if it moved; None when it cannot be read (the
        read itself then raises what is wrong, in the store's own errors)."""
        try:
            if self._conn is None:
                self._open()
            version = self._index_version() if self._index is not None else None
            if version is None:
                version = ("data_version", self._data_version())
        except (sqlite3.Error, OSError, ValueError):
            return None
        if version != self._version:
            self._drop_changed_tables()
            self._version = version
        return version

    def _drop_changed_tables(self) -> None:
        """Drop the values read from tables whose version moved (all of them when that is unknown)."""
        versions = table_versions.read(self._conn)
        last, self._table_versions = self._table_versions, versions
        if versions is None or last is None:
            self._clear()
            return
        changed = [name for name, version in versions.items() if last.get(name) != version]
        stale: set[Hashable] = set()
        for name in (changed + [ANY_TABLE]) if changed else ():
            stale |= self._by_table.pop(name, set())
        for key in stale:
            self._remove(key)

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        _, size, names = entry
        self._bytes -= size
        for name in names:
            keys = self._by_table.get(name)
            if keys is not None:
                keys.discard(key)

    def _clear(self) -> None:
        self._entries.clear()
        self._by_table.clear()
        self._bytes = 0

    def _open(self) -> None:
        # Never writes (query_only), so no commit of its own can hide another's. Kept open: while it is,
        # SQLite never truncates the -shm file under the map (only a database's first connection does).
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA query_only=ON")
        self._data_version()  # opens the WAL-index if the database has one
        shm = Path(f"{self.path}-shm")
        try:
            with shm.open("rb") as f:
                index = mmap.mmap(f.fileno(), 2 * HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # no WAL-index file (not WAL mode, or a VFS that keeps it in memory)
            return
        self._index = index

    def _data_version(self) -> int:
        return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def _index_version(self) -> bytes | None:
        """The header, if its two copies agree and it is initialised; None: ask SQLite this time."""
        now = time.monotonic()
        if now - self._verified_at >= self.verify_s:
            self._verified_at = now
            self._cross_check()
            if self._index is None:
                return None
        both = self._index[:2 * HEADER]
        first = both[:HEADER]
        if first != both[HEADER:] or first[12] != 1:  # isInit, at byte 12
            return None
        return first

    def _cross_check(self) -> None:
        """SQLite's own version first, then the header: a commit that moved the one moved the other."""
        data_version = self._data_version()
        header = self._index[:HEADER]
        if self._verified is not None:
            last_version, last_header = self._verified
            if data_version != last_version and header == last_header:
                log.warning("the WAL-index header of %s missed a commit; reading PRAGMA data_version instead",
                            self.path)
                self._index.close()
                self._index = None
                return
        self._verified = (data_version, header)


def approx_size(value: object) -> int:
    """Bytes a read's rows hold, near enough to bound the memo: text by length, rows by their fields."""
    if isinstance(value, (str, bytes)):
        return 48 + len(value)
    if isinstance(value, Sequence):  # a page of rows, a row (SQLAlchemy's Row is a Sequence)
        return 56 + sum(approx_size(item) for item in value)
    return 32
