"""landlord_accounts, landlord_dwelling_claims, landlord_reports: landlords as partners (issue 14)

Chained after 0010 (the lead rechains at merge).

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-05 11:31:53.011197
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('landlord_accounts',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('landlord_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
    sa.Column('id_number', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=False),
    sa.Column('community_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('area_path', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('confirmed_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['divisions.id'], ),
    sa.ForeignKeyConstraint(['landlord_id'], ['landlords.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('user_id'),
    sa.UniqueConstraint('id_number'),
    sa.UniqueConstraint('landlord_id')
    )
    with op.batch_alter_table('landlord_accounts', schema=None) as batch_op:
        batch_op.create_index('ix_landlord_accounts_area_path', ['area_path'], unique=False, postgresql_ops={'area_path': 'varchar_pattern_ops'})

    op.create_table('landlord_dwelling_claims',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('community_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('area_path', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('dwelling_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('decided_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['landlord_accounts.user_id'], ),
    sa.ForeignKeyConstraint(['community_id'], ['divisions.id'], ),
    sa.ForeignKeyConstraint(['dwelling_id'], ['dwellings.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'community_id', 'address', name='uq_landlord_claims_account_address')
    )
    with op.batch_alter_table('landlord_dwelling_claims', schema=None) as batch_op:
        batch_op.create_index('ix_landlord_claims_area_state', ['area_path', 'state'], unique=False, postgresql_ops={'area_path': 'varchar_pattern_ops'})
        batch_op.create_index(batch_op.f('ix_landlord_dwelling_claims_account_id'), ['account_id'], unique=False)

    op.create_table('landlord_reports',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('account_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('landlord_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('dwelling_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('community_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('area_path', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('district_code', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
    sa.Column('id_number', sqlmodel.sql.sqltypes.AutoString(length=18), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=11), nullable=True),
    sa.Column('on_date', sa.Date(), nullable=False),
    sa.Column('reported_on', sa.Date(), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
    sa.Column('resident_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('tenancy_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('task_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('decided_at', app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['landlord_accounts.user_id'], ),
    sa.ForeignKeyConstraint(['community_id'], ['divisions.id'], ),
    sa.ForeignKeyConstraint(['dwelling_id'], ['dwellings.id'], ),
    sa.ForeignKeyConstraint(['landlord_id'], ['landlords.id'], ),
    sa.ForeignKeyConstraint(['resident_id'], ['residents.id'], ),
    sa.ForeignKeyConstraint(['tenancy_id'], ['tenancies.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dwelling_id', 'kind', 'subject', 'on_date', name='uq_landlord_reports_subject')
    )
    with op.batch_alter_table('landlord_reports', schema=None) as batch_op:
        batch_op.create_index('ix_landlord_reports_area_state', ['area_path', 'state'], unique=False, postgresql_ops={'area_path': 'varchar_pattern_ops'})
        batch_op.create_index('ix_landlord_reports_landlord', ['landlord_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('landlord_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_landlord_reports_landlord')
        batch_op.drop_index('ix_landlord_reports_area_state', postgresql_ops={'area_path': 'varchar_pattern_ops'})

    op.drop_table('landlord_reports')
    with op.batch_alter_table('landlord_dwelling_claims', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_landlord_dwelling_claims_account_id'))
        batch_op.drop_index('ix_landlord_claims_area_state', postgresql_ops={'area_path': 'varchar_pattern_ops'})

    op.drop_table('landlord_dwelling_claims')
    with op.batch_alter_table('landlord_accounts', schema=None) as batch_op:
        batch_op.drop_index('ix_landlord_accounts_area_path', postgresql_ops={'area_path': 'varchar_pattern_ops'})

    op.drop_table('landlord_accounts')
