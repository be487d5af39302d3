"""statistics rollups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 05:23:45.207186
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incident_rollup',
    sa.Column('grain', sa.String(length=5), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('location_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('exploitation_type', sa.String(length=40), nullable=False),
    sa.Column('age_band', sa.String(length=20), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.Column('key_sum', sa.Integer(), nullable=False),
    sa.Column('step2', sa.Integer(), nullable=False),
    sa.Column('step2_key_sum', sa.Integer(), nullable=False),
    sa.Column('step5', sa.Integer(), nullable=False),
    sa.Column('step5_key_sum', sa.Integer(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.Column('reported_key_sum', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_incident_rollup_location_id_location'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grain', 'period', 'location_id', 'kind', 'exploitation_type', 'age_band', name=op.f('pk_incident_rollup'))
    )
    with op.batch_alter_table('incident_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_incident_rollup_grain_period', ['grain', 'period'], unique=False)

    op.create_table('resident_rollup',
    sa.Column('grain', sa.String(length=5), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('location_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('exploitation_type', sa.String(length=40), nullable=False),
    sa.Column('age_band', sa.String(length=20), nullable=False),
    sa.Column('resident_pseudonym', sa.String(length=64), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.Column('step2', sa.Integer(), nullable=False),
    sa.Column('step5', sa.Integer(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_resident_rollup_location_id_location'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grain', 'period', 'location_id', 'kind', 'exploitation_type', 'age_band', 'resident_pseudonym', name=op.f('pk_resident_rollup'))
    )
    with op.batch_alter_table('resident_rollup', schema=None) as batch_op:
        batch_op.create_index('ix_resident_rollup_grain_period', ['grain', 'period'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('resident_rollup', schema=None) as batch_op:
        batch_op.drop_index('ix_resident_rollup_grain_period')

    op.drop_table('resident_rollup')
    with op.batch_alter_table('incident_rollup', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_rollup_grain_period')

    op.drop_table('incident_rollup')
