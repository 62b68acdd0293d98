"""The read side of the review queue: filtered, sorted pages of cases, one case with its evidence, history.

A case's stored ``status`` is open, awaiting_approval or resolved; a claim is a lease on an open case
(``claimed_by`` + ``lease_expires_at``), so an expired lease puts the case back in the queue without any
write. The status shown is ``claimed`` while the lease runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, case, func, literal, or_, select
from sqlalchemy.engine import Connection

from features.errors import InvalidInput
from features.invoice_world import DISCREPANCY_CLASSES
from serving.db import case_events, case_resolutions, decisions, review_cases

c = review_cases.c
STATUSES = ("open", "available", "claimed", "awaiting_approval", "resolved", "unresolved", "all")
UNRESOLVED = ("open", "available", "claimed", "awaiting_approval", "unresolved")
SORTS = {"priority": c.priority, "sla_due_at": c.sla_due_at, "amount_at_risk": c.amount_at_risk,
         "created_at": c.created_at, "confidence": c.confidence}
MAX_LIMIT = 200
TOTAL_CAP = 1_000


def aware(value: datetime | None) -> datetime | None:
    """Instants as UTC-aware datetimes (SQLite returns them naive, in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return aware(value).isoformat() if value is not None else None


def lease_holder(row, now: datetime) -> str | None:
    """The key id holding a live lease on an open case, else None."""
    expires = aware(row["lease_expires_at"])
    if row["status"] == "open" and row["claimed_by"] and expires is not None and expires > now:
        return row["claimed_by"]
    return None


def shown_status(row, now: datetime) -> str:
    return "claimed" if lease_holder(row, now) else row["status"]


def item(row, now: datetime) -> dict:
    """One case as the queue shows it."""
    held = lease_holder(row, now) is not None
    due, resolved = aware(row["sla_due_at"]), aware(row["resolved_at"])
    return {
        "case_id": row["case_id"], "decision_id": row["decision_id"], "queue": row["queue"], "kind": row["kind"],
        "subject_id": row["subject_id"], "status": shown_status(row, now), "priority": row["priority"],
        "priority_label": row["priority_label"], "reason": row["reason"], "amount_at_risk": row["amount_at_risk"],
        "subject_amount": row["subject_amount"], "carrier": row["carrier"], "lane": row["lane"],
        "predicted_class": row["predicted_class"], "confidence": row["confidence"],
        "needs_second_approval": bool(row["needs_second_approval"]), "sla_due_at": iso(due),
        "sla_breached": (resolved or now) > due, "sla_seconds_left": None if resolved else round((due - now).total_seconds(), 1),
        "claimed_by": row["claimed_by_name"] if held else None, "claimed_by_key": row["claimed_by"] if held else None,
        "lease_expires_at": iso(row["lease_expires_at"]) if held else None, "created_at": iso(row["created_at"]),
        "resolved_at": iso(resolved), "approved_by": row["approved_by"], "version": row["version"],
    }


def _status_filter(status: str | None, now: datetime):
    live = and_(c.claimed_by.is_not(None), c.lease_expires_at > now)
    return {
        "open": c.status == "open", "available": and_(c.status == "open", ~live),
        "claimed": and_(c.status == "open", live), "awaiting_approval": c.status == "awaiting_approval",
        "resolved": c.status == "resolved", "unresolved": c.status.in_(("open", "awaiting_approval")),
        "all": None, None: None,
    }[status]


def filters(*, now: datetime, queue=None, status="open", carrier=None, lane=None, discrepancy=None,
            amount_min=None, amount_max=None, sla_breached=None, decision_id=None) -> list:
    """WHERE clauses for the listing; bad values raise InvalidInput naming the parameter."""
    if status not in STATUSES and status is not None:
        raise InvalidInput(f"status: must be one of {', '.join(STATUSES)}", field="status")
    if discrepancy is not None and discrepancy not in (*DISCREPANCY_CLASSES, "late", "on_time"):
        raise InvalidInput(f"discrepancy: unknown class {discrepancy!r}", field="discrepancy")
    if amount_min is not None and amount_max is not None and amount_min > amount_max:
        raise InvalidInput("amount_min: is above amount_max", field="amount_min")
    where = [_status_filter(status, now)]
    for column, value in ((c.queue, queue), (c.carrier, carrier), (c.lane, lane),
                          (c.predicted_class, discrepancy), (c.decision_id, decision_id)):
        if value is not None:
            where.append(column == value)
    if amount_min is not None:
        where.append(c.amount_at_risk >= amount_min)
    if amount_max is not None:
        where.append(c.amount_at_risk <= amount_max)
    if sla_breached is not None:
        # Unresolved cases have no resolved_at: a plain range on sla_due_at (index ix_cases_status_sla).
        late = c.sla_due_at < now if status in UNRESOLVED else or_(
            and_(c.resolved_at.is_(None), c.sla_due_at < now), c.resolved_at > c.sla_due_at)
        where.append(late if sla_breached else ~late)
    return [w for w in where if w is not None]


def ordering(sort: str, descending: bool) -> list:
    if sort not in SORTS:
        raise InvalidInput(f"sort: must be one of {', '.join(SORTS)}", field="sort")
    column = SORTS[sort]
    first = column.desc() if descending else column.asc()
    then = [c.sla_due_at.asc()] if sort == "priority" else [c.priority.desc()]
    return [first, *then, c.case_id]


def page(conn: Connection, *, where: list, order: list, limit: int, offset: int, now: datetime) -> dict:
    """One page; ``total`` counts matches exactly up to TOTAL_CAP (then ``total_capped`` is true)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit: must be between 1 and {MAX_LIMIT}", field="limit")
    if offset < 0:
        raise InvalidInput("offset: must be 0 or more", field="offset")
    rows = conn.execute(select(review_cases).where(*where).order_by(*order).limit(limit).offset(offset)).mappings()
    items = [item(r, now) for r in rows]
    if offset == 0 and len(items) < limit:
        total = len(items)
    else:
        matches = select(literal(1)).select_from(review_cases).where(*where).limit(TOTAL_CAP + 1).subquery()
        total = conn.execute(select(func.count()).select_from(matches)).scalar_one()
    return {"items": items, "total": min(total, TOTAL_CAP), "total_capped": total > TOTAL_CAP, "limit": limit,
            "offset": offset}


def counts(conn: Connection, *, queue: str | None, now: datetime) -> dict:
    """Unresolved cases by state (and breached SLAs), for one queue or all: one pass over an index."""
    mine = [c.queue == queue] if queue is not None else []
    by_status = conn.execute(
        select(c.status, func.count(), func.coalesce(func.sum(case((c.sla_due_at < now, 1), else_=0)), 0))
        .where(c.status.in_(("open", "awaiting_approval")), *mine).group_by(c.status)).all()
    found = {status: (int(n), int(late)) for status, n, late in by_status}
    claimed = conn.execute(select(func.count()).select_from(review_cases).where(
        c.status == "open", c.lease_expires_at > now, c.claimed_by.is_not(None), *mine)).scalar_one()
    open_, awaiting = found.get("open", (0, 0)), found.get("awaiting_approval", (0, 0))
    return {"open": open_[0], "claimed": int(claimed), "available": open_[0] - int(claimed),
            "awaiting_approval": awaiting[0], "sla_breached": open_[1] + awaiting[1]}


def history(conn: Connection, case_id: str) -> list[dict]:
    rows = conn.execute(select(case_events).where(case_events.c.case_id == case_id)
                        .order_by(case_events.c.seq)).mappings()
    return [{**dict(r), "at": iso(r["at"])} for r in rows]


def resolution(conn: Connection, case_id: str) -> dict | None:
    row = conn.execute(select(case_resolutions).where(case_resolutions.c.case_id == case_id)).mappings().first()
    return {**dict(row), "resolved_at": iso(row["resolved_at"])} if row else None


def decision_of(conn: Connection, decision_id: str) -> dict:
    """The linked decision: request, response (scores, reasons, rules fired, actions) and features used."""
    row = conn.execute(select(decisions.c.decision_id, decisions.c.kind, decisions.c.request, decisions.c.response,
                              decisions.c.features, decisions.c.policy_id, decisions.c.policy_version,
                              decisions.c.model_version, decisions.c.created_at)
                       .where(decisions.c.decision_id == decision_id)).mappings().one()
    return {**dict(row), "created_at": iso(row["created_at"])}
