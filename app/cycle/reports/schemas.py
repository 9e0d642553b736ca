"""API shapes of the monthly report (月报告): counts only, no personal data (docs/reports.md)."""

from __future__ import annotations

from datetime import date, datetime

from app.core.schemas import OutputModel


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
    completeness: float | None  # share of communities that submitted: null until reports can be submitted
    timeliness: float | None  # share submitted on time: null until reports can be submitted
    completeness_note: str  # why completeness and timeliness are null
