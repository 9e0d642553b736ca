"""API shapes of machine-client administration (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.core.actor import Role
from app.core.schemas import InputModel, OutputModel

MachineKind = Literal[Role.police, Role.outflow_city]
DivisionId = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ClientCreate(InputModel):
    client_id: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                           description="The OAuth client id (also the account's username)")
    display_name: str = Field(min_length=1, max_length=100)
    kind: MachineKind


class JurisdictionIn(InputModel):
    version: int = Field(ge=1, le=2**31 - 1)
    division_ids: list[DivisionId] | None = Field(
        default=None, max_length=200, description="Police: the streets and communities of the station")
    hukou_prefix: str | None = Field(default=None, pattern=r"^[0-9]{2,6}$",
                                     description="Outflow city: the 户籍地 division-code prefix (e.g. 411600)")


class SecretOut(OutputModel):
    id: str
    created_at: datetime
    retired_at: datetime | None
    last_used_at: datetime | None


class NewSecretOut(OutputModel):
    id: str
    client_id: str
    client_secret: str = Field(description="Shown once: only its hash is kept")
    created_at: datetime


class AreaOut(OutputModel):
    division_id: str
    path: str


class ClientOut(OutputModel):
    user_id: str
    client_id: str
    display_name: str
    kind: MachineKind
    active: bool
    areas: list[AreaOut]
    hukou_prefix: str | None
    secrets: list[SecretOut] = Field(description="Secrets, valid and retired (never their values)")
    version: int
    created_at: datetime
