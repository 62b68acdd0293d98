import os
import sys
import time

from serving.launch import Launched


def test_cpu_seconds_and_rss_cover_the_process_and_its_children(tmp_path):
    # a parent that sleeps and a child that spins: the tree's CPU time grows, the parent's alone would not
    script = ("import subprocess, sys, time\n"
              "subprocess.Popen([sys.executable, '-c', 'import time\\nend = time.time() + 30\\nwhile time.time() < end: pass'])\n"
              "time.sleep(30)\n")
    launched = Launched([sys.executable, "-c", script], env=dict(os.environ), log=tmp_path / "spin.log", port=1)
    try:
        deadline = time.monotonic() + 10
        while len(launched.tree()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = launched.cpu_seconds()
        deadline = time.monotonic() + 10
        while launched.cpu_seconds() - first < 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert launched.cpu_seconds() - first >= 0.2  # the spinning child's time is counted
        assert launched.rss() > 2 * 2**20
    finally:
        launched.stop()
    assert launched.cpu_seconds() == 0.0 and launched.rss() == 0  # gone: nothing to measure, no error


def test_a_server_never_ready_is_a_launch_error_quoting_its_log(tmp_path):
    import pytest

    from serving.launch import LaunchError

    script = "print('listening nowhere', flush=True)\nimport time\ntime.sleep(60)\n"
    launched = Launched([sys.executable, "-c", script], env=dict(os.environ), log=tmp_path / "idle.log", port=9)
    with pytest.raises(LaunchError, match="not ready after 2 s: listening nowhere"):
        launched.wait(timeout=2)
    assert launched.process.poll() is not None  # stopped, not left behind
