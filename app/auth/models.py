"""Users, their scope assignments, login sessions (refresh-token families) and login throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow

# Login bookkeeping: recorded by explicit `auth.*` audit events instead of one event per row change.
UNAUDITED = {"info": {"audited": False}}


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    username: str = Field(max_length=64, unique=True, index=True)
    display_name: str = Field(max_length=100)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=255)
    active: bool = True
    must_change_password: bool = False
    password_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class UserScope(SQLModel, table=True):
    """A division (community or grid for workers, a subtree root for supervisors) a user works in.

    `area_path` is the division's materialised path, kept here so the actor's scope is read with the user in
    one statement; relocating divisions rewrites it like every other `area_path` (app/places).
    """

    __tablename__ = "user_scopes"
    __table_args__ = (Index("ix_user_scopes_area_path", "area_path",
                            postgresql_ops={"area_path": "varchar_pattern_ops"}),)

    user_id: str = Field(foreign_key="users.id", primary_key=True, max_length=32, ondelete="CASCADE")
    division_id: str = Field(foreign_key="divisions.id", primary_key=True, max_length=32, index=True)
    area_path: str = Field(max_length=120)


class AuthSession(SQLModel, table=True):
    """One login: the family every rotated refresh token of that login belongs to."""

    __tablename__ = "auth_sessions"
    __table_args__ = (UNAUDITED,)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=32, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=40)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"
    __table_args__ = (UNAUDITED,)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    session_id: str = Field(foreign_key="auth_sessions.id", index=True, max_length=32, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """Failure counters per account name and per client address, keyed by an HMAC (no names stored).

    Unknown names are counted and locked exactly like real ones, so a lockout reveals nothing.
    """

    __tablename__ = "login_throttle"
    __table_args__ = (UNAUDITED,)

    key: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    window_started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
