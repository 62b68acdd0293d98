"""The invoice process's edges that need no model: the database unreachable from the child is the
worker's own 503 (OperationalError, the API's DatabaseUnavailable), and its priority setting is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from features.store import StoreSettings
from serving.invoice_process import InvoiceProcess
from serving.runtime import invoice_nice


def test_a_database_the_child_cannot_reach_is_the_workers_operational_error(tmp_path):
    process = InvoiceProcess("postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2",
                             tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                             store_settings=StoreSettings(repo_dir=tmp_path / "repo"))
    try:
        for _ in range(2):  # and again: a failed start is not kept
            with pytest.raises(OperationalError):
                process.decide([], header_key=None, caller=None)
        assert len(process.child_pids()) == 1  # the same child both times: it did not die
    finally:
        process.close()


def test_warming_a_child_without_an_invoice_model_says_why_and_keeps_the_child(tmp_path):
    from serving.runtime import build_runtime

    runtime = build_runtime(f"sqlite:///{tmp_path}/t.db")
    process = runtime.invoice_process = InvoiceProcess(  # an empty registry: no invoice model in it
        f"sqlite:///{tmp_path}/t.db", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        store_settings=StoreSettings(repo_dir=tmp_path / "repo"))
    try:
        warmed = process.warm()
        assert process.warm() is warmed  # once per child, however often readiness asks
        result = warmed.result(timeout=120)
        assert result["invoice_model"] is None and "invoice_discrepancy" in result["reason"]
        assert process.child_pids() == [result["pid"]] and runtime.invoices_ready()
    finally:
        process.close()


def test_invoices_on_the_thread_pool_need_no_warming(tmp_path):
    from serving.runtime import build_runtime

    runtime = build_runtime(f"sqlite:///{tmp_path}/t.db")
    assert runtime.invoice_process is None and runtime.invoices_ready()


@pytest.mark.parametrize(("text", "nice"), [(None, 5), ("0", 0), (" 12 ", 12)])
def test_the_invoice_process_priority_comes_from_the_environment(monkeypatch, text, nice):
    if text is None:
        monkeypatch.delenv("TOLLGATE_INVOICE_NICE", raising=False)
    else:
        monkeypatch.setenv("TOLLGATE_INVOICE_NICE", text)
    assert invoice_nice() == nice


@pytest.mark.parametrize("text", ["-1", "20", "low"])
def test_a_bad_invoice_process_priority_is_refused_by_name(monkeypatch, text):
    monkeypatch.setenv("TOLLGATE_INVOICE_NICE", text)
    with pytest.raises(ValueError, match="TOLLGATE_INVOICE_NICE"):
        invoice_nice()


def test_the_child_ends_when_its_worker_is_killed(tmp_path):
    import subprocess
    import sys
    import time

    import psutil

    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
from features.store import StoreSettings
from serving.invoice_process import InvoiceProcess
process = InvoiceProcess("sqlite:///{tmp_path}/t.db", tracking_uri="sqlite:///{tmp_path}/m.db",
                         store_settings=StoreSettings(repo_dir={str(tmp_path / "repo")!r}))
process._executor().submit(os.getpid).result()
print(process.child_pids()[0], flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(worker.stdout.readline())  # the worker's stdout stays open in the child: no read to the end
    worker.wait(timeout=60)
    try:
        deadline = time.monotonic() + 10
        while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the invoice process outlived its worker by 10 s"
            time.sleep(0.2)
    finally:
        if psutil.pid_exists(child):
            psutil.Process(child).kill()
        worker.stdout.close()


def test_a_bad_invoice_process_priority_stops_the_service_at_start():
    import os
    import subprocess
    import sys

    env = {**os.environ, "TOLLGATE_INVOICE_NICE": "low", "BENTOML_DO_NOT_TRACK": "true"}
    started = subprocess.run([sys.executable, "-c", "import serving.service"], env=env, capture_output=True,
                             text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert started.returncode != 0 and "TOLLGATE_INVOICE_NICE must be a whole number" in started.stderr
