"""API shapes of landlord accounts and the dwellings landlords register: partner shapes (what a landlord sends
and sees: their own account and dwellings) and staff shapes (the confirmation queues; identifiers masked)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from app.auth.schemas import Password
from app.core.schemas import InputModel, OutputModel
from app.people import rules
from app.places.models import DwellingKind
from app.places.schemas import normalise_text
from app.sharing.landlords.models import AccountRejectReason, ClaimState, RejectReason

MAX_VERSION = 2**31 - 1
PHONE = Field(max_length=20, description="Mobile; +86/0086 and separators stripped",
              json_schema_extra={"pattern": rules.MOBILE_INPUT})


class _AddressIn(InputModel):
    community_id: str = Field(min_length=1, max_length=32, description="The community the dwelling lies in")
    address: str = Field(min_length=1, max_length=200)
    kind: DwellingKind = DwellingKind.rental

    @field_validator("address", mode="after")
    @classmethod
    def _address(cls, value: str) -> str:
        value = normalise_text(value)
        if not value:
            raise PydanticCustomError("rule.address_required", "The address is empty")
        return value


# --- partner shapes -------------------------------------------------------------------------------------


class LandlordRegisterIn(_AddressIn):
    """Self-registration: the landlord, their sign-in and their first dwelling, all pending a worker."""

    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=15, max_length=18, description="18 digits (15-digit legacy IDs converted)")
    phone: str = PHONE
    password: Password = Field(description="At least 8 characters from 3 classes (docs/security.md)")


class RegisterReceived(OutputModel):
    status: str = Field(description="Always `received`: the answer says nothing about existing accounts")


class DwellingClaimIn(_AddressIn):
    pass


class LandlordMe(OutputModel):
    username: str
    name: str
    phone_masked: str
    confirmed: bool
    community_id: str | None


class MyDwelling(OutputModel):
    """A dwelling the landlord registered, and what became of it."""

    id: str = Field(description="The registration's id")
    community_id: str
    address: str
    kind: str
    state: ClaimState
    reason: RejectReason | None
    dwelling_id: str | None = Field(description="The confirmed dwelling (report tenants against this id)")
    created_at: datetime


class OwnDwelling(OutputModel):
    """A dwelling on record as the landlord's (confirmed)."""

    id: str
    community_id: str
    address: str
    kind: str


# --- staff shapes ---------------------------------------------------------------------------------------


class LandlordAccountCreate(InputModel):
    landlord_id: str = Field(max_length=32, description="A landlord you see (GET /landlords)")
    phone: str | None = Field(default=None, max_length=20, json_schema_extra={"pattern": rules.MOBILE_INPUT},
                              description="The sign-in; the landlord's recorded phone when omitted")
    initial_password: Password = Field(description="The landlord must change it at first sign-in")


class LandlordAccountOut(OutputModel):
    user_id: str
    landlord_id: str | None
    name: str
    id_number_masked: str
    phone_masked: str
    community_id: str | None
    district_code: str
    self_registered: bool
    confirmed_at: datetime | None
    confirmed_by: str | None
    created_at: datetime
    version: int


class DecisionIn(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION, description="The version you read (409 stale_version otherwise)")


class AccountRejectIn(DecisionIn):
    reason: AccountRejectReason


class ClaimConfirmIn(DecisionIn):
    dwelling_id: str | None = Field(
        default=None, max_length=32,
        description="An existing dwelling of the community to attach; by default the one at the address, else a "
                    "new dwelling is created there")


class ClaimRejectIn(DecisionIn):
    reason: RejectReason


class ClaimOut(OutputModel):
    id: str
    account_id: str
    landlord_id: str | None
    landlord_name: str
    community_id: str
    address: str
    kind: str
    state: ClaimState
    reason: RejectReason | None
    dwelling_id: str | None
    decided_by: str | None
    decided_at: datetime | None
    created_at: datetime
    version: int
