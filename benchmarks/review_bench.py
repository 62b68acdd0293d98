"""Review-queue speed (issue 5 targets: first page with filters p95 ≤ 50 ms; claim and resolve p95 ≤ 20 ms).

Fills a throw-away PostgreSQL schema with ``cases`` open invoice cases (and their decisions and first
history rows) through the real migrations, then times ``ReviewService`` calls as the API makes them:
the first page of the queue under several filter combinations, claims, and resolves. The schema is
dropped afterwards. Nothing here asserts: figures are printed and compared by people.

A listing's ``counts`` are reused for up to 5 seconds (docs/review-workflow.md#sla), so a few listings in
a run pay for a fresh count; ``reviews_counts_uncached_p50_ms`` reports what that count costs.
"""

from __future__ import annotations

import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

PG_URL = os.environ.get("TOLLGATE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CARRIERS = ("AA", "B6", "DL", "EV", "UA", "US", "WN", "MQ", "9E", "VX", "FL", "AS", "F9", "YV", "HA", "OO")
AIRPORTS = ("JFK", "LGA", "EWR", "ATL", "ORD", "LAX", "SFO", "BOS", "MIA", "DFW", "DEN", "SEA", "IAH", "MSP")
CLASSES = ("clean", "rate_overcharge", "fuel_surcharge_error", "unbacked_accessorial", "weight_overbilled",
           "duplicate", "billed_before_delivery")
FILTERS = {
    "default": {},
    "queue": {"queue": "freight-audit"},
    "carrier": {"carrier": "DL"},
    "carrier_lane": {"carrier": "UA", "lane": "EWR-SFO"},
    "class_amount": {"discrepancy": "duplicate", "amount_min": 200.0},
    "sla_breached": {"sla_breached": True},
    "available_by_sla": {"status": "available", "sort": "sla_due_at", "descending": False},
    "lane_class_amount": {"lane": "JFK-LAX", "discrepancy": "rate_overcharge", "amount_min": 50, "amount_max": 5000},
}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000.0


def _rows(i: int, rng: random.Random, now: datetime) -> tuple[dict, dict, dict]:
    from serving.case_facts import case_facts, created_event

    carrier, origin = rng.choice(CARRIERS), rng.choice(AIRPORTS)
    destination = rng.choice([a for a in AIRPORTS if a != origin])
    predicted = rng.choices(CLASSES, weights=(30, 20, 10, 12, 10, 10, 8))[0]
    p = rng.uniform(0.35, 0.99)
    total = round(rng.lognormvariate(6.7, 0.9), 2)
    at_risk = round(total * rng.uniform(0.02, 0.6), 2)
    label = rng.choices(("high", "normal", "low"), weights=(2, 6, 2))[0]
    created = now - timedelta(hours=rng.uniform(0, 72))
    params = {"queue": "freight-audit" if rng.random() < 0.9 else "freight-audit-eu", "priority": label,
              "sla_hours": 48, "reason": predicted, "amount_at_risk": at_risk}
    response = {"decision_id": str(uuid.uuid4()), "outcome": "review", "created_at": created.isoformat(),
                "actions": [{"type": "enqueue_review", "params": params}], "rules_fired": ["review-uncertain"],
                "scores": {"probabilities": {predicted: p}, "predicted_class": predicted, "amount_at_risk": at_risk}}
    request = {"invoice_id": f"BENCH{i:07d}", "carrier": carrier, "shipment_id": f"S{i:07d}", "total": total}
    decision = {"decision_id": response["decision_id"], "kind": "invoice", "subject_id": request["invoice_id"],
                "idempotency_key": f"bench:{i}", "request_hash": "0" * 64, "request": request, "response": response,
                "features": {}, "outcome": "review", "model_name": "invoice_discrepancy", "model_version": "1",
                "policy_id": "invoice", "policy_version": "1.0.0", "feature_service": None, "degraded": False,
                "caller": "bench", "created_at": created}
    facts = case_facts("invoice", request=request, response=response, params=params,
                       lane=f"{origin}-{destination}", high_value=5000.0)
    case = {"case_id": str(uuid.uuid4()), "decision_id": decision["decision_id"], "kind": "invoice",
            "subject_id": request["invoice_id"], "queue": params["queue"], "reason": predicted, "status": "open",
            "version": 1, "sla_due_at": created + timedelta(hours=48), "created_at": created, **facts}
    return decision, case, created_event(case, caller="bench")


def _fill(engine, cases: int, step: Callable[[str], None]) -> None:
    from sqlalchemy import insert, text

    from serving.db import case_events, decisions, review_cases

    rng, now = random.Random(5), datetime.now(UTC)
    for start in range(0, cases, 5000):
        chunk = [_rows(i, rng, now) for i in range(start, min(cases, start + 5000))]
        with engine.begin() as conn:
            for table, index in ((decisions, 0), (review_cases, 1), (case_events, 2)):
                conn.execute(insert(table), [rows[index] for rows in chunk])
        step(f"inserted {min(cases, start + 5000):,} cases")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What autovacuum does to a table at rest: statistics, and the visibility map for index-only counts.
        conn.execute(text("VACUUM ANALYZE review_cases"))
        conn.execute(text("ANALYZE"))


def _measure(reviews, *, samples: int, rng: random.Random) -> dict:
    from serving.auth import Caller, Role

    lists: dict[str, list[float]] = {name: [] for name in FILTERS}
    for _ in range(samples):
        for name, kwargs in FILTERS.items():
            lists[name].append(_timed(lambda kw=kwargs: reviews.list_cases(limit=50, **kw)))
    people = [Caller(key_id=f"bench{n}", role=Role.REVIEWER, name=f"Reviewer {n}") for n in range(20)]
    start = rng.randrange(0, max(1, min(5000, reviews.queue_counts()["available"] - samples)))
    targets = [item["case_id"] for offset in range(start, start + samples, 200)
               for item in reviews.list_cases(status="available", limit=200, offset=offset)["items"]][:samples]
    claims, resolves = [], []
    for n, case_id in enumerate(targets):
        who = people[n % len(people)]
        claims.append(_timed(lambda c=case_id, w=who: reviews.claim(c, w)))
        verdict = {"verdict": "approve_as_billed"} if n % 2 else \
            {"verdict": "dispute", "amount": 1.0, "reason_code": "rate_not_per_contract"}
        resolves.append(_timed(lambda c=case_id, w=who, v=verdict: reviews.resolve(c, w, v)))
    from serving import review_queries

    with reviews.engine.connect() as conn:  # what a listing costs when its cached counts are out of date
        uncached = [_timed(lambda: review_queries.counts(conn, queue=None, now=datetime.now(UTC)))
                    for _ in range(20)]
    every_list = [v for values in lists.values() for v in values]
    out = {"reviews_list_p50_ms": statistics.median(every_list), "reviews_list_p95_ms": _percentile(every_list, 0.95)}
    for name, values in lists.items():
        out[f"reviews_list_{name}_p95_ms"] = _percentile(values, 0.95)
    out |= {"reviews_claim_p50_ms": statistics.median(claims), "reviews_claim_p95_ms": _percentile(claims, 0.95),
            "reviews_resolve_p50_ms": statistics.median(resolves),
            "reviews_resolve_p95_ms": _percentile(resolves, 0.95), "claims_measured": len(claims),
            "reviews_counts_uncached_p50_ms": statistics.median(uncached)}
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def run(*, cases: int = 100_000, samples: int = 200, url: str = PG_URL,
        step: Callable[[str], None] = lambda _: None) -> dict:
    from sqlalchemy import text

    from serving.db import create_schema, make_engine
    from serving.reviews import ReviewService

    schema = f"bench_reviews_{os.getpid()}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}")
    try:
        create_schema(engine)
        _fill(engine, cases, step)
        reviews = ReviewService(engine)
        reviews.list_cases()  # warm the connection pool and the policy cache
        step(f"timing {samples} rounds of {len(FILTERS)} listings, then claims and resolves")
        figures = _measure(reviews, samples=samples, rng=random.Random(7))
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
    return {"open_cases": cases, "samples": samples, **figures, "reviews_list_target_p95_ms": 50,
            "reviews_claim_target_p95_ms": 20, "reviews_resolve_target_p95_ms": 20}
