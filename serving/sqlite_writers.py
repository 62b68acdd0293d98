"""SQLite writers of several service processes wait in a queue, not in SQLite's busy handler.

SQLite lets one writer at a time in. A connection that finds the database locked retries in its busy
handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries: with two workers
writing a decision each ~2 ms, a decision that collides waits for the next retry, not for the other
writer's commit — the tail of the decision latency. Here a connection takes a per-database writer lock
(a thread lock inside the process, ``flock`` on a file beside the database between processes) just before
its first write statement and gives it back when the transaction ends, so a waiting writer is woken by the
kernel the moment the other one commits. Readers never take it (WAL readers do not block writers).

Only connections made by :func:`serving.db.make_engine` take part: another program writing the same file
still meets SQLite's own locking, and the 30-second busy timeout remains as the backstop.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading

_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)
WAIT_SECONDS = 30.0


class WriterLock:
    """One database's writer lock: a thread lock, then an exclusive ``flock`` on ``<database>.writer``."""

    def __init__(self, path: str) -> None:
        self.path = f"{path}.writer"
        self._thread = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self, timeout: float = WAIT_SECONDS) -> None:
        if not self._thread.acquire(timeout=timeout):
            raise sqlite3.OperationalError(f"database is locked: no writer turn within {timeout:.0f} s")
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread.release()


_locks: dict[tuple[int, str], WriterLock] = {}
_registry = threading.Lock()


def writer_lock(database: str) -> WriterLock | None:
    """The process's lock for a database file (None for in-memory databases). Keyed by process id too:
    a forked child must not share its parent's open file description, or ``flock`` would not exclude."""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    key = (os.getpid(), os.path.realpath(database))
    with _registry:
        if key not in _locks:
            _locks[key] = WriterLock(key[1])
        return _locks[key]


class _Cursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        self.connection.claim_if_writing(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        self.connection.claim_if_writing(sql)
        return super().executemany(sql, seq_of_parameters)


class QueuedWriterConnection(sqlite3.Connection):
    """``sqlite3.connect(..., factory=QueuedWriterConnection)``: takes the writer lock before its first
    write statement, gives it back on commit, rollback or close."""

    def __init__(self, database, *args, **kwargs) -> None:
        super().__init__(database, *args, **kwargs)
        self._writer = writer_lock(os.fspath(database))
        self._holding = False

    def claim_if_writing(self, sql: str) -> None:
        if self._writer is not None and not self._holding and _WRITES.match(sql):
            self._writer.acquire()
            self._holding = True

    def _give_back(self) -> None:
        if self._holding:
            self._holding = False
            self._writer.release()

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()
