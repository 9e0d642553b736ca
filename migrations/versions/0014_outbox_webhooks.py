"""outbox_events, outbox_deliveries and webhook_endpoints: push delivery to partners

Chained after 0010 (report submissions); the lead rechains at merge.

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-05 12:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        'outbox_events',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('type', _s(40), nullable=False),
        sa.Column('endpoint_id', _s(32), nullable=False),
        sa.Column('subject_type', _s(20), nullable=True),
        sa.Column('subject_id', _s(32), nullable=True),
        sa.Column('district_code', _s(6), nullable=True),
        sa.Column('body', _s(), nullable=False),
        sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('state', _s(10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('claimed_by', _s(32), nullable=True),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', _s(40), nullable=True),
        sa.Column('delivered_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_outbox_due', 'outbox_events', ['state', 'next_attempt_at'])
    op.create_index('ix_outbox_endpoint', 'outbox_events', ['endpoint_id', 'created_at'])
    op.create_table(
        'outbox_deliveries',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('event_id', _s(32), nullable=False),
        sa.Column('endpoint_id', _s(32), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('error', _s(40), nullable=True),
        sa.Column('outcome', _s(10), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_outbox_deliveries_event', 'outbox_deliveries', ['event_id', 'id'])
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', _s(32), nullable=False),
        sa.Column('partner_user_id', _s(32), nullable=False),
        sa.Column('partner_kind', _s(20), nullable=False),
        sa.Column('url', _s(500), nullable=False),
        sa.Column('secret', _s(200), nullable=False),
        sa.Column('area_prefix', _s(120), nullable=True),
        sa.Column('hukou_prefix', _s(6), nullable=True),
        sa.Column('event_types', _s(200), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['partner_user_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_endpoints_partner_user_id', 'webhook_endpoints', ['partner_user_id'])


def downgrade() -> None:
    op.drop_index('ix_webhook_endpoints_partner_user_id', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
    op.drop_index('ix_outbox_deliveries_event', table_name='outbox_deliveries')
    op.drop_table('outbox_deliveries')
    op.drop_index('ix_outbox_endpoint', table_name='outbox_events')
    op.drop_index('ix_outbox_due', table_name='outbox_events')
    op.drop_table('outbox_events')
