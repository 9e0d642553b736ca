"""ledger: the audit chain's format 2 (the target's area), user scopes carry their division's path

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 16:00:00

- audit_events: `chain_version` (existing rows are version 1 and verify as they were written), `area_path`
  and `district_code` of the target, an index by district. Adding columns fires no row trigger, so the
  append-only guards stay as they are.
- user_scopes: `area_path`, the assigned division's path (read with the user in one statement; relocating
  divisions rewrites it like every other area path), filled from the divisions.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('audit_events', sa.Column('chain_version', sa.Integer(), nullable=False, server_default='1'))
    op.add_column('audit_events', sa.Column('area_path', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
    op.add_column('audit_events', sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=6),
                                            nullable=True))
    op.create_index('ix_audit_district', 'audit_events', ['district_code', 'id'], unique=False)

    op.add_column('user_scopes', sa.Column('area_path', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
    op.execute("UPDATE user_scopes SET area_path = "
               "(SELECT divisions.path FROM divisions WHERE divisions.id = user_scopes.division_id)")
    with op.batch_alter_table('user_scopes', schema=None) as batch_op:
        batch_op.alter_column('area_path', existing_type=sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False)
        batch_op.create_index('ix_user_scopes_area_path', ['area_path'], unique=False,
                              postgresql_ops={'area_path': 'varchar_pattern_ops'})


def downgrade() -> None:
    with op.batch_alter_table('user_scopes', schema=None) as batch_op:
        batch_op.drop_index('ix_user_scopes_area_path')
        batch_op.drop_column('area_path')
    # Native ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch copy would drop the append-only triggers.
    op.drop_index('ix_audit_district', table_name='audit_events')
    op.drop_column('audit_events', 'district_code')
    op.drop_column('audit_events', 'area_path')
    op.drop_column('audit_events', 'chain_version')
