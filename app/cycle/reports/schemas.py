"""API shapes of the monthly report (月报告): counts only, no personal data (docs/reports.md)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from app.core.schemas import InputModel, OutputModel

MAX_VERSION = 2**31 - 1


class Stock(OutputModel):
    """Registered stock on `as_of`: residents with a tenancy in the community that day."""

    total: int
    male: int
    female: int
    women_15_49: int


class Movement(OutputModel):
    arrivals: int
    departures: int


class VerificationFigures(OutputModel):
    period_id: str | None  # None: the month was not opened for the community
    period_state: str | None
    total: int
    pending: int
    verified: int
    coverage: float | None  # verified / total; None when there is no verification
    by_outcome: dict[str, int]


class VisitFigures(OutputModel):
    in_person: int
    phone: int
    in_person_met: int
    phone_met: int


class KeyPersons(OutputModel):
    registered: int
    visited: int
    share: float | None  # visited / registered; None when there is no key person


class FpChecks(OutputModel):
    checked: int
    by_status: dict[str, int]


class ServiceLine(OutputModel):
    item_id: str
    code: str
    name_zh: str
    name_en: str
    unit: str
    deliveries: int
    quantity: int


class Overdue(OutputModel):
    tasks: int
    tasks_by_kind: dict[str, int]
    assistance_requests: int


class SubmissionOut(OutputModel):
    """Where a report stands. `state` `open`: never submitted (the other fields null, `version` 0)."""

    state: str  # open, submitted, returned, resubmitted, approved
    version: int
    due_on: date
    late: bool | None  # the first submission came after due_on; null while open
    submissions: int
    first_submitted_at: datetime | None
    submitted_at: datetime | None
    submitted_by: str | None
    returned_at: datetime | None
    returned_by: str | None
    return_reason: str | None
    approved_at: datetime | None
    approved_by: str | None
    frozen: bool  # the figures are the ones frozen at submission (submitted, resubmitted, approved)



class CorrectionIn(InputModel):
    code: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="The figure's stable code, as in the CSV (stock.total, services.<item>.quantity, …)")
    value: int = Field(ge=0, le=1_000_000_000, description="The corrected count")
    reason: str = Field(min_length=1, max_length=200, description="Why the approved figure was wrong")


class CorrectionOut(OutputModel):
    """A correction of an approved report: the figure's value before it (`original`) and after (`corrected`)."""

    id: str
    seq: int  # 1, 2, … per report, in the order they were made (the files' "更正#n")
    code: str
    original: int
    corrected: int
    reason: str
    author: str
    created_at: datetime

class ReportOut(OutputModel):
    community_id: str
    community_code: str
    community_name: str
    month: str
    as_of: date  # the month's last day, or today for the current month
    complete: bool  # False while the month is still running: the figures so far
    generated_at: datetime
    stock: Stock
    movement: Movement
    verifications: VerificationFigures
    visits: VisitFigures
    key_persons: KeyPersons
    fp_documents: FpChecks
    services: list[ServiceLine]
    overdue: Overdue
    # Where the report stands (docs/reports.md): submitted, approved, … with the frozen figures above.
    submission: SubmissionOut | None = None
    # Corrections after the lock, oldest first; `corrected`: each corrected figure's current value by its code (the
    # figures above stay the approved ones).
    corrections: list[CorrectionOut] = Field(default_factory=list)
    corrected: dict[str, int] = Field(default_factory=dict)


class Totals(OutputModel):
    """A roll-up's figures summed over its communities. Shares (coverage, key-person share) are recomputed from
    the summed numerators and denominators, never averaged; `period_id`/`period_state` are null (one per
    community)."""

    communities: int
    stock: Stock
    movement: Movement
    verifications: VerificationFigures
    visits: VisitFigures
    key_persons: KeyPersons
    fp_documents: FpChecks
    services: list[ServiceLine]
    overdue: Overdue


class RollupOut(OutputModel):
    division_id: str
    division_code: str
    division_name: str
    level: str  # street, district or city
    month: str
    as_of: date
    complete: bool
    generated_at: datetime
    totals: Totals
    communities: list[ReportOut]  # the trace-back: each community's report, the same as its own report's figures
    completeness: float | None  # share of the communities whose report is submitted or approved; null: none
    timeliness: float | None  # share of the communities whose report was first submitted by its due day
    submitted: int  # communities counted in completeness
    on_time: int  # communities counted in timeliness
    # Corrections after the lock (docs/reports.md): each figure some community corrected, as the total with the
    # corrected values (`totals` keeps the approved sums), and the communities whose corrections it includes
    # (their rows list the corrections themselves).
    corrected: dict[str, int] = Field(default_factory=dict)
    corrected_communities: dict[str, list[str]] = Field(default_factory=dict)


class SubmitIn(InputModel):
    version: int = Field(ge=0, le=MAX_VERSION,
                         description="The submission's version you read; 0 for a report never submitted")


class ApproveIn(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION)


class ReturnIn(InputModel):
    version: int = Field(ge=1, le=MAX_VERSION)
    reason: str = Field(min_length=1, max_length=200, description="What the worker must fix (shown to them)")

