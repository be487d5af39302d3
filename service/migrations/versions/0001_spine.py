"""spine: institutions, locations, capacity, api clients, revoked tokens

Revision ID: 0001
Revises:
Create Date: 2026-11-28 05:10:14.683837
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('institution',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('sector', sa.Enum('youthCare', 'secureYouthCare', 'disabilityCare', 'mentalHealth', 'shelter', 'other', name='sector', native_enum=False, length=30), nullable=False),
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_institution'))
    )
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.create_index('ix_institution_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_institution_municipality_code'), ['municipality_code'], unique=False)

    op.create_table('api_client',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.Enum('institution', 'analyst', 'auditor', 'admin', name='role', native_enum=False, length=30), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=True),
    sa.Column('municipality_codes', sa.JSON(), nullable=False),
    sa.Column('secret_hash', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('secret_rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_api_client_institution_id_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_client'))
    )
    with op.batch_alter_table('api_client', schema=None) as batch_op:
        batch_op.create_index('ix_api_client_created_at_id', ['created_at', 'id'], unique=False)

    op.create_table('location',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('institution_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('postcode4', sa.String(length=4), nullable=False),
    sa.Column('municipality_code', sa.String(length=6), nullable=False),
    sa.Column('setting', sa.Enum('open', 'semiSecure', 'secure', 'shelter', 'dayCare', name='setting', native_enum=False, length=30), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['institution_id'], ['institution.id'], name=op.f('fk_location_institution_id_institution')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location'))
    )
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.create_index('ix_location_institution_id_created_at_id', ['institution_id', 'created_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_location_municipality_code'), ['municipality_code'], unique=False)

    op.create_table('capacity',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('location_id', sa.Uuid(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('places', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], name=op.f('fk_capacity_location_id_location'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_capacity')),
    sa.UniqueConstraint('location_id', 'valid_from', name=op.f('uq_capacity_location_id_valid_from'))
    )
    op.create_table('revoked_token',
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.Uuid(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['api_client.id'], name=op.f('fk_revoked_token_client_id_api_client')),
    sa.PrimaryKeyConstraint('jti', name=op.f('pk_revoked_token'))
    )
    with op.batch_alter_table('revoked_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revoked_token_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('revoked_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revoked_token_expires_at'))

    op.drop_table('revoked_token')
    op.drop_table('capacity')
    with op.batch_alter_table('location', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_location_municipality_code'))
        batch_op.drop_index('ix_location_institution_id_created_at_id')

    op.drop_table('location')
    with op.batch_alter_table('api_client', schema=None) as batch_op:
        batch_op.drop_index('ix_api_client_created_at_id')

    op.drop_table('api_client')
    with op.batch_alter_table('institution', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_institution_municipality_code'))
        batch_op.drop_index('ix_institution_created_at_id')

    op.drop_table('institution')
