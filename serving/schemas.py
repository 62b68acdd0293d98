"""HTTP contract: request and response families (``ShipmentIn`` / ``ShipmentDecision`` …)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

CODE = r"^[A-Z0-9]{1,8}$"


def _plausible(value: datetime) -> datetime:
    # pandas timestamps (and any real shipment) live well inside these years; outside is a typo.
    if not 1970 <= value.year <= 2200:
        raise ValueError("year must be between 1970 and 2200")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_plausible)]
Day = Annotated[datetime, AfterValidator(_plausible)]
_IN = ConfigDict(frozen=True, extra="forbid")


class ShipmentIn(BaseModel):
    """A shipment at dispatch."""

    model_config = _IN
    shipment_id: str = Field(min_length=1, max_length=64)
    carrier: str = Field(pattern=CODE)
    origin: str = Field(pattern=CODE)
    destination: str = Field(pattern=CODE)
    scheduled_departure: Instant
    scheduled_arrival: Instant
    distance_miles: float | None = Field(default=None, ge=0, le=20000)
    equipment_id: str | None = Field(default=None, max_length=32)
    customer_id: str | None = Field(default=None, max_length=64)
    declared_value: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _arrival_after_departure(self) -> ShipmentIn:
        if self.scheduled_arrival <= self.scheduled_departure:
            raise ValueError("scheduled_arrival must be after scheduled_departure")
        return self


class ShipmentBatchIn(BaseModel):
    model_config = _IN
    shipments: list[ShipmentIn] = Field(min_length=1, max_length=1000)


class Reason(BaseModel):
    feature: str
    value: Any = None
    contribution: float


class ActionOut(BaseModel):
    type: str
    params: dict[str, Any] = Field(default_factory=dict)


class RuleTraceOut(BaseModel):
    rule_id: str
    result: str
    detail: str = ""


class DecisionOut(BaseModel):
    """What every decision carries, whatever its kind."""

    decision_id: str
    kind: str
    subject_id: str
    outcome: str
    actions: list[ActionOut]
    reasons: list[Reason]
    rules_fired: list[str]
    trace: list[RuleTraceOut]
    model_name: str | None
    model_version: str | None
    policy_id: str
    policy_version: str
    feature_service: str | None
    degraded: bool
    degraded_reason: str | None = None
    features_missing: bool = False
    created_at: datetime


class DelayScoresOut(BaseModel):
    p_late: float | None
    risk_band: str | None


class ShipmentDecision(DecisionOut):
    scores: DelayScoresOut


class ShipmentBatchDecision(BaseModel):
    decisions: list[ShipmentDecision]


class EventType(StrEnum):
    DEPARTED = "departed"
    ARRIVED = "arrived"
    DELIVERED = "delivered"
    PROOF_OF_DELIVERY = "proof_of_delivery"
    SERVICE_EVENT = "service_event"


class EventIn(BaseModel):
    """A milestone pushed by an orchestrator."""

    model_config = _IN
    event_id: str = Field(min_length=1, max_length=64)
    type: EventType
    shipment_id: str = Field(min_length=1, max_length=64)
    occurred_at: Instant
    carrier: str | None = Field(default=None, pattern=CODE)
    origin: str | None = Field(default=None, pattern=CODE)
    destination: str | None = Field(default=None, pattern=CODE)
    scheduled_at: Instant | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class EventAccepted(BaseModel):
    event_id: str
    accepted: bool
    updated_views: list[str]


class InvoiceLineIn(BaseModel):
    model_config = _IN
    code: str = Field(min_length=1, max_length=32)
    amount: float = Field(ge=0, le=10_000_000)
    quantity: float | None = Field(default=None, ge=0, le=10_000_000)


class InvoiceIn(BaseModel):
    """A carrier invoice as it arrives (charge codes: docs/reference-data.md)."""

    model_config = _IN
    invoice_id: str = Field(min_length=1, max_length=64)
    carrier: str = Field(pattern=CODE)
    shipment_id: str = Field(min_length=1, max_length=64)
    invoice_date: Day
    received_at: Instant | None = None
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    lines: list[InvoiceLineIn] = Field(min_length=1, max_length=100)
    total: float = Field(ge=0, le=100_000_000)
    billed_weight_kg: float | None = Field(default=None, gt=0, le=200_000)

    @model_validator(mode="after")
    def _consistent(self) -> InvoiceIn:
        from features.reference import ChargeCode

        if self.currency != "USD":
            raise ValueError(f"currency {self.currency} is not supported (USD)")
        known = {c.value for c in ChargeCode}
        for i, line in enumerate(self.lines):
            if line.code.lower() not in known:
                raise ValueError(f"lines.{i}.code: unknown charge code {line.code!r}")
        if abs(sum(line.amount for line in self.lines) - self.total) > 0.01:
            raise ValueError(f"total {self.total} differs from the sum of the lines "
                             f"{round(sum(line.amount for line in self.lines), 2)} by more than one cent")
        return self


class InvoiceBatchIn(BaseModel):
    model_config = _IN
    invoices: list[InvoiceIn] = Field(min_length=1, max_length=1000)


class InvoiceScoresOut(BaseModel):
    probabilities: dict[str, float] | None
    predicted_class: str | None
    p_clean: float | None
    amount_at_risk: float | None


class InvoiceDecision(DecisionOut):
    scores: InvoiceScoresOut
    shipment_known: bool
    contract_known: bool


class InvoiceBatchDecision(BaseModel):
    decisions: list[InvoiceDecision]
