"""Bulk import of residents from an office's register (XLSX or CSV): a dry run reports every row's errors,
a commit writes every row or none. Reading files (formats, encodings, size limits) is in app/core/tabular.py.

Rows: the header row names the columns (Chinese as in the template, or the API's English field names;
spaces, full-width forms and a trailing "*" are ignored; unknown columns are ignored and listed by letter).
The dwelling is named either by 住所编号 (the dwelling id shown in the app and in the template's 住所清单
sheet) or by 社区代码 (12-digit community code) + 住所地址 (the address as registered in that community,
spaces and full-width forms ignored); when both are given they must agree.

Every row is checked with the rules of POST /residents (ResidentCreate's limits; ID format, birth date,
check character, sex and birth-date agreement; mobile number; dates; the dwelling within the caller's
scope; one person, one record) plus duplicates within the file, and every failure of every row is
reported as {row, column, field, code, message}. Unlike POST, an ID held by another community (registered
there, or left from there) is only reported (`resident_registered_elsewhere`): an import never opens
transfer requests. A person who left the caller's own area and is listed again is registered again on the
old record, as POST does (`to_reregister`), when the name matches the record (else
`resident_identity_mismatch`).

Commit: new people get the rows `service.create_resident` writes (resident + tenancy, key-person flag,
likely-duplicate flags), inserted 1,000 at a time with bulk statements, which record the same per-row
audit events the ORM listener would (`residents.create`, `tenancies.create`: ids and field names);
returning people go through `service.create_resident` itself. One `resident.import` event carries the
counts. A dry run writes no data, only its own
`resident.import.dry_run` audit event (it looks ID numbers up city-wide, as POST does).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from app.core.actor import Actor
from app.core.bulk import table_of
from app.core.errors import AppError
from app.core.tabular import FileTable, ImportEmpty, Limits, read_table
from app.core.types import city_today, new_id, utcnow
from app.ledger import audit, changes
from app.people import rules
from app.people.imports.errors import ImportConflict, ImportInvalid
from app.people.imports.rules import BY_KEY, Row, check_row, header, norm, row_message
from app.people.imports.schemas import MAX_LISTED_ERRORS, ResidentImportReport, ResidentImportRowError
from app.people.models import Resident, ResidentStatus, Tenancy
from app.people.register import service
from app.places.models import Division, Dwelling, Level

IMPORT_MAX_ROWS = 20_000
IMPORT_MAX_BYTES = 8 * 1024 * 1024
LIMITS = Limits(max_bytes=IMPORT_MAX_BYTES, max_rows=IMPORT_MAX_ROWS)
CHUNK = 500
FLUSH_EVERY = 1000



def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _resolve_dwellings(session: Session, actor: Actor, rows: list[Row]) -> None:
    by_id: dict[str, Dwelling] = {}
    ids = sorted({r.values["dwelling_id"] for r in rows if r.values.get("dwelling_id")})
    for chunk in _chunks(ids):
        stmt = select(Dwelling).where(col(Dwelling.id).in_(chunk), col(Dwelling.active),
                                      actor.area_filter(Dwelling.area_path))
        by_id.update((d.id, d) for d in session.execute(stmt).scalars())
    codes = sorted({norm(r.values["community_code"]) for r in rows if r.values.get("community_code")})
    communities: dict[str, list[str]] = {}  # code -> community ids
    community_codes: dict[str, str] = {}  # community id -> code
    for chunk in _chunks(codes):
        by_code = select(col(Division.id), col(Division.code)).where(
            col(Division.code).in_(chunk), col(Division.level) == Level.community.value, col(Division.active))
        for division_id, code in session.execute(by_code).all():
            communities.setdefault(code, []).append(division_id)
            community_codes[division_id] = code
    by_address: dict[tuple[str, str], list[Dwelling]] = {}
    for chunk in _chunks(sorted(community_codes)):
        stmt = select(Dwelling).where(col(Dwelling.community_id).in_(chunk), col(Dwelling.active),
                                      actor.area_filter(Dwelling.area_path))
        for d in session.execute(stmt).scalars():
            by_address.setdefault((d.community_id, norm(d.address)), []).append(d)
    dwelling_codes = {d.community_id for d in by_id.values()} - community_codes.keys()
    for chunk in _chunks(sorted(dwelling_codes)):
        named = select(col(Division.id), col(Division.code)).where(col(Division.id).in_(chunk))
        community_codes.update((i, c) for i, c in session.execute(named).all())
    for row in rows:
        given_id = row.values.get("dwelling_id", "")
        code = norm(row.values.get("community_code", ""))
        address = norm(row.values.get("dwelling_address", ""))
        if given_id:
            row.dwelling = by_id.get(given_id)
            if row.dwelling is None:
                row.error("dwelling_id", "dwelling_not_found")
            elif (code and community_codes.get(row.dwelling.community_id) != code) or (
                    address and norm(row.dwelling.address) != address):
                row.error("dwelling_id", "dwelling_mismatch")
        elif code and address:
            found = [d for cid in communities.get(code, []) for d in by_address.get((cid, address), [])]
            if len(found) == 1:
                row.dwelling = found[0]
            else:
                row.error("dwelling_address", "dwelling_ambiguous" if found else "dwelling_not_found")


def _check_people(session: Session, actor: Actor, rows: list[Row]) -> None:
    """One person, one record: duplicates in the file, and IDs the city already holds (as POST decides)."""
    first_row: dict[str, int] = {}
    for row in rows:
        if row.id_number is None:
            continue
        if row.id_number in first_row:
            row.error("id_number", "duplicate_in_file")
        else:
            first_row[row.id_number] = row.number
    existing: dict[str, Resident] = {}
    for chunk in _chunks(sorted(first_row)):
        stmt = select(Resident).where(col(Resident.id_number).in_(chunk))
        existing.update((r.id_number, r) for r in session.execute(stmt).scalars() if r.id_number)
    for row in rows:
        found = existing.get(row.id_number or "")
        if found is None:
            continue
        holder = service.survivor_of(session, found)
        here = actor.sees_path(holder.area_path)
        if holder.status == ResidentStatus.registered.value:
            row.error("id_number", "resident_exists" if here else "resident_registered_elsewhere")
        elif holder.merged_into_id is not None or holder.anonymised_at is not None:
            row.error("id_number", "resident_exists")
        elif not here:
            # Left from another area: only the holding community hands the record over (POST asks it).
            row.error("id_number", "resident_registered_elsewhere")
        elif row.body is not None and not rules.same_name(holder.name, row.body.name):
            row.error("name", "resident_identity_mismatch")
        elif (holder.sex, holder.birth_date) != (row.sex, row.birth_date):
            row.error("id_number", "resident_identity_mismatch")
        else:
            row.returning = True


# --- the import -------------------------------------------------------------------------------------------

def import_residents(session: Session, actor: Actor, data: bytes, *, dry_run: bool, lang: str) -> ResidentImportReport:
    table = read_table(data, LIMITS)
    if len(table.rows) < 2:
        raise ImportEmpty()
    positions, ignored = header(table.rows[0][1])
    rows = [check_row(actor, number, cells, positions) for number, cells in table.rows[1:]]
    _resolve_dwellings(session, actor, rows)
    _check_people(session, actor, rows)
    report = _report(table, rows, ignored, dry_run, lang)
    counts = {"rows": report.rows, "errors": report.error_count, "to_create": report.to_create,
              "to_reregister": report.to_reregister, "format": table.format}
    if dry_run:
        audit.record(session, "resident.import.dry_run", target_type="residents", detail=counts,
                     purpose="bulk_import")
        return report
    if report.error_rows:
        raise ImportInvalid(report.model_dump(mode="json"))
    report.created, report.reregistered = _commit(session, actor, rows, lang, report)
    audit.record(session, "resident.import", target_type="residents",
                 detail={**counts, "created": report.created, "reregistered": report.reregistered},
                 purpose="bulk_import")
    return report


def _report(table: FileTable, rows: list[Row], ignored: list[str], dry_run: bool, lang: str) -> ResidentImportReport:
    errors: list[ResidentImportRowError] = []
    count = 0
    for row in sorted(rows, key=lambda r: r.number):
        seen: set[tuple[str, str]] = set()
        for key, code in row.errors:
            if (key, code) in seen:
                continue
            seen.add((key, code))
            count += 1
            if len(errors) < MAX_LISTED_ERRORS:
                column = BY_KEY.get(key)
                errors.append(ResidentImportRowError(row=row.number, column=column.header if column else None,
                                             field=key, code=code, message=row_message(code, lang)))
    bad = sum(1 for r in rows if r.errors)
    good = [r for r in rows if not r.errors]
    return ResidentImportReport(
        dry_run=dry_run, format=table.format, encoding=table.encoding, rows=len(rows), valid_rows=len(good),
        error_rows=bad, error_count=count, to_create=sum(1 for r in good if not r.returning),
        to_reregister=sum(1 for r in good if r.returning), created=0, reregistered=0, ignored_columns=ignored,
        errors=errors)


def _commit(session: Session, actor: Actor, rows: list[Row], lang: str,
            report: ResidentImportReport) -> tuple[int, int]:
    """Write every row (the caller has checked there are no errors); any late failure undoes everything."""
    fresh = [_resident_values(actor, row) for row in rows if not row.returning]
    residents, tenancies = table_of(Resident), table_of(Tenancy)
    try:
        for start in range(0, len(fresh), FLUSH_EVERY):
            chunk = fresh[start:start + FLUSH_EVERY]
            session.execute(residents.insert(), [values for values, _ in chunk])
            session.execute(tenancies.insert(), [tenancy for _, tenancy in chunk])
            changes.mark_ids(session, residents, [values["id"] for values, _ in chunk])
    except IntegrityError:
        raise ImportConflict() from None
    # Bulk statements bypass the automatic write audit: record the same events it would (ids, field names).
    for values, tenancy in fresh:
        for table, row_values in (("residents", values), ("tenancies", tenancy)):
            audit.record(session, f"{table}.create", target_type=table, target_id=row_values["id"],
                         fields=[k for k, v in row_values.items() if v is not None])
    _flag_duplicates(session, [values for values, _ in fresh])
    late: list[tuple[Row, AppError]] = []
    for row in rows:
        if row.returning:
            assert row.body is not None and row.dwelling is not None
            try:
                # An imported register is existing stock, not new arrivals: no new-arrival visit tasks.
                service.create_resident(session, actor, row.body.model_copy(update={"dwelling_id": row.dwelling.id}),
                                        arrival_task=False)
            except AppError as exc:  # the record changed since the check; report it like any row error
                late.append((row, exc))
    if late:
        for row, error in late:
            row.error("id_number", error.code)
        failed = _report(FileTable(report.format, report.encoding, []), rows, report.ignored_columns, False, lang)
        raise ImportInvalid(failed.model_dump(mode="json"))
    return len(fresh), sum(1 for r in rows if r.returning)


def _resident_values(actor: Actor, row: Row) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resident and tenancy rows service.create_resident writes for a new person (its checks passed),
    with the model's defaults for every other column. Built as plain rows: constructing 20,000 ORM objects
    costs far more than the insert itself."""
    body, dwelling = row.body, row.dwelling
    assert body is not None and dwelling is not None and row.id_number and row.sex and row.birth_date
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id(), "community_id": dwelling.community_id, "dwelling_id": dwelling.id,
        "area_path": dwelling.area_path, "district_code": dwelling.district_code, "name": body.name, "sex": row.sex,
        "birth_date": row.birth_date, "id_number": row.id_number, "id_verified": row.verified,
        "id_accepted_by": None if row.verified else actor.user_id, "phone": row.phone, "ethnicity": body.ethnicity,
        "hukou_code": body.hukou_code, "hukou_address": body.hukou_address, "arrival_date": body.arrival_date,
        "marital_status": body.marital_status.value, "employer": body.employer, "occupation": body.occupation,
        "residence_permit_no": body.residence_permit_no, "status": ResidentStatus.registered.value,
        "left_on": None, "left_reason": None, "key_person": False, "merged_into_id": None, "anonymised_at": None,
        "created_by": actor.user_id, "created_at": now, "updated_at": now, "version": 1,
    }
    # A new person has no health record and no 婚育证明 yet: refresh_key_person's inputs are known.
    values["key_person"] = service.is_key_person(cast(Any, SimpleNamespace(**values)), None, [], city_today())
    tenancy = {"id": new_id(), "resident_id": values["id"], "dwelling_id": dwelling.id,
               "area_path": dwelling.area_path, "district_code": dwelling.district_code,
               "move_in": body.arrival_date, "move_out": None, "source": body.source.value, "created_at": now}
    return values, tenancy


def _flag_duplicates(session: Session, fresh: list[dict[str, Any]]) -> None:
    """service.flag_likely_duplicates for every new person who could have a twin (same name, birth date and
    phone): one batched lookup finds the candidates, the service decides and writes the flags."""
    keys = sorted({(r["name"], r["birth_date"]) for r in fresh if r["phone"] is not None})
    counts: dict[tuple[str, date, str], int] = {}
    for chunk in _chunks(keys):
        stmt = select(col(Resident.name), col(Resident.birth_date), col(Resident.phone)).where(
            tuple_(col(Resident.name), col(Resident.birth_date)).in_(chunk), col(Resident.phone).is_not(None))
        for name, born, phone in session.execute(stmt).all():
            counts[(name, born, phone)] = counts.get((name, born, phone), 0) + 1
    for values in fresh:
        if values["phone"] is not None and counts.get((values["name"], values["birth_date"], values["phone"]), 0) > 1:
            resident = session.get(Resident, values["id"])
            if resident is not None:
                service.flag_likely_duplicates(session, resident)
