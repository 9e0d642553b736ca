"""tasks: a reported arrival (a person a police station registered here whom the register does not have) is a task
without a resident: `resident_id` nullable, `dwelling_id` (the reported dwelling) added, and a check that only that
kind may lack a resident. PostgreSQL indexes for the partner feeds: `residents.hukou_code` with
`varchar_pattern_ops` (the outflow roster's and feed's prefix LIKE), and the change log by (seq, id) and
(district_code, seq, id) for the feeds' cursors (docs/performance.md, "Indexes for the partner feeds").

SQLite rebuilds `tasks` (batch mode) to change the column.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 23:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "resident_id IS NOT NULL OR kind = 'reported_arrival'"


def _s(length: int | None = None) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dwelling_id', _s(32), nullable=True))
        batch_op.alter_column('resident_id', existing_type=_s(32), nullable=True)
        batch_op.create_foreign_key('fk_tasks_dwelling_id_dwellings', 'dwellings', ['dwelling_id'], ['id'])
        batch_op.create_check_constraint('ck_tasks_subject', CHECK)
    _feed_indexes()


def _feed_indexes() -> None:
    op.drop_index('ix_sync_log_seq', table_name='sync_log')
    op.drop_index('ix_sync_log_district_seq', table_name='sync_log')
    op.create_index('ix_sync_log_seq_id', 'sync_log', ['seq', 'id'], unique=False)
    op.create_index('ix_sync_log_district_seq_id', 'sync_log', ['district_code', 'seq', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':  # SQLite's case-sensitive LIKE uses the plain index already
        op.drop_index('ix_residents_hukou_code', table_name='residents')
        op.create_index('ix_residents_hukou_code', 'residents', ['hukou_code'], unique=False,
                        postgresql_ops={'hukou_code': 'varchar_pattern_ops'})


def _old_indexes() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_index('ix_residents_hukou_code', table_name='residents')
        op.create_index('ix_residents_hukou_code', 'residents', ['hukou_code'], unique=False)
    op.drop_index('ix_sync_log_district_seq_id', table_name='sync_log')
    op.drop_index('ix_sync_log_seq_id', table_name='sync_log')
    op.create_index('ix_sync_log_district_seq', 'sync_log', ['district_code', 'seq'], unique=False)
    op.create_index('ix_sync_log_seq', 'sync_log', ['seq'], unique=False)


def downgrade() -> None:
    _old_indexes()
    # Reported arrivals not yet registered have no resident and cannot survive the old schema.
    op.execute("DELETE FROM tasks WHERE resident_id IS NULL")
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_constraint('ck_tasks_subject', type_='check')
        batch_op.drop_constraint('fk_tasks_dwelling_id_dwellings', type_='foreignkey')
        batch_op.alter_column('resident_id', existing_type=_s(32), nullable=False)
        batch_op.drop_column('dwelling_id')
