"""/v1/reviews over SQLite and PostgreSQL: the workflow over HTTP, status codes of refusals, nothing changed."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from serving.auth import Role, create_key
from serving.reviews import ReviewService
from tests.serving.review_factory import Clock, invoice_case

PAY = {"verdict": "approve_as_billed"}


@pytest.fixture
def desk(api):
    """The API with a review service on a settable clock, and a second reviewer."""
    clock = Clock()
    api.runtime._reviews = ReviewService(api.runtime.engine, policies=api.runtime.decisions.policies, clock=clock)
    second = create_key(api.runtime.engine, role=Role.REVIEWER, name="second reviewer")
    api.as_reviewer = api.headers_for(Role.REVIEWER)
    api.as_second = {"Authorization": f"Bearer {second}"}
    api.as_approver = api.headers_for(Role.APPROVER)
    api.clock = clock
    return api


def _case(api, invoice_id: str = "INV-1", **kwargs) -> str:
    return invoice_case(api.runtime.decisions, invoice_id, **kwargs)


def test_list_claim_resolve_over_http_and_the_decision_links_to_its_case(desk):
    api = desk
    case_id = _case(api, held=True)
    listed = api.get("/reviews", params={"queue": "freight-audit", "carrier": "AA"}, headers=api.as_reviewer)
    assert listed.status_code == 200 and [i["case_id"] for i in listed.json()["items"]] == [case_id]
    assert listed.json()["total"] == 1 and listed.json()["counts"]["open"] == 1
    claimed = api.post(f"/reviews/{case_id}/claim", headers=api.as_reviewer)
    assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "test-reviewer"
    done = api.post(f"/reviews/{case_id}/resolve", json={"verdict": "approve_adjusted", "amount": 700,
                                                         "reason_code": "fuel_surcharge_wrong"},
                    headers={**api.as_reviewer, "Idempotency-Key": "v-1"})
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    again = api.post(f"/reviews/{case_id}/resolve", json={"verdict": "approve_adjusted", "amount": 700,
                                                          "reason_code": "fuel_surcharge_wrong"},
                     headers={**api.as_reviewer, "Idempotency-Key": "v-1"})
    assert again.json()["resolution"] == done.json()["resolution"] and again.json()["replayed"]
    case = api.get(f"/reviews/{case_id}", headers=api.as_reviewer).json()
    assert [e["action"] for e in case["history"]] == ["created", "claimed", "resolved", "hold_released"]
    assert case["history"][-1]["payload"] == {"held_by_decision": True, "payable_amount": 700.0, "short_paid": 100.0}
    assert case["resolution"]["overbilled_amount"] == 100.0 and case["resolution"]["label_class"] == "fuel_surcharge_error"
    decision = api.get(f"/decisions/{case['decision_id']}", headers=api.as_reviewer)
    assert decision.headers["link"] == f'</v1/reviews/{case_id}>; rel="review-case"'
    by_decision = api.get("/reviews", params={"decision_id": case["decision_id"], "status": "all"},
                          headers=api.as_reviewer).json()
    assert [i["case_id"] for i in by_decision["items"]] == [case_id]


def test_refusals_have_their_status_codes_and_change_nothing(desk):
    api = desk
    case_id = _case(api)
    snapshot = api.get(f"/reviews/{case_id}", headers=api.as_reviewer).json()
    for method, path in (("get", "/reviews/nope"), ("post", "/reviews/nope/claim"), ("post", "/reviews/nope/release")):
        assert getattr(api, method)(path, headers=api.as_reviewer).status_code == 404
    assert api.post("/reviews/nope/resolve", json=PAY, headers=api.as_reviewer).status_code == 404
    assert api.post("/reviews/nope/approve", headers=api.as_approver).status_code == 404
    unclaimed = api.post(f"/reviews/{case_id}/resolve", json=PAY, headers=api.as_reviewer)
    assert unclaimed.status_code == 409 and "claim" in unclaimed.json()["detail"]
    assert api.get("/reviews", headers=api.headers_for(Role.ORCHESTRATOR)).status_code == 403
    assert api.get("/reviews").status_code == 401
    assert api.get(f"/reviews/{case_id}", headers=api.as_reviewer).json() == snapshot

    assert api.post(f"/reviews/{case_id}/claim", headers=api.as_reviewer).status_code == 200
    snapshot = api.get(f"/reviews/{case_id}", headers=api.as_reviewer).json()
    taken = api.post(f"/reviews/{case_id}/claim", headers=api.as_second)
    assert taken.status_code == 409 and "held by test-reviewer" in taken.json()["detail"]
    assert api.post(f"/reviews/{case_id}/resolve", json=PAY, headers=api.as_second).status_code == 409
    bad_code = api.post(f"/reviews/{case_id}/resolve", json={"verdict": "dispute", "amount": 10, "reason_code": "meh"},
                        headers=api.as_reviewer)
    assert bad_code.status_code == 422 and bad_code.json()["detail"][0]["field"] == "reason_code"
    bad_verdict = api.post(f"/reviews/{case_id}/resolve", json={"verdict": "pay"}, headers=api.as_reviewer)
    assert bad_verdict.status_code == 422 and bad_verdict.json()["detail"][0]["field"] == "verdict"
    too_much = api.post(f"/reviews/{case_id}/resolve", json={"verdict": "dispute", "amount": 9999,
                                                             "reason_code": "duplicate_invoice"}, headers=api.as_reviewer)
    assert too_much.status_code == 422 and "amount" in too_much.json()["detail"]
    assert api.post(f"/reviews/{case_id}/approve", headers=api.as_reviewer).status_code == 403
    assert api.get(f"/reviews/{case_id}", headers=api.as_reviewer).json() == snapshot


@pytest.mark.parametrize("params, field", [({"limit": 0}, "limit"), ({"status": "pending"}, "status"),
                                           ({"sort": "colour"}, "sort"), ({"amount_min": -1}, "amount_min")])
def test_bad_query_parameters_are_named(desk, params, field):
    r = desk.get("/reviews", params=params, headers=desk.as_reviewer)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == field


def test_four_eyes_over_http(desk):
    api = desk
    case_id = _case(api, total=12000)
    api.post(f"/reviews/{case_id}/claim", headers=api.as_approver)
    waiting = api.post(f"/reviews/{case_id}/resolve", json=PAY, headers=api.as_approver)
    assert waiting.status_code == 200 and waiting.json()["status"] == "awaiting_approval"
    own = api.post(f"/reviews/{case_id}/approve", headers=api.as_approver)
    assert own.status_code == 403 and "four-eyes" in own.json()["detail"]
    assert api.post(f"/reviews/{case_id}/approve", headers=api.as_reviewer).status_code == 403
    admin = api.post(f"/reviews/{case_id}/approve", headers=api.headers_for(Role.ADMIN))
    assert admin.status_code == 200 and admin.json()["status"] == "resolved"
    assert admin.json()["approved_by"] == "test-admin"


def test_breached_slas_are_counted_on_metrics(desk):
    api = desk
    _case(api, "INV-1", sla_hours=1)
    _case(api, "INV-2", sla_hours=48)
    api.clock.advance(hours=2)
    counts = api.get("/reviews", params={"queue": "freight-audit"}, headers=api.as_reviewer).json()["counts"]
    assert counts["sla_breached"] == 1 and counts["open"] == 2
    assert REGISTRY.get_sample_value("tollgate_review_cases",
                                     {"queue": "freight-audit", "state": "sla_breached"}) == 1
