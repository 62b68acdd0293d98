"""HTTP routes of the review workflow, mounted at /v1/reviews (docs/review-workflow.md).

Reviewers, approvers and admins list, claim, release and resolve; only approvers and admins give the
second approval. Errors come from ``serving.reviews`` and are mapped to status codes in ``serving.app``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, Depends, Header, Query

from serving.auth import Caller, Role
from serving.review_queries import MAX_LIMIT, SORTS, STATUSES
from serving.verdicts import Verdict

StatusFilter = Literal[STATUSES]  # type: ignore[valid-type]
SortKey = Literal[tuple(SORTS)]  # type: ignore[valid-type]


def review_router(runtime: Callable, role: Callable[..., Callable[..., Caller]]) -> APIRouter:
    """The /reviews routes over the runtime's ``ReviewService``; ``role`` is the app's auth dependency."""
    router = APIRouter()
    reviewer = Depends(role(Role.REVIEWER, Role.APPROVER))
    approver = Depends(role(Role.APPROVER))

    @router.get("")
    def list_cases(
        _: Caller = reviewer, queue: str | None = Query(default=None, max_length=32),
        status: StatusFilter = "open", carrier: str | None = Query(default=None, max_length=8),
        lane: str | None = Query(default=None, max_length=24),
        discrepancy: str | None = Query(default=None, max_length=32),
        amount_min: float | None = Query(default=None, ge=0), amount_max: float | None = Query(default=None, ge=0),
        sla_breached: bool | None = None, sort: SortKey = "priority", descending: bool = True,
        limit: int = Query(default=50, ge=1, le=MAX_LIMIT), offset: int = Query(default=0, ge=0),
        decision_id: str | None = Query(default=None, max_length=36),
    ) -> dict:
        """Cases, riskiest dollars first (priority, then SLA due time), with filters and paging."""
        return runtime().reviews.list_cases(
            queue=queue, status=status, carrier=carrier, lane=lane, discrepancy=discrepancy, amount_min=amount_min,
            amount_max=amount_max, sla_breached=sla_breached, sort=sort, descending=descending, limit=limit,
            offset=offset, decision_id=decision_id)

    @router.get("/{case_id}")
    def get_case(case_id: str, _: Caller = reviewer) -> dict:
        """One case with its decision (scores, reasons, rules fired, actions, features), resolution, history."""
        return runtime().reviews.get_case(case_id)

    @router.post("/{case_id}/claim")
    def claim(case_id: str, caller: Caller = reviewer) -> dict:
        """Lease the case (re-claiming extends the lease); held by someone else → 409."""
        return runtime().reviews.claim(case_id, caller)

    @router.post("/{case_id}/release")
    def release(case_id: str, caller: Caller = reviewer) -> dict:
        """Give a claimed case back to the queue."""
        return runtime().reviews.release(case_id, caller)

    @router.post("/{case_id}/resolve")
    def resolve(case_id: str, body: Verdict, caller: Caller = reviewer,
                idempotency_key: str | None = Header(default=None, max_length=128)) -> dict:
        """Record a verdict on a case you hold; a repeat of the same request returns the first result."""
        return runtime().reviews.resolve(case_id, caller, body, idempotency_key=idempotency_key)

    @router.post("/{case_id}/approve")
    def approve(case_id: str, caller: Caller = approver) -> dict:
        """Second approval (four-eyes) by an approver other than the reviewer who resolved the case."""
        return runtime().reviews.approve(case_id, caller)

    return router
