"""Exact TreeSHAP for a logged decision, with the model version that decided it."""

import lightgbm as lgb
import numpy as np
from fastapi.testclient import TestClient

from features.errors import ModelUnavailable
from serving.app import create_app
from serving.auth import Role, create_key
from serving.explanations import exact_reasons
from serving.scoring import LoadedModel
from tests.serving.conftest import SHIPMENT, StubDelayScorer, make_runtime


class Identity:
    def transform(self, raw):
        return raw


def _model():
    """Late with the carrier and with little recent volume (the two features the stub scorer logs)."""
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 3, 5000)
    volume = rng.uniform(0, 100, 5000)
    p = np.array([0.6, 0.2, 0.4])[codes] + (volume < 20) * 0.3
    x = np.column_stack([codes.astype(float), volume])
    booster = lgb.train({"objective": "binary", "num_leaves": 8, "verbose": -1, "seed": 2, "num_threads": 1},
                        lgb.Dataset(x, label=(rng.random(5000) < p).astype(float), categorical_feature=[0]),
                        num_boost_round=30)
    return type("Tiny", (), {"features_": ["carrier", "carrier_volume_30d"], "vocab_": {"carrier": ["AA", "DL", "UA"]},
                             "booster_": booster, "calibrator_": Identity()})()


TINY = _model()


def test_exact_reasons_add_up_and_say_whether_the_logged_score_is_reproduced():
    first = exact_reasons(TINY, {"carrier": "AA", "carrier_volume_30d": 10.0})
    total = first["bias"] + sum(r["contribution"] for r in first["reasons"])
    assert abs(total - first["raw_score"]) < 1e-9 and first["reproduced"] is None
    assert {r["feature"] for r in first["reasons"]} == {"carrier", "carrier_volume_30d"}
    assert exact_reasons(TINY, {"carrier": "AA", "carrier_volume_30d": 10.0},
                         logged_p_late=first["p_late"])["reproduced"] is True
    unknown = exact_reasons(TINY, {"carrier": "ZZ", "carrier_volume_30d": None}, logged_p_late=first["p_late"])
    # an unknown carrier and a missing volume are scored as missing values: another score than AA's
    assert unknown["reproduced"] is False and unknown["p_late"] != first["p_late"]
    assert {(r["feature"], r["value"]) for r in unknown["reasons"]} == {("carrier", "ZZ"), ("carrier_volume_30d", None)}


def test_a_model_needing_features_the_log_lacks_is_unavailable():
    try:
        exact_reasons(TINY, {"carrier": "AA"})
    except ModelUnavailable as exc:
        assert "carrier_volume_30d" in str(exc)
    else:
        raise AssertionError("expected ModelUnavailable")


def test_endpoint_explains_with_the_deciding_version(tmp_path):
    runtime = make_runtime(f"sqlite:///{tmp_path}/t.db", StubDelayScorer({"AA": 0.72, "DL": 0.31}))
    asked = []
    runtime.model_version = lambda name, version: asked.append((name, version)) or LoadedModel(
        name, version, "delay_risk_v1", TINY)
    keys = {role: create_key(runtime.engine, role=role, name=f"t-{role.value}") for role in Role}
    client = TestClient(create_app(lambda: runtime))
    orchestrator = {"Authorization": f"Bearer {keys[Role.ORCHESTRATOR]}"}
    decided = client.post("/shipments/decide", json={**SHIPMENT, "carrier": "AA"}, headers=orchestrator).json()
    # the stub logs the carrier as "carrier_volume_30d" only: give the log what the tiny model reads
    from sqlalchemy import update

    from serving.db import decisions
    with runtime.engine.begin() as conn:
        conn.execute(update(decisions).values(features={"carrier": "AA", "carrier_volume_30d": 40.0}))

    reviewer = {"Authorization": f"Bearer {keys[Role.REVIEWER]}"}
    r = client.get(f"/decisions/{decided['decision_id']}/explanation", headers=reviewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert asked == [("delay_risk", "7")] and body["model_version"] == "7" and body["method"] == "treeshap"
    assert body["reproduced"] is False  # the stub's 0.72 is not what the tiny model says
    assert abs(body["bias"] + sum(x["contribution"] for x in body["reasons"]) - body["raw_score"]) < 1e-9
    assert body["logged_reasons"] == decided["reasons"]

    assert client.get("/decisions/nope/explanation", headers=reviewer).status_code == 404
    assert client.get(f"/decisions/{decided['decision_id']}/explanation").status_code == 401


def test_degraded_decisions_have_nothing_to_explain(tmp_path):
    runtime = make_runtime(f"sqlite:///{tmp_path}/t.db", ModelUnavailable("gone"))
    key = create_key(runtime.engine, role=Role.ORCHESTRATOR, name="t")
    client = TestClient(create_app(lambda: runtime))
    headers = {"Authorization": f"Bearer {key}"}
    decided = client.post("/shipments/decide", json=SHIPMENT, headers=headers).json()
    assert decided["degraded"]
    r = client.get(f"/decisions/{decided['decision_id']}/explanation", headers=headers)
    assert r.status_code == 422 and "degraded" in r.json()["detail"]
