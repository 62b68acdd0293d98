"""`bentoml serve` on a free loopback port with a really trained model and a materialized Feast store."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from features.store import StoreSettings
from serving.auth import Role, create_key
from serving.db import create_schema, make_engine
from training import tracking
from training.delay_job import run_delay_job
from training.features_job import materialize_features
from training.spec import load_spec

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    env = {**os.environ, "TOLLGATE_MLFLOW_URI": f"sqlite:///{root}/mlflow.db",
           "TOLLGATE_FEAST_REPO": str(root / "repo"), "TOLLGATE_DATABASE_URL": f"sqlite:///{root}/tollgate.db",
           "BENTOML_HOME": str(root / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    settings = StoreSettings(repo_dir=root / "repo")
    run_delay_job(load_spec("delay_smoke"), settings=settings, tracking_uri=env["TOLLGATE_MLFLOW_URI"])
    assert tracking.promote("delay_risk").promoted
    materialize_features(settings=settings)
    engine = make_engine(env["TOLLGATE_DATABASE_URL"])
    create_schema(engine)
    key = create_key(engine, role=Role.ORCHESTRATOR, name="e2e")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", "serving.service:Tollgate", "--host",
                             "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(root / "serve.log", "w"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        proc.terminate()
        pytest.fail(f"service did not become ready: {(root / 'serve.log').read_text()[-2000:]}")
    yield base, key
    proc.terminate()
    proc.wait(timeout=30)


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
    assert "bentoml" in httpx.get(f"{base}/metrics", timeout=10).text
    again = httpx.post(f"{base}/v1/shipments/decide", json=shipment, headers={"Authorization": f"Bearer {key}"},
                       timeout=30).json()
    assert again["decision_id"] == body["decision_id"]
    json.dumps(body)
