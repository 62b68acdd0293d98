"""What a review case carries about its decision, and its priority (pure; used at case creation and by the
0002 migration's backfill).

Priority (docs/review-workflow.md): the dollars at risk weighted by the model's uncertainty and by the
policy's priority label::

    priority = exposure × (0.5 + uncertainty) × label_weight

* ``exposure`` — invoices: the model's amount at risk; without a model score, the invoice total (nothing
  was verified, so all of it is at risk). Shipments: declared value × p_late (declared value alone
  without a score).
* ``uncertainty`` = 1 − confidence, where confidence is the probability of the predicted class (invoices)
  or max(p_late, 1 − p_late) (shipments); 1 without a score. A confident $1,000 counts about half as much
  as a coin-flip $1,000.
* ``label_weight`` — the policy's ``priority`` on ``enqueue_review``: high 2, normal 1, low 0.5.
"""

from __future__ import annotations

import math

LABEL_WEIGHT = {"high": 2.0, "normal": 1.0, "low": 0.5}


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _prediction(kind: str, scores: dict) -> tuple[str | None, float | None]:
    if kind == "invoice":
        predicted = scores.get("predicted_class")
        confidence = _number((scores.get("probabilities") or {}).get(predicted)) if predicted else None
        return predicted, confidence
    p = _number(scores.get("p_late"))
    if p is None:
        return None, None
    return ("late" if p >= 0.5 else "on_time"), max(p, 1.0 - p)


def _exposure(kind: str, *, params: dict, scores: dict, subject_amount: float | None) -> float:
    if kind == "invoice":
        at_risk = _number(params.get("amount_at_risk"))
        at_risk = at_risk if at_risk is not None else _number(scores.get("amount_at_risk"))
        return at_risk if at_risk is not None else (subject_amount or 0.0)
    p = _number(scores.get("p_late"))
    return (subject_amount or 0.0) * (p if p is not None else 1.0)


def priority(exposure: float, confidence: float | None, label: str) -> float:
    uncertainty = 1.0 - confidence if confidence is not None else 1.0
    return round(exposure * (0.5 + uncertainty) * LABEL_WEIGHT.get(label, 1.0), 4)


def case_facts(kind: str, *, request: dict, response: dict, params: dict, lane: str | None = None,
               high_value: float | None = None) -> dict:
    """The denormalized columns of a new case (carrier, lane, prediction, amounts, priority, four-eyes)."""
    scores = response.get("scores") or {}
    if kind == "invoice":
        subject_amount = _number(request.get("total"))
    else:
        subject_amount = _number(request.get("declared_value"))
        if request.get("origin") and request.get("destination"):
            lane = f"{request['origin']}-{request['destination']}"
    predicted, confidence = _prediction(kind, scores)
    label = str(params.get("priority", "normal"))
    exposure = round(_exposure(kind, params=params, scores=scores, subject_amount=subject_amount), 2)
    return {"carrier": (request.get("carrier") or None), "lane": lane[:24] if lane else None,
            "predicted_class": predicted, "confidence": confidence, "subject_amount": subject_amount,
            "amount_at_risk": exposure, "priority": priority(exposure, confidence, label), "priority_label": label,
            "needs_second_approval": needs_second_approval(subject_amount, high_value)}


def needs_second_approval(subject_amount: float | None, high_value: float | None) -> bool:
    """Four-eyes: the amount the verdict moves (invoice total / declared value) above the policy's threshold."""
    return subject_amount is not None and high_value is not None and subject_amount > high_value


def created_event(case: dict, *, caller: str | None) -> dict:
    """The first history row of a case (seq 1), written in the decision's transaction."""
    return {"case_id": case["case_id"], "seq": 1, "actor": "tollgate", "actor_key": caller, "role": "system",
            "action": "created", "from_status": None, "to_status": "open",
            "payload": {"decision_id": case["decision_id"], "queue": case["queue"], "reason": case["reason"],
                        "priority": case["priority"], "amount_at_risk": case["amount_at_risk"],
                        "needs_second_approval": case["needs_second_approval"]},
            "at": case["created_at"]}
