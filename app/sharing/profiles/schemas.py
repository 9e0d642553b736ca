"""API shapes of disclosure profiles."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from app.core.schemas import InputModel, OutputModel

Group = Literal["identity", "masked_identity", "contact", "residence", "tenancy", "verification", "fp_document"]
Kind = Literal["police", "landlord", "outflow_city"]


class ProfileOut(OutputModel):
    kind: Kind
    version: int
    field_groups: list[str]
    fields: list[str] = Field(description="What leaves: the groups' fields within the kind's allow-list")
    legal_basis: str
    purpose: str
    approval_required: bool = Field(description="A supervisor must approve each disclosure (partner pulls are "
                                                "refused while no approval exists: fail closed)")
    retention_days: int = Field(description="How long the partner may keep what it received")
    created_by: str | None
    created_at: datetime


class ProfileIn(InputModel):
    version: int = Field(ge=1, le=2**31 - 1, description="The current version, as read")
    field_groups: list[Group] = Field(min_length=1, max_length=7)
    legal_basis: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=200)
    approval_required: bool
    retention_days: int = Field(ge=1, le=3650)


class DisclosureBasis(OutputModel):
    """Sent with every partner answer: the profile it was built from and what binds the receiver."""

    profile_version: int
    legal_basis: str
    purpose: str
    retention_days: int = Field(description="Keep what you received no longer than this")
