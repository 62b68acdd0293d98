"""decide_many answers what decide answers, row by row: outcome, actions, rules fired, trace, degraded."""

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_engine import batch
from rules_engine.batch import SMALL, decide_many, reads
from rules_engine.engine import decide
from rules_engine.loader import load_policy
from rules_engine.schema import Action, ActionType, Example, Expected, Fallback, HitPolicy, Leaf, Op, Policy, Rule
from tests.rules_engine.test_engine import _CONDITIONS, _FACTS, _LEAVES, _SCALARS

# Mostly well-typed facts, so that most rows are decided by column (a row with a wrong type anywhere a rule
# looks is handed to decide() itself); the engine's own, wilder facts in a third of the rows.
_NUMBER = st.one_of(st.integers(-2, 2), st.sampled_from([0.5, 1.0]), st.floats(-3, 3), st.none())
_TYPED = st.builds(lambda x, flag, p, v, c: {"x": x, "flag": flag, "scores": {"p_late": p},
                                            "shipment": {"declared_value": v}, "a": {"b": {"c": c}}},
                   _NUMBER, st.one_of(st.booleans(), st.none()), _NUMBER, _NUMBER, _NUMBER)

DELAY = Path(__file__).resolve().parents[2] / "policies" / "delay.yaml"
_PARAMS = st.dictionaries(st.sampled_from(["amount", "who", "why"]),
                          st.sampled_from(["$x", "$scores.p_late", "$a.b.c", "$policy.thresholds.limit", "$nope",
                                           "fixed", 3]), max_size=2)
# few types, so that actions of one type repeat (the engine's dedupe) and approvals meet holds
_ACTIONS = st.lists(st.builds(Action, type=st.sampled_from([ActionType.APPROVE_INVOICE, ActionType.HOLD_INVOICE,
                                                            ActionType.NOTIFY_CUSTOMER]), params=_PARAMS), max_size=3)
_OUTCOMES = st.sampled_from(["approve", "review", "hold", "block"])


@st.composite
def policies(draw) -> Policy:
    rules = [Rule(id=f"r{i}", when=draw(st.one_of(_LEAVES, _CONDITIONS)), outcome=draw(_OUTCOMES),
                  actions=draw(_ACTIONS)) for i in range(draw(st.integers(1, 5)))]
    # model_construct: the document checks are the loader's business; here a reference may point at a
    # threshold that does not exist (every comparison with it is then an error in decide)
    return Policy.model_construct(
        id="p", version="1.0.0", owner="me", effective_from=date(2026, 1, 1), description="",
        hit_policy=draw(st.sampled_from(list(HitPolicy))),
        thresholds=draw(st.sampled_from([{"limit": 1.0}, {"limit": 0.5}, {}])), rules=rules,
        default=Fallback(outcome=draw(_OUTCOMES), actions=draw(_ACTIONS)),
        degraded=Fallback(outcome="review", actions=[Action(type=ActionType.HOLD_INVOICE, params={"r": "$x"})]),
        examples=[Example(name="e", facts={}, expected=Expected(outcome="approve"))])


@settings(max_examples=400, deadline=None)
@given(policies(), st.lists(st.one_of(_TYPED, _TYPED, _FACTS), min_size=SMALL, max_size=40))
def test_decide_many_equals_decide_row_by_row(policy, rows):
    assert decide_many(policy, rows) == [decide(policy, facts) for facts in rows]


def test_the_delay_policy_over_many_shipments_matches_row_by_row():
    policy = load_policy(DELAY)
    rows = [{"shipment": {"shipment_id": f"s{i}", "customer_id": "c", "declared_value": [None, 10, 60000][i % 3]},
             "scores": {"p_late": i / 100}, "reroute": {"gain": (i % 7) / 20, "alternatives": [{"carrier": "DL"}]}}
            for i in range(100)]
    batch = decide_many(policy, rows)
    assert batch == [decide(policy, facts) for facts in rows]
    assert {d.outcome for d in batch} == {"approve", "hold", "review"}  # the rows reach every branch
    assert any("suggest-reroute" in d.rules_fired for d in batch)


