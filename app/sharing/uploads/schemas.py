"""Police uploads: the station's report (codes and counts only: nothing of the register beyond what it sent) and
the staff's review shapes."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import Field

from app.core.schemas import InputModel, OutputModel
from app.people.register.schemas import DivisionCode
from app.sharing.uploads.models import Outcome, RowKind, RowState

MAX_VERSION = 2**31 - 1
REFERENCE = r"^[A-Za-z0-9._-]{1,64}$"


# --- the station's answer ---------------------------------------------------------------------------------

WITHHELD = "Null when the police profile lacks the residence group (`outcomes_withheld`)"


class UploadCounts(OutputModel):
    matched: int | None = Field(description=WITHHELD)
    new: int | None = Field(description=WITHHELD)
    departed: int | None = Field(description=WITHHELD)
    conflicting: int | None = Field(description=WITHHELD)
    refused: int


class UploadRowResult(OutputModel):
    row: int = Field(description="Row number: as the spreadsheet shows it (header = 1), or the JSON object's (from 1)")
    outcome: Outcome | None = Field(description=WITHHELD)


class UploadRowError(OutputModel):
    row: int
    field: str = Field(description="The layout's key (kind, id_number, name, sex, community_code, address, date, "
                                   "permit_no, hukou_code)")
    code: str


class PoliceUploadReport(OutputModel):
    reference: str
    dry_run: bool
    replayed: bool = Field(description="This reference and file were committed before: nothing changed")
    format: str = Field(description="csv, xlsx or json")
    rows: int
    counts: UploadCounts
    results: list[UploadRowResult] = Field(description="The accepted rows' outcomes")
    errors: list[UploadRowError] = Field(description="The refused rows' errors (a row may have several)")
    ignored_columns: list[str]
    outcomes_withheld: bool = Field(
        default=False, description="The police profile in force lacks the residence group: an outcome would tell the "
                                   "station where the register holds a person, so only the accepted rows and the "
                                   "refusals are answered (the office reconciles the rows all the same)")


# --- the staff's review queue -------------------------------------------------------------------------------

class DismissReason(StrEnum):
    not_at_address = "not_at_address"  # nobody of that name lives there
    register_correct = "register_correct"  # the register is right, the station's data is not
    duplicate = "duplicate"  # another row or record covers it
    other = "other"


class PoliceRowAccept(InputModel):
    """Accept a pending row: link it to a registered resident, or register the person (the register's rules:
    one person, one record; a person registered elsewhere becomes a transfer request)."""

    version: int = Field(ge=1, le=MAX_VERSION)
    resident_id: str | None = Field(default=None, max_length=32, description="Link: the resident registered with "
                                                                             "the row's ID number")
    dwelling_id: str | None = Field(default=None, max_length=32, description="Register: the dwelling (default: the "
                                                                             "one the address matched)")
    hukou_code: DivisionCode | None = Field(default=None, description="Register: 户籍地 code (default: the row's)")


class PoliceRowDismiss(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION)
    reason: DismissReason


class PoliceRowOut(OutputModel):
    id: str
    batch_id: str
    batch_reference: str
    station_id: str
    row_number: int
    kind: RowKind
    outcome: Outcome
    state: RowState
    conflict_fields: list[str]
    id_number: str
    name: str
    sex: str
    community_id: str
    address: str | None
    event_date: date
    permit_no: str | None
    hukou_code: str | None
    dwelling_id: str | None
    resident_id: str | None = Field(description="Withheld when the record lies outside your area")
    verification_id: str | None = Field(description="A departed row: the verification it proposed LEFT_CITY on")
    task_id: str | None = Field(description="A departed row without a verification to propose on: the worker's task")
    visit_due: date | None = Field(description="A new row: the worker visits by this city date (the report's date "
                                               "+ NEW_ARRIVAL_VISIT_DAYS), like a new arrival's visit task")
    reason: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime
    version: int
