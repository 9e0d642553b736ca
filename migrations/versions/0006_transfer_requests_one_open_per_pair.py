"""transfer requests: arrival date, one open request per person and requesting community

Requests that a concurrent registration opened twice (before this index) are settled first: the oldest
pending request of a pair stays open, later ones are cancelled with reason `duplicate_request`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status = 'pending'"


def upgrade() -> None:
    op.execute(
        "UPDATE transfer_requests SET status = 'cancelled', reason = 'duplicate_request' "
        "WHERE status = 'pending' AND EXISTS (SELECT 1 FROM transfer_requests AS older "
        "WHERE older.resident_id = transfer_requests.resident_id "
        "AND older.to_community_id = transfer_requests.to_community_id AND older.status = 'pending' "
        "AND (older.created_at < transfer_requests.created_at "
        "OR (older.created_at = transfer_requests.created_at AND older.id < transfer_requests.id)))"
    )
    with op.batch_alter_table('transfer_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('arrival_date', sa.Date(), nullable=True))
        batch_op.create_index('uq_transfer_requests_open', ['resident_id', 'to_community_id'], unique=True,
                              sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    with op.batch_alter_table('transfer_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_transfer_requests_open', sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))
        batch_op.drop_column('arrival_date')
