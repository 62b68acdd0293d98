"""The finance review workflow: claim, release, resolve and approve review cases (first version: interface).

Actors are ``serving.auth.Caller`` (key_id, role, name). Every method returns plain JSON-able dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from features.errors import TollgateError
from serving.auth import Caller, Forbidden
from serving.decisions import Conflict
from serving.verdicts import REASON_CODES, VERDICTS, Verdict


class NotFound(TollgateError):
    """No such case."""


class ReviewService:
    def __init__(self, engine: Engine, *, policies=None, lease_seconds: float = 900,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine, self.policies, self.lease_seconds, self.clock = engine, policies, lease_seconds, clock

    def list_cases(self, *, queue=None, status="open", carrier=None, lane=None, discrepancy=None, amount_min=None,
                   amount_max=None, sla_breached=None, sort="priority", descending=True, limit=50,
                   offset=0) -> dict:
        raise NotImplementedError

    def get_case(self, case_id: str) -> dict:
        raise NotImplementedError

    def claim(self, case_id: str, actor: Caller) -> dict:
        raise NotImplementedError

    def release(self, case_id: str, actor: Caller) -> dict:
        raise NotImplementedError

    def resolve(self, case_id: str, actor: Caller, verdict: dict | Verdict, *,
                idempotency_key: str | None = None) -> dict:
        raise NotImplementedError

    def approve(self, case_id: str, actor: Caller) -> dict:
        raise NotImplementedError

    def history(self, case_id: str) -> list[dict]:
        raise NotImplementedError


__all__ = ["Conflict", "Forbidden", "NotFound", "REASON_CODES", "ReviewService", "VERDICTS", "Verdict"]
