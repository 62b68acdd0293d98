"""The finance review workflow: claim, release, resolve and approve review cases (docs/review-workflow.md).

Every state change is one transaction: a compare-and-set UPDATE of the case's current-state columns
(``WHERE case_id = ? AND status = ? AND version = ?``) plus the history rows it causes, appended to
``case_events`` with ``seq`` continuing ``version``. Two reviewers racing for a case (in one process or
several, on SQLite or PostgreSQL) cannot both win: the loser's UPDATE matches no row and it gets
``Conflict``. Refused requests change nothing. Actors are ``serving.auth.Caller`` (key id, role, name);
every method returns plain JSON-able dicts.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from features.errors import TollgateError
from serving import review_queries as q
from serving.auth import Caller, Forbidden, Role
from serving.case_facts import needs_second_approval
from serving.db import case_events, case_resolutions, decisions, review_cases
from serving.decisions import Conflict
from serving.metrics import observe_late_resolution, observe_queue, observe_review
from serving.verdicts import (
    REASON_CODES,
    VERDICTS,
    Verdict,
    check_against_case,
    hold_effect,
    label_of,
    parse_verdict,
)

REVIEW_ROLES = (Role.REVIEWER, Role.APPROVER, Role.ADMIN)
APPROVE_ROLES = (Role.APPROVER, Role.ADMIN)


class NotFound(TollgateError):
    """No such case."""


class _Lost(Conflict):
    """The compare-and-set matched no row: someone else changed the case first."""

    def __init__(self) -> None:
        super().__init__("the case was changed by someone else just now; reload it")


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _digest(actor: Caller, verdict: Verdict) -> str:
    body = json.dumps({"actor": actor.key_id, "verdict": verdict.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _same_person(a_key: str, a_name: str, actor: Caller) -> bool:
    return a_key == actor.key_id or a_name.strip().casefold() == actor.name.strip().casefold()


class ReviewService:
    """Review cases over one database; ``policies`` gives each policy's thresholds (four-eyes)."""

    def __init__(self, engine: Engine, *, policies=None, lease_seconds: float = 900,
                 clock: Callable[[], datetime] = _now_utc, counts_seconds: float = 5.0) -> None:
        if policies is None:
            from serving.policy_store import PolicySource

            policies = PolicySource(engine)
        self.engine, self.policies, self.clock = engine, policies, clock
        self.lease, self.counts_age = timedelta(seconds=lease_seconds), timedelta(seconds=counts_seconds)
        self._counts: dict[str | None, tuple[int, datetime, dict]] = {}
        self._writes, self._writes_lock = 0, threading.Lock()

    # -- reading ------------------------------------------------------------------------------
    def list_cases(self, *, queue=None, status="open", carrier=None, lane=None, discrepancy=None, amount_min=None,
                   amount_max=None, sla_breached=None, sort="priority", descending=True, limit=50, offset=0,
                   decision_id=None) -> dict:
        """One page of cases, riskiest dollars first (docs/review-workflow.md#priority), with counts."""
        now = self.clock()
        where = q.filters(now=now, queue=queue, status=status, carrier=carrier, lane=lane, discrepancy=discrepancy,
                          amount_min=amount_min, amount_max=amount_max, sla_breached=sla_breached,
                          decision_id=decision_id)
        order = q.ordering(sort, descending)
        with self.engine.connect() as conn:
            out = q.page(conn, where=where, order=order, limit=limit, offset=offset, now=now)
            out["counts"] = self._queue_counts(conn, queue, now)
        return out

    def queue_counts(self, queue: str | None = None) -> dict:
        """Unresolved cases by state and breached SLAs (also refreshes the /metrics gauges)."""
        with self.engine.connect() as conn:
            return self._queue_counts(conn, queue, self.clock())

    def _queue_counts(self, conn, queue: str | None, now: datetime) -> dict:
        """Counts are dashboard figures: reused for ``counts_seconds`` unless this service changed a case since
        (changes made by other processes show within that time). Counting 100,000 open cases takes tens of
        milliseconds; the page itself takes one."""
        writes = self._writes
        hit = self._counts.get(queue)
        if hit and hit[0] == writes and timedelta(0) <= now - hit[1] < self.counts_age:
            return hit[2]
        counts = q.counts(conn, queue=queue, now=now)
        self._counts[queue] = (writes, now, counts)
        observe_queue(queue or "all", counts)
        return counts

    def get_case(self, case_id: str) -> dict:
        """The case, its decision (request, scores, reasons, rules fired, actions, features), resolution, history."""
        now = self.clock()
        with self.engine.connect() as conn:
            row = self._row(conn, case_id)
            return {**q.item(row, now), "decision": q.decision_of(conn, row["decision_id"]),
                    "resolution": q.resolution(conn, case_id), "history": q.history(conn, case_id)}

    def case_of_decision(self, decision_id: str) -> str | None:
        """The review case a decision opened, if any (the decision log's link to its review)."""
        with self.engine.connect() as conn:
            return conn.execute(select(review_cases.c.case_id).where(
                review_cases.c.decision_id == decision_id)).scalar_one_or_none()

    def history(self, case_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            self._row(conn, case_id)
            return q.history(conn, case_id)

    # -- claims -------------------------------------------------------------------------------
    def claim(self, case_id: str, actor: Caller) -> dict:
        """Take (or extend) the lease on an open case; held by someone else → Conflict."""
        _require(actor, REVIEW_ROLES, "claim a case")
        now = self.clock()
        with self._transaction() as conn:
            row = self._row(conn, case_id)
            if row["status"] != "open":
                raise Conflict(f"case {case_id} is {row['status']}; only open cases can be claimed")
            holder = q.lease_holder(row, now)
            if holder is not None and holder != actor.key_id:
                raise Conflict(f"case {case_id} is held by {row['claimed_by_name']} until "
                               f"{q.iso(row['lease_expires_at'])}")
            expires = now + self.lease
            payload = {"lease_expires_at": expires.isoformat()}
            if holder is None and row["claimed_by"] and row["claimed_by"] != actor.key_id:
                payload["took_over_expired_lease_of"] = row["claimed_by_name"]
            action = "lease_extended" if holder == actor.key_id else "claimed"
            after = self._change(conn, row, actor, now, [(action, "claimed", payload)], claimed_by=actor.key_id,
                                 claimed_by_name=actor.name, lease_expires_at=expires)
        return q.item(after, now)

    def release(self, case_id: str, actor: Caller) -> dict:
        """Give the case back to the queue (only its holder can)."""
        _require(actor, REVIEW_ROLES, "release a case")
        now = self.clock()
        with self._transaction() as conn:
            row = self._row(conn, case_id)
            if row["status"] != "open" or row["claimed_by"] != actor.key_id:
                raise Conflict(f"case {case_id} is not claimed by you")
            after = self._change(conn, row, actor, now, [("released", "open", {})],
                                 claimed_by=None, claimed_by_name=None, lease_expires_at=None)
        return q.item(after, now)

    # -- verdicts -----------------------------------------------------------------------------
    def resolve(self, case_id: str, actor: Caller, verdict: dict | Verdict, *,
                idempotency_key: str | None = None) -> dict:
        """Record the holder's verdict; final at once, or ``awaiting_approval`` above the high-value threshold.

        The same request again (same actor and verdict, or the same idempotency key) returns the first
        result; anything else on a resolved case → Conflict.
        """
        _require(actor, REVIEW_ROLES, "resolve a case")
        parsed = parse_verdict(verdict)
        digest, now = _digest(actor, parsed), self.clock()
        with self.engine.connect() as conn:  # read, then decide with no connection held (policies read their own)
            row = self._row(conn, case_id, with_decision=True)
        if row["status"] != "open":
            return self._replay(case_id, digest, idempotency_key)
        self._check_holder(row, actor, now)
        billed = row["subject_amount"] if row["kind"] == "invoice" else None
        check_against_case(parsed, kind=row["kind"], billed=billed, predicted=row["predicted_class"])
        four_eyes = needs_second_approval(row["subject_amount"], self._high_value(row["policy_id"]))
        resolution = self._resolution_row(row, actor, parsed, now=now, digest=digest, key=idempotency_key,
                                          four_eyes=four_eyes)
        status = "awaiting_approval" if four_eyes else "resolved"
        events = [("resolved", status, {"resolution_id": resolution["resolution_id"],
                                        **parsed.model_dump(mode="json", exclude_none=True),
                                        "needs_second_approval": four_eyes})]
        events += [] if four_eyes else self._effects(row, parsed)
        try:
            with self._transaction() as conn:  # compare-and-set: fails if the case changed since it was read
                after = self._change(conn, row, actor, now, events, rows=[(case_resolutions, resolution)],
                                     status=status, needs_second_approval=four_eyes, claimed_by=None,
                                     claimed_by_name=None, lease_expires_at=None,
                                     resolved_at=None if four_eyes else now)
        except (_Lost, IntegrityError):
            return self._replay(case_id, digest, idempotency_key)
        if not four_eyes and _late(row, now):
            observe_late_resolution(row["queue"])
        return {**q.item(after, now), "resolution": _shown(resolution), "replayed": False}

    def approve(self, case_id: str, actor: Caller) -> dict:
        """The second approval of a four-eyes case: an approver (or admin) other than the resolver."""
        _require(actor, APPROVE_ROLES, "give the second approval")
        now = self.clock()
        with self._transaction() as conn:
            row = self._row(conn, case_id, with_decision=True)
            resolution = q.resolution(conn, case_id)
            if row["status"] == "resolved" and resolution and resolution["needs_second_approval"] \
                    and row["approved_by"] == actor.name:
                return {**q.item(row, now), "resolution": resolution, "replayed": True}
            if row["status"] != "awaiting_approval":
                raise Conflict(f"case {case_id} is {q.shown_status(row, now)}; only awaiting_approval cases are "
                               "approved")
            if _same_person(resolution["resolved_by"], resolution["resolved_by_name"], actor):
                raise Forbidden("four-eyes: the second approval must come from a different person than the "
                                f"reviewer who resolved the case ({resolution['resolved_by_name']})")
            verdict = parse_verdict({k: resolution[k] for k in ("verdict", "amount", "reason_code", "discrepancy",
                                                                "note")})
            events = [("approved", "resolved", {"resolution_id": resolution["resolution_id"]}),
                      *self._effects(row, verdict)]
            after = self._change(conn, row, actor, now, events, status="resolved", resolved_at=now,
                                 approved_by=actor.name)
        if _late(row, now):
            observe_late_resolution(row["queue"])
        return {**q.item(after, now), "resolution": resolution, "replayed": False}

    # -- plumbing -----------------------------------------------------------------------------
    @contextmanager
    def _transaction(self):
        """One transaction; once committed, cached counts are stale."""
        with self.engine.begin() as conn:
            yield conn
        with self._writes_lock:
            self._writes += 1

    def _change(self, conn, row, actor: Caller, now: datetime, events: list[tuple[str, str, dict]], *,
                rows: list = (), **values) -> dict:
        """Compare-and-set the case's current state and append its history rows (in the caller's transaction).

        Returns the case as it now is; raises Conflict if someone else changed it since ``row`` was read.
        """
        version, before = row["version"], q.shown_status(row, now)
        done = conn.execute(update(review_cases).where(
            review_cases.c.case_id == row["case_id"], review_cases.c.status == row["status"],
            review_cases.c.version == version).values(**values, version=version + len(events)))
        if done.rowcount != 1:
            raise _Lost
        for table, values_ in rows:
            conn.execute(insert(table).values(**values_))
        conn.execute(insert(case_events), [
            {"case_id": row["case_id"], "seq": version + 1 + i, "actor": actor.name, "actor_key": actor.key_id,
             "role": actor.role.value, "action": action, "from_status": (before if i == 0 else events[i - 1][1]),
             "to_status": after, "payload": payload, "at": now}
            for i, (action, after, payload) in enumerate(events)])
        observe_review(row["queue"], [action for action, _, _ in events])
        return {**row, **values, "version": version + len(events)}

    @staticmethod
    def _check_holder(row, actor: Caller, now: datetime) -> None:
        holder = q.lease_holder(row, now)
        if holder is not None and holder != actor.key_id:
            raise Conflict(f"case {row['case_id']} is held by {row['claimed_by_name']}")
        if holder is None:
            raise Conflict(f"claim case {row['case_id']} before resolving it (you do not hold a live lease)")

    @staticmethod
    def _effects(row, verdict: Verdict) -> list[tuple[str, str, dict]]:
        held = any(a.get("type") == "hold_invoice" for a in row["response"].get("actions", []))
        effect = hold_effect(verdict, kind=row["kind"], billed=row["subject_amount"], held=held)
        return [(effect[0], "resolved", effect[1])] if effect else []

    @staticmethod
    def _resolution_row(row, actor: Caller, verdict: Verdict, *, now, digest, key, four_eyes) -> dict:
        billed = row["subject_amount"] if row["kind"] == "invoice" else None
        label, overbilled = label_of(verdict, predicted=row["predicted_class"], billed=billed) \
            if row["kind"] == "invoice" else (None, None)
        return {"resolution_id": str(uuid.uuid4()), "case_id": row["case_id"], "decision_id": row["decision_id"],
                "verdict": verdict.verdict.value, "amount": verdict.amount,
                "reason_code": verdict.reason_code.value if verdict.reason_code else None,
                "discrepancy": verdict.discrepancy.value if verdict.discrepancy else None, "note": verdict.note,
                "label_class": label, "overbilled_amount": overbilled, "resolved_by": actor.key_id,
                "resolved_by_name": actor.name, "resolved_at": now, "request_hash": digest,
                "idempotency_key": key, "needs_second_approval": four_eyes}

    def _replay(self, case_id: str, digest: str, key: str | None) -> dict:
        """The first result of a repeated resolve, or Conflict if the case was resolved otherwise."""
        now = self.clock()
        with self.engine.connect() as conn:
            row = self._row(conn, case_id)
            resolution = q.resolution(conn, case_id)
        if resolution is None:
            raise Conflict(f"case {case_id} is {q.shown_status(row, now)}; it cannot be resolved now")
        if key is not None and resolution["idempotency_key"] == key and resolution["request_hash"] != digest:
            raise Conflict("Idempotency-Key was already used with a different verdict")
        if resolution["request_hash"] != digest and (key is None or resolution["idempotency_key"] != key):
            raise Conflict(f"case {case_id} was already resolved by {resolution['resolved_by_name']}")
        return {**q.item(row, now), "resolution": resolution, "replayed": True}

    def _high_value(self, policy_id: str) -> float | None:
        return self.policies.get(policy_id).thresholds.get("high_value")

    @staticmethod
    def _row(conn, case_id: str, *, with_decision: bool = False):
        query = select(review_cases).where(review_cases.c.case_id == case_id)
        if with_decision:
            query = query.add_columns(decisions.c.policy_id, decisions.c.response).join(
                decisions, decisions.c.decision_id == review_cases.c.decision_id)
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"no review case {case_id}")
        return row


def _shown(resolution: dict) -> dict:
    return {**resolution, "resolved_at": q.iso(resolution["resolved_at"])}


def _require(actor: Caller, roles: tuple[Role, ...], what: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"role '{actor.role.value}' may not {what} (needs {' or '.join(r.value for r in roles)})")


def _late(row, now: datetime) -> bool:
    return now > q.aware(row["sla_due_at"])


__all__ = ["Conflict", "Forbidden", "NotFound", "REASON_CODES", "ReviewService", "VERDICTS", "Verdict"]
