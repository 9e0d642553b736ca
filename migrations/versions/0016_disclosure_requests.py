"""disclosure_requests: partner pulls held for a supervisor's approval while a profile requires one

Chained after 0015 (police uploads).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 22:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _utc() -> app.core.types.UTCDateTime:
    return app.core.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'disclosure_requests',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('partner_id', _s(32), nullable=False),
        sa.Column('partner_kind', _s(20), nullable=False),
        sa.Column('route', _s(20), nullable=False),
        sa.Column('params', _s(400), nullable=False),
        sa.Column('area_path', _s(120), nullable=False),
        sa.Column('district_code', _s(6), nullable=False),
        sa.Column('state', _s(10), nullable=False),
        sa.Column('profile_version', sa.Integer(), nullable=False),
        sa.Column('reason', _s(200), nullable=True),
        sa.Column('decided_by', _s(32), nullable=True),
        sa.Column('decided_at', _utc(), nullable=True),
        sa.Column('collected_at', _utc(), nullable=True),
        sa.Column('expires_at', _utc(), nullable=False),
        sa.Column('created_at', _utc(), nullable=False),
        sa.Column('updated_at', _utc(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['partner_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('disclosure_requests', schema=None) as batch_op:
        batch_op.create_index('ix_disclosure_requests_area_state', ['area_path', 'state'], unique=False,
                              postgresql_ops={'area_path': 'varchar_pattern_ops'})
        batch_op.create_index('ix_disclosure_requests_district_state', ['district_code', 'state'], unique=False)
        batch_op.create_index('ix_disclosure_requests_partner', ['partner_id', 'created_at'], unique=False)
        batch_op.create_index('ix_disclosure_requests_state_expires', ['state', 'expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('disclosure_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_disclosure_requests_state_expires')
        batch_op.drop_index('ix_disclosure_requests_partner')
        batch_op.drop_index('ix_disclosure_requests_district_state')
        batch_op.drop_index('ix_disclosure_requests_area_state')
    op.drop_table('disclosure_requests')
