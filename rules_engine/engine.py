"""The pure decision engine: ``decide(policy, facts) -> Decision``. No I/O, no clock, no eval."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules_engine.schema import (
    Action,
    All,
    AnyOf,
    Condition,
    HitPolicy,
    Leaf,
    Not,
    Op,
    Outcome,
    Policy,
)

_MISSING = object()


class FactError(Exception):
    """A fact has the wrong type for its comparison (recorded in the trace, never raised to callers)."""


@dataclass(frozen=True)
class RuleTrace:
    rule_id: str
    result: str  # "hit" | "no_hit" | "error"
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    policy_id: str
    policy_version: str
    outcome: str
    actions: list[dict[str, Any]]
    rules_fired: list[str]
    trace: list[RuleTrace] = field(default_factory=list)
    degraded: bool = False


def lookup(facts: dict[str, Any], path: str) -> Any:
    """Value at a dotted path, or the sentinel ``_MISSING``; ``None`` counts as missing."""
    return _walk(facts, path.split("."))


def _walk(facts: dict[str, Any], parts: tuple[str, ...] | list[str]) -> Any:
    value: Any = facts
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return _MISSING if value is None else value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FactError(f"{path} is {value!r}, not a number")
    return float(value)


_COMPARE = {Op.GT: operator.gt, Op.GTE: operator.ge, Op.LT: operator.lt, Op.LTE: operator.le}


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """:func:`lookup` for one path, split once."""
    parts = tuple(path.split("."))
    return lambda facts: _walk(facts, parts)


def _compile_leaf(leaf: Leaf) -> Callable[[dict[str, Any]], bool]:  # noqa: C901 - one closure per operator
    get, op, fact, expected = _getter(leaf.fact), leaf.op, leaf.fact, leaf.value
    if op == Op.EXISTS:
        return lambda facts: get(facts) is not _MISSING
    if op == Op.MISSING:
        return lambda facts: get(facts) is _MISSING
    if op in (Op.IS_TRUE, Op.IS_FALSE):
        wanted = op == Op.IS_TRUE

        def truth(facts: dict[str, Any]) -> bool:
            value = get(facts)
            if value is _MISSING:
                return False
            if not isinstance(value, bool):
                raise FactError(f"{fact} is {value!r}, not true/false")
            return value is wanted
        return truth
    if op in (Op.EQ, Op.NE, Op.IN, Op.NOT_IN):
        test = {Op.EQ: operator.eq, Op.NE: operator.ne, Op.IN: lambda v, e: v in e,
                Op.NOT_IN: lambda v, e: v not in e}[op]

        def compare(facts: dict[str, Any]) -> bool:
            value = get(facts)
            return False if value is _MISSING else test(value, expected)
        return compare
    if op == Op.BETWEEN:
        def between(facts: dict[str, Any]) -> bool:
            value = get(facts)
            if value is _MISSING:
                return False
            number = _number(value, fact)
            return float(expected[0]) <= number <= float(expected[1])
        return between
    test = _COMPARE[op]
    bound_of = _getter(expected[1:]) if isinstance(expected, str) else None
    constant = None if bound_of is not None else float(expected)

    def ordered(facts: dict[str, Any]) -> bool:
        value = get(facts)
        if value is _MISSING:
            return False
        number = _number(value, fact)
        bound = constant if bound_of is None else _number(bound_of(facts), expected)
        return test(number, bound)
    return ordered


def compile_condition(condition: Condition) -> Callable[[dict[str, Any]], bool]:
    """The condition as one function of the facts, with paths split and operators chosen once. A
    comparison with a missing fact never hits; a fact of the wrong type raises ``FactError``.
    ``tests/rules_engine`` holds it equal to a plain tree-walking interpreter kept there as the oracle."""
    if isinstance(condition, Leaf):
        return _compile_leaf(condition)
    if isinstance(condition, All):
        parts = [compile_condition(c) for c in condition.all]
        return lambda facts: all(part(facts) for part in parts)
    if isinstance(condition, AnyOf):
        parts = [compile_condition(c) for c in condition.any]
        return lambda facts: any(part(facts) for part in parts)
    if isinstance(condition, Not):
        inner = compile_condition(condition.not_)
        return lambda facts: not inner(facts)
    raise TypeError(type(condition))


def evaluate(condition: Condition, facts: dict[str, Any]) -> bool:
    """Evaluate a condition tree once; raises FactError on a type mismatch."""
    return compile_condition(condition)(facts)


def render(action: Action, facts: dict[str, Any]) -> dict[str, Any]:
    """Action as a plain dict, with ``"$path"`` parameters replaced by fact values."""
    kind, params = _template(action)
    out = {}
    for key, value, parts in params:
        if parts is not None:
            value = _walk(facts, parts)
            value = None if value is _MISSING else value
        out[key] = value
    return {"type": kind, "params": out}


_TEMPLATES: dict = {}


def _template(action: Action) -> tuple[str, tuple]:
    """The action's type and, per parameter, its constant or its fact path split once."""
    return kept(_TEMPLATES, action, lambda: (action.type.value, tuple(
        (key, value, tuple(value[1:].split(".")) if isinstance(value, str) and value.startswith("$") else None)
        for key, value in action.params.items())), bound=4096)


def _with_thresholds(policy: Policy, facts: dict[str, Any]) -> dict[str, Any]:
    return {**facts, "policy": {"thresholds": dict(policy.thresholds)}}


