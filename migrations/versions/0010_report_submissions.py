"""report_submissions and report_corrections: the monthly report's approval, frozen figures and corrections

Chained after 0009 (assistance requests).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 08:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'report_submissions',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('community_id', _s(32), nullable=False),
        sa.Column('month', _s(7), nullable=False),
        sa.Column('area_path', _s(120), nullable=False),
        sa.Column('district_code', _s(6), nullable=False),
        sa.Column('state', _s(12), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('late', sa.Boolean(), nullable=False),
        sa.Column('first_submitted_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('submitted_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('submitted_by', _s(32), nullable=False),
        sa.Column('submissions', sa.Integer(), nullable=False),
        sa.Column('returned_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('returned_by', _s(32), nullable=True),
        sa.Column('return_reason', _s(200), nullable=True),
        sa.Column('approved_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('approved_by', _s(32), nullable=True),
        sa.Column('figures', _s(), nullable=False),
        sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['divisions.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('community_id', 'month', name='uq_report_submissions_community_month'),
    )
    with op.batch_alter_table('report_submissions', schema=None) as batch_op:
        batch_op.create_index('ix_report_submissions_area_month', ['area_path', 'month'], unique=False,
                              postgresql_ops={'area_path': 'varchar_pattern_ops'})
        batch_op.create_index('ix_report_submissions_district_month', ['district_code', 'month'], unique=False)
    op.create_table(
        'report_corrections',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('submission_id', _s(32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('community_id', _s(32), nullable=False),
        sa.Column('month', _s(7), nullable=False),
        sa.Column('area_path', _s(120), nullable=False),
        sa.Column('district_code', _s(6), nullable=False),
        sa.Column('code', _s(80), nullable=False),
        sa.Column('original', sa.Integer(), nullable=False),
        sa.Column('corrected', sa.Integer(), nullable=False),
        sa.Column('reason', _s(200), nullable=False),
        sa.Column('author', _s(32), nullable=False),
        sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['community_id'], ['divisions.id']),
        sa.ForeignKeyConstraint(['submission_id'], ['report_submissions.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('submission_id', 'seq', name='uq_report_corrections_submission_seq'),
    )
    with op.batch_alter_table('report_corrections', schema=None) as batch_op:
        batch_op.create_index('ix_report_corrections_area_month', ['area_path', 'month'], unique=False,
                              postgresql_ops={'area_path': 'varchar_pattern_ops'})


def downgrade() -> None:
    with op.batch_alter_table('report_corrections', schema=None) as batch_op:
        batch_op.drop_index('ix_report_corrections_area_month')
    op.drop_table('report_corrections')
    with op.batch_alter_table('report_submissions', schema=None) as batch_op:
        batch_op.drop_index('ix_report_submissions_district_month')
        batch_op.drop_index('ix_report_submissions_area_month')
    op.drop_table('report_submissions')
