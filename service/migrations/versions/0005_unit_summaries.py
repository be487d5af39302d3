"""unit summaries: per unit and month, quarter or year, so unfiltered statistics read one row per unit

The tables are filled from the incidents already recorded by the application's own rebuild (as `risk-register stats
rebuild`), so a later change to the incident or rollup tables must keep this upgrade working from 0004: the
migration tests upgrade an empty database from base on every run, and a populated one should be tried by hand.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 08:20:54.137492
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('unit_resident',
    sa.Column('period_type', sa.String(length=7), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('level', sa.String(length=11), nullable=False),
    sa.Column('unit', sa.String(length=36), nullable=False),
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('resident_pseudonym', sa.String(length=64), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.Column('step2', sa.Integer(), nullable=False),
    sa.Column('step5', sa.Integer(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('period_type', 'period', 'level', 'unit', 'municipality_code', 'resident_pseudonym', name=op.f('pk_unit_resident'))
    )
    op.create_table('unit_tally',
    sa.Column('period_type', sa.String(length=7), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('level', sa.String(length=11), nullable=False),
    sa.Column('unit', sa.String(length=36), nullable=False),
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.Column('key_sum', sa.Integer(), nullable=False),
    sa.Column('step2', sa.Integer(), nullable=False),
    sa.Column('step2_key_sum', sa.Integer(), nullable=False),
    sa.Column('step5', sa.Integer(), nullable=False),
    sa.Column('step5_key_sum', sa.Integer(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.Column('reported_key_sum', sa.Integer(), nullable=False),
    sa.Column('residents', sa.Integer(), nullable=False),
    sa.Column('residents_key_sum', sa.Integer(), nullable=False),
    sa.Column('incidents_of_residents', sa.Integer(), nullable=False),
    sa.Column('incidents_top1', sa.Integer(), nullable=False),
    sa.Column('incidents_top2', sa.Integer(), nullable=False),
    sa.Column('incidents_top3', sa.Integer(), nullable=False),
    sa.Column('step2_of_residents', sa.Integer(), nullable=False),
    sa.Column('step2_top1', sa.Integer(), nullable=False),
    sa.Column('step2_top2', sa.Integer(), nullable=False),
    sa.Column('step2_top3', sa.Integer(), nullable=False),
    sa.Column('step5_of_residents', sa.Integer(), nullable=False),
    sa.Column('step5_top1', sa.Integer(), nullable=False),
    sa.Column('step5_top2', sa.Integer(), nullable=False),
    sa.Column('step5_top3', sa.Integer(), nullable=False),
    sa.Column('reported_of_residents', sa.Integer(), nullable=False),
    sa.Column('reported_top1', sa.Integer(), nullable=False),
    sa.Column('reported_top2', sa.Integer(), nullable=False),
    sa.Column('reported_top3', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('period_type', 'period', 'level', 'unit', 'municipality_code', name=op.f('pk_unit_tally'))
    )

    from sqlalchemy.orm import Session

    from service.stats.rollups import rebuild

    rebuild(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_table('unit_tally')
    op.drop_table('unit_resident')
