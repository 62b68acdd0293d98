"""`bentoml serve` on a free loopback port with a really trained model and a materialized Feast store."""

import json
import os

import httpx
import pytest

from features.store import StoreSettings
from serving.auth import Role, create_key
from serving.launch import LaunchError, Launched
from serving.db import create_schema, make_engine
from training import tracking
from training.delay_job import run_delay_job
from training.features_job import materialize_features
from training.spec import load_spec

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LAUNCHED: dict[str, Launched] = {}  # base URL -> its server, for the tests that look at its processes
SETUP: dict = {}  # the servers' environment and feature store, for tests that start a side process of their own


def _pg_schema_url(name: str) -> str:
    from sqlalchemy import text

    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    with make_engine(base).begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {name}"))
    return f"{base}?options=-csearch_path%3D{name}"


def _drop_schema(name: str) -> None:
    from sqlalchemy import text

    with make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test").begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two service processes on two ports sharing one PostgreSQL database and one feature store."""
    root = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "TOLLGATE_MLFLOW_URI": f"sqlite:///{root}/mlflow.db",
           "TOLLGATE_FEAST_REPO": str(root / "repo"), "TOLLGATE_DATABASE_URL": _pg_schema_url(f"e2e_{os.getpid()}"),
           "BENTOML_HOME": str(root / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    settings = StoreSettings(repo_dir=root / "repo")
    run_delay_job(load_spec("delay_smoke"), settings=settings, tracking_uri=env["TOLLGATE_MLFLOW_URI"])
    assert tracking.promote("delay_risk").promoted
    materialize_features(settings=settings)
    engine = make_engine(env["TOLLGATE_DATABASE_URL"])
    create_schema(engine)
    key = create_key(engine, role=Role.ORCHESTRATOR, name="e2e")
    pair = [Launched.bentoml(env=env, log=root / f"{name}.log") for name in ("a", "b")]
    try:
        for server in pair:
            server.wait(timeout=180)
    except LaunchError as exc:
        for server in pair:
            server.stop()
        pytest.fail(f"service not ready: {exc}")
    LAUNCHED.update({server.base: server for server in pair})
    SETUP.update(env=env, settings=settings)
    yield [server.base for server in pair], key
    for server in pair:
        server.stop()
    engine.dispose()
    _drop_schema(f"e2e_{os.getpid()}")


@pytest.fixture(scope="module")
def server(servers):
    bases, key = servers
    return bases[0], key


def test_real_decision_over_http(server):
    base, key = server
    shipment = {"shipment_id": "E2E-1", "carrier": "EV", "origin": "EWR", "destination": "ORD",
                "scheduled_departure": "2013-02-27T17:00:00-05:00", "scheduled_arrival": "2013-02-27T18:40:00-06:00",
                "distance_miles": 719, "equipment_id": "N13978", "declared_value": 60000}
    r = httpx.post(f"{base}/v1/shipments/decide", json=shipment, headers={"Authorization": f"Bearer {key}"},
                   timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0 < body["scores"]["p_late"] < 1 and not body["degraded"]
    assert body["model_name"] == "delay_risk" and body["feature_service"] == "delay_risk_v1"
    assert len(body["reasons"]) == 5 and body["policy_id"] == "delay"
    assert httpx.post(f"{base}/v1/shipments/decide", json=shipment, timeout=10).status_code == 401
    docs = httpx.get(f"{base}/docs.json", timeout=10).json()
    assert "/v1/shipments/decide" in docs["paths"]
    assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert "bentoml" in metrics
    assert 'tollgate_decisions_total{' in metrics and 'kind="shipment"' in metrics
    again = httpx.post(f"{base}/v1/shipments/decide", json=shipment, headers={"Authorization": f"Bearer {key}"},
                       timeout=30).json()
    assert again["decision_id"] == body["decision_id"]
    json.dumps(body)
    exact = httpx.get(f"{base}/v1/decisions/{body['decision_id']}/explanation",
                      headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert exact.status_code == 200, exact.text
    exact = exact.json()
    # the logged features and the deciding version give the logged score again, and the path reasons'
    # first feature is among TreeSHAP's first five (it is in its top three for 99 % of held-out decisions)
    assert exact["reproduced"] is True and exact["model_version"] == body["model_version"]
    assert abs(exact["bias"] + sum(r["contribution"] for r in exact["reasons"]) - exact["raw_score"]) < 1e-6
    assert body["reasons"][0]["feature"] in [r["feature"] for r in exact["reasons"][:5]]


def test_a_retry_sent_to_the_other_process_yields_one_decision(servers):
    (first, second), key = servers
    shipment = {"shipment_id": "E2E-2", "carrier": "UA", "origin": "EWR", "destination": "IAH",
                "scheduled_departure": "2013-02-27T09:00:00-05:00", "scheduled_arrival": "2013-02-27T12:20:00-06:00"}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "retry-across-processes"}
    a = httpx.post(f"{first}/v1/shipments/decide", json=shipment, headers=headers, timeout=30)
    b = httpx.post(f"{second}/v1/shipments/decide", json=shipment, headers=headers, timeout=30)
    assert a.status_code == b.status_code == 200
    assert a.json()["decision_id"] == b.json()["decision_id"]
    looked_up = httpx.get(f"{second}/v1/decisions/{a.json()['decision_id']}",
                          headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert looked_up.status_code == 200
    changed = httpx.post(f"{second}/v1/shipments/decide", json={**shipment, "declared_value": 5}, headers=headers,
                         timeout=30)
    assert changed.status_code == 409


def test_keep_alive_connections_end_up_split_evenly_between_the_two_workers(server):
    """Eight keep-alive connections opened at once, as a client pool opens them, end up four on each
    worker process (serving/balance.py); counted from the kernel's socket table."""
    import http.client
    import time
    from collections import Counter

    import psutil

    base, key = server
    port = int(base.rsplit(":", 1)[1])
    headers = {"Authorization": f"Bearer {key}"}

    def connect() -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.connect()
        return connection

    connections = [connect() for _ in range(8)]
    moved, deadline = 0, time.monotonic() + 8
    while time.monotonic() < deadline:
        for i, connection in enumerate(connections):
            connection.request("GET", "/v1/decisions/not-a-decision", headers=headers)
            response = connection.getresponse()
            assert response.status == 404 and response.read()  # a moved connection still got its answer
            if (response.getheader("connection") or "").lower() == "close":
                connection.close()
                connections[i], moved = connect(), moved + 1
    split = Counter(c.pid for c in psutil.net_connections("tcp")
                    if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
    for connection in connections:
        connection.close()
    assert sorted(split.values()) == [4, 4], f"split {dict(split)} after moving {moved} connections"


def _invoice_processes(base: str) -> list:
    """The server's multiprocessing "spawn" children: the workers' invoice processes. Found in its process
    tree, not through the listening socket (psutil gives a shared socket one of its holders' pids)."""
    return [p for p in LAUNCHED[base].tree() if "spawn_main" in " ".join(p.cmdline())]


def test_an_invoice_is_decided_in_a_lower_priority_child_of_the_worker(server):
    """No invoice model is trained here: the decision comes back degraded and is not approved, decided in
    the worker's invoice process (serving/invoice_process.py), which runs at the worker's priority + 5."""
    base, key = server
    # the invoice processes were started and warmed with their workers, before any invoice (readiness
    # waits for them): the first invoice does not wait for a child's imports and runtime
    before = _invoice_processes(base)
    assert len(before) == 2, f"{len(before)} invoice processes for the 2 workers before any invoice"
    invoice = {"invoice_id": "E2E-INV-1", "carrier": "UA", "shipment_id": "E2E-2", "invoice_date": "2013-03-01",
               "currency": "USD", "lines": [{"code": "LINEHAUL", "amount": 900.0}, {"code": "FUEL", "amount": 100.0}],
               "total": 1000.0}
    r = httpx.post(f"{base}/v1/invoices/decide", json=invoice, headers={"Authorization": f"Bearer {key}"},
                   timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["degraded"] and body["degraded_reason"] == "model_unavailable" and body["outcome"] != "approve"
    children = [(p.parent(), p) for p in _invoice_processes(base)]
    assert children, f"no invoice process in the server's tree {LAUNCHED[base].tree()}"
    assert all(child.nice() == worker.nice() + 5 for worker, child in children)
    assert {child.pid for _, child in children} == {p.pid for p in before}  # the warmed ones decided


def _batch_counts(base: str) -> dict[str, float]:
    metrics = httpx.get(f"{base}/metrics", timeout=10).text
    return {where: sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith("tollgate_shipment_batches_total{") and f'decided_in="{where}"' in line)
            for where in ("worker", "side_process")}


def _shipments(prefix: str, n: int) -> list[dict]:
    carriers = ["UA", "EV", "B6", "DL", "AA", "MQ"]
    return [{"shipment_id": f"{prefix}-{i}", "carrier": carriers[i % 6], "origin": "EWR", "destination": "ORD",
             "scheduled_departure": f"2013-02-27T{6 + i % 14:02d}:00:00-05:00",
             "scheduled_arrival": f"2013-02-27T{8 + i % 14:02d}:10:00-06:00", "distance_miles": 719}
            for i in range(n)]


def test_a_second_batch_in_flight_on_a_worker_is_decided_by_its_side_process(server):
    """Six batches sent at once to two workers: a worker given one while it decides another hands it to its
    invoice process (serving/invoice_process.py, on its own core). Every shipment is decided once by the
    real model, in order, and a batch sent again gets the same decisions wherever it was first decided."""
    from concurrent.futures import ThreadPoolExecutor

    base, key = server
    headers = {"Authorization": f"Bearer {key}"}
    batches = [_shipments(f"E2E-B{b}", 400) for b in range(6)]

    def post(batch: list[dict]) -> httpx.Response:
        return httpx.post(f"{base}/v1/shipments/decide/batch", json={"shipments": batch}, headers=headers, timeout=120)

    before = _batch_counts(base)
    with ThreadPoolExecutor(len(batches)) as pool:
        answers = list(pool.map(post, batches))
    after = _batch_counts(base)
    assert [a.status_code for a in answers] == [200] * 6, [a.text[:300] for a in answers]
    for batch, answer in zip(batches, answers, strict=True):
        decided = answer.json()["decisions"]
        assert [d["subject_id"] for d in decided] == [s["shipment_id"] for s in batch]
        assert all(d["model_name"] == "delay_risk" and not d["degraded"] and 0 < d["scores"]["p_late"] < 1
                   for d in decided)
    assert after["worker"] + after["side_process"] - before["worker"] - before["side_process"] == 6
    assert after["side_process"] > before["side_process"], f"no batch went to a side process: {before} -> {after}"
    again = [post(batch).json()["decisions"] for batch in batches]  # one at a time now: each by a worker
    assert [[d["decision_id"] for d in a] for a in again] == [[d["decision_id"] for d in a.json()["decisions"]]
                                                              for a in answers]


def test_a_side_process_decides_a_batch_as_the_worker_would_and_declines_when_it_cannot(monkeypatch, servers):
    """The child itself on the servers' PostgreSQL log: declined until warmed, then the real model's
    decisions recorded once (a worker deciding the same requests finds them), declined while busy or dead."""
    import signal

    from serving.invoice_process import InvoiceProcess
    from serving.runtime import build_runtime
    from serving.schemas import ShipmentIn

    env, settings = SETUP["env"], SETUP["settings"]
    for name in ("TOLLGATE_MLFLOW_URI", "TOLLGATE_FEAST_REPO", "TOLLGATE_DATABASE_URL"):
        monkeypatch.setenv(name, env[name])
    process = InvoiceProcess(env["TOLLGATE_DATABASE_URL"], tracking_uri=env["TOLLGATE_MLFLOW_URI"],
                             store_settings=settings)
    requests = [ShipmentIn(**s) for s in _shipments("E2E-SIDE", 50)]
    try:
        assert process.try_decide_shipments(requests, header_key=None, caller=None) is None  # warming only
        warmed = process.warm().result(timeout=180)
        assert warmed["delay_model"] == "delay_risk/1", warmed
        labels, texts = process.try_decide_shipments(requests, header_key=None, caller="side-test")
        decided = [json.loads(bytes(t)) for t in texts]
        assert [d["subject_id"] for d in decided] == [r.shipment_id for r in requests]
        assert [label["outcome"] for label in labels] == [d["outcome"] for d in decided]
        assert all(d["model_version"] == "1" and not d["degraded"] for d in decided)
        worker = build_runtime(env["TOLLGATE_DATABASE_URL"])  # the worker's own path finds them recorded
        done, _, where = worker.decide_shipment_batch(requests, header_key=None, caller="side-test")
        assert where == "worker" and [d["decision_id"] for d in done] == [d["decision_id"] for d in decided]

        with process._lock:
            process._in_flight += 1  # an invoice in the child: the batch is not queued behind it
        try:
            assert process.try_decide_shipments(requests, header_key=None, caller=None) is None
        finally:
            with process._lock:
                process._in_flight -= 1

        (child,) = process.child_pids()
        pool = process._executor()
        submit = pool.submit

        def submit_then_kill(*args):
            future = submit(*args)
            os.kill(child, signal.SIGKILL)
            return future
        monkeypatch.setattr(pool, "submit", submit_then_kill)
        fresh = [ShipmentIn(**s) for s in _shipments("E2E-SIDE-DEAD", 5)]
        assert process.try_decide_shipments(fresh, header_key=None, caller=None) is None  # the worker decides
        assert process.child_pids() != [child]
    finally:
        process.close()
