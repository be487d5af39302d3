"""pending statistics changes, folded into the rollups after the change commits

A change to incidents used to upsert some 22 rollup rows in its own transaction. It now inserts one row here per
change (an incident as counted, +1 or -1), in the same transaction; a fold applies what is pending in one batch and
deletes it (service/stats/rollups.py), and every statistics read folds first.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rollup_pending',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('sign', sa.SmallInteger(), nullable=False),
    sa.Column('incident_id', sa.Uuid(), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('location_id', sa.Uuid(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('exploitation_type', sa.String(length=40), nullable=False),
    sa.Column('age_band', sa.String(length=20), nullable=False),
    sa.Column('resident_pseudonym', sa.String(length=64), nullable=True),
    sa.Column('record_key', sa.SmallInteger(), nullable=False),
    sa.Column('meldcode_step', sa.SmallInteger(), nullable=False),
    sa.Column('reported', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_rollup_pending'))
    )


def downgrade() -> None:
    op.drop_table('rollup_pending')
