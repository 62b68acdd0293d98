"""The shipment decision API over SQLite and PostgreSQL, with stub models."""

import json
import threading
import uuid

import pytest
from sqlalchemy import func, select

from features.errors import FeaturesUnavailable, ModelUnavailable
from serving.app import create_app
from serving.auth import Role
from serving.db import decisions, movements, review_cases
from tests.serving.conftest import SHIPMENT, StubDelayScorer, make_runtime
from fastapi.testclient import TestClient


def _count(runtime, table) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_decision_carries_scores_reasons_actions_versions(api):
    r = api.post("/shipments/decide", json=SHIPMENT, headers=api.headers_for(Role.ORCHESTRATOR))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scores"] == {"p_late": 0.72, "risk_band": "high"}
    assert body["outcome"] == "hold" and not body["degraded"]
    types = [a["type"] for a in body["actions"]]
    assert types == ["notify_customer", "suggest_reroute", "hold_invoice"]
    reroute = body["actions"][1]["params"]["alternatives"]
    assert [a["carrier"] for a in reroute] == ["DL", "UA"]  # scored alternatives, least risky first
    assert body["reasons"][0]["feature"] == "origin_live_undeparted_120m"
    assert (body["model_name"], body["model_version"]) == ("delay_risk", "7")
    assert (body["policy_id"], body["policy_version"]) == ("delay", "1.0.0")
    assert body["feature_service"] == "delay_risk_v1"
    assert body["rules_fired"] == ["notify-likely-late", "suggest-reroute", "hold-invoice-until-delivered"]
    stored = api.get(f"/decisions/{body['decision_id']}", headers=api.headers_for(Role.REVIEWER))
    assert stored.status_code == 200 and stored.json() == body


def test_same_payload_is_idempotent_and_a_different_one_under_the_key_conflicts(api, scorer):
    headers = {**api.headers_for(Role.ORCHESTRATOR), "Idempotency-Key": "k-1"}
    first = api.post("/shipments/decide", json=SHIPMENT, headers=headers).json()
    again = api.post("/shipments/decide", json=SHIPMENT, headers=headers).json()
    assert first == again and scorer.calls == 1
    changed = api.post("/shipments/decide", json={**SHIPMENT, "declared_value": 99}, headers=headers)
    assert changed.status_code == 409
    no_key = api.post("/shipments/decide", json=SHIPMENT, headers=api.headers_for(Role.ORCHESTRATOR)).json()
    no_key_again = api.post("/shipments/decide", json=SHIPMENT, headers=api.headers_for(Role.ORCHESTRATOR)).json()
    assert no_key == no_key_again
    assert _count(api.runtime, decisions) == 2


def test_review_case_created_once(api):
    high_value = {**SHIPMENT, "declared_value": 90000}
    for _ in range(3):
        r = api.post("/shipments/decide", json=high_value, headers=api.headers_for(Role.ORCHESTRATOR))
        assert r.json()["outcome"] == "hold"
    with api.runtime.engine.connect() as conn:
        cases = conn.execute(select(review_cases)).mappings().all()
    assert len(cases) == 1 and cases[0]["queue"] == "dispatch" and cases[0]["decision_id"] == r.json()["decision_id"]


@pytest.mark.parametrize("failure, reason", [(ModelUnavailable("gone"), "model_unavailable"),
                                             (FeaturesUnavailable("redis down"), "features_unavailable")])
