"""Reviewer sessions for the queue page: a signed cookie, a CSRF token per session, a per-install secret.

The cookie holds only the API key's id and the session's CSRF token, signed (not encrypted) with a
secret generated on first start and kept outside the repository (``var/web-session.secret`` by default,
``TOLLGATE_WEB_SECRET_FILE`` to share one across hosts). Each request re-reads the key's row, so a
revoked key or a changed role takes effect at once. The API key itself is never stored in the cookie.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.engine import Engine

from serving.auth import Caller, Role
from serving.db import api_keys

COOKIE = "tollgate_session"
MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"
SIGN_IN_ROLES = frozenset({Role.REVIEWER, Role.APPROVER, Role.ADMIN})


def default_secret_file() -> Path:
    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("TOLLGATE_WEB_SECRET_FILE", root / "var" / "web-session.secret"))


def load_or_create_secret(path: Path) -> str:
    """The install's secret; the first process to start creates it (atomically: every worker agrees)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secrets.token_urlsafe(48))
    try:
        os.link(draft, path)  # fails if another process got there first: theirs is kept
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


@dataclass(frozen=True)
class Session:
    csrf: str
    key_id: str | None = None

    @classmethod
    def anonymous(cls) -> Session:
        return cls(csrf=secrets.token_urlsafe(32))

    def signed_in(self, key_id: str) -> Session:
        """A new session for ``key_id`` with a fresh CSRF token (no token survives signing in)."""
        return Session(csrf=secrets.token_urlsafe(32), key_id=key_id)

    def accepts(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())


class SessionCodec:
    """Reads and writes the session cookie; the secret is loaded on first use, not at import."""

    def __init__(self, secret_file: Path | None = None) -> None:
        self._file = secret_file
        self._serializer: URLSafeTimedSerializer | None = None

    def _signer(self) -> URLSafeTimedSerializer:
        if self._serializer is None:
            secret = load_or_create_secret(self._file or default_secret_file())
            self._serializer = URLSafeTimedSerializer(secret, salt="tollgate.queue.session")
        return self._serializer

    def read(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._signer().loads(cookie, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        return Session(csrf=data["c"], key_id=data.get("k") if isinstance(data.get("k"), str) else None)

    def write(self, session: Session) -> str:
        return self._signer().dumps({"c": session.csrf, "k": session.key_id})


def reviewer_of(engine: Engine, session: Session | None) -> Caller | None:
    """The signed-in reviewer, if the session names a live key whose role may use the queue."""
    if session is None or session.key_id is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.key_id == session.key_id)).mappings().first()
    if row is None or row["revoked_at"] is not None or row["role"] not in SIGN_IN_ROLES:
        return None
    return Caller(key_id=row["key_id"], role=Role(row["role"]), name=row["name"])
