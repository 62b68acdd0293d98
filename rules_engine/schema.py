"""The policy document format: rules built from a fixed set of operators, with embedded examples.

A policy is data, never code: conditions compare a fact (a dotted path into the facts) with a literal
using one of :class:`Op`; nothing is evaluated. Every policy carries examples that the generic policy test
runs, so a document that contradicts its own examples can never be approved.
"""

from __future__ import annotations

from datetime import date
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Op(StrEnum):
    """The only comparisons a rule may make."""

    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    IN = "in"
    NOT_IN = "not_in"
    BETWEEN = "between"
    EXISTS = "exists"
    MISSING = "missing"
    IS_TRUE = "is_true"
    IS_FALSE = "is_false"


class Outcome(IntEnum):
    """Outcomes in precedence order: when several rules hit, the highest wins."""

    APPROVE = 0
    REVIEW = 1
    HOLD = 2
    BLOCK = 3


class ActionType(StrEnum):
    APPROVE_INVOICE = "approve_invoice"
    HOLD_INVOICE = "hold_invoice"
    DISPUTE_WITH_CARRIER = "dispute_with_carrier"
    ENQUEUE_REVIEW = "enqueue_review"
    NOTIFY_CUSTOMER = "notify_customer"
    SUGGEST_REROUTE = "suggest_reroute"


class HitPolicy(StrEnum):
    FIRST = "first"      # the first rule (in document order) that hits decides
    COLLECT = "collect"  # every rule that hits contributes actions; the highest outcome wins


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Leaf(BaseModel):
    """``fact <op> value``; ``fact`` is a dotted path such as ``scores.p_late``."""

    model_config = _FROZEN
    fact: str = Field(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*$")
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Leaf:
        needs_none = {Op.EXISTS, Op.MISSING, Op.IS_TRUE, Op.IS_FALSE}
        if self.op in needs_none and self.value is not None:
            raise ValueError(f"operator '{self.op}' takes no value")
        if self.op in {Op.IN, Op.NOT_IN} and not isinstance(self.value, list):
            raise ValueError(f"operator '{self.op}' needs a list value")
        if self.op == Op.BETWEEN and not (isinstance(self.value, list) and len(self.value) == 2):
            raise ValueError("operator 'between' needs [low, high]")
        reference = isinstance(self.value, str) and self.value.startswith("$policy.thresholds.")
        if self.op not in needs_none | {Op.IN, Op.NOT_IN, Op.BETWEEN, Op.EQ, Op.NE} and not (
                isinstance(self.value, (int, float)) or reference):
            raise ValueError(f"operator '{self.op}' needs a number or $policy.thresholds.NAME")
        return self


class All(BaseModel):
    model_config = _FROZEN
    all: list[Condition] = Field(min_length=1)


class AnyOf(BaseModel):
    model_config = _FROZEN
    any: list[Condition] = Field(min_length=1)


class Not(BaseModel):
    model_config = _FROZEN
    not_: Condition = Field(alias="not")


Condition = Annotated[Union[Leaf, All, AnyOf, Not], Field(union_mode="left_to_right")]


class Action(BaseModel):
    """An action with parameters; a string parameter ``"$path"`` is replaced by that fact's value."""

    model_config = _FROZEN
    type: ActionType
    params: dict[str, Any] = Field(default_factory=dict)


class Rule(BaseModel):
    model_config = _FROZEN
    id: str = Field(pattern=r"^[a-z0-9_\-]+$")
    description: str = ""
    when: Condition
    outcome: Literal["approve", "review", "hold", "block"]
    actions: list[Action] = Field(default_factory=list)


class Expected(BaseModel):
    model_config = _FROZEN
    outcome: Literal["approve", "review", "hold", "block"]
    actions: list[ActionType] | None = None
    rules_fired: list[str] | None = None


class Example(BaseModel):
    model_config = _FROZEN
    name: str
    facts: dict[str, Any]
    expected: Expected


class Fallback(BaseModel):
    """What to do when no rule hits, and the conservative decision when inputs are unavailable."""

    model_config = _FROZEN
    outcome: Literal["approve", "review", "hold", "block"]
    actions: list[Action] = Field(default_factory=list)


class Policy(BaseModel):
    """A versioned policy document."""

    model_config = _FROZEN
    id: str = Field(pattern=r"^[a-z0-9_\-]+$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    owner: str = Field(min_length=1)
    effective_from: date
    description: str = ""
    hit_policy: HitPolicy
    thresholds: dict[str, float] = Field(default_factory=dict)
    rules: list[Rule] = Field(min_length=1)
    default: Fallback
    degraded: Fallback
    examples: list[Example] = Field(min_length=1)

    @model_validator(mode="after")
    def _checks(self) -> Policy:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        for name in _threshold_references(self.rules):
            if name not in self.thresholds:
                raise ValueError(f"rules refer to $policy.thresholds.{name}, which is not defined")
        if self.degraded.outcome == "approve" or any(
                a.type == ActionType.APPROVE_INVOICE for a in self.degraded.actions):
            raise ValueError("the degraded decision may never approve")
        return self


def _leaves(condition) -> list[Leaf]:
    if isinstance(condition, Leaf):
        return [condition]
    children = getattr(condition, "all", None) or getattr(condition, "any", None) or [condition.not_]
    return [leaf for child in children for leaf in _leaves(child)]


def _threshold_references(rules: list[Rule]) -> set[str]:
    prefix = "$policy.thresholds."
    return {leaf.value[len(prefix):] for rule in rules for leaf in _leaves(rule.when)
            if isinstance(leaf.value, str) and leaf.value.startswith(prefix)}


All.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()
Rule.model_rebuild()
