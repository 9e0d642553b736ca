from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.auth.models import Role
from app.core.schemas import InputModel, OutputModel


class LoginIn(InputModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class RefreshIn(InputModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokenOut(OutputModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    must_change_password: bool


class PasswordChangeIn(InputModel):
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ScopeDivision(OutputModel):
    id: str
    code: str
    name: str
    level: str
    path: str


class MeOut(OutputModel):
    id: str
    username: str
    display_name: str
    role: Role
    must_change_password: bool
    scope: list[ScopeDivision] | None = Field(description="Assigned divisions; null means city-wide")


class UserCreate(InputModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    display_name: str = Field(min_length=1, max_length=100)
    role: Role
    password: str = Field(min_length=1, max_length=256)
    division_ids: list[str] = Field(default_factory=list, max_length=200)


class UserUpdate(InputModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Role | None = None
    active: bool | None = None
    division_ids: list[str] | None = Field(default=None, max_length=200)
    version: int = Field(ge=1, le=2**31 - 1, description="The version you read (optimistic locking)")


class PasswordResetIn(InputModel):
    temporary_password: str = Field(min_length=1, max_length=256)


class UserOut(OutputModel):
    id: str
    username: str
    display_name: str
    role: Role
    active: bool
    must_change_password: bool
    division_ids: list[str]
    created_at: datetime
    updated_at: datetime
    version: int
