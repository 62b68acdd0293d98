"""Policy versions under maker-checker: proposed by one admin, approved by another, served without restart.

The active version of a policy is the most recently approved row in the database; until anything is
approved, the document shipped in ``policies/`` is served. Reads are cached for a couple of seconds.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from features.errors import InvalidInput, PolicyInvalid
from rules_engine.loader import PolicyInvalid as EnginePolicyInvalid
from rules_engine.loader import load_policy, parse_policy
from rules_engine.schema import Policy
from serving.db import policy_versions

POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"


def propose(engine: Engine, text: str, *, by: str) -> dict:
    """Validate a policy document (schema and its own examples) and store it as a proposal."""
    try:
        policy = parse_policy(text, source="proposal")
    except EnginePolicyInvalid as exc:
        raise PolicyInvalid(str(exc)) from exc
    row = {"proposal_id": str(uuid.uuid4()), "policy_id": policy.id, "version": policy.version,
           "document": text, "status": "proposed", "proposed_by": by, "proposed_at": datetime.now(UTC)}
    with engine.begin() as conn:
        existing = conn.execute(select(policy_versions.c.proposal_id).where(
            policy_versions.c.policy_id == policy.id, policy_versions.c.version == policy.version)).first()
        if existing:
            raise InvalidInput(f"policy {policy.id} version {policy.version} already exists", field="version")
        conn.execute(insert(policy_versions).values(**row))
    return {k: str(v) for k, v in row.items() if k != "document"}


def approve(engine: Engine, proposal_id: str, *, by: str) -> dict:
    """Approve a proposal; the approver must differ from the proposer."""
    with engine.begin() as conn:
        row = conn.execute(select(policy_versions).where(policy_versions.c.proposal_id == proposal_id)
                           ).mappings().first()
        if row is None:
            raise InvalidInput(f"no proposal {proposal_id}", field="proposal_id")
        if row["status"] != "proposed":
            raise InvalidInput(f"proposal {proposal_id} is {row['status']}, not proposed", field="proposal_id")
        if row["proposed_by"] == by:
            raise PolicyInvalid("maker-checker: the approver must be a different admin from the proposer")
        conn.execute(update(policy_versions).where(policy_versions.c.proposal_id == proposal_id,
                                                   policy_versions.c.status == "proposed")
                     .values(status="approved", approved_by=by, approved_at=datetime.now(UTC)))
    return {"proposal_id": proposal_id, "policy_id": row["policy_id"], "version": row["version"],
            "approved_by": by}


class PolicySource:
    """The policy to apply now, re-read from the database at most every ``ttl`` seconds."""

    def __init__(self, engine: Engine, *, ttl: float = 2.0) -> None:
        self.engine, self.ttl = engine, ttl
        self._cache: dict[str, tuple[float, Policy]] = {}
        self._files = {p.stem: load_policy(p) for p in POLICY_DIR.glob("*.yaml")}

    def get(self, policy_id: str) -> Policy:
        now = time.monotonic()
        cached = self._cache.get(policy_id)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        with self.engine.connect() as conn:
            row = conn.execute(select(policy_versions.c.document).where(
                policy_versions.c.policy_id == policy_id, policy_versions.c.status == "approved")
                .order_by(policy_versions.c.approved_at.desc()).limit(1)).first()
        policy = parse_policy(row[0], source=policy_id) if row else self._files[policy_id]
        self._cache[policy_id] = (now, policy)
        return policy
