"""The review workflow (serving.reviews) on SQLite and PostgreSQL: queue, claims, verdicts, four-eyes, history."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from features.errors import InvalidInput
from serving.auth import Role
from serving.db import case_events, case_resolutions, review_cases
from serving.reviews import Conflict, Forbidden, NotFound, ReviewService
from tests.serving.conftest import SHIPMENT, make_runtime
from tests.serving.review_factory import Clock, invoice_case, person

ANA, BEN = person("k-ana"), person("k-ben")
CHLOE = person("k-chloe", Role.APPROVER)
PAY = {"verdict": "approve_as_billed"}


@pytest.fixture
def desk(database_url, scorer):
    """Decision recording, a review service on a settable clock, and the clock."""
    runtime = make_runtime(database_url, scorer)
    clock = Clock()
    return runtime.decisions, ReviewService(runtime.engine, policies=runtime.decisions.policies, clock=clock), clock


def _snapshot(reviews: ReviewService, case_id: str) -> tuple:
    with reviews.engine.connect() as conn:
        row = dict(conn.execute(select(review_cases).where(review_cases.c.case_id == case_id)).mappings().one())
        events = conn.execute(select(func.count()).select_from(case_events)).scalar_one()
        resolutions = conn.execute(select(func.count()).select_from(case_resolutions)).scalar_one()
    return row, events, resolutions


def test_a_new_case_carries_its_decision_facts_priority_and_created_history(desk):
    decisions, reviews, _ = desk
    case_id = invoice_case(decisions, "INV-1", total=900, p=0.6, amount_at_risk=200, label="normal", held=True)
    case = reviews.get_case(case_id)
    assert (case["carrier"], case["lane"], case["predicted_class"]) == ("AA", "JFK-LAX", "rate_overcharge")
    assert case["confidence"] == pytest.approx(0.6) and case["subject_amount"] == 900
    assert case["priority"] == pytest.approx(200 * (0.5 + 0.4) * 1.0)  # exposure × (0.5 + uncertainty) × label
    assert case["status"] == "open" and not case["needs_second_approval"] and not case["sla_breached"]
    assert case["decision"]["response"]["rules_fired"] == ["review-uncertain"]
    assert case["decision"]["features"] == {"total_billed": 900, "total_expected": 700}
    assert [(e["seq"], e["action"], e["to_status"]) for e in case["history"]] == [(1, "created", "open")]
    assert case["resolution"] is None


def test_shipment_case_gets_lane_and_late_prediction(api):
    r = api.post("/shipments/decide", json={**SHIPMENT, "declared_value": 90000},
                 headers=api.headers_for(Role.ORCHESTRATOR))
    listed = api.runtime.reviews.list_cases(queue="dispatch")
    [case] = listed["items"]
    assert case["decision_id"] == r.json()["decision_id"]
    assert (case["lane"], case["carrier"], case["predicted_class"]) == ("JFK-LAX", "AA", "late")
    assert case["amount_at_risk"] == pytest.approx(90000 * 0.72)
    assert case["needs_second_approval"]  # declared value above the delay policy's high_value (50,000)


def test_queue_is_ordered_by_priority_then_sla_and_filters_narrow_it(desk):
    decisions, reviews, clock = desk
    big = invoice_case(decisions, "INV-B", amount_at_risk=1000, p=0.5, carrier="DL", lane="ATL-BOS")
    sure = invoice_case(decisions, "INV-S", amount_at_risk=1000, p=0.99, predicted="duplicate")
    soon = invoice_case(decisions, "INV-T1", amount_at_risk=100, p=0.6, sla_hours=2)
    later = invoice_case(decisions, "INV-T2", amount_at_risk=100, p=0.6, sla_hours=40)
    out = reviews.list_cases()
    assert [i["case_id"] for i in out["items"]] == [big, sure, soon, later]
    assert out["total"] == 4 and out["counts"]["open"] == 4
    assert [i["case_id"] for i in reviews.list_cases(carrier="DL")["items"]] == [big]
    assert [i["case_id"] for i in reviews.list_cases(lane="JFK-LAX", discrepancy="duplicate")["items"]] == [sure]
    assert {i["case_id"] for i in reviews.list_cases(amount_min=50, amount_max=150)["items"]} == {soon, later}
    clock.advance(hours=3)
    assert [i["case_id"] for i in reviews.list_cases(sla_breached=True)["items"]] == [soon]
    assert reviews.list_cases()["counts"]["sla_breached"] == 1
    page = reviews.list_cases(limit=2, offset=2)
    assert [i["case_id"] for i in page["items"]] == [soon, later] and page["total"] == 4
    assert [i["case_id"] for i in reviews.list_cases(sort="sla_due_at", descending=False)["items"]][0] == soon
    with pytest.raises(InvalidInput, match="status"):
        reviews.list_cases(status="pending")
    with pytest.raises(InvalidInput, match="discrepancy"):
        reviews.list_cases(discrepancy="fraud")


def test_claim_resolve_and_the_history_tells_the_whole_story(desk):
    decisions, reviews, clock = desk
    case_id = invoice_case(decisions, "INV-1", held=True)
    claimed = reviews.claim(case_id, ANA)
    assert claimed["status"] == "claimed" and claimed["claimed_by"] == "Ana"
    assert reviews.list_cases(status="available")["total"] == 0
    assert reviews.list_cases(status="open")["items"][0]["claimed_by"] == "Ana"
    with pytest.raises(Conflict, match="held by Ana"):
        reviews.claim(case_id, BEN)
    clock.advance(minutes=5)
    done = reviews.resolve(case_id, ANA, {"verdict": "dispute", "amount": 95, "reason_code": "rate_not_per_contract",
                                          "note": "contract rate is 1.20/kg"})
    assert done["status"] == "resolved" and done["resolution"]["label_class"] == "rate_overcharge"
    assert reviews.list_cases()["total"] == 0 and reviews.list_cases(status="resolved")["total"] == 1
    history = reviews.history(case_id)
    assert [(e["action"], e["from_status"], e["to_status"], e["actor"]) for e in history] == [
        ("created", None, "open", "tollgate"), ("claimed", "open", "claimed", "Ana"),
        ("resolved", "claimed", "resolved", "Ana"), ("dispute_opened", "resolved", "resolved", "Ana")]
    assert history[3]["payload"] == {"held_by_decision": True, "disputed_amount": 95.0,
                                     "reason_code": "rate_not_per_contract", "hold": "kept until the dispute ends"}
    assert [e["seq"] for e in history] == [1, 2, 3, 4]
    assert reviews.get_case(case_id)["resolution"]["resolved_by_name"] == "Ana"


def test_release_returns_the_case_and_only_the_holder_can(desk):
    decisions, reviews, _ = desk
    case_id = invoice_case(decisions, "INV-1")
    reviews.claim(case_id, ANA)
    with pytest.raises(Conflict):
        reviews.release(case_id, BEN)
    assert reviews.release(case_id, ANA)["status"] == "open"
    assert reviews.claim(case_id, BEN)["claimed_by"] == "Ben"


def test_expired_lease_returns_the_case_to_the_queue(desk):
    decisions, reviews, clock = desk
    case_id = invoice_case(decisions, "INV-1")
    first = reviews.claim(case_id, ANA)
    clock.advance(minutes=10)
    again = reviews.claim(case_id, ANA)  # the holder re-claims: the lease is extended
    assert again["lease_expires_at"] > first["lease_expires_at"]
    clock.advance(minutes=16)
    listed = reviews.list_cases(status="available")["items"]
    assert [i["case_id"] for i in listed] == [case_id] and listed[0]["claimed_by"] is None
    with pytest.raises(Conflict, match="claim case"):
        reviews.resolve(case_id, ANA, PAY)
    assert reviews.claim(case_id, BEN)["claimed_by"] == "Ben"
    actions = [(e["action"], e["payload"].get("took_over_expired_lease_of")) for e in reviews.history(case_id)]
    assert actions == [("created", None), ("claimed", None), ("lease_extended", None), ("claimed", "Ana")]


def test_high_value_case_needs_a_different_approver(desk):
    decisions, reviews, _ = desk
    case_id = invoice_case(decisions, "INV-HV", total=9000, held=True)  # invoice policy high_value: 5,000
    assert reviews.get_case(case_id)["needs_second_approval"]
    reviews.claim(case_id, ANA)
    waiting = reviews.resolve(case_id, ANA, {"verdict": "approve_adjusted", "amount": 8800,
                                             "reason_code": "rate_not_per_contract"})
    assert waiting["status"] == "awaiting_approval" and waiting["resolved_at"] is None
    assert reviews.list_cases(status="awaiting_approval")["total"] == 1
    before = _snapshot(reviews, case_id)
    with pytest.raises(Forbidden, match="role 'reviewer'"):
        reviews.approve(case_id, BEN)
    with pytest.raises(Forbidden, match="four-eyes"):
        reviews.approve(case_id, person("k-ana-2", Role.APPROVER, name="Ana"))  # same person, another key
    assert _snapshot(reviews, case_id) == before
    final = reviews.approve(case_id, CHLOE)
    assert final["status"] == "resolved" and final["approved_by"] == "Chloe"
    assert reviews.approve(case_id, CHLOE)["replayed"]
    tail = [(e["action"], e["actor"]) for e in reviews.history(case_id)][-3:]
    assert tail == [("resolved", "Ana"), ("approved", "Chloe"), ("hold_released", "Chloe")]
    assert reviews.history(case_id)[-1]["payload"]["payable_amount"] == 8800


def test_resolve_is_idempotent(desk):
    decisions, reviews, _ = desk
    case_id = invoice_case(decisions, "INV-1")
    reviews.claim(case_id, ANA)
    first = reviews.resolve(case_id, ANA, PAY, idempotency_key="r-1")
    after_first = _snapshot(reviews, case_id)
    second = reviews.resolve(case_id, ANA, PAY, idempotency_key="r-1")
    third = reviews.resolve(case_id, ANA, PAY)  # same actor, same verdict, no key
    assert second["replayed"] and third["replayed"] and not first["replayed"]
    assert second["resolution"]["resolution_id"] == first["resolution"]["resolution_id"]
    assert _snapshot(reviews, case_id) == after_first
    with pytest.raises(Conflict, match="Idempotency-Key"):
        reviews.resolve(case_id, ANA, {"verdict": "confirm_class", "discrepancy": "duplicate"}, idempotency_key="r-1")
    with pytest.raises(Conflict, match="already resolved"):
        reviews.resolve(case_id, BEN, PAY)
    assert _snapshot(reviews, case_id) == after_first


@pytest.mark.parametrize("verdict, field", [
    ({"verdict": "pay_it"}, "verdict"),
    ({"verdict": "dispute", "amount": 10}, "reason_code"),
    ({"verdict": "dispute", "amount": 10, "reason_code": "vibes"}, "reason_code"),
    ({"verdict": "approve_adjusted", "reason_code": "other", "note": "x"}, "amount"),
    ({"verdict": "confirm_class"}, "discrepancy"),
    ({"verdict": "confirm_class", "discrepancy": "fraud"}, "discrepancy"),
    ({"verdict": "approve_as_billed", "note": "x" * 1001}, "note"),
    ({"verdict": "dispute", "amount": 10, "reason_code": "other"}, "note"),
    ({"verdict": "dispute", "amount": 5000, "reason_code": "duplicate_invoice"}, "amount"),  # above the bill
    ({"verdict": "approve_as_billed", "colour": "red"}, "colour"),
])
def test_bad_verdicts_are_refused_naming_the_field_and_change_nothing(desk, verdict, field):
    decisions, reviews, _ = desk
    case_id = invoice_case(decisions, "INV-1")
    reviews.claim(case_id, ANA)
    before = _snapshot(reviews, case_id)
    with pytest.raises(InvalidInput) as caught:
        reviews.resolve(case_id, ANA, verdict)
    assert caught.value.field == field and field in str(caught.value)
    assert _snapshot(reviews, case_id) == before


def test_refused_requests_change_nothing(desk):
    decisions, reviews, _ = desk
    case_id = invoice_case(decisions, "INV-1")
    for call in (lambda: reviews.claim("nope", ANA), lambda: reviews.get_case("nope"),
                 lambda: reviews.resolve("nope", ANA, PAY), lambda: reviews.history("nope")):
        with pytest.raises(NotFound):
            call()
    before = _snapshot(reviews, case_id)
    with pytest.raises(Conflict, match="claim case"):
        reviews.resolve(case_id, ANA, PAY)
    with pytest.raises(Forbidden):
        reviews.claim(case_id, person("k-orch", Role.ORCHESTRATOR))
    with pytest.raises(Conflict, match="only awaiting_approval"):
        reviews.approve(case_id, CHLOE)
    assert _snapshot(reviews, case_id) == before
    reviews.claim(case_id, ANA)
    held = _snapshot(reviews, case_id)
    with pytest.raises(Conflict, match="held by Ana"):
        reviews.resolve(case_id, BEN, PAY)
    assert _snapshot(reviews, case_id) == held


def test_confirmed_class_may_differ_from_the_model_and_invoice_only_verdicts_stay_on_invoices(desk, api):
    decisions, reviews, _ = desk
    case_id = invoice_case(decisions, "INV-1", predicted="rate_overcharge")
    reviews.claim(case_id, ANA)
    done = reviews.resolve(case_id, ANA, {"verdict": "confirm_class", "discrepancy": "weight_overbilled"})
    assert done["resolution"]["label_class"] == "weight_overbilled" and done["predicted_class"] == "rate_overcharge"
    assert reviews.history(case_id)[-1]["action"] == "hold_kept"
    api.post("/shipments/decide", json={**SHIPMENT, "declared_value": 90000}, headers=api.headers_for(Role.ORCHESTRATOR))
    shipment_reviews = api.runtime.reviews
    [case] = shipment_reviews.list_cases(queue="dispatch")["items"]
    shipment_reviews.claim(case["case_id"], ANA)
    with pytest.raises(InvalidInput, match="invoice cases only"):
        shipment_reviews.resolve(case["case_id"], ANA, {"verdict": "confirm_class", "discrepancy": "duplicate"})


def test_every_reason_code_and_verdict_is_documented():
    from pathlib import Path

    from serving.reviews import REASON_CODES, VERDICTS

    text = (Path(__file__).resolve().parents[2] / "docs" / "review-workflow.md").read_text()
    for code, meaning in REASON_CODES.items():
        assert f"| `{code}` | {meaning} |" in text, code
    for verdict in VERDICTS:
        assert f"| `{verdict}` |" in text, verdict
