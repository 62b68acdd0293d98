import pytest

from rules_engine.engine import decide, evaluate
from rules_engine.loader import PolicyInvalid, parse_policy, policy_json_schema
from rules_engine.schema import Leaf

BASE = """
id: test
version: 1.2.3
owner: me
effective_from: 2026-01-01
hit_policy: {hit}
thresholds: {{limit: 10}}
rules:
  - id: big
    when: {{fact: x, op: gt, value: $policy.thresholds.limit}}
    outcome: hold
    actions: [{{type: hold_invoice, params: {{reason: big, amount: $x}}}}]
  - id: flagged
    when: {{fact: flag, op: is_true}}
    outcome: review
    actions: [{{type: enqueue_review, params: {{queue: q}}}}]
  - id: ok
    when: {{all: [{{fact: x, op: lte, value: 10}}, {{not: {{fact: flag, op: is_true}}}}]}}
    outcome: approve
    actions: [{{type: approve_invoice}}]
default: {{outcome: review}}
degraded: {{outcome: review}}
examples:
  - {{name: small, facts: {{x: 1, flag: false}}, expected: {{outcome: approve}}}}
"""


def policy(hit="collect"):
    return parse_policy(BASE.format(hit=hit))


def test_collect_takes_the_highest_outcome_and_all_actions():
    decision = decide(policy(), {"x": 50, "flag": True})
    assert decision.outcome == "hold"
    assert [a["type"] for a in decision.actions] == ["hold_invoice", "enqueue_review"]
    assert decision.rules_fired == ["big", "flagged"]
    assert decision.actions[0]["params"] == {"reason": "big", "amount": 50}
    assert [t.result for t in decision.trace] == ["hit", "hit", "no_hit"]
    assert (decision.policy_id, decision.policy_version) == ("test", "1.2.3")


def test_first_hit_policy_stops_at_the_first_rule():
    decision = decide(policy("first"), {"x": 50, "flag": True})
    assert decision.outcome == "hold" and decision.rules_fired == ["big"]
    assert [t.result for t in decision.trace] == ["hit", "no_hit", "no_hit"]


def test_type_errors_are_traced_and_never_approve():
    decision = decide(policy(), {"x": "ten", "flag": False})
    assert [t.result for t in decision.trace] == ["error", "no_hit", "error"]
    assert decision.outcome == "review" and decision.degraded


def test_missing_fact_never_hits_a_comparison():
    decision = decide(policy(), {"flag": False})
    assert decision.rules_fired == [] and decision.outcome == "review"


def test_approval_does_not_survive_a_higher_outcome():
    doc = BASE.format(hit="collect").replace("op: lte, value: 10", "op: lte, value: 100")
    decision = decide(parse_policy(doc.replace("{name: small, facts: {x: 1, flag: false}, expected: {outcome: approve}}",
                                               "{name: small, facts: {x: 1, flag: false}, expected: {outcome: approve}}")),
                      {"x": 50, "flag": False})
    assert decision.rules_fired == ["big", "ok"] and decision.outcome == "hold"
    assert all(a["type"] != "approve_invoice" for a in decision.actions)


@pytest.mark.parametrize("op, value, fact, expected", [
    ("eq", "a", "a", True), ("ne", "a", "a", False), ("in", ["a", "b"], "b", True), ("not_in", ["a"], "b", True),
    ("between", [1, 3], 3, True), ("between", [1, 3], 4, False), ("gte", 2, 2, True), ("lt", 2, 2, False),
    ("exists", None, 0, True), ("missing", None, None, True), ("is_false", None, False, True),
])
def test_operators(op, value, fact, expected):
    assert evaluate(Leaf(fact="f", op=op, value=value), {"f": fact}) is expected


@pytest.mark.parametrize("change, message", [
    ("op: gt,", "field 'rules.0.when"),
    ("hit_policy: collect", "field 'hit_policy'"),
    ("degraded: {outcome: review}", "degraded decision may never approve"),
    ("$policy.thresholds.limit}", "not defined"),
    ("expected: {outcome: approve}", "example 'small': outcome"),
])
def test_invalid_documents_are_refused_with_the_field(change, message):
    replacement = {"op: gt,": "op: greater,", "hit_policy: collect": "hit_policy: sometimes",
                   "degraded: {outcome: review}": "degraded: {outcome: approve}",
                   "$policy.thresholds.limit}": "$policy.thresholds.nope}",
                   "expected: {outcome: approve}": "expected: {outcome: block}"}[change]
    with pytest.raises(PolicyInvalid, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_policy(BASE.format(hit="collect").replace(change, replacement))


def test_no_eval_in_yaml_and_json_schema_exported():
    with pytest.raises(PolicyInvalid):
        parse_policy("!!python/object/apply:os.system ['true']")
    schema = policy_json_schema()
    assert '"hit_policy"' in schema and '"examples"' in schema
