"""Decision bodies are built directly in their JSON form, and the log's JSON is strict JSON.

The shipment path builds its response without pydantic (for speed); these tests hold what it builds equal,
key for key and in order, to what the response model would write, for every kind of decision."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select, text

from features.errors import FeaturesUnavailable, ModelUnavailable
from serving import jsontext
from serving.db import decisions
from serving.schemas import ShipmentDecision, ShipmentIn
from tests.serving.conftest import SHIPMENT, StubDelayScorer, make_runtime

CASES = {
    "hold with reroute": {**SHIPMENT, "carrier": "AA"},
    "low risk approve": {**SHIPMENT, "carrier": "DL", "customer_id": None},
    "high value review": {**SHIPMENT, "carrier": "AA", "declared_value": 90_000},
    "unknown carrier": {**SHIPMENT, "carrier": "ZZ"},
}


def _strict(raw: str):
    def refuse(token):
        raise ValueError(f"non-JSON token {token}")
    return json.loads(raw, parse_constant=refuse)


@pytest.mark.parametrize("failure", [None, ModelUnavailable("gone"), FeaturesUnavailable("down")])
def test_a_built_body_is_what_the_response_model_would_write(tmp_path, failure):
    scorer = StubDelayScorer({"AA": 0.72, "DL": 0.31, "UA": 0.45}, fail=failure)
    runtime = make_runtime(f"sqlite:///{tmp_path}/t.db", scorer)
    requests = [ShipmentIn(**{**body, "shipment_id": name.replace(" ", "-")}) for name, body in CASES.items()]
    bodies = runtime.decisions.decide_shipments(requests)
    assert {b["degraded"] for b in bodies} == {failure is not None}
    assert {b["outcome"] for b in bodies} >= ({"review"} if failure else {"hold", "approve"})
    for body in bodies:
        dumped = ShipmentDecision.model_validate(body).model_dump(mode="json")
        assert body == dumped
        assert list(body) == list(dumped)
        assert body["created_at"].endswith("Z")
    for body in runtime.decisions.decide_shipments(requests):  # the recorded originals come back
        assert body == ShipmentDecision.model_validate(body).model_dump(mode="json")


def test_the_encoder_writes_strict_json():
    value = {"nan": float("nan"), "inf": float("-inf"), "f64": np.float64(1.5), "i64": np.int64(2),
             "flag": np.bool_(True), "text": "Zürich"}
    assert _strict(jsontext.dumps(value)) == {"nan": None, "inf": None, "f64": 1.5, "i64": 2, "flag": True,
                                              "text": "Zürich"}
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        jsontext.dumps({"bad": object()})


def test_the_decision_log_holds_strict_json(database_url):
    scorer = StubDelayScorer({"AA": float("nan")})  # a non-finite score reaches the log as null
    runtime = make_runtime(database_url, scorer)
    body = runtime.decisions.decide_shipments([ShipmentIn(**SHIPMENT)])[0]
    assert body["scores"]["p_late"] != body["scores"]["p_late"]  # NaN in memory
    with runtime.engine.connect() as conn:
        raw = conn.execute(select(text("CAST(response AS TEXT)"), text("CAST(request AS TEXT)"),
                                  text("CAST(features AS TEXT)")).select_from(decisions)).one()
    response = _strict(raw[0])
    assert response["scores"]["p_late"] is None and response["decision_id"] == body["decision_id"]
    assert _strict(raw[1])["shipment_id"] == SHIPMENT["shipment_id"] and _strict(raw[2]) is not None
