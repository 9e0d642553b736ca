"""API shapes of accounts: who am I, and the admin's account administration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.auth.schemas import Password
from app.core.actor import Role
from app.core.schemas import InputModel, OutputModel

# Accounts the API can create or convert to today. Partner kinds (landlord, police, outflow_city) get
# their own scope model with the sharing domain; until then they cannot be assigned.
AssignableRole = Literal[Role.worker, Role.supervisor, Role.admin, Role.auditor]
DivisionId = Annotated[str, StringConstraints(min_length=1, max_length=32)]


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
    role: AssignableRole
    password: Password = Field(description="Initial password; the user must change it at first sign-in")
    division_ids: list[DivisionId] = Field(
        default_factory=list, max_length=200,
        description="Workers: communities or grids; supervisors: the city, districts or streets; others: none")


class UserUpdate(InputModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    role: AssignableRole | None = None
    active: bool | None = None
    division_ids: list[DivisionId] | None = Field(
        default=None, max_length=200, description="Replaces the assignment (omit to keep it)")
    version: int = Field(ge=1, le=2**31 - 1, description="The version you read (optimistic locking)")


class PasswordResetIn(InputModel):
    temporary_password: Password


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