def test_broken_model_or_features_give_a_degraded_review_never_an_approval(database_url, failure, reason):
    runtime = make_runtime(database_url, StubDelayScorer({}, fail=failure))
    from serving.auth import create_key

    key = create_key(runtime.engine, role=Role.ORCHESTRATOR, name="o")
    client = TestClient(create_app(lambda: runtime))
    r = client.post("/shipments/decide", json=SHIPMENT, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200
    body = r.json()
    assert body["degraded"] and body["degraded_reason"] == reason
    assert body["outcome"] == "review" and [a["type"] for a in body["actions"]] == ["enqueue_review"]
    assert _count(runtime, review_cases) == 1


def test_unknown_carrier_is_scored_and_flagged(api):
    r = api.post("/shipments/decide", json={**SHIPMENT, "carrier": "ZZ"}, headers=api.headers_for(Role.ORCHESTRATOR))
    assert r.status_code == 200 and r.json()["features_missing"] is True and r.json()["scores"]["p_late"] == 0.2


def test_auth_401_403(api):
    assert api.post("/shipments/decide", json=SHIPMENT).status_code == 401
    assert api.post("/shipments/decide", json=SHIPMENT, headers={"Authorization": "Bearer tg_x_y"}).status_code == 401
    assert api.post("/shipments/decide", json=SHIPMENT, headers=api.headers_for(Role.REVIEWER)).status_code == 403
    assert api.post("/shipments/decide", json=SHIPMENT, headers=api.headers_for(Role.ADMIN)).status_code == 200


def test_bad_input_names_the_field_and_records_nothing(api):
    bad = {**SHIPMENT, "scheduled_departure": "tomorrow", "carrier": "a a"}
    r = api.post("/shipments/decide", json=bad, headers=api.headers_for(Role.ORCHESTRATOR))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["detail"]}
    assert {"scheduled_departure", "carrier"} <= fields
    naive = {**SHIPMENT, "scheduled_departure": "2013-12-02T14:00:00"}
    assert api.post("/shipments/decide", json=naive, headers=api.headers_for(Role.ORCHESTRATOR)).status_code == 422
    extra = {**SHIPMENT, "surprise": 1}
    assert api.post("/shipments/decide", json=extra, headers=api.headers_for(Role.ORCHESTRATOR)).status_code == 422
    huge = api.post("/shipments/decide", content=b"x" * (3 * 1024 * 1024),
                    headers={**api.headers_for(Role.ORCHESTRATOR), "content-type": "application/json"})
    assert huge.status_code == 413 and huge.json()["error"] == "PayloadTooLarge"
    chunked = api.post("/shipments/decide", content=iter([b"x" * 1024 * 1024] * 3),  # no content-length
                       headers={**api.headers_for(Role.ORCHESTRATOR), "content-type": "application/json"})
    assert chunked.status_code == 413
    assert _count(api.runtime, decisions) == 0


def test_a_non_finite_score_is_sent_as_null_not_a_500():
    from serving.app import _respond

    body = _respond({"scores": {"p_late": float("nan"), "risk_band": "low"}, "reasons": [{"value": float("inf")}]})
    assert json.loads(body.body) == {"scores": {"p_late": None, "risk_band": "low"}, "reasons": [{"value": None}]}


def _through_body_limit(chunks: list[bytes]) -> tuple[list[dict], list[bytes]]:
    """Drive the middleware as a server would: the body in several messages, no content-length."""
    import asyncio

    from serving.app import BodyLimit

    seen, sent = [], []

    async def inner(scope, receive, send):
        seen.append(await receive())

    async def run():
        messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                    for i, c in enumerate(chunks)]

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message.get("body", b""))

        await BodyLimit(inner)({"type": "http", "headers": []}, receive, send)

    asyncio.run(run())
    return seen, sent


def test_body_limit_counts_a_body_sent_in_pieces():
    seen, _ = _through_body_limit([b'{"a":', b' 1', b"}"])
    assert seen == [{"type": "http.request", "body": b'{"a": 1}', "more_body": False}]
    seen, sent = _through_body_limit([b"x" * (1024 * 1024)] * 3)
    assert seen == [] and json.loads(sent[-1])["error"] == "PayloadTooLarge"


def test_a_chunked_body_under_the_limit_is_decided(api):
    body = json.dumps(SHIPMENT).encode()
    r = api.post("/shipments/decide", content=iter([body[:40], body[40:]]),  # no content-length
                 headers={**api.headers_for(Role.ORCHESTRATOR), "content-type": "application/json"})
    assert r.status_code == 200 and r.json()["subject_id"] == SHIPMENT["shipment_id"]


