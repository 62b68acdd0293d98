"""Decision metrics beside BentoML's own request metrics, exported on the same /metrics endpoint.

Created on first use (BentoML's metrics API is only bound to its multiprocess registry inside a server
process), never at import.
"""

from __future__ import annotations

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


def observe(decision: dict) -> None:
    """Count one returned decision (replays of an idempotent request are counted again: they were served)."""
    decisions, actions, degraded = _metrics()
    decisions.labels(kind=decision["kind"], outcome=decision["outcome"], policy_version=decision["policy_version"],
                     model_version=str(decision["model_version"]), degraded=str(decision["degraded"]).lower()).inc()
    for action in decision["actions"]:
        actions.labels(kind=decision["kind"], action=action["type"]).inc()
    if decision["degraded"]:
        degraded.labels(kind=decision["kind"], reason=str(decision.get("degraded_reason"))).inc()


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
