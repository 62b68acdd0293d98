"""Decision metrics beside BentoML's own request metrics, exported on the same /metrics endpoint.

Created on first use (BentoML's metrics API is only bound to its multiprocess registry inside a server
process), never at import.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache


@lru_cache(maxsize=1)
def _metrics():
    import bentoml

    decisions = bentoml.metrics.Counter(
        name="tollgate_decisions", documentation="Decisions made, by kind, outcome, policy and model version",
        labelnames=["kind", "outcome", "policy_version", "model_version", "degraded"])
    actions = bentoml.metrics.Counter(
        name="tollgate_actions", documentation="Actions decided, by kind and action type",
        labelnames=["kind", "action"])
    degraded = bentoml.metrics.Counter(
        name="tollgate_degraded_decisions", documentation="Decisions taken without a model or features",
        labelnames=["kind", "reason"])
    return decisions, actions, degraded


@lru_cache(maxsize=1)
def _batch_metric():
    import bentoml

    return bentoml.metrics.Counter(
        name="tollgate_shipment_batches", documentation="Shipment batch requests decided, by where: the "
        "worker itself, or its side process when another batch was in flight (serving/invoice_process.py)",
        labelnames=["decided_in"])


def observe_batch(decided_in: str) -> None:
    _batch_metric().labels(decided_in=decided_in).inc()


_LABELS = ("kind", "outcome", "policy_version", "model_version", "degraded", "degraded_reason")


def labels_of(decision: dict) -> dict:
    """What :func:`observe` reads of a decision (a process that decides for a worker sends only this)."""
    return {k: decision.get(k) for k in _LABELS} | {"actions": [{"type": a["type"]} for a in decision["actions"]]}


def observe(decisions_served: list[dict]) -> None:
    """Count returned decisions (replays of an idempotent request are counted again: they were served).

    A batch's decisions are tallied per label set first and each counter is moved once per set: in
    BentoML's multiprocess registry every ``inc`` is a locked write to a memory-mapped file, and one per
    decision and action cost ~20 ms a 1,000-row batch (measured here)."""
    decisions, actions, degraded = _metrics()
    by_decision, by_action, by_reason = Counter(), Counter(), Counter()
    for decision in decisions_served:
        kind = decision["kind"]
        by_decision[(kind, decision["outcome"], decision["policy_version"], str(decision["model_version"]),
                     str(decision["degraded"]).lower())] += 1
        for action in decision["actions"]:
            by_action[(kind, action["type"])] += 1
        if decision["degraded"]:
            by_reason[(kind, str(decision.get("degraded_reason")))] += 1
    for (kind, outcome, policy_version, model_version, was_degraded), count in by_decision.items():
        decisions.labels(kind=kind, outcome=outcome, policy_version=policy_version, model_version=model_version,
                         degraded=was_degraded).inc(count)
    for (kind, action), count in by_action.items():
        actions.labels(kind=kind, action=action).inc(count)
    for (kind, reason), count in by_reason.items():
        degraded.labels(kind=kind, reason=reason).inc(count)


@lru_cache(maxsize=1)
def _review_metrics():
    import prometheus_client

    actions = prometheus_client.Counter(
        "tollgate_review_actions", "Review-case history events (claimed, resolved, approved, hold_released, …)",
        ["queue", "action"])
    late = prometheus_client.Counter(
        "tollgate_review_resolved_after_sla", "Cases made final after their SLA due time", ["queue"])
    cases = prometheus_client.Gauge(
        "tollgate_review_cases", "Unresolved review cases by state, as last counted (sla_breached: open past due)",
        ["queue", "state"], multiprocess_mode="mostrecent")
    return actions, late, cases


def observe_review(queue: str, actions: list[str]) -> None:
    counter = _review_metrics()[0]
    for action in actions:
        counter.labels(queue=queue, action=action).inc()


def observe_late_resolution(queue: str) -> None:
    _review_metrics()[1].labels(queue=queue).inc()


def observe_queue(queue: str, counts: dict) -> None:
    """Set the queue gauges from a fresh count (every listing refreshes them)."""
    gauge = _review_metrics()[2]
    for state, value in counts.items():
        gauge.labels(queue=queue, state=state).set(value)
