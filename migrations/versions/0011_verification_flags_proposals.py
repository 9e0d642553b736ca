"""verifications: the linked visit's check-in flags, and a partner's proposed outcome awaiting a worker's confirmation

Chained after 0010 (report submissions).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 11:40:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkin_flags', _s(300), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('proposed_outcome', _s(20), nullable=True))
        batch_op.add_column(sa.Column('proposed_source', _s(20), nullable=True))
        batch_op.add_column(sa.Column('proposed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('proposed_at', app.core.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('proposed_by', _s(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.drop_column('proposed_by')
        batch_op.drop_column('proposed_at')
        batch_op.drop_column('proposed_on')
        batch_op.drop_column('proposed_source')
        batch_op.drop_column('proposed_outcome')
        batch_op.drop_column('checkin_flags')
