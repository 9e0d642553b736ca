"""partner_clients, partner_areas, partner_secrets, partner_rate_limits (machine clients: police stations,
outflow cities) and disclosure_profiles (per partner kind, versioned), with the default profiles

Chained after 0010 (the lead rechains at merge).

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-05 11:40:00
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TYPE = app.core.types.UTCDateTime(timezone=True)

# The defaults (docs/sharing.md, "Disclosure profiles"): minimum necessity per partner kind.
BASIS = "《居住证暂行条例》"
PROFILES = [
    ("0" * 31 + "1", "police", "identity,residence", BASIS,
     "居住证办理与流动人口治安管理", False, 365),
    ("0" * 31 + "2", "landlord", "masked_identity,tenancy", "《租赁房屋治安管理规定》",
     "出租房屋承租人登记核对", False, 180),
    ("0" * 31 + "3", "outflow_city", "fp_document,identity,residence,verification",
     "《流动人口计划生育工作条例》", "流入地与户籍地区域协作（婚育证明、月度核查）", False, 365),
]


def _s(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'partner_clients',
        sa.Column('user_id', _s(32), nullable=False),
        sa.Column('kind', _s(20), nullable=False),
        sa.Column('hukou_prefix', _s(6), nullable=True),
        sa.Column('created_by', _s(32), nullable=False),
        sa.Column('created_at', UTC_TYPE, nullable=False),
        sa.Column('updated_at', UTC_TYPE, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_table(
        'partner_areas',
        sa.Column('user_id', _s(32), nullable=False),
        sa.Column('division_id', _s(32), nullable=False),
        sa.Column('area_path', _s(120), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['division_id'], ['divisions.id']),
        sa.PrimaryKeyConstraint('user_id', 'division_id'),
    )
    with op.batch_alter_table('partner_areas', schema=None) as batch_op:
        batch_op.create_index('ix_partner_areas_area_path', ['area_path'], unique=False,
                              postgresql_ops={'area_path': 'varchar_pattern_ops'})
    op.create_table(
        'partner_secrets',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('user_id', _s(32), nullable=False),
        sa.Column('secret_hash', _s(255), nullable=False),
        sa.Column('created_by', _s(32), nullable=False),
        sa.Column('created_at', UTC_TYPE, nullable=False),
        sa.Column('retired_at', UTC_TYPE, nullable=True),
        sa.Column('last_used_at', UTC_TYPE, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('partner_secrets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_secrets_user_id'), ['user_id'], unique=False)
    op.create_table(
        'partner_rate_limits',
        sa.Column('key', _s(80), nullable=False),
        sa.Column('window_started_at', UTC_TYPE, nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    profiles = op.create_table(
        'disclosure_profiles',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('kind', _s(20), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('field_groups', _s(200), nullable=False),
        sa.Column('legal_basis', _s(200), nullable=False),
        sa.Column('purpose', _s(200), nullable=False),
        sa.Column('approval_required', sa.Boolean(), nullable=False),
        sa.Column('retention_days', sa.Integer(), nullable=False),
        sa.Column('created_by', _s(32), nullable=True),
        sa.Column('created_at', UTC_TYPE, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'version', name='uq_disclosure_profiles_kind_version'),
    )
    now = datetime.now(UTC)
    op.bulk_insert(profiles, [
        {"id": pid, "kind": kind, "version": 1, "field_groups": groups, "legal_basis": basis, "purpose": purpose,
         "approval_required": approval, "retention_days": days, "created_by": None, "created_at": now}
        for pid, kind, groups, basis, purpose, approval, days in PROFILES])


def downgrade() -> None:
    op.drop_table('disclosure_profiles')
    op.drop_table('partner_rate_limits')
    with op.batch_alter_table('partner_secrets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_partner_secrets_user_id'))
    op.drop_table('partner_secrets')
    with op.batch_alter_table('partner_areas', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_areas_area_path', postgresql_ops={'area_path': 'varchar_pattern_ops'})
    op.drop_table('partner_areas')
    op.drop_table('partner_clients')
