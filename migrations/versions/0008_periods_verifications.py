"""periods and verifications (月核查): the monthly cycle's months per community and one verification per
registered resident per month

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 08:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AREA_OPS = {'area_path': 'varchar_pattern_ops'}


def _s(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    utc = app.core.types.UTCDateTime(timezone=True)
    op.create_table(
        'periods',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('month', _s(7), nullable=False),
        sa.Column('community_id', _s(32), nullable=False),
        sa.Column('area_path', _s(120), nullable=False),
        sa.Column('district_code', _s(6), nullable=False),
        sa.Column('state', _s(10), nullable=False),
        sa.Column('opened_at', utc, nullable=False),
        sa.Column('opened_by', _s(32), nullable=True),
        sa.Column('closed_at', utc, nullable=True),
        sa.Column('closed_by', _s(32), nullable=True),
        sa.Column('created_at', utc, nullable=False),
        sa.Column('updated_at', utc, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['divisions.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('community_id', 'month', name='uq_periods_community_month'),
    )
    with op.batch_alter_table('periods', schema=None) as batch_op:
        batch_op.create_index('ix_periods_area_month', ['area_path', 'month'], unique=False,
                              postgresql_ops=AREA_OPS)
        batch_op.create_index('ix_periods_district_month', ['district_code', 'month'], unique=False)
    op.create_table(
        'verifications',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('period_id', _s(32), nullable=False),
        sa.Column('month', _s(7), nullable=False),
        sa.Column('resident_id', _s(32), nullable=False),
        sa.Column('community_id', _s(32), nullable=False),
        sa.Column('dwelling_id', _s(32), nullable=True),
        sa.Column('area_path', _s(120), nullable=False),
        sa.Column('district_code', _s(6), nullable=False),
        sa.Column('outcome', _s(20), nullable=True),
        sa.Column('evidence', _s(10), nullable=True),
        sa.Column('visit_id', _s(36), nullable=True),
        sa.Column('note', _s(200), nullable=True),
        sa.Column('new_dwelling_id', _s(32), nullable=True),
        sa.Column('moved_on', sa.Date(), nullable=True),
        sa.Column('not_found_streak', sa.Integer(), nullable=False),
        sa.Column('verified_by', _s(32), nullable=True),
        sa.Column('verified_at', utc, nullable=True),
        sa.Column('created_at', utc, nullable=False),
        sa.Column('updated_at', utc, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['divisions.id']),
        sa.ForeignKeyConstraint(['dwelling_id'], ['dwellings.id']),
        sa.ForeignKeyConstraint(['new_dwelling_id'], ['dwellings.id']),
        sa.ForeignKeyConstraint(['period_id'], ['periods.id']),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id']),
        sa.ForeignKeyConstraint(['visit_id'], ['visits.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('period_id', 'resident_id', name='uq_verifications_period_resident'),
    )
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.create_index('ix_verifications_area_month', ['area_path', 'month'], unique=False,
                              postgresql_ops=AREA_OPS)
        batch_op.create_index('ix_verifications_district_month', ['district_code', 'month', 'outcome'],
                              unique=False)
        batch_op.create_index('ix_verifications_period_outcome', ['period_id', 'outcome'], unique=False)
        batch_op.create_index('ix_verifications_resident_month', ['resident_id', 'month'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.drop_index('ix_verifications_resident_month')
        batch_op.drop_index('ix_verifications_period_outcome')
        batch_op.drop_index('ix_verifications_district_month')
        batch_op.drop_index('ix_verifications_area_month')
    op.drop_table('verifications')
    with op.batch_alter_table('periods', schema=None) as batch_op:
        batch_op.drop_index('ix_periods_district_month')
        batch_op.drop_index('ix_periods_area_month')
    op.drop_table('periods')
