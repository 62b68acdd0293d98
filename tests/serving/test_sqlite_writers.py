"""Queued SQLite writers: a writer in another process waits for the commit (not a busy-handler sleep, not
an error), readers are never held up, and the turn is given back however the transaction ends."""

import multiprocessing
import sqlite3
import threading
import time
from contextlib import closing

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from serving.db import make_engine
from serving.sqlite_writers import QueuedWriterConnection, writer_lock


def _write_one(url: str, value: int, done, ready=None) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        # SQLite's own busy handler would give up after 0.1 s: the wait below is the writers' queue
        conn.execute(text("PRAGMA busy_timeout = 100"))
        if ready is not None:
            ready.set()
        started = time.monotonic()
        conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": value})
    done.put(time.monotonic() - started)


def _write_many(url: str, start: int, count: int, done) -> None:
    engine = make_engine(url)

    def run(offset: int) -> None:
        for i in range(count):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t (x) VALUES (:x)"), {"x": start + offset + i})

    threads = [threading.Thread(target=run, args=(k * count,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.put("ok")


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    with make_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER PRIMARY KEY)"))
    return url


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM t")).scalar()


def test_a_writer_in_another_process_waits_for_the_commit_while_readers_read(url):
    engine = make_engine(url)
    spawn = multiprocessing.get_context("spawn")
    done, ready = spawn.Queue(), spawn.Event()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (x) VALUES (1)"))
        child = spawn.Process(target=_write_one, args=(url, 2, done, ready))
        child.start()
        assert ready.wait(timeout=30)  # the child is about to write (its start-up is not counted)
        time.sleep(1.0)
        assert done.empty()  # still waiting for our transaction
        assert _count(make_engine(url)) == 0  # a reader elsewhere is not held up (and sees no uncommitted row)
    waited = done.get(timeout=20)
    child.join(timeout=10)
    assert child.exitcode == 0 and waited >= 0.5
    assert _count(engine) == 2


def test_the_turn_is_given_back_after_a_failed_write(url):
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (x) VALUES (1)"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t (x) VALUES (1)"))
    spawn = multiprocessing.get_context("spawn")
    done = spawn.Queue()
    child = spawn.Process(target=_write_one, args=(url, 2, done))
    child.start()
    assert done.get(timeout=20) < 10
    child.join(timeout=10)
    assert _count(engine) == 2


def _hold(url: str, seconds: float, holding) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (x) VALUES (99)"))
        holding.set()
        time.sleep(seconds)


def test_a_writer_that_cannot_get_its_turn_gets_database_is_locked_not_a_hang(url, tmp_path):
    spawn = multiprocessing.get_context("spawn")
    holding = spawn.Event()
    child = spawn.Process(target=_hold, args=(url, 4.0, holding))
    child.start()
    assert holding.wait(timeout=20)
    lock = writer_lock(str(tmp_path / "w.db"))
    started = time.monotonic()
    for _ in range(2):  # the thread lock is given back after the failure: the second try fails the same way
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            lock.acquire(timeout=0.3)
    assert time.monotonic() - started < 3
    child.join(timeout=20)
    lock.acquire(timeout=5)  # free again once the other process committed
    lock.release()


def test_statements_through_the_connection_and_with_blocks_take_and_give_back_the_turn(url, tmp_path):
    conn = sqlite3.connect(str(tmp_path / "w.db"), factory=QueuedWriterConnection)
    conn.execute("SELECT count(*) FROM t")
    assert not conn._holding  # noqa: SLF001 - reads never take the turn
    with conn:
        conn.execute("-- a comment first\nINSERT INTO t (x) VALUES (7)")
        assert conn._holding  # noqa: SLF001
    assert not conn._holding  # noqa: SLF001 - given back when the with block committed
    conn.close()


def test_two_processes_of_two_threads_write_without_errors(url):
    """A smoke test of many small write transactions from two processes (no error, nothing lost)."""
    spawn = multiprocessing.get_context("spawn")
    done = spawn.Queue()
    children = [spawn.Process(target=_write_many, args=(url, k * 10_000, 150, done)) for k in range(2)]
    for child in children:
        child.start()
    assert [done.get(timeout=120) for _ in children] == ["ok", "ok"]
    for child in children:
        child.join(timeout=10)
        assert child.exitcode == 0
    assert _count(make_engine(url)) == 600


def _wal_after_one_more_write(path, checkpointer_runs=None) -> tuple[int, int]:
    """WAL size before and after one small commit: a writer starts the WAL over (same size) only if
    every frame in it had been copied into the database."""
    import os

    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        for i in range(200):  # ~200 commits, several hundred WAL frames
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 3000))
            conn.commit()
        if checkpointer_runs is not None:
            deadline = time.monotonic() + 10
            start = checkpointer_runs()
            while checkpointer_runs() < start + 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        before = os.path.getsize(f"{path}-wal")
        conn.execute("INSERT INTO t VALUES (?, ?)", (-1, "y"))
        conn.commit()
        return before, os.path.getsize(f"{path}-wal")


def test_the_wal_is_checkpointed_in_the_background_not_by_the_committing_request(tmp_path):
    import gc

    from serving.sqlite_writers import BACKSTOP_PAGES, Checkpointer

    path = str(tmp_path / "wal.db")
    earlier = set(threading.enumerate())
    engine = make_engine(f"sqlite:///{path}")
    (own,) = [t for t in threading.enumerate() if t not in earlier and t.name == "tollgate-wal-checkpoint"]
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE t (k INTEGER, v TEXT)"))
        # requests' connections leave checkpoints to the background, up to the backstop
        assert setup.execute(text("PRAGMA wal_autocheckpoint")).scalar() == BACKSTOP_PAGES
    background = Checkpointer(path)
    try:
        before, after = _wal_after_one_more_write(path, lambda: background.runs)
    finally:
        background.stop()
    assert before > 500_000 and after == before  # started over: everything had been checkpointed
    assert background.failures == 0
    # the control: with nothing checkpointing, the same commit appends to the WAL
    control = str(tmp_path / "control.db")
    with closing(sqlite3.connect(control)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k INTEGER, v TEXT)")
        conn.commit()
    before, after = _wal_after_one_more_write(control)
    assert after > before
    # the engine's own checkpointer thread ends with the engine
    engine.dispose()
    del engine, setup
    gc.collect()
    own.join(timeout=5)
    assert not own.is_alive()