def test_batch_decides_every_shipment(api):
    batch = {"shipments": [{**SHIPMENT, "shipment_id": f"S-{i}", "carrier": c}
                           for i, c in enumerate(["AA", "DL", "UA", "ZZ"])]}
    r = api.post("/shipments/decide/batch", json=batch, headers=api.headers_for(Role.ORCHESTRATOR))
    assert r.status_code == 200
    outcomes = [d["outcome"] for d in r.json()["decisions"]]
    assert outcomes == ["hold", "approve", "approve", "approve"]
    assert _count(api.runtime, decisions) == 4
    # decision ids are time-ordered (UUID version 7): the log's primary key grows at its right-hand edge
    ids = [d["decision_id"] for d in r.json()["decisions"]]
    assert ids == sorted(ids) and {uuid.UUID(i).version for i in ids} == {7}
    with api.runtime.engine.connect() as conn:
        stored = conn.execute(select(decisions.c.decision_id).order_by(decisions.c.decision_id)).scalars().all()
    assert stored == ids


def test_alternatives_are_scored_only_for_the_shipments_whose_decision_reads_them(api, scorer):
    """The delay policy looks at reroute gains from a p_late of 0.4 on: AA (0.72) and UA (0.45) need them,
    DL (0.31) and the unknown ZZ (0.2) do not; the decisions are those of a pass that scored them all."""
    batch = {"shipments": [{**SHIPMENT, "shipment_id": f"S-{i}", "carrier": c}
                           for i, c in enumerate(["AA", "DL", "UA", "ZZ", "DL"])]}
    r = api.post("/shipments/decide/batch", json=batch, headers=api.headers_for(Role.ORCHESTRATOR))
    assert r.status_code == 200 and scorer.alternatives_asked == 2
    decided = r.json()["decisions"]
    reroute = [next((a for a in d["actions"] if a["type"] == "suggest_reroute"), None) for d in decided]
    assert [a is not None for a in reroute] == [True, False, True, False, False]
    assert [x["carrier"] for x in reroute[0]["params"]["alternatives"]] == ["DL", "UA"]  # least risky first
    assert [x["carrier"] for x in reroute[2]["params"]["alternatives"]] == ["DL"]


def test_batch_repeating_a_shipment_and_a_decided_one_records_each_once(api):
    headers = api.headers_for(Role.ORCHESTRATOR)
    decided = api.post("/shipments/decide", json={**SHIPMENT, "shipment_id": "S-old"}, headers=headers).json()
    batch = {"shipments": [{**SHIPMENT, "shipment_id": "S-new", "declared_value": 90000},
                           {**SHIPMENT, "shipment_id": "S-old"},
                           {**SHIPMENT, "shipment_id": "S-new", "declared_value": 90000}]}
    r = api.post("/shipments/decide/batch", json=batch, headers=headers)
    assert r.status_code == 200, r.text
    new, old, repeat = r.json()["decisions"]
    assert old == decided and repeat == new  # the repeat within the batch gets the first one's decision
    assert _count(api.runtime, decisions) == 2 and _count(api.runtime, review_cases) == 1
    with api.runtime.engine.connect() as conn:
        schedules = conn.execute(select(movements.c.shipment_id).order_by(movements.c.shipment_id)).scalars().all()
    assert schedules == ["S-new", "S-old"]


def test_concurrent_retries_yield_one_decision(api):
    headers = {**api.headers_for(Role.ORCHESTRATOR), "Idempotency-Key": "race"}
    results = []

    def send():
        results.append(api.post("/shipments/decide", json=SHIPMENT, headers=headers).json()["decision_id"])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and _count(api.runtime, decisions) == 1


def test_database_down_is_a_clear_503_never_an_approval(tmp_path, scorer):
    from serving.db import make_engine

    runtime = make_runtime(f"sqlite:///{tmp_path}/t.db", scorer)
    from serving.auth import create_key

    key = create_key(runtime.engine, role=Role.ORCHESTRATOR, name="o")
    client = TestClient(create_app(lambda: runtime))
    assert client.post("/shipments/decide", json=SHIPMENT, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    down = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2")
    runtime.engine = runtime.decisions.engine = runtime.decisions.policies.engine = down
    runtime._keys.clear()
    r = client.post("/shipments/decide", json={**SHIPMENT, "shipment_id": "S-2"},
                    headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 503 and r.json()["error"] == "DatabaseUnavailable"
