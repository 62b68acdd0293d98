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


# -- the compiled form answers what the interpreter answers ------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rules_engine.engine import _MISSING, FactError, _number, compile_condition, lookup  # noqa: E402
from rules_engine.schema import All, AnyOf, Not, Op  # noqa: E402

_PATHS = ["x", "scores.p_late", "shipment.declared_value", "flag", "a.b.c"]
# small numbers, so that facts often equal bounds (where gt and gte part ways)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.integers(-2, 2), st.sampled_from([0.5, 1.0]),
                     st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["AA", "DL", ""]))
_VALUES = {
    Op.EXISTS: st.none(), Op.MISSING: st.none(), Op.IS_TRUE: st.none(), Op.IS_FALSE: st.none(),
    Op.EQ: _SCALARS, Op.NE: _SCALARS, Op.IN: st.lists(_SCALARS, max_size=3),
    Op.NOT_IN: st.lists(_SCALARS, max_size=3),
    Op.BETWEEN: st.lists(st.one_of(st.integers(-3, 3), st.floats(-3, 3)), min_size=2, max_size=2),
}
_BOUNDS = st.one_of(st.integers(-2, 2), st.sampled_from([0.5, 1.0]), st.sampled_from(["$policy.thresholds.limit",
                                                                          "$policy.thresholds.absent"]))
_LEAVES = st.builds(lambda fact, op, data: Leaf(fact=fact, op=op, value=data.draw(_VALUES.get(op, _BOUNDS))),
                    st.sampled_from(_PATHS), st.sampled_from(list(Op)), st.data())
_CONDITIONS = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.builds(lambda cs: All(all=cs), st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda cs: AnyOf(any=cs), st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda c: Not.model_validate({"not": c}), inner)), max_leaves=6)
_NESTED = {"scores": "p_late", "shipment": "declared_value"}
_FACTS = st.builds(
    lambda x, flag, nested, abc, limit: {"x": x, "flag": flag, **nested, "a": abc,
                                         "policy": {"thresholds": {"limit": limit}}},
    _SCALARS, _SCALARS,
    st.fixed_dictionaries({top: st.one_of(st.builds(lambda v, key=key: {key: v}, _SCALARS), _SCALARS)
                           for top, key in _NESTED.items()}),
    st.one_of(_SCALARS, st.builds(lambda v: {"b": {"c": v}}, _SCALARS), st.builds(lambda v: {"b": v}, _SCALARS)),
    st.one_of(st.integers(-2, 2), st.sampled_from([0.5, 1.0]), st.none(), st.just("ten")))


def _interpreted(condition, facts):
    """The engine's former tree-walking interpreter, kept as the oracle for the compiled form."""
    if isinstance(condition, All):
        return all(_interpreted(c, facts) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(_interpreted(c, facts) for c in condition.any)
    if isinstance(condition, Not):
        return not _interpreted(condition.not_, facts)
    value = lookup(facts, condition.fact)
    if condition.op == Op.EXISTS:
        return value is not _MISSING
    if condition.op == Op.MISSING:
        return value is _MISSING
    if value is _MISSING:
        return False
    if condition.op in (Op.IS_TRUE, Op.IS_FALSE):
        if not isinstance(value, bool):
            raise FactError(f"{condition.fact} is {value!r}, not true/false")
        return value is (condition.op == Op.IS_TRUE)
    if condition.op == Op.EQ:
        return value == condition.value
    if condition.op == Op.NE:
        return value != condition.value
    if condition.op == Op.IN:
        return value in condition.value
    if condition.op == Op.NOT_IN:
        return value not in condition.value
    number = _number(value, condition.fact)
    if condition.op == Op.BETWEEN:
        return float(condition.value[0]) <= number <= float(condition.value[1])
    bound = (_number(lookup(facts, condition.value[1:]), condition.value) if isinstance(condition.value, str)
             else float(condition.value))
    return {Op.GT: number > bound, Op.GTE: number >= bound, Op.LT: number < bound,
            Op.LTE: number <= bound}[condition.op]


def _outcome(run):
    try:
        return ("value", run())
    except FactError as exc:
        return ("error", str(exc))


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_LEAVES, _CONDITIONS), _FACTS)  # half of them single leaves, every flip shows
def test_a_compiled_condition_answers_as_the_interpreter(condition, facts):
    assert _outcome(lambda: compile_condition(condition)(facts)) == _outcome(lambda: _interpreted(condition, facts))


@pytest.mark.parametrize("leaf, facts, expected", [
    (Leaf(fact="x", op=Op.GT, value=1), {"x": 2}, True),
    (Leaf(fact="x", op=Op.GT, value=1), {"x": 1}, False),
    (Leaf(fact="x", op=Op.GTE, value=1), {"x": 1.0}, True),
    (Leaf(fact="x", op=Op.GT, value=1), {"x": "a"}, "x is 'a', not a number"),
    (Leaf(fact="x", op=Op.GTE, value="$policy.thresholds.limit"), {"x": 2, "policy": {"thresholds": {"limit": 2}}},
     True),
    (Leaf(fact="x", op=Op.LT, value="$policy.thresholds.limit"), {"x": 2, "policy": {"thresholds": {}}},
     None),  # the missing bound's message names the sentinel object: only its start is compared
    (Leaf(fact="x", op=Op.BETWEEN, value=[1, 3]), {"x": 3}, True),
    (Leaf(fact="a.b", op=Op.IS_TRUE), {"a": {"b": 1}}, "a.b is 1, not true/false"),
    (Leaf(fact="a.b", op=Op.EXISTS), {"a": {"b": None}}, False),
    (Leaf(fact="a.b", op=Op.MISSING), {"a": 7}, True),
    (Leaf(fact="x", op=Op.NOT_IN, value=["AA"]), {"x": "DL"}, True),
    (Leaf(fact="x", op=Op.NE, value="AA"), {}, False),
])
def test_each_operator_compiled_hits_misses_and_errs_as_interpreted(leaf, facts, expected):
    compiled, interpreted = _outcome(lambda: compile_condition(leaf)(facts)), _outcome(lambda: _interpreted(leaf, facts))
    assert compiled == interpreted
    if expected is None:
        assert compiled[0] == "error" and compiled[1].startswith("$policy.thresholds.limit is <object")
    else:
        assert compiled[1] == expected
