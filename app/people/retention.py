"""Storage limitation (PIPL art. 19 and 47): anonymise residents who left long ago.

`anonymise` runs as a job (`migrant retention-run`). A resident is due when their status is LEFT or
ARCHIVED, `left_on` is more than N years ago (RETENTION_YEARS, default 3) and they are not anonymised yet;
a merged duplicate (ARCHIVED, `merged_into_id` set) follows the record it was merged into.

What changes, per resident:
- the record: name → "已匿名"; ID number, phone, ethnicity, 户籍 address, employer, occupation and residence
  permit number cleared; birth date → 1 January of the birth year (age statistics survive); key-person
  flag off; `anonymised_at` set (one timestamp per run, also in the run's audit event);
- the reproductive-health record is deleted;
- 婚育证明 numbers are cleared (status and dates stay for statistics);
- correction requests lose the requested values, note and decision reason; transfer requests their reason.
What stays: sex, birth year, 户籍 division code, status and dates, tenancies (residence history at dwelling
level, for the register's statistics), the disclosure ledger (accountability) and the audit log.

The audit log is never touched (the database refuses UPDATE/DELETE on it anyway). The run writes one audit
event, `retention.anonymise`, with counts: record ids are not listed (they could be many); the rows of
a run are exactly those whose `anonymised_at` equals the event's `detail.anonymised_at`.

Bulk statements in batches: no per-row ORM events (they would be one audit row per resident).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from app.core.errors import Unprocessable
from app.core.types import city_today, utcnow
from app.ledger import audit
from app.people.models import (
    CorrectionRequest,
    FpDocument,
    HealthRecord,
    Resident,
    ResidentStatus,
    TransferRequest,
)

ANONYMISED_NAME = "已匿名"
BATCH = 500
CLEARED_FIELDS = ("name", "id_number", "phone", "ethnicity", "hukou_address", "employer", "occupation",
                  "residence_permit_no", "birth_date")
DUE_STATUSES = (ResidentStatus.left.value, ResidentStatus.archived.value)


class RetentionYearsInvalid(Unprocessable):
    code = "retention_years_invalid"
    en = "The retention period must be at least one year."
    zh = "保存期限至少为一年。"


@dataclass
class RetentionResult:
    older_than_years: int
    cutoff: date
    anonymised_at: datetime | None = None
    dry_run: bool = False
    residents: int = 0
    health_records: int = 0
    fp_documents: int = 0
    correction_requests: int = 0
    transfer_requests: int = 0

    def as_detail(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        data["anonymised_at"] = self.anonymised_at.isoformat() if self.anonymised_at else None
        return data


def cutoff_for(years: int, today: date) -> date:
    """The day `years` years before `today` (29 February falls back to the 28th)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def _due(cutoff: date) -> Any:
    return select(col(Resident.id), col(Resident.birth_date)).where(
        col(Resident.anonymised_at).is_(None),
        col(Resident.status).in_(DUE_STATUSES),
        col(Resident.left_on).is_not(None),
        col(Resident.left_on) < cutoff,
    ).order_by(col(Resident.id))


def _merged_into_anonymised() -> Any:
    survivor = aliased(Resident)
    return select(col(Resident.id), col(Resident.birth_date)).where(
        col(Resident.anonymised_at).is_(None),
        col(Resident.merged_into_id).in_(
            select(col(survivor.id)).where(col(survivor.anonymised_at).is_not(None))),
    ).order_by(col(Resident.id))


def anonymise(session: Session, older_than_years: int, *, today: date | None = None, dry_run: bool = False,
              actor_role: str = "system") -> RetentionResult:
    """Anonymise every resident due; flushes, never commits. Returns what was (or would be) changed."""
    if older_than_years < 1:
        raise RetentionYearsInvalid({"older_than_years": older_than_years})
    today = today or city_today()
    result = RetentionResult(older_than_years=older_than_years, cutoff=cutoff_for(older_than_years, today),
                             dry_run=dry_run)
    if dry_run:
        result.residents = len(session.execute(_due(result.cutoff)).all())
        return result
    now = utcnow()
    result.anonymised_at = now
    rows = list(session.execute(_due(result.cutoff)).all())
    # Merged duplicates follow their survivor, possibly through a chain of merges.
    for _ in range(10):
        for start in range(0, len(rows), BATCH):
            _anonymise_batch(session, rows[start:start + BATCH], now, result)
        rows = list(session.execute(_merged_into_anonymised()).all())
        if not rows:
            break
    audit.record(session, "retention.anonymise", target_type="residents", fields=CLEARED_FIELDS,
                 detail=result.as_detail(), actor_role=actor_role, purpose="retention")
    session.flush()
    return result


def _anonymise_batch(session: Session, rows: Sequence[Any], now: datetime, result: RetentionResult) -> None:
    if not rows:
        return
    ids = [r[0] for r in rows]
    table = Resident.__table__  # type: ignore[attr-defined]
    session.execute(
        table.update().where(table.c.id == bindparam("rid")).values(
            name=ANONYMISED_NAME, id_number=None, phone=None, ethnicity=None, hukou_address=None, employer=None,
            occupation=None, residence_permit_no=None, birth_date=bindparam("born"), key_person=False,
            anonymised_at=now, updated_at=now, version=table.c.version + 1,
        ),
        [{"rid": rid, "born": date(born.year, 1, 1)} for rid, born in rows],
    )
    result.residents += len(ids)
    result.health_records += _bulk(session, delete(HealthRecord).where(col(HealthRecord.resident_id).in_(ids)))
    result.fp_documents += _bulk(session, update(FpDocument).where(
        col(FpDocument.resident_id).in_(ids), col(FpDocument.number).is_not(None)).values(number=None, updated_at=now))
    result.correction_requests += _bulk(session, update(CorrectionRequest).where(
        col(CorrectionRequest.resident_id).in_(ids)).values(changes="{}", note=None, decision_reason=None))
    result.transfer_requests += _bulk(session, update(TransferRequest).where(
        col(TransferRequest.resident_id).in_(ids), col(TransferRequest.reason).is_not(None)).values(reason=None))


def _bulk(session: Session, statement: Any) -> int:
    """Run a bulk UPDATE/DELETE (no ORM events, no session sync: nothing of these rows is loaded)."""
    outcome = session.execute(statement, execution_options={"synchronize_session": False})
    return int(getattr(outcome, "rowcount", 0) or 0)
