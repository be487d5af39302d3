"""rate-limit hits shared through the database

The token endpoints' limit per address (TOKEN_RATE_LIMIT) was counted by each gunicorn worker for itself without
Redis, so two workers let 42 to 59 wrong secrets a minute through where 30 were promised. Each counted request is
now a row here, in every deployment; rows older than the limit's window are deleted as new ones arrive.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_limit_hit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_hit'))
    )
    with op.batch_alter_table('rate_limit_hit', schema=None) as batch_op:
        batch_op.create_index('ix_rate_limit_hit_at', ['at'], unique=False)
        batch_op.create_index('ix_rate_limit_hit_key_at', ['key', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rate_limit_hit', schema=None) as batch_op:
        batch_op.drop_index('ix_rate_limit_hit_key_at')
        batch_op.drop_index('ix_rate_limit_hit_at')

    op.drop_table('rate_limit_hit')
