"""Review cases without models: decisions recorded through the real recording path with made-up scores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from serving.auth import Caller, Role
from serving.db import review_cases
from serving.decisions import DecisionService

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A settable clock for leases and SLAs."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


def person(key_id: str, role: Role = Role.REVIEWER, name: str | None = None) -> Caller:
    return Caller(key_id=key_id, role=role, name=name or key_id.removeprefix("k-").title())


def invoice_case(service: DecisionService, invoice_id: str, *, total: float = 800.0, carrier: str = "AA",
                 lane: str | None = "JFK-LAX", predicted: str = "rate_overcharge", p: float = 0.6,
                 amount_at_risk: float | None = 120.0, label: str = "normal", sla_hours: float = 48,
                 held: bool = False, created_at: datetime = T0) -> str:
    """Record an invoice decision that enqueues a review; returns the case id."""
    actions = [{"type": "hold_invoice", "params": {"reason": "unverifiable"}}] if held else []
    actions.append({"type": "enqueue_review", "params": {
        "queue": "freight-audit", "priority": label, "sla_hours": sla_hours, "reason": predicted,
        "amount_at_risk": amount_at_risk}})
    response = {
        "decision_id": str(uuid.uuid4()), "kind": "invoice", "subject_id": invoice_id,
        "outcome": "hold" if held else "review", "actions": actions,
        "reasons": [{"feature": "linehaul_delta", "value": 95.0, "contribution": 1.2}],
        "rules_fired": ["review-uncertain"], "trace": [], "model_name": "invoice_discrepancy", "model_version": "3",
        "policy_id": "invoice", "policy_version": "1.0.0", "feature_service": "invoice_audit_v1", "degraded": False,
        "degraded_reason": None, "features_missing": False, "created_at": created_at.isoformat(),
        "scores": {"probabilities": {predicted: p, "clean": round(1 - p, 6)}, "predicted_class": predicted,
                   "p_clean": round(1 - p, 6), "amount_at_risk": amount_at_risk},
        "shipment_known": True, "contract_known": True,
        "_features": {"total_billed": total, "total_expected": total - (amount_at_risk or 0.0)},
    }
    request = {"invoice_id": invoice_id, "carrier": carrier, "shipment_id": f"S-{invoice_id}",
               "invoice_date": "2013-11-02", "currency": "USD", "lines": [{"code": "LINEHAUL", "amount": total}],
               "total": total}
    service._record(kind="invoice", subject_id=invoice_id, key=f"invoice:{invoice_id}",  # noqa: SLF001
                    digest="0" * 64, request=request, response=response, caller="orch", lane=lane)
    with service.engine.connect() as conn:
        return conn.execute(select(review_cases.c.case_id).where(
            review_cases.c.decision_id == response["decision_id"])).scalar_one()