@dataclass(frozen=True)
class _Step:
    rule_id: str
    test: Callable[[dict[str, Any]], bool]
    level: Outcome
    actions: tuple[Action, ...]
    hit: RuleTrace
    no_hit: RuleTrace
    skipped: RuleTrace


def kept(cache: dict, owner: object, build: Callable[[], Any], *, bound: int) -> Any:
    """``build()``, remembered in ``cache`` for this very ``owner`` object (policies and their parts are
    immutable, and an id can be reused once its object is gone: the owner is kept and checked). The cache
    is emptied when it reaches ``bound`` entries."""
    found = cache.get(id(owner))
    if found is not None and found[0] is owner:
        return found[1]
    value = build()
    if len(cache) >= bound:
        cache.clear()
    cache[id(owner)] = (owner, value)
    return value


_PLANS: dict = {}


def _plan(policy: Policy) -> list[_Step]:
    """The policy's rules compiled once."""
    return kept(_PLANS, policy, lambda: [
        _Step(rule.id, compile_condition(rule.when), Outcome[rule.outcome.upper()], tuple(rule.actions),
              RuleTrace(rule.id, "hit"), RuleTrace(rule.id, "no_hit"),
              RuleTrace(rule.id, "no_hit", "not evaluated: an earlier rule decided"))
        for rule in policy.rules], bound=64)


def decide(policy: Policy, facts: dict[str, Any]) -> Decision:
    """Apply the policy's rules to the facts; every rule's evaluation is traced."""
    facts = _with_thresholds(policy, facts)
    first = policy.hit_policy == HitPolicy.FIRST
    results: list[bool | str | None] = []
    for step in _plan(policy):
        if first and True in results:
            results.append(None)  # an earlier rule decided
            continue
        try:
            results.append(bool(step.test(facts)))
        except FactError as exc:
            results.append(str(exc))
    return conclude(policy, shape_of(policy, tuple(results)), facts)


@dataclass(frozen=True)
class Shape:
    """What a decision is, given which rules hit, missed, erred or were skipped — all but the rendering
    of its actions' parameters from the facts. Many decisions share one (``rules_engine.batch``)."""

    outcome: Outcome
    actions: tuple[Action, ...]
    rules_fired: tuple[str, ...]
    trace: tuple[RuleTrace, ...]
    errors: bool


_SHAPES: dict[tuple[int, tuple], tuple[Policy, Shape]] = {}


def shape_of(policy: Policy, results: tuple[bool | str | None, ...]) -> Shape:
    """The decision's shape for each rule's result (True hit, False no hit, a message for an error, None
    for skipped); shapes without errors are remembered per policy (a batch has few distinct ones)."""
    key = (id(policy), results)
    found = _SHAPES.get(key)
    if found is not None and found[0] is policy:
        return found[1]
    trace, fired, outcome, actions, errors = [], [], None, [], False
    for step, result in zip(_plan(policy), results, strict=True):
        if result is None:
            trace.append(step.skipped)
        elif isinstance(result, str):
            trace.append(RuleTrace(step.rule_id, "error", result))
            errors = True
        elif result:
            trace.append(step.hit)
            fired.append(step.rule_id)
            outcome = step.level if outcome is None else max(outcome, step.level)
            actions.extend(step.actions)
        else:
            trace.append(step.no_hit)
    if outcome is None:
        outcome, actions = Outcome[policy.default.outcome.upper()], list(policy.default.actions)
    if outcome != Outcome.APPROVE:
        # An approval collected from one rule cannot stand beside another rule's review or hold.
        actions = [a for a in actions if a.type.value != "approve_invoice"]
    shape = Shape(outcome, tuple(actions), tuple(fired), tuple(trace), errors)
    if not errors:
        if len(_SHAPES) >= 4096:
            _SHAPES.clear()
        _SHAPES[key] = (policy, shape)
    return shape


def conclude(policy: Policy, shape: Shape, facts: dict[str, Any]) -> Decision:
    """The decision of ``shape`` for these facts (``facts`` with the policy's thresholds in them)."""
    if shape.errors and shape.outcome == Outcome.APPROVE:
        # A rule that could not be evaluated might have blocked the approval: never approve blind.
        return degraded_decision(policy, facts, reason="rule_error", trace=list(shape.trace))
    actions = [render(a, facts) for a in shape.actions]
    return Decision(policy.id, policy.version, shape.outcome.name.lower(), _dedupe(actions),
                    list(shape.rules_fired), list(shape.trace), degraded=shape.errors)


def degraded_decision(policy: Policy, facts: dict[str, Any], *, reason: str,
                      trace: list[RuleTrace] | None = None) -> Decision:
    """The policy's conservative decision, used when a model, features or a rule are unavailable."""
    facts = _with_thresholds(policy, {**facts, "degraded_reason": reason})
    actions = [render(a, facts) for a in policy.degraded.actions]
    return Decision(policy.id, policy.version, policy.degraded.outcome, actions, [], trace or [], degraded=True)


def _dedupe(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len({action["type"] for action in actions}) == len(actions):
        return actions  # no two of a type: nothing can repeat
    seen, out = set(), []
    for action in actions:
        key = repr(action)
        if key not in seen:
            seen.add(key)
            out.append(action)
    return out
