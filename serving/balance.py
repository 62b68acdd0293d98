"""Keep-alive connections split evenly between the service's worker processes.

BentoML's workers share one listening socket. Whichever worker's event loop wakes first accepts every
connection waiting, so the eight connections a client pool opens at once land 5/3, 6/2 or 7/1 (counted
with ``ss`` here, see docs/decisions.md) and stay there for the life of the connections: one worker
queues requests on its core while the other idles on its own.

Each worker counts the keep-alive connections that sent it a request in the last second and publishes
the count in a small file beside its siblings' (one file per worker process, in a directory named after
the host and the parent process they share; see :func:`sweep` for files left behind). When it holds
more than its share of all of them, it answers one request with ``Connection: close``: the answer is
complete, the client opens a new connection (HTTP/1.1 clients do so by themselves), and the new one is
accepted by whichever worker is free first, usually the one with fewer connections. If it lands on the same worker again, the step repeats after a pause. Balancing is an
optimisation only: if its files cannot be written, connections stay where they are.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

WINDOW = 1.0
"""A connection counts as open if it sent a request within this many seconds."""
PUBLISH = 0.1
"""How often (seconds) a worker writes its own count and reads its siblings'."""
PAUSE = 0.5
"""After closing one connection, a worker waits this long (the counts settle) before closing another."""
STALE = 2.0
"""A sibling's count older than this is ignored (the worker is gone, or has had no request)."""
RECOUNT = 5.0
"""How often (seconds) a worker counts the workers again (one may have been restarted or added)."""
_RECORD = struct.Struct("<dI")  # CLOCK_MONOTONIC seconds (system-wide on Linux), open connections


def _closes_anyway(scope) -> bool:
    """An HTTP/1.0 request, or one saying ``Connection: close``: its connection is not kept (not counted,
    never the one chosen to move)."""
    if scope.get("http_version") == "1.0":
        return True
    return any(name == b"connection" and b"close" in value.lower() for name, value in scope.get("headers", ()))


def _default_directory() -> Path:
    from serving.runtime import ROOT

    return ROOT / "var" / "run" / f"workers-{socket.gethostname()}-{os.getppid()}"


def sweep(directory: Path) -> None:
    """Remove what stopped processes left behind (a worker stopped by a signal does not clean up): the
    files of workers that are gone, and the directories of ``bentoml serve`` processes that are gone."""
    prefix = f"workers-{socket.gethostname()}-"  # only this host's: another's pids mean nothing here
    for path in [*directory.parent.glob(f"{prefix}*"), *(directory.iterdir() if directory.is_dir() else [])]:
        pid = path.name.removeprefix(prefix)
        if not pid.isdigit() or _running(int(pid)):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def bentoml_workers() -> int:
    """Worker processes serving beside this one, this one included: children of its parent with its own
    command line but for ``--worker-id`` (BentoML's workers of one service), from the process table.
    Whatever the configuration said, this is what runs."""
    import psutil

    def shape(command: list[str]) -> list[str]:
        at = command.index("--worker-id") if "--worker-id" in command else len(command)
        return command[:at] + command[at + 2:]

    try:
        mine = shape(psutil.Process().cmdline())
        siblings = psutil.Process(os.getppid()).children()
    except psutil.Error:
        return 1
    count = 0
    for process in siblings:
        try:
            count += shape(process.cmdline()) == mine
        except psutil.Error:
            continue  # gone meanwhile
    return max(count, 1)


class ConnectionBalance:
    """Pure ASGI middleware; ``workers`` is the number of worker processes sharing the listening socket,
    or a function counting them (asked every ``RECOUNT`` seconds). With one, it does nothing."""

    def __init__(self, app, *, workers: int | Callable[[], int], directory: Path | None = None,
                 clock: Callable[[], float] = time.monotonic, pid: int | None = None) -> None:
        self.app, self.clock = app, clock
        self._count = workers if callable(workers) else (lambda: workers)
        self.workers, self._recount_at = self._count(), clock() + RECOUNT
        self.directory, self.pid = directory, pid or os.getpid()
        self.closed = 0
        """Connections this worker has asked its clients to move (for tests and logs)."""
        self._seen: dict[tuple, float] = {}
        self._next_publish = -math.inf
        self._closed_at = -math.inf
        self._excess = self._over_before = False
        self._fd: int | None = None

    async def __call__(self, scope, receive, send) -> None:
        client = scope.get("client") if scope["type"] == "http" else None
        now = self.clock() if client else 0.0
        if client and now >= self._recount_at:
            self.workers, self._recount_at = self._count(), now + RECOUNT
        if self.workers < 2 or not client or _closes_anyway(scope):
            await self.app(scope, receive, send)
            return
        client = tuple(client)
        self._seen[client] = now
        if now >= self._next_publish:
            self._publish(now)
        if not self._excess or now - self._closed_at < PAUSE:
            await self.app(scope, receive, send)
            return
        self._closed_at, self._excess = now, False
        self._seen.pop(client, None)
        self.closed += 1

        async def closing(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)

    def _publish(self, now: float) -> None:
        self._next_publish = now + PUBLISH
        self._seen = {c: t for c, t in self._seen.items() if now - t <= WINDOW}
        mine = len(self._seen)
        try:
            if self._fd is None:
                self._open()
            os.pwrite(self._fd, _RECORD.pack(now, mine), 0)
            total = mine + sum(self._siblings(now))
        except OSError:
            self._excess = self._over_before = False
            return
        over = mine > math.ceil(total / self.workers)
        # acted on when seen twice in a row: a sibling's count can lag by one PUBLISH (or be missing
        # while its first request of a new connection is still on the way)
        self._excess, self._over_before = over and self._over_before, over

    def _open(self) -> None:
        if self.directory is None:
            self.directory = _default_directory()
            sweep(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.directory / str(self.pid), os.O_RDWR | os.O_CREAT, 0o600)

    def _siblings(self, now: float):
        for entry in os.scandir(self.directory):
            if entry.name == str(self.pid):
                continue
            try:
                with open(entry.path, "rb") as handle:
                    data = handle.read(_RECORD.size)
            except OSError:
                continue
            if len(data) == _RECORD.size:
                at, count = _RECORD.unpack(data)
                if 0 <= now - at <= STALE:  # a time ahead of ours is from before a reboot
                    yield count
