"""Keep-alive connections moved between worker processes until they are split evenly (serving/balance.py).

Two middleware instances stand for two workers: they share a directory, as the workers of one
``bentoml serve`` do, and a fake clock drives them. Each client connection sends a request every 10 ms;
a connection answered with ``Connection: close`` reconnects to the other worker (as a free worker would
accept it first)."""

import asyncio
import struct

import pytest

from serving.balance import PAUSE, RECOUNT, STALE, ConnectionBalance, sweep


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _answer(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _request(balance: ConnectionBalance, client: tuple, **scope) -> list[dict]:
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(balance({"type": "http", "client": client, "headers": [], **scope}, receive, send))
    return sent


def _closes(sent: list[dict]) -> bool:
    return (b"connection", b"close") in sent[0]["headers"]


def _workers(tmp_path, clock, workers=2):
    return [ConnectionBalance(_answer, workers=workers, directory=tmp_path, clock=clock, pid=pid)
            for pid in (101, 102)]


def _run(pair, clients: list[list[tuple]], clock, seconds: float) -> list[float]:
    """Every connection sends a request every 10 ms; returns the times a connection was moved."""
    moved = []
    port = 60000
    for _ in range(int(seconds / 0.01)):
        clock.now += 0.01
        for w, balance in enumerate(pair):
            for client in list(clients[w]):
                sent = _request(balance, client)
                assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"  # the answer itself is intact
                if _closes(sent):
                    moved.append(clock.now)
                    clients[w].remove(client)
                    port += 1
                    clients[1 - w].append(("127.0.0.1", port))
    return moved


def test_an_uneven_split_is_evened_out_one_connection_at_a_time(tmp_path):
    clock = Clock()
    pair = _workers(tmp_path, clock)
    clients = [[("127.0.0.1", 50000 + i) for i in range(7)], [("127.0.0.1", 50100)]]
    moved = _run(pair, clients, clock, seconds=4.0)
    assert [len(c) for c in clients] == [4, 4]
    assert len(moved) == 3 and pair[0].closed == 3 and pair[1].closed == 0
    assert all(later - earlier >= PAUSE for earlier, later in zip(moved, moved[1:]))
    assert _run(pair, clients, clock, seconds=3.0) == []  # and then it stays put


def test_an_even_or_nearly_even_split_is_left_alone(tmp_path):
    clock = Clock()
    pair = _workers(tmp_path, clock)
    clients = [[("127.0.0.1", 50000 + i) for i in range(4)], [("127.0.0.1", 50100 + i) for i in range(3)]]
    assert _run(pair, clients, clock, seconds=3.0) == []


def test_one_worker_never_moves_connections(tmp_path):
    clock = Clock()
    single = ConnectionBalance(_answer, workers=1, directory=tmp_path, clock=clock, pid=101)
    clients = [[("127.0.0.1", 50000 + i) for i in range(8)], []]
    assert _run([single, ConnectionBalance(_answer, workers=1, directory=tmp_path, clock=clock, pid=102)],
                clients, clock, seconds=2.0) == []
    assert list(tmp_path.iterdir()) == []  # nothing published either


def test_a_stale_sibling_count_is_ignored(tmp_path):
    clock = Clock()
    # a worker that is gone left a count of 8 behind, and one from before a reboot a count from the
    # future; counted, either would make 6 look like a fair share
    (tmp_path / "999").write_bytes(struct.pack("<dI", clock.now - STALE - 1, 8))
    (tmp_path / "998").write_bytes(struct.pack("<dI", clock.now + 3600, 8))
    pair = _workers(tmp_path, clock)
    clients = [[("127.0.0.1", 50000 + i) for i in range(6)], [("127.0.0.1", 50100 + i) for i in range(2)]]
    _run(pair, clients, clock, seconds=3.0)
    assert [len(c) for c in clients] == [4, 4]


def test_without_its_directory_balancing_stops_and_requests_are_still_answered(tmp_path):
    clock = Clock()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the directory would be")
    pair = [ConnectionBalance(_answer, workers=2, directory=blocked, clock=clock, pid=pid) for pid in (101, 102)]
    clients = [[("127.0.0.1", 50000 + i) for i in range(7)], [("127.0.0.1", 50100)]]
    assert _run(pair, clients, clock, seconds=2.0) == []


@pytest.mark.parametrize("scope", [{"type": "lifespan"}, {"type": "http", "client": None, "headers": []}])
def test_what_is_not_a_client_connection_passes_through(tmp_path, scope):
    seen = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["type"])

    balance = ConnectionBalance(app, workers=2, directory=tmp_path, clock=Clock(), pid=101)
    asyncio.run(balance(scope, None, None))
    assert seen == [scope["type"]] and list(tmp_path.iterdir()) == []


