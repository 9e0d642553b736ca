"""police_batches and police_report_rows: a station's uploads of residence-permit registrations and their rows as
reconciled with the register

Chained after 0013 (landlord partner accounts).

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-05 12:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _utc() -> app.core.types.UTCDateTime:
    return app.core.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'police_batches',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('station_id', _s(32), nullable=False),
        sa.Column('reference', _s(64), nullable=False),
        sa.Column('digest', _s(64), nullable=False),
        sa.Column('format', _s(8), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('matched', sa.Integer(), nullable=False),
        sa.Column('new', sa.Integer(), nullable=False),
        sa.Column('departed', sa.Integer(), nullable=False),
        sa.Column('conflicting', sa.Integer(), nullable=False),
        sa.Column('refused', sa.Integer(), nullable=False),
        sa.Column('refusals', _s(), nullable=False),
        sa.Column('created_at', _utc(), nullable=False),
        sa.ForeignKeyConstraint(['station_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('station_id', 'reference', name='uq_police_batches_station_reference'),
    )
    op.create_table(
        'police_report_rows',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('batch_id', _s(32), nullable=False),
        sa.Column('station_id', _s(32), nullable=False),
        sa.Column('row_number', sa.Integer(), nullable=False),
        sa.Column('kind', _s(16), nullable=False),
        sa.Column('outcome', _s(12), nullable=False),
        sa.Column('reported', _s(12), nullable=False),
        sa.Column('state', _s(10), nullable=False),
        sa.Column('conflict_fields', _s(60), nullable=True),
        sa.Column('id_number', _s(18), nullable=False),
        sa.Column('name', _s(50), nullable=False),
        sa.Column('sex', _s(1), nullable=False),
        sa.Column('community_id', _s(32), nullable=False),
        sa.Column('address', _s(200), nullable=True),
        sa.Column('event_date', sa.Date(), nullable=False),
        sa.Column('permit_no', _s(30), nullable=True),
        sa.Column('hukou_code', _s(6), nullable=True),
        sa.Column('area_path', _s(120), nullable=False),
        sa.Column('district_code', _s(6), nullable=False),
        sa.Column('dwelling_id', _s(32), nullable=True),
        sa.Column('resident_id', _s(32), nullable=True),
        sa.Column('verification_id', _s(36), nullable=True),
        sa.Column('task_id', _s(36), nullable=True),
        sa.Column('reason', _s(30), nullable=True),
        sa.Column('resolved_by', _s(32), nullable=True),
        sa.Column('resolved_at', _utc(), nullable=True),
        sa.Column('created_at', _utc(), nullable=False),
        sa.Column('updated_at', _utc(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['batch_id'], ['police_batches.id']),
        sa.ForeignKeyConstraint(['community_id'], ['divisions.id']),
        sa.ForeignKeyConstraint(['dwelling_id'], ['dwellings.id']),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('batch_id', 'row_number', name='uq_police_report_rows_batch_row'),
    )
    with op.batch_alter_table('police_report_rows', schema=None) as batch_op:
        batch_op.create_index('ix_police_report_rows_area_state', ['area_path', 'state'], unique=False,
                              postgresql_ops={'area_path': 'varchar_pattern_ops'})
        batch_op.create_index('ix_police_report_rows_district_state', ['district_code', 'state'], unique=False)
        batch_op.create_index('ix_police_report_rows_resident', ['resident_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('police_report_rows', schema=None) as batch_op:
        batch_op.drop_index('ix_police_report_rows_resident')
        batch_op.drop_index('ix_police_report_rows_district_state')
        batch_op.drop_index('ix_police_report_rows_area_state')
    op.drop_table('police_report_rows')
    op.drop_table('police_batches')
