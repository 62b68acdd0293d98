"""Which shipment batches are in flight anywhere in the service, so that a lone one may use both cores.

A batch that is the only one in the whole service is split: the worker decides its first rows while the
worker's invoice process decides the rest (``Runtime.decide_shipment_batch``). With another batch in flight
on the other worker, both cores are busy already; a split there only adds its own cost (a second online
read, transaction and model call, the rows sent across: measured ~15 ms of CPU a batch, docs/decisions.md,
session 19), so it is not made.

Each batch in flight holds an exclusive ``flock`` on one of a few slot files in a directory the service's
workers share (named after the process they share, as :mod:`serving.balance`'s). The kernel drops a lock
when its holder dies, so a killed worker leaves no batch counted. Asking whether another batch holds a slot
is a non-blocking lock attempt on each other file (released at once when it succeeds): a few microseconds.
Two batches arriving at the same instant may each see the other; both are then decided unsplit, as before.
If the files cannot be opened, no batch is split (slower for a lone batch, never wrong).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SLOTS = 8
"""More than the batches a service has in flight in practice; a batch finding none free counts as not alone."""


class BatchSlots:
    def __init__(self, directory: Path, *, slots: int = SLOTS) -> None:
        self.paths = [directory / f"batch-slot-{i}" for i in range(slots)]
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for path in self.paths:
                path.touch(exist_ok=True)
            self.usable = True
        except OSError:
            self.usable = False

    @contextmanager
    def hold(self) -> Iterator[bool]:
        """Hold a slot while the block runs; yields True when no other batch held one as this one began."""
        if not self.usable:
            yield False
            return
        mine, others_busy = None, False
        try:
            for path in self.paths:
                try:
                    fd = os.open(path, os.O_RDWR)
                except OSError:
                    others_busy = True  # cannot tell: count it as taken
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    others_busy = True
                    os.close(fd)
                    continue
                if mine is None:
                    mine = fd
                else:
                    os.close(fd)  # free: closing it lets go of the lock just taken
            yield mine is not None and not others_busy
        finally:
            if mine is not None:
                os.close(mine)  # closing the one held releases its lock
