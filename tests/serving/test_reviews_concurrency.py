"""20 reviewer threads working 500 cases on SQLite and PostgreSQL: every case resolved exactly once, no double
claims, no lost history rows, repeated resolves answered with the first result."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from serving.db import case_events, case_resolutions, review_cases
from serving.reviews import Conflict, ReviewService
from tests.serving.conftest import make_runtime
from tests.serving.review_factory import invoice_case, person

CASES, THREADS = 500, 20
pytestmark = pytest.mark.timeout(600)  # a stall (e.g. an exhausted connection pool) fails instead of hanging


def _work(reviews: ReviewService, i: int, claims: list, steals: list, errors: list) -> None:
    me, rng = person(f"k-reviewer-{i}"), random.Random(i)
    try:
        while True:
            page = reviews.list_cases(status="available", limit=50)
            if not page["items"]:
                if page["counts"]["open"] == 0:
                    return
                time.sleep(0.01)
                continue
            case_id = rng.choice(page["items"])["case_id"]
            try:
                reviews.claim(case_id, me)
            except Conflict:
                continue
            claims.append(case_id)
            held = reviews.list_cases(status="claimed", limit=50)["items"]
            others = [c["case_id"] for c in held if c["claimed_by_key"] != me.key_id]
            if others:  # try to take a case someone else holds: must be refused
                try:
                    reviews.claim(rng.choice(others), me)
                    steals.append(case_id)
                except Conflict:
                    pass
            verdict = {"verdict": "dispute", "amount": 50.0, "reason_code": "rate_not_per_contract"} \
                if rng.random() < 0.5 else {"verdict": "approve_as_billed"}
            first = reviews.resolve(case_id, me, verdict, idempotency_key=f"{case_id}:{i}")
            again = reviews.resolve(case_id, me, verdict, idempotency_key=f"{case_id}:{i}")
            if not again["replayed"] or again["resolution"]["resolution_id"] != first["resolution"]["resolution_id"]:
                errors.append(f"resolve of {case_id} was not idempotent")
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(repr(exc))


def test_twenty_reviewers_resolve_five_hundred_cases_exactly_once(database_url, scorer):
    runtime = make_runtime(database_url, scorer)
    ids = [invoice_case(runtime.decisions, f"INV-{n:04d}", amount_at_risk=float(n % 97 + 30)) for n in range(CASES)]
    reviews = ReviewService(runtime.engine, policies=runtime.decisions.policies)
    claims, steals, errors = [], [], []
    threads = [threading.Thread(target=_work, args=(reviews, i, claims, steals, errors)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:5]
    assert not steals
    assert Counter(claims) == Counter(ids)  # every case claimed successfully once, by one reviewer
    with runtime.engine.connect() as conn:
        statuses = Counter(conn.execute(select(review_cases.c.status)).scalars())
        resolved = conn.execute(select(case_resolutions.c.case_id)).scalars().all()
        per_case = conn.execute(select(case_events.c.case_id, func.count(), func.max(case_events.c.seq),
                                       func.sum(case_events.c.seq)).group_by(case_events.c.case_id)).all()
        versions = dict(conn.execute(select(review_cases.c.case_id, review_cases.c.version)).all())
        actions = Counter(conn.execute(select(case_events.c.action)).scalars())
    assert statuses == {"resolved": CASES}
    assert sorted(resolved) == sorted(ids)
    # created, claimed, resolved, hold/dispute effect: seq 1..4 with no gap, and the case's version is the last seq
    assert {(n, top, total) for _, n, top, total in per_case} == {(4, 4, 10)}
    assert set(versions.values()) == {4} and len(per_case) == CASES
    assert actions["claimed"] == CASES and actions["resolved"] == CASES and actions["created"] == CASES
