"""assistance requests (协查) with partner cities, outgoing and incoming

Chained after 0008 (periods and verifications).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE_OUTGOING = "direction = 'outgoing' AND state IN ('draft', 'sent', 'matched', 'verifying')"


def _s(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'assistance_requests',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('direction', _s(8), nullable=False),
        sa.Column('state', _s(10), nullable=False),
        sa.Column('topic', _s(16), nullable=False),
        sa.Column('urgent', sa.Boolean(), nullable=False),
        sa.Column('partner_city', _s(6), nullable=False),
        sa.Column('partner_reference', _s(40), nullable=True),
        sa.Column('resident_id', _s(32), nullable=True),
        sa.Column('community_id', _s(32), nullable=True),
        sa.Column('subject_id_number', _s(18), nullable=True),
        sa.Column('subject_name', _s(50), nullable=True),
        sa.Column('area_path', _s(120), nullable=False),
        sa.Column('district_code', _s(6), nullable=False),
        sa.Column('sent_on', sa.Date(), nullable=True),
        sa.Column('counted_from', sa.Date(), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=True),
        sa.Column('answered_on', sa.Date(), nullable=True),
        sa.Column('finding', _s(10), nullable=True),
        sa.Column('fp_certificate_status', _s(14), nullable=True),
        sa.Column('answer_note', _s(200), nullable=True),
        sa.Column('created_by', _s(32), nullable=False),
        sa.Column('sent_by', _s(32), nullable=True),
        sa.Column('answered_by', _s(32), nullable=True),
        sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['divisions.id']),
        sa.ForeignKeyConstraint(['resident_id'], ['residents.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('direction', 'partner_city', 'partner_reference', name='uq_assistance_partner_ref'),
    )
    with op.batch_alter_table('assistance_requests', schema=None) as batch_op:
        batch_op.create_index('ix_assistance_area_state_due', ['area_path', 'state', 'due_on'], unique=False,
                              postgresql_ops={'area_path': 'varchar_pattern_ops'})
        batch_op.create_index('ix_assistance_district_state_due', ['district_code', 'state', 'due_on'], unique=False)
        batch_op.create_index('ix_assistance_resident', ['resident_id'], unique=False)
        batch_op.create_index('uq_assistance_live_outgoing', ['resident_id', 'topic'], unique=True,
                              sqlite_where=sa.text(LIVE_OUTGOING), postgresql_where=sa.text(LIVE_OUTGOING))


def downgrade() -> None:
    with op.batch_alter_table('assistance_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_assistance_live_outgoing', sqlite_where=sa.text(LIVE_OUTGOING),
                            postgresql_where=sa.text(LIVE_OUTGOING))
        batch_op.drop_index('ix_assistance_resident')
        batch_op.drop_index('ix_assistance_district_state_due')
        batch_op.drop_index('ix_assistance_area_state_due')
    op.drop_table('assistance_requests')
