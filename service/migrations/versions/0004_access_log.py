"""access log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 05:31:53.591320
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_event',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_type', sa.String(length=20), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=True),
    sa.Column('acted_for', sa.Text(), nullable=True),
    sa.Column('municipality_code', sa.String(length=6), nullable=True),
    sa.Column('route', sa.String(length=200), nullable=False),
    sa.Column('records', sa.JSON(), nullable=False),
    sa.Column('record_count', sa.Integer(), nullable=True),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.Column('outcome', sa.SmallInteger(), nullable=False),
    sa.Column('request_id', sa.String(length=128), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_access_event')),
    sa.UniqueConstraint('hash', name=op.f('uq_access_event_hash'))
    )
    with op.batch_alter_table('access_event', schema=None) as batch_op:
        batch_op.create_index('ix_access_event_client_id', ['client_id'], unique=False)
        batch_op.create_index('ix_access_event_occurred_at_seq', ['occurred_at', 'seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('access_event', schema=None) as batch_op:
        batch_op.drop_index('ix_access_event_occurred_at_seq')
        batch_op.drop_index('ix_access_event_client_id')

    op.drop_table('access_event')
