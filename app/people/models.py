"""The migrant register: residents, landlords, tenancies, family-planning documents, the separate
reproductive-health record, and the workflow records around them (transfers, duplicate reviews,
corrections, disclosures).

Every resident row carries the `area_path` of its community (or grid) and the `district_code`, like
every scoped row. Reproductive-health data lives in its own table so that no query for identity or
residence can touch it by accident.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class ResidentStatus(StrEnum):
    registered = "REGISTERED"
    left = "LEFT"
    archived = "ARCHIVED"


class Sex(StrEnum):
    male = "M"
    female = "F"


class MaritalStatus(StrEnum):
    unmarried = "unmarried"  # 未婚
    married = "married"  # 已婚 (初婚/再婚)
    divorced = "divorced"  # 离婚
    widowed = "widowed"  # 丧偶
    unknown = "unknown"


class TenancySource(StrEnum):
    self_report = "self"
    landlord = "landlord"
    police = "police"
    worker = "worker"


class FpDocStatus(StrEnum):
    valid = "valid"
    temporary = "temporary"
    expired = "expired"
    nonconforming = "nonconforming"
    missing = "missing"


class PregnancyStatus(StrEnum):
    not_pregnant = "not_pregnant"
    pregnant = "pregnant"
    unknown = "unknown"


class Contraception(StrEnum):
    iud = "iud"  # 上环
    implant = "implant"  # 皮下埋植
    sterilisation = "sterilisation"  # 绝育
    injection = "injection"
    oral = "oral"
    condom = "condom"
    other = "other"
    none = "none"


LONG_ACTING = {Contraception.iud, Contraception.implant, Contraception.sterilisation}


class Resident(SQLModel, table=True):
    __tablename__ = "residents"
    __table_args__ = (
        Index("ix_residents_area_path", "area_path", postgresql_ops={"area_path": "varchar_pattern_ops"}),
        Index("ix_residents_district_name", "district_code", "name", postgresql_ops={"name": "varchar_pattern_ops"}),
        Index("ix_residents_phone", "phone"),
        Index("ix_residents_dwelling", "dwelling_id"),
        Index("ix_residents_dupe", "name", "birth_date"),
        # The outflow roster's and change feed's prefix LIKE on the 户籍地 code (docs/performance.md).
        Index("ix_residents_hukou_code", "hukou_code", postgresql_ops={"hukou_code": "varchar_pattern_ops"}),
        # Phones receive this table (app/ledger/changes.py).
        {"info": {"sync": True}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    community_id: str = Field(foreign_key="divisions.id", max_length=32)
    dwelling_id: str | None = Field(default=None, foreign_key="dwellings.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    name: str = Field(max_length=50)
    sex: str = Field(max_length=1)
    birth_date: date
    # One person, one record city-wide. NULL only for anonymised records.
    id_number: str | None = Field(default=None, max_length=18, unique=True)
    id_verified: bool = True
    id_accepted_by: str | None = Field(default=None, max_length=32)
    phone: str | None = Field(default=None, max_length=11)
    ethnicity: str | None = Field(default=None, max_length=20)
    hukou_code: str = Field(max_length=6)
    hukou_address: str | None = Field(default=None, max_length=200)
    arrival_date: date
    marital_status: str = Field(default=MaritalStatus.unknown.value, max_length=12)
    employer: str | None = Field(default=None, max_length=100)
    occupation: str | None = Field(default=None, max_length=50)
    residence_permit_no: str | None = Field(default=None, max_length=30)
    status: str = Field(default=ResidentStatus.registered.value, max_length=12, index=True)
    left_on: date | None = None
    left_reason: str | None = Field(default=None, max_length=30)
    key_person: bool = Field(default=False, index=True)
    merged_into_id: str | None = Field(default=None, foreign_key="residents.id", max_length=32)
    anonymised_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class Landlord(SQLModel, table=True):
    __tablename__ = "landlords"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(max_length=50)
    id_number: str | None = Field(default=None, max_length=18, unique=True)
    phone: str | None = Field(default=None, max_length=11)
    # The landlord is listed where their first registered dwelling is; scope follows their dwellings.
    district_code: str = Field(max_length=6)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class Tenancy(SQLModel, table=True):
    """Who lived where, when, by whose report: the residence history."""

    __tablename__ = "tenancies"
    __table_args__ = (
        Index("ix_tenancies_resident", "resident_id", "move_in"),
        Index("ix_tenancies_dwelling", "dwelling_id", "move_out"),
        Index("ix_tenancies_area_path", "area_path", postgresql_ops={"area_path": "varchar_pattern_ops"}),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    resident_id: str = Field(foreign_key="residents.id", max_length=32)
    dwelling_id: str = Field(foreign_key="dwellings.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    move_in: date
    move_out: date | None = None
    source: str = Field(max_length=10)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class FpDocument(SQLModel, table=True):
    """婚育证明: the marriage-and-childbearing certificate, as checked by the residence office."""

    __tablename__ = "fp_documents"
    __table_args__ = (
        Index("ix_fp_documents_resident", "resident_id"),
        # Synced where their resident lies, and moving with them (app/ledger/changes.py).
        {"info": {"sync": {"via": ("residents", "resident_id")}}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    resident_id: str = Field(foreign_key="residents.id", max_length=32)
    district_code: str = Field(max_length=6)
    number: str | None = Field(default=None, max_length=40)
    issuing_division: str | None = Field(default=None, max_length=12)
    issued_on: date | None = None
    expires_on: date | None = None
    status: str = Field(max_length=14)
    checked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    checked_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class HealthRecord(SQLModel, table=True):
    """Reproductive health (PIPL sensitive): one row per resident, read only through audited paths."""

    __tablename__ = "health_records"

    resident_id: str = Field(foreign_key="residents.id", primary_key=True, max_length=32)
    district_code: str = Field(max_length=6)
    contraception: str | None = Field(default=None, max_length=14)
    contraception_since: date | None = None
    pregnancy: str = Field(default=PregnancyStatus.unknown.value, max_length=14)
    pregnancy_noted_on: date | None = None
    # JSON list of {"birth_date": "YYYY-MM-DD", "sex": "M"|"F"}; no names of children are kept.
    children: str = Field(default="[]", max_length=2000)
    updated_by: str | None = Field(default=None, max_length=32)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = 1


class RequestStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    rejected = "rejected"
    cancelled = "cancelled"


OPEN_TRANSFER = "status = 'pending'"


class TransferRequest(SQLModel, table=True):
    """A worker registered a person whose record another community holds (registered there, or registered
    there before they left): ask the holder to hand the record over.

    At most one open (pending) request per person and requesting community: a partial unique index, so two
    registrations at the same moment cannot open two."""

    __tablename__ = "transfer_requests"
    __table_args__ = (
        Index("ix_transfers_resident", "resident_id", "status"),
        Index("uq_transfer_requests_open", "resident_id", "to_community_id", unique=True,
              sqlite_where=text(OPEN_TRANSFER), postgresql_where=text(OPEN_TRANSFER)),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    resident_id: str = Field(foreign_key="residents.id", max_length=32)
    from_area_path: str = Field(max_length=120)
    to_community_id: str = Field(foreign_key="divisions.id", max_length=32)
    to_area_path: str = Field(max_length=120)
    to_dwelling_id: str | None = Field(default=None, foreign_key="dwellings.id", max_length=32)
    # The arrival date the requester registered: a person who had left starts their new tenancy then.
    arrival_date: date | None = None
    district_code: str = Field(max_length=6)
    requested_by: str = Field(max_length=32)
    status: str = Field(default=RequestStatus.pending.value, max_length=10)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DuplicateFlag(SQLModel, table=True):
    """Two records that look like one person (same name, birth date and phone) without an ID match."""

    __tablename__ = "duplicate_flags"
    __table_args__ = (UniqueConstraint("resident_a", "resident_b", name="uq_duplicate_pair"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    resident_a: str = Field(foreign_key="residents.id", max_length=32)
    resident_b: str = Field(foreign_key="residents.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    status: str = Field(default="open", max_length=10)  # open, merged, dismissed
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CorrectionRequest(SQLModel, table=True):
    """A resident asks for their data to be corrected (PIPL art. 46); a worker accepts or rejects."""

    __tablename__ = "correction_requests"
    __table_args__ = (Index("ix_corrections_resident", "resident_id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    resident_id: str = Field(foreign_key="residents.id", max_length=32)
    area_path: str = Field(max_length=120)
    district_code: str = Field(max_length=6)
    # JSON object field -> requested value. Personal data: kept here, never copied into the audit log.
    changes: str = Field(max_length=4000)
    note: str | None = Field(default=None, max_length=500)
    status: str = Field(default=RequestStatus.pending.value, max_length=10)
    decision_reason: str | None = Field(default=None, max_length=500)
    requested_by: str = Field(max_length=32)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Disclosure(SQLModel, table=True):
    """The disclosure ledger: what went to which partner, when, under which legal basis."""

    __tablename__ = "disclosures"
    __table_args__ = (Index("ix_disclosures_resident", "resident_id", "disclosed_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    resident_id: str = Field(foreign_key="residents.id", max_length=32)
    district_code: str = Field(max_length=6)
    partner_kind: str = Field(max_length=20)
    partner_id: str = Field(max_length=32)
    field_groups: str = Field(max_length=200)
    legal_basis: str = Field(max_length=200)
    disclosed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
