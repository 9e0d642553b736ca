"""ledger: the audit chain's format 3 (keyed row hashes) and signed checkpoints of its head

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:00:00

- audit_events: `hmac_kid`, the AUDIT_HMAC_KEYS key a format 3 row's HMAC is made with (older rows keep their
  format and verify as written). Adding a column fires no row trigger: the append-only guards stay.
- audit_checkpoints: signed statements of the chain's head, append-only in the database like the chain.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_GUARD = """
CREATE FUNCTION audit_checkpoints_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_checkpoints is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_guard();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_guard();
"""
SQLITE_GUARD = [
    """CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END""",
    """CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END""",
]


def upgrade() -> None:
    op.add_column('audit_events', sa.Column('hmac_kid', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.create_table(
        'audit_checkpoints',
        sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('first_id', sa.BigInteger(), nullable=False),
        sa.Column('last_id', sa.BigInteger(), nullable=False),
        sa.Column('last_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('rows', sa.BigInteger(), nullable=False),
        sa.Column('chain_version', sa.Integer(), nullable=False),
        sa.Column('keyed_from', sa.BigInteger(), nullable=True),
        sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('public_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('signature', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('signed_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_checkpoints_last', 'audit_checkpoints', ['last_id'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_GUARD)
    else:
        for statement in SQLITE_GUARD:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON audit_checkpoints")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_append_only ON audit_checkpoints")
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoints_guard()")
    op.drop_index('ix_audit_checkpoints_last', table_name='audit_checkpoints')
    op.drop_table('audit_checkpoints')
    # Native ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch copy would drop the append-only triggers.
    op.drop_column('audit_events', 'hmac_kid')
