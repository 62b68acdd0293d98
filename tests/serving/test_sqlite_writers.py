"""Queued SQLite writers: a writer in another process waits for the commit (not a busy-handler sleep, not
an error), readers are never held up, and the turn is given back however the transaction ends."""

import multiprocessing
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from serving.db import make_engine


def _write_one(url: str, value: int, done) -> None:
    engine = make_engine(url)
    started = time.monotonic()
    with engine.begin() as conn:
        # SQLite's own busy handler would give up after 0.1 s: the wait below is the writers' queue
        conn.execute(text("PRAGMA busy_timeout = 100"))
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
    done = spawn.Queue()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (x) VALUES (1)"))
        child = spawn.Process(target=_write_one, args=(url, 2, done))
        child.start()
        time.sleep(1.5)
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


def test_two_processes_of_two_threads_write_without_errors(url):
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
