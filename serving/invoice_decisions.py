"""Invoice decisions: the same thin path as shipments, with the invoice policy and scorer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from features.errors import FeaturesUnavailable, ModelUnavailable
from rules_engine.engine import decide, degraded_decision
from serving.decisions import DecisionService, decision_fields, idempotency_key, request_hash
from serving.invoice_scoring import InvoiceScorer, InvoiceScores
from serving.schemas import InvoiceDecision, InvoiceIn


def _as_record(invoice: InvoiceIn) -> dict:
    body = invoice.model_dump(mode="json")
    body["invoice_date"] = invoice.invoice_date.isoformat()
    body["received_at"] = (invoice.received_at or datetime.now(UTC)).isoformat()
    body["lines"] = [{**line, "code": line["code"].lower()} for line in body["lines"]]
    return body


def _facts(invoice: dict, scored: InvoiceScores | None) -> dict:
    scores = (scored.scores or {}) if scored else {}
    return {"invoice": invoice,
            "scores": {"p_clean": scores.get("p_clean"), "predicted_class": scores.get("predicted_class"),
                       "p_predicted": scores.get("p_predicted"), "amount_at_risk": scores.get("amount_at_risk")},
            "context": {"shipment_known": bool(scored and scored.shipment_known),
                        "contract_known": bool(scored and scored.contract_known)}}


def _response(decision, invoice: dict, scored: InvoiceScores | None, scorer, reason: str | None) -> dict:
    scores = (scored.scores or {}) if scored else {}
    body = InvoiceDecision(
        **decision_fields(decision, kind="invoice", subject_id=invoice["invoice_id"],
                          reasons=scored.reasons if scored else [], scorer=scorer, degraded_reason=reason,
                          features_missing=not (scored and scored.shipment_known)),
        scores={"probabilities": {k[2:]: v for k, v in scores.items() if k.startswith("p_") and k != "p_predicted"}
                or None, "predicted_class": scores.get("predicted_class"), "p_clean": scores.get("p_clean"),
                "amount_at_risk": scores.get("amount_at_risk")},
        shipment_known=bool(scored and scored.shipment_known), contract_known=bool(scored and scored.contract_known),
    ).model_dump(mode="json")
    body["_features"] = scored.features if scored else {}
    return body


def decide_invoices(service: DecisionService, scorer_factory: Callable[[], InvoiceScorer],
                    requests: list[InvoiceIn], *, header_key: str | None, caller: str | None) -> list[dict]:
    """Decide invoices one by one (each may be a duplicate of the one before it in the batch)."""
    policy = service.policies.get("invoice")
    out = []
    for i, request in enumerate(requests):
        digest = request_hash(request.model_dump(mode="json"))
        key = idempotency_key("invoice", request.invoice_id, digest,
                              f"{header_key}:{i}" if header_key and len(requests) > 1 else header_key)
        existing = service.existing(key, digest)
        if existing is not None:
            out.append(existing)
            continue
        invoice = _as_record(request)
        scorer, scored, reason = None, None, None
        try:
            scorer = scorer_factory()
            scored = scorer.score(invoice)
            decision = decide(policy, _facts(invoice, scored))
        except (ModelUnavailable, FeaturesUnavailable) as exc:
            reason = "model_unavailable" if isinstance(exc, ModelUnavailable) else "features_unavailable"
            decision = degraded_decision(policy, _facts(invoice, None), reason=reason)
        response = _response(decision, invoice, scored, scorer, reason)
        recorded = service._record(kind="invoice", subject_id=request.invoice_id, key=key,  # noqa: SLF001
                                   digest=digest, request=request.model_dump(mode="json"), response=response,
                                   caller=caller, lane=scored.lane if scored else None)
        if scorer is not None:
            scorer.remember(invoice, scored)
        out.append(recorded)
    return out
