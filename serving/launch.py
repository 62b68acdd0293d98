"""Starting ``bentoml serve`` (or another server) as a child process and waiting until it answers.

Used by the benchmarks and by the tests that need the real service on a loopback port. The child gets a
process group of its own, so stopping it stops its workers too; its output goes to a log file, whose
tail is quoted when it fails to come up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class LaunchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0


class Launched:
    """A server process; ``base`` is its http://127.0.0.1:PORT."""

    def __init__(self, args: list[str], *, env: dict, log: Path, port: int) -> None:
        self.log, self.base = log, f"http://127.0.0.1:{port}"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._handle = log.open("w")
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._handle, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    @classmethod
    def bentoml(cls, *, env: dict, log: Path) -> Launched:
        """``bentoml serve serving.service:Tollgate`` with its default workers on a free port."""
        port = free_port()
        return cls([sys.executable, "-m", "bentoml", "serve", "serving.service:Tollgate", "--host", "127.0.0.1",
                    "--port", str(port)], env=env, log=log, port=port)

    def wait(self, path: str = "/readyz", *, timeout: float = 180.0) -> Launched:
        """Until ``path`` answers 200; a LaunchError (quoting the log) if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LaunchError(f"server exited with {self.process.returncode}: {self.tail()}")
            if _status(self.base + path) == 200:
                return self
            time.sleep(0.5)
        self.stop()
        raise LaunchError(f"{self.base}{path} not ready after {timeout:.0f} s: {self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        """The log's last ``chars`` characters, also after :meth:`stop` (which closes the handle)."""
        if not self._handle.closed:
            self._handle.flush()
        return self.log.read_text(errors="replace")[-chars:]

    def tree(self) -> list:
        """The server process and all its living descendants (psutil.Process objects)."""
        import psutil

        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def rss(self) -> int:
        """Resident memory of the process and all its children, in bytes."""
        import psutil

        try:
            return sum(p.memory_info().rss for p in self.tree())
        except psutil.NoSuchProcess:
            return 0

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the process and its living children have used so far."""
        import psutil

        try:
            return sum(t.user + t.system for t in (p.cpu_times() for p in self.tree()))
        except psutil.NoSuchProcess:
            return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._handle.close()
