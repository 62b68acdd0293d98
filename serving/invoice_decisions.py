"""Invoice decisions: the same thin path as shipments, with the invoice policy and scorer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from features.errors import FeaturesUnavailable, ModelUnavailable
from rules_engine.engine import decide, degraded_decision
from serving.decisions import DecisionService, decision_fields, idempotency_key, request_hash
from serving.invoice_scoring import InvoiceScorer, InvoiceScores
from serving.schemas import InvoiceDecision, InvoiceIn


def _as_record(invoice: InvoiceIn, received: datetime) -> dict:
    """The invoice as the scorer takes it; ``received`` stands in for a ``received_at`` not given."""
    body = invoice.model_dump(mode="json")
    body["invoice_date"] = invoice.invoice_date.isoformat()
    body["received_at"] = (invoice.received_at or received).isoformat()
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
    """Decide invoices: the fresh ones scored together (each sees those before it in receipt order, so
    an invoice may be found a duplicate of one before it in the same batch), recorded in one transaction
    with the invoices they add to the look-back history.

    Idempotency is settled first, for the whole batch: a key used before with another payload is a
    Conflict before anything is scored or written; an invoice given twice with one payload (one key) is
    decided once. Invoices without ``received_at`` are received now, in the batch's order (a microsecond
    apart)."""
    policy = service.policies.get("invoice")
    payloads = [request.model_dump(mode="json") for request in requests]
    digests = [request_hash(payload) for payload in payloads]
    keys = [idempotency_key("invoice", request.invoice_id, digest,
                            f"{header_key}:{i}" if header_key and len(requests) > 1 else header_key)
            for i, (request, digest) in enumerate(zip(requests, digests, strict=True))]
    first: dict[str, int] = {}
    for i, key in enumerate(keys):  # in a batch, a key holds the digest unless a header key was given (then key:i)
        first.setdefault(key, i)
    done = service.existing_many(keys, digests)
    todo = [i for i, found in enumerate(done) if found is None and first[keys[i]] == i]
    now = datetime.now(UTC)
    invoices = {i: _as_record(requests[i], now + timedelta(microseconds=n)) for n, i in enumerate(todo)}
    # one scoring pass per round, an invoice id at most once in a round: an invoice resent with another
    # payload in the same batch is scored after the first form is recorded, as if sent after it
    rounds: list[list[int]] = []
    times: dict[str, int] = {}
    for i in todo:
        n = times[requests[i].invoice_id] = times.get(requests[i].invoice_id, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(i)
    for chosen in rounds:
        fresh = [invoices[i] for i in chosen]
        for i, recorded in zip(chosen, _decide_fresh(service, scorer_factory, policy, fresh, items=[
                {"subject_id": requests[i].invoice_id, "key": keys[i], "digest": digests[i], "request": payloads[i]}
                for i in chosen], caller=caller), strict=True):
            done[i] = recorded
    for i, key in enumerate(keys):
        if done[i] is None:
            done[i] = done[first[key]]
    return done


def _decide_fresh(service: DecisionService, scorer_factory: Callable[[], InvoiceScorer], policy,
                  invoices: list[dict], *, items: list[dict], caller: str | None) -> list[dict]:
    """Score invoices of distinct ids together, decide each, record them all in one transaction."""
    scorer, reason = None, None
    scored: list[InvoiceScores | None] = [None] * len(invoices)
    try:
        scorer = scorer_factory()
        scored = list(scorer.score_many(invoices))
    except (ModelUnavailable, FeaturesUnavailable) as exc:
        reason = "model_unavailable" if isinstance(exc, ModelUnavailable) else "features_unavailable"
    for item, invoice, score in zip(items, invoices, scored, strict=True):
        if reason is None:
            decision = decide(policy, _facts(invoice, score))
        else:
            decision = degraded_decision(policy, _facts(invoice, None), reason=reason)
        item |= {"response": _response(decision, invoice, score, scorer, reason),
                 "lane": score.lane if score else None, "invoice": invoice, "scored": score}

    def remember(conn, *, items: list[dict]) -> None:
        if scorer is not None:
            scorer.remember_many(conn, [item["invoice"] for item in items], [item["scored"] for item in items])

    return [recorded for recorded, _ in service._record_many("invoice", items, caller=caller,  # noqa: SLF001
                                                             also=remember)]
