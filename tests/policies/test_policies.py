"""Every example of every policy document, run by one generic test; plus the governance guarantees."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_engine.engine import decide, degraded_decision
from rules_engine.loader import example_failures, load_policy

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
DOCUMENTS = sorted(POLICY_DIR.glob("*.yaml"))


def _examples():
    for path in DOCUMENTS:
        policy = load_policy(path)
        for example in policy.examples:
            yield pytest.param(policy, example, id=f"{policy.id}:{example.name}")


def test_there_are_policies():
    assert {p.stem for p in DOCUMENTS} >= {"delay", "invoice"}


@pytest.mark.parametrize("policy, example", list(_examples()))
def test_policy_example(policy, example):
    decision = decide(policy, example.facts)
    assert decision.outcome == example.expected.outcome
    if example.expected.actions is not None:
        assert sorted(a["type"] for a in decision.actions) == sorted(example.expected.actions)
    if example.expected.rules_fired is not None:
        assert decision.rules_fired == example.expected.rules_fired
    assert example_failures(policy) == []


invoice_facts = st.fixed_dictionaries({
    "invoice": st.fixed_dictionaries({"invoice_id": st.just("i"), "total": st.floats(0, 100_000)}),
    "scores": st.fixed_dictionaries({
        "p_clean": st.floats(0, 1), "p_predicted": st.floats(0, 1), "amount_at_risk": st.floats(0, 10_000),
        "predicted_class": st.sampled_from(["clean", "duplicate", "rate_overcharge", "billed_before_delivery"])}),
    "context": st.fixed_dictionaries({"shipment_known": st.booleans(), "contract_known": st.booleans()}),
})


@settings(max_examples=300, deadline=None)
@given(facts=invoice_facts)
def test_invoice_policy_never_auto_approves_high_value_or_unknown_references(facts):
    policy = load_policy(POLICY_DIR / "invoice.yaml")
    decision = decide(policy, facts)
    approved = decision.outcome == "approve" or any(a["type"] == "approve_invoice" for a in decision.actions)
    high_value = facts["invoice"]["total"] > policy.thresholds["high_value"]
    unknown = not (facts["context"]["shipment_known"] and facts["context"]["contract_known"])
    if high_value or unknown:
        assert not approved
    if approved:
        assert facts["scores"]["p_clean"] >= policy.thresholds["auto_approve_p_clean"]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_degraded_decision_is_conservative(path):
    policy = load_policy(path)
    decision = degraded_decision(policy, {"invoice": {"total": 10}}, reason="model_unavailable")
    assert decision.degraded and decision.outcome != "approve"
    assert all(a["type"] != "approve_invoice" for a in decision.actions)
    assert any(a["type"] == "enqueue_review" for a in decision.actions)
    assert any(a["params"].get("reason") == "model_unavailable" for a in decision.actions)


def test_missing_scores_never_approve_an_invoice():
    policy = load_policy(POLICY_DIR / "invoice.yaml")
    decision = decide(policy, {"invoice": {"invoice_id": "i", "total": 100},
                               "context": {"shipment_known": True, "contract_known": True}})
    assert decision.outcome != "approve"


def test_committed_json_schema_is_current():
    from rules_engine.loader import policy_json_schema

    committed = (POLICY_DIR.parent / "docs" / "policy.schema.json").read_text()
    assert committed.strip() == policy_json_schema().strip(), "run: tollgate policy schema > docs/policy.schema.json"
