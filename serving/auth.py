"""API keys: generated at random, shown once, stored as SHA-256 hashes, each with one role.

A key looks like ``tg_<key_id>_<secret>``; the key id finds the row, the hash of the whole key is
compared in constant time. Keys are 256-bit random, so a plain SHA-256 (no slow KDF) is sufficient.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from features.errors import TollgateError
from serving.db import api_keys


class Forbidden(TollgateError):
    """Authenticated, but this caller may not do this (wrong role, or a four-eyes violation)."""


class Role(StrEnum):
    ORCHESTRATOR = "orchestrator"
    REVIEWER = "reviewer"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    key_id: str
    role: Role
    name: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, *, role: Role, name: str) -> str:
    """Create and store a key; the plain key is returned once and never stored."""
    key_id = secrets.token_hex(6)
    key = f"tg_{key_id}_{secrets.token_urlsafe(32)}"
    with engine.begin() as conn:
        conn.execute(insert(api_keys).values(key_id=key_id, key_hash=_hash(key), role=role.value, name=name,
                                             created_at=datetime.now(UTC)))
    return key


def authenticate(engine: Engine, authorization: str | None) -> Caller | None:
    """The caller behind an ``Authorization: Bearer <key>`` header, or None."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    key = authorization.removeprefix("Bearer ").strip()
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "tg":
        return None
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == parts[1])).mappings().first()
    if row is None or row["revoked_at"] is not None or not hmac.compare_digest(row["key_hash"], _hash(key)):
        return None
    return Caller(key_id=row["key_id"], role=Role(row["role"]), name=row["name"])


def has_any_key(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(api_keys.c.key_id).limit(1)).first() is not None
