"""Helpers for the auth tests: forging tokens, reading and backdating auth state in the test database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlmodel import Session, col

from app.auth.models import AuthSession, LoginThrottle, User
from app.core.config import Settings, get_settings
from app.ledger.models import AuditEvent
from tests.conftest import PASSWORD

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PASSWORD_URL = "/api/v1/auth/password"
USERS = "/api/v1/users"
# A password that passes the policy and belongs to nobody yet.
NEW_PASSWORD = "Night-Shift-Visit-42"


def keys() -> dict[str, str]:
    """The test signing keys conftest put in JWT_KEYS: test-current signs, test-previous still verifies."""
    return dict(part.split(":", 1) for part in os.environ["JWT_KEYS"].split(","))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT, without checking anything."""
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(head))), json.loads(base64.urlsafe_b64decode(pad(body)))


def forge(claims: dict[str, Any], *, header: dict[str, Any] | None = None, secret: str | None = None,
          digest: Any = hashlib.sha256, signature: str | None = None) -> str:
    """Build a JWT by hand so every byte of header and payload is under the test's control.

    The signature is an HMAC with `digest` over the exact header and payload (by default the current
    test key and SHA-256); `signature` replaces it verbatim (e.g. "" for an unsigned token).
    """
    header = {"alg": "HS256", "typ": "JWT", "kid": "test-current"} if header is None else header
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    if signature is None:
        key = (secret if secret is not None else keys()["test-current"]).encode()
        signature = b64(hmac.new(key, signing_input.encode(), digest).digest())
    return signing_input + "." + signature


def valid_claims(token: str, **changes: Any) -> dict[str, Any]:
    """The claims of a real access token (so sub and sid name a live session), with changes applied;
    a change to None removes the claim."""
    _, claims = unverified(token)
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post(LOGIN, json={"username": username, "password": password})


def tokens(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = login(client, username, password)
    assert response.status_code == 200, response.text
    return dict(response.json())


def me(client: TestClient, access: str) -> Any:
    return client.get(ME, headers=bearer(access))


# --- database access -------------------------------------------------------------------------------

class Db:
    """Reads and adjusts the per-test database directly (to check state and to move time)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def user(self, username: str) -> User:
        with self.session() as s:
            return s.execute(select(User).where(col(User.username) == username)).scalar_one()

    def auth_session(self, session_id: str) -> AuthSession:
        with self.session() as s:
            return s.execute(select(AuthSession).where(col(AuthSession.id) == session_id)).scalar_one()

    def update_auth_session(self, session_id: str, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(AuthSession).where(col(AuthSession.id) == session_id).values(**values))
            s.commit()

    def throttle(self, key: str) -> LoginThrottle | None:
        with self.session() as s:
            return s.get(LoginThrottle, key)

    def update_throttle(self, key: str, **values: Any) -> None:
        with self.session() as s:
            s.execute(update(LoginThrottle).where(col(LoginThrottle.key) == key).values(**values))
            s.commit()

    def audit(self, action: str, since_id: int = 0) -> list[AuditEvent]:
        with self.session() as s:
            return list(s.execute(
                select(AuditEvent).where(col(AuditEvent.action) == action, col(AuditEvent.id) > since_id)
                .order_by(col(AuditEvent.id))
            ).scalars())

    def last_audit_id(self) -> int:
        with self.session() as s:
            return int(s.execute(select(col(AuditEvent.id)).order_by(col(AuditEvent.id).desc()).limit(1))
                       .scalar_one_or_none() or 0)


@pytest.fixture()
def db(engine: Engine) -> Db:
    return Db(engine)


@pytest.fixture()
def settings() -> Iterator[Settings]:
    """The cached settings object the app reads; change attributes with monkeypatch.setattr."""
    yield get_settings()


def session_id_of(access: str) -> str:
    return str(unverified(access)[1]["sid"])


def now_ts() -> int:
    return int(time.time())


def parse_dt(value: str) -> datetime:
    return datetime.fromisoformat(value)