def test_what_stopped_processes_left_behind_is_swept_at_start(tmp_path):
    import os
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    import socket

    host = socket.gethostname()
    mine, old = tmp_path / f"workers-{host}-{os.getppid()}", tmp_path / f"workers-{host}-{gone}"
    elsewhere = tmp_path / f"workers-another-host-{gone}"  # pids of another host mean nothing here
    elsewhere.mkdir()
    for directory in (mine, old):
        directory.mkdir()
        for pid in (os.getpid(), gone):
            (directory / str(pid)).write_bytes(b"x" * 12)
    sweep(mine)
    assert not old.exists() and elsewhere.exists()  # this host's serve process is gone
    assert sorted(p.name for p in mine.iterdir()) == [str(os.getpid())]  # a gone worker's file removed


@pytest.mark.parametrize("closing", [{"http_version": "1.0"}, {"headers": [(b"connection", b"close")]}])
def test_connections_that_close_anyway_are_neither_counted_nor_moved(tmp_path, closing):
    clock = Clock()
    pair = _workers(tmp_path, clock)
    for _ in range(300):  # 3 s: six one-request clients at a time on the first worker, one kept on each
        clock.now += 0.01
        for i in range(6):
            assert not _closes(_request(pair[0], ("127.0.0.1", 40000 + int(clock.now * 100) % 1000 + i),
                                        **closing))
        assert not _closes(_request(pair[0], ("127.0.0.1", 50000)))
        assert not _closes(_request(pair[1], ("127.0.0.1", 50100)))
    assert pair[0].closed == pair[1].closed == 0


def test_the_worker_count_is_asked_again_and_one_worker_means_no_balancing(tmp_path):
    clock = Clock()
    running = [1]
    pair = [ConnectionBalance(_answer, workers=lambda: running[0], directory=tmp_path, clock=clock, pid=pid)
            for pid in (101, 102)]
    clients = [[("127.0.0.1", 50000 + i) for i in range(7)], [("127.0.0.1", 50100)]]
    assert _run(pair, clients, clock, seconds=3.0) == []  # configured for two, one runs: nothing to even out
    running[0] = 2  # the second worker is up; counted within RECOUNT seconds
    _run(pair, clients, clock, seconds=RECOUNT + 3.0)
    assert [len(c) for c in clients] == [4, 4]


def test_workers_are_counted_from_the_process_table():
    """Processes of one parent with one command line but for --worker-id are one service's workers.
    Each process counts until it sees what it expects (all started; 30 s at most), answers, and stays up
    until every one has answered."""
    import subprocess
    import sys

    code = ("import sys, time; from serving.balance import bentoml_workers\n"
            "expect, deadline = int(sys.argv[sys.argv.index('--expect') + 1]), time.monotonic() + 30\n"
            "while bentoml_workers() < expect and time.monotonic() < deadline:\n    time.sleep(0.05)\n"
            "print(bentoml_workers(), flush=True)\nsys.stdin.read()\n")

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)

    processes = [start("--expect", "3", "--worker-id", str(i)) for i in (1, 2, 3)]
    processes.append(start("--expect", "1", "--worker-id", "1", "--other-service"))
    try:
        counts = [int(p.stdout.readline()) for p in processes]
    finally:
        for process in processes:
            process.communicate(timeout=60)  # closes stdin: they end
    assert counts == [3, 3, 3, 1]
