"""a municipality's own reporting routes and follow-up days

Guidance (issue 17) picks reporting routes from a data file shipped with the service; an admin may replace a
municipality's own routes (its Zorg- en Veiligheidshuis, a regional desk) and the days after which a signal without
a decision joins the follow-up queue. One row per municipality that has its own.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('municipality_guidance',
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('routes', sa.JSON(), nullable=False),
    sa.Column('follow_up_days', sa.SmallInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('municipality_code', name=op.f('pk_municipality_guidance'))
    )


def downgrade() -> None:
    op.drop_table('municipality_guidance')
