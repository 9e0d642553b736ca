"""A station's upload: read, checked, reconciled; a dry run answers and writes nothing, a commit stores the batch
(docs/sharing.md, "Police uploads").

Idempotent per station and batch reference: the same file under the same reference answers the stored report
again (`replayed`) and changes nothing; another file under a used reference is 409 `batch_reference_reused`.
The answer carries counts and per-row codes only. An outcome that reveals a resident's registration (matched,
departed, conflicting within the jurisdiction) is a disclosure: one ledger entry per resident (identity and
residence field groups, the police profile's legal basis), in the answering transaction.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.queries import among
from app.core.types import utcnow
from app.ledger import audit
from app.people.models import Resident
from app.sharing.ledger import disclose
from app.sharing.profiles.service import Profile, pull_profile
from app.sharing.uploads import rules
from app.sharing.uploads.errors import BatchReferenceReused
from app.sharing.uploads.handoff import propose_departure, report_arrival
from app.sharing.uploads.models import Outcome, PoliceBatch, PoliceReportRow
from app.sharing.uploads.reconcile import Classified, reconcile
from app.sharing.uploads.schemas import PoliceUploadReport, UploadCounts, UploadRowError, UploadRowResult

PARTNER_KIND = "police"
FIELD_GROUPS = ("identity", "residence")
RESIDENCE = "residence"  # an outcome says whether and where the register holds the person


def upload(session: Session, actor: Actor, data: bytes, *, reference: str, dry_run: bool) -> PoliceUploadReport:
    """The answer is a disclosure under the police profile: none, or one needing approval, refuses the upload
    (409 `profile_missing`, 403 `disclosure_needs_approval`), as every police route does."""
    profile = pull_profile(session, PARTNER_KIND)
    digest = hashlib.sha256(data).hexdigest()
    stored = session.execute(select(PoliceBatch).where(
        col(PoliceBatch.station_id) == actor.user_id, col(PoliceBatch.reference) == reference)).scalar_one_or_none()
    if stored is not None:
        if stored.digest != digest:
            raise BatchReferenceReused()
        return _replay(session, actor, stored, dry_run, profile)
    parsed = rules.read_upload(data)
    rules.mark_duplicates(parsed.rows)
    classified = reconcile(session, actor, parsed.rows)
    report = _report(reference, dry_run, parsed, classified)
    counts = report.counts.model_dump()
    if not dry_run:
        batch = _store(session, actor, reference, digest, parsed, classified, report)
        audit.record(session, "sharing.police_upload", target_type="police_batches", target_id=batch.id,
                     detail={**counts, "rows": report.rows, "format": parsed.format})
    else:
        audit.record(session, "sharing.police_upload.dry_run", target_type="police_batches",
                     detail={**counts, "rows": report.rows, "format": parsed.format})
    if not profile.allows(RESIDENCE):
        return _withheld(report)
    _disclose(session, actor, profile, [c.disclosed for c in classified])
    return report


def _withheld(report: PoliceUploadReport) -> PoliceUploadReport:
    """The answer without outcomes, for a police profile without the residence group: which rows were accepted
    and why others were refused, nothing of the register (so nothing enters the disclosure ledger)."""
    return report.model_copy(update={
        "counts": UploadCounts(matched=None, new=None, departed=None, conflicting=None, refused=report.counts.refused),
        "results": [UploadRowResult(row=r.row, outcome=None) for r in report.results], "outcomes_withheld": True})


def _report(reference: str, dry_run: bool, parsed: rules.Upload, classified: list[Classified]) -> PoliceUploadReport:
    refused = [r for r in parsed.rows if r.errors]
    tally = {o: sum(1 for c in classified if c.reported is o) for o in Outcome}
    return PoliceUploadReport(
        reference=reference, dry_run=dry_run, replayed=False, format=parsed.format, rows=len(parsed.rows),
        counts=UploadCounts(matched=tally[Outcome.matched], new=tally[Outcome.new], departed=tally[Outcome.departed],
                            conflicting=tally[Outcome.conflicting], refused=len(refused)),
        results=[UploadRowResult(row=c.row.number, outcome=c.reported)
                 for c in sorted(classified, key=lambda c: c.row.number)],
        errors=[UploadRowError(row=r.number, field=key, code=code) for r in refused for key, code in r.errors],
        ignored_columns=parsed.ignored)


def _store(session: Session, actor: Actor, reference: str, digest: str, parsed: rules.Upload,
           classified: list[Classified], report: PoliceUploadReport) -> PoliceBatch:
    counts = report.counts
    batch = PoliceBatch(station_id=actor.user_id, reference=reference, digest=digest, format=parsed.format,
                        rows=report.rows, matched=counts.matched or 0, new=counts.new or 0,
                        departed=counts.departed or 0, conflicting=counts.conflicting or 0, refused=counts.refused,
                        refusals=json.dumps([[e.row, e.field, e.code] for e in report.errors]))
    session.add(batch)
    session.flush()
    stored = [_row(actor, batch, c) for c in classified]
    session.add_all(stored)
    session.flush()
    for c, row in zip(classified, stored, strict=True):
        if c.outcome is Outcome.departed and c.resident is not None:
            handoff = propose_departure(session, actor, c.resident, row.id, row.event_date)
            row.verification_id, row.task_id = handoff.verification_id, handoff.task_id
            row.updated_at = utcnow()
            session.add(row)
        elif c.outcome is Outcome.new:
            row.task_id, row.updated_at = report_arrival(session, row), utcnow()
            session.add(row)
    session.flush()
    return batch


def _row(actor: Actor, batch: PoliceBatch, c: Classified) -> PoliceReportRow:
    row = c.row
    assert row.kind is not None and row.id_number and row.sex and row.event_date
    return PoliceReportRow(
        batch_id=batch.id, station_id=actor.user_id, row_number=row.number, kind=row.kind.value,
        outcome=c.outcome.value, reported=c.reported.value, state=c.state.value,
        conflict_fields=",".join(c.conflict_fields) or None, id_number=row.id_number, name=row.values["name"],
        sex=row.sex, community_id=c.community.id, address=row.values.get("address") or None,
        event_date=row.event_date, permit_no=row.values.get("permit_no") or None,
        hukou_code=row.values.get("hukou_code") or None,
        area_path=c.dwelling.area_path if c.dwelling else c.community.path,
        district_code=c.community.district_code or "", dwelling_id=c.dwelling.id if c.dwelling else None,
        resident_id=c.resident.id if c.resident else None)


def _replay(session: Session, actor: Actor, batch: PoliceBatch, dry_run: bool,
            profile: Profile) -> PoliceUploadReport:
    """The stored answer to a file committed before under this reference: nothing is written but the disclosure
    entries the answer repeats."""
    stored = session.execute(select(PoliceReportRow).where(col(PoliceReportRow.batch_id) == batch.id)
                             .order_by(col(PoliceReportRow.row_number))).scalars().all()
    report = PoliceUploadReport(
        reference=batch.reference, dry_run=dry_run, replayed=True, format=batch.format, rows=batch.rows,
        counts=UploadCounts(matched=batch.matched, new=batch.new, departed=batch.departed,
                            conflicting=batch.conflicting, refused=batch.refused),
        results=[UploadRowResult(row=r.row_number, outcome=Outcome(r.reported)) for r in stored],
        errors=[UploadRowError(row=n, field=f, code=c) for n, f, c in json.loads(batch.refusals)],
        ignored_columns=[])
    audit.record(session, "sharing.police_upload.replay", target_type="police_batches", target_id=batch.id,
                 detail={"rows": batch.rows})
    if not profile.allows(RESIDENCE):
        return _withheld(report)
    revealed = [r.resident_id for r in stored if r.reported != Outcome.new.value and r.resident_id]
    residents = session.execute(select(Resident).where(among(col(Resident.id), revealed))).scalars().all() \
        if revealed else []
    _disclose(session, actor, profile, list(residents))
    return report


def _disclose(session: Session, actor: Actor, profile: Profile, residents: list[Resident | None]) -> None:
    disclose(session, partner_kind=PARTNER_KIND, partner_id=actor.user_id,
             residents=[(r.id, r.district_code) for r in residents if r is not None],
             field_groups=FIELD_GROUPS, legal_basis=profile.legal_basis, action="sharing.police_upload.disclose")