def test_a_row_with_a_wrong_fact_type_gets_the_engines_error_trace_and_no_approval(monkeypatch):
    rule = Rule(id="small", when=Leaf(fact="x", op=Op.LT, value=10), outcome="approve",
                actions=[Action(type=ActionType.APPROVE_INVOICE)])
    policy = Policy.model_construct(
        id="p", version="1.0.0", owner="me", effective_from=date(2026, 1, 1), description="",
        hit_policy=HitPolicy.COLLECT, thresholds={}, rules=[rule], default=Fallback(outcome="approve"),
        degraded=Fallback(outcome="review"), examples=[])
    by_engine = []
    monkeypatch.setattr(batch, "decide", lambda p, facts: by_engine.append(facts) or decide(p, facts))
    decisions = decide_many(policy, [{"x": 1}, {"x": "ten"}, {"x": 2}, {}])
    assert by_engine == [{"x": "ten"}]  # only the row that errs is handed to the engine
    assert [d.outcome for d in decisions] == ["approve", "review", "approve", "approve"]
    assert decisions[1].degraded and decisions[1].trace[0].result == "error"
    assert decisions[1].trace[0].detail == "x is 'ten', not a number"


@pytest.mark.parametrize("n", [0, 1, SMALL - 1])
def test_few_rows_are_decided_by_the_engine_itself(n):
    policy = load_policy(DELAY)
    rows = [{"shipment": {"shipment_id": "s"}, "scores": {"p_late": 0.7}}] * n
    assert decide_many(policy, rows) == [decide(policy, facts) for facts in rows]


# what ``a`` may hold once it is worked out: the conditions read a.b.c, the actions take $a.b.c
_PART = st.one_of(_SCALARS, st.builds(lambda v: {"b": {"c": v}}, _SCALARS), st.just({"b": {"c": 1.0}}),
                  st.just({"b": {"c": -1}}), st.just({"b": {"c": "DL"}}))


@settings(max_examples=400, deadline=None)
@given(policies(), st.lists(st.one_of(_TYPED, _FACTS), min_size=1, max_size=30),
       st.lists(_PART, min_size=30, max_size=30))
def test_a_row_that_does_not_read_a_part_is_decided_the_same_whatever_it_holds(policy, rows, parts):
    bare = [{k: v for k, v in row.items() if k != "a"} for row in rows]
    need = reads(policy, bare, "a")
    assert need.dtype == bool and need.shape == (len(rows),)
    for row, part, needed in zip(bare, parts, need.tolist()):
        if not needed:
            assert decide(policy, {**row, "a": part}) == decide(policy, row)


def test_the_delay_policy_reads_the_alternatives_exactly_from_the_reroute_risk_on():
    policy = load_policy(DELAY)
    rows = [{"shipment": {"shipment_id": f"s{i}", "declared_value": [None, 60000][i % 2]},
             "scores": {"p_late": i / 100}} for i in range(100)]
    assert reads(policy, rows, "reroute").tolist() == [i >= 40 for i in range(100)]  # reroute_min_risk 0.4
    assert not reads(policy, rows, "nothing").any()


def test_a_part_taken_by_an_action_or_a_default_or_read_by_an_erring_rule_is_needed():
    take = Action(type=ActionType.NOTIFY_CUSTOMER, params={"who": "$a.who"})
    small = Rule(id="small", when=Leaf(fact="x", op=Op.LT, value=10), outcome="approve", actions=[take])

    def policy(rules, default_actions=()):
        return Policy.model_construct(
            id="p", version="1.0.0", owner="me", effective_from=date(2026, 1, 1), description="",
            hit_policy=HitPolicy.COLLECT, thresholds={}, rules=rules,
            default=Fallback(outcome="approve", actions=list(default_actions)), degraded=Fallback(outcome="review"),
            examples=[])
    rows = [{"x": 1}, {"x": 20}, {"x": "ten"}, {}]
    assert reads(policy([small]), rows, "a").tolist() == [True, False, True, False]  # hit, miss, error, missing
    assert reads(policy([small], [take]), rows, "a").tolist() == [True, True, True, True]  # the default takes it
    assert reads(policy([], [take]), rows, "a").tolist() == [True] * 4
    assert not reads(policy([]), rows, "a").any()
    with pytest.raises(ValueError, match="top-level"):
        reads(policy([small]), rows, "a.b")
