"""SQLite writers of several service processes wait in a queue, not in SQLite's busy handler.

SQLite lets one writer at a time in. A connection that finds the database locked retries in its busy
handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between tries: with two workers
writing a decision each ~2 ms, a decision that collides waits for the next retry, not for the other
writer's commit — the tail of the decision latency. Here a connection takes a per-database writer lock
(a thread lock inside the process, ``flock`` on a file beside the database between processes) just before
its first write statement and gives it back when the transaction ends: a writer in the same process is
woken at the other's commit, one in another process within 0.2 ms of it. Readers never take it (WAL
readers do not block writers). A writer that cannot get its turn within 30 s gets SQLite's own error,
``database is locked`` (the API answers 503), as before.

Covered: write statements (INSERT, UPDATE, DELETE, REPLACE, CREATE, DROP, ALTER, and WITH … INSERT/UPDATE/
DELETE) sent through a cursor or the connection's ``execute``/``executemany``, which is how SQLAlchemy
writes. Connections made elsewhere still meet SQLite's own locking and its 30-second busy timeout.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

_WRITES = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(?:(?:INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b|WITH\b.*\b(?:INSERT|UPDATE|DELETE)\b)",
                     re.IGNORECASE | re.DOTALL)
WAIT_SECONDS = 30.0


class WriterLock:
    """One database's writer lock: a thread lock, then an exclusive ``flock`` on ``<database>.writer``."""

    def __init__(self, path: str) -> None:
        self.path = f"{path}.writer"
        self._thread = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait at most ``timeout`` for the turn (then ``database is locked``, as SQLite would say)."""
        deadline = time.monotonic() + timeout
        if not self._thread.acquire(timeout=timeout):
            raise sqlite3.OperationalError(f"database is locked: no writer turn within {timeout:.0f} s")
        try:
            # The other process's commit is waited for in 0.2 ms steps (SQLite's handler: 1 to 100 ms);
            # a blocking flock would wake sooner but could wait forever on a hung process.
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise sqlite3.OperationalError(
                            f"database is locked: another process kept the writer turn over {timeout:.0f} s") from None
                    time.sleep(0.0002)
        except BaseException:
            self._thread.release()
            raise

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread.release()


_locks: dict[tuple[int, str], WriterLock] = {}
_registry = threading.Lock()


def _process_key(database: str) -> tuple[int, str] | None:
    """(this process, the file's real path); None for in-memory databases. Keyed by process id too: a
    forked child must not share its parent's open file description (``flock`` would not exclude)."""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return None
    return os.getpid(), os.path.realpath(database)


def writer_lock(database: str) -> WriterLock | None:
    """The process's lock for a database file (None for in-memory databases)."""
    key = _process_key(database)
    if key is None:
        return None
    with _registry:
        if key not in _locks:
            _locks[key] = WriterLock(key[1])
        return _locks[key]


CHECKPOINT_SECONDS = 0.1
"""Between background passes. At c8 a decision adds ~13 WAL pages (~53 KB) and the WAL rarely starts
over (some request is nearly always reading it), so with 0.5 s it sat near the backstop and the p99 at
c8 rose slice by slice (26.8 → 31.5 ms over 5 × 30 s). With 0.1 s each pass has a fifth as much to copy:
the same probe gave 18.8–22.5 ms wherever the service's CPU per decision was as low as in that run
(docs/decisions.md, session 8). An idle pass costs ~0.1 ms."""
BACKSTOP_PAGES = 10_000
"""Connections still checkpoint by themselves once the WAL holds this many pages (~40 MB): should the
background checkpointer stop or fall behind, the WAL stays bounded."""


class Checkpointer:
    """Copies a database's WAL back into it every ``CHECKPOINT_SECONDS``, on a thread of its own.

    With SQLite's automatic checkpoint, the commit that takes the WAL past 1,000 pages copies them into
    the database itself: a decision that happens to commit then waits for it, and the bigger the log, the
    more scattered the pages it copies (measured here in-process: p99 of one decision 8.8 ms on an empty
    log, 13.5 ms on one of 200,000 decisions, medians equal). Here a passive checkpoint, which never
    blocks a reader or a writer, runs outside any request, with the GIL released while SQLite works.
    The thread ends with :meth:`stop`, or once the database file is gone."""

    def __init__(self, path: str) -> None:
        self.path, self.runs, self.failures = path, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tollgate-wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection, existed = None, False
        try:
            while not self._stop.wait(CHECKPOINT_SECONDS):
                if not os.path.exists(self.path):
                    if existed:
                        return
                    continue  # not created yet
                existed = True
                try:
                    # mode=rw: a file removed meanwhile is not created again (empty) by the checkpointer
                    connection = connection or sqlite3.connect(f"{Path(self.path).as_uri()}?mode=rw", uri=True,
                                                               check_same_thread=False)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.runs += 1
                except sqlite3.Error:
                    self.failures += 1  # tried again next time; the backstop bounds the WAL meanwhile
        finally:
            if connection is not None:
                connection.close()

    def stop(self) -> None:
        self._stop.set()


def checkpointer(database: str) -> Checkpointer | None:
    """A background checkpointer for a database file (None for in-memory databases)."""
    key = _process_key(database)
    return Checkpointer(key[1]) if key else None


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

    def execute(self, sql, parameters=(), /):  # the C method makes its own cursor, bypassing cursor()
        self.claim_if_writing(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        self.claim_if_writing(sql)
        return super().executemany(sql, seq_of_parameters)

    def __exit__(self, *exc):  # ``with conn:`` commits or rolls back without calling commit()/rollback()
        try:
            return super().__exit__(*exc)
        finally:
            if not self.in_transaction:
                self._give_back()

    def _ending(self, end) -> None:
        """End the transaction (or the connection) with ``end``; the turn is given back either way."""
        try:
            end()
        finally:
            self._give_back()

    def commit(self) -> None:
        self._ending(super().commit)

    def rollback(self) -> None:
        self._ending(super().rollback)

    def close(self) -> None:
        self._ending(super().close)
